#include "base/duration.h"

#include <limits>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "base/strings.h"

namespace strongroom {

// strconv.ParseInt(s, 10, 64): optional sign, at least one digit, nothing else.
std::optional<int64_t> ParseGoInt(std::string_view s) {
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<uint64_t>(c - '0');
    if (v > (uint64_t{1} << 63) / 10 || v * 10 > (uint64_t{1} << 63) - digit) return std::nullopt;
    v = v * 10 + digit;
  }
  if (negative) {
    return v == (uint64_t{1} << 63) ? std::numeric_limits<int64_t>::min()
                                    : -static_cast<int64_t>(v);
  }
  if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
  return static_cast<int64_t>(v);
}

// Go's time.ParseDuration, in nanoseconds: [-+]?(<digits>[.<digits>]<unit>)+ or "0", with the
// units ns us µs μs ms s m h. Fractions are scaled through a double, as Go does.
absl::StatusOr<int64_t> ParseGoDurationNanos(std::string_view s) {
  const auto syntax = [] { return absl::InvalidArgumentError("not a Go duration"); };
  const auto too_long = [] { return absl::OutOfRangeError("longer than a Go duration holds"); };
  constexpr uint64_t kLimit = uint64_t{1} << 63;
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return 0;
  if (s.empty()) return syntax();
  auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  uint64_t total = 0;
  while (!s.empty()) {
    if (s[0] != '.' && !is_digit(s[0])) return syntax();
    uint64_t whole = 0;
    size_t i = 0;
    for (; i < s.size() && is_digit(s[i]); ++i) {
      const auto digit = static_cast<uint64_t>(s[i] - '0');
      if (whole > kLimit / 10 || whole * 10 > kLimit - digit) return too_long();
      whole = whole * 10 + digit;
    }
    const bool pre = i > 0;
    s.remove_prefix(i);
    uint64_t fraction = 0;
    double scale = 1;
    bool post = false;
    if (!s.empty() && s[0] == '.') {
      s.remove_prefix(1);
      bool overflow = false;
      for (i = 0; i < s.size() && is_digit(s[i]); ++i) {
        if (overflow) continue;
        const auto digit = static_cast<uint64_t>(s[i] - '0');
        if (fraction > (kLimit - 1) / 10 || fraction * 10 > kLimit - 1 - digit) {
          overflow = true;  // Go keeps consuming digits but stops accumulating them
          continue;
        }
        fraction = fraction * 10 + digit;
        scale *= 10;
      }
      post = i > 0;
      s.remove_prefix(i);
    }
    if (!pre && !post) return syntax();
    for (i = 0; i < s.size() && s[i] != '.' && !is_digit(s[i]); ++i) {
    }
    const std::string_view unit_name = s.substr(0, i);
    s.remove_prefix(i);
    uint64_t unit = 0;
    if (unit_name == "ns") {
      unit = 1;
    } else if (unit_name == "us" || unit_name == "\xC2\xB5s" || unit_name == "\xCE\xBCs") {
      unit = 1'000;
    } else if (unit_name == "ms") {
      unit = 1'000'000;
    } else if (unit_name == "s") {
      unit = 1'000'000'000;
    } else if (unit_name == "m") {
      unit = 60'000'000'000;
    } else if (unit_name == "h") {
      unit = 3'600'000'000'000;
    } else {
      return syntax();
    }
    if (whole > kLimit / unit) return too_long();
    whole *= unit;
    if (fraction > 0) {
      whole += static_cast<uint64_t>(static_cast<double>(fraction) *
                                     (static_cast<double>(unit) / scale));
      if (whole > kLimit) return too_long();
    }
    if (whole > kLimit - total) return too_long();  // (Go's own sum can wrap to a small value)
    total += whole;
  }
  if (negative) {
    return total == kLimit ? std::numeric_limits<int64_t>::min() : -static_cast<int64_t>(total);
  }
  if (total > kLimit - 1) return too_long();
  return static_cast<int64_t>(total);
}

namespace {

constexpr int64_t kNanosPerSecond = 1'000'000'000;

absl::Status OutOfRange() {
  return absl::InvalidArgumentError(
      "duration is out of range (at most 2562047h47m16s, about 292 years)");
}

}  // namespace

absl::StatusOr<int64_t> ParseVaultDurationNanos(std::string_view text) {
  std::string_view s = text;  // as Vault: no spaces around it
  if (s.empty()) return 0;
  auto invalid = [&] {
    return absl::InvalidArgumentError(absl::StrCat("invalid duration \"", Av(s), "\""));
  };
  int64_t seconds = 0;
  const bool integer = s.find_first_not_of("0123456789", s[0] == '-' || s[0] == '+' ? 1 : 0) ==
                       std::string_view::npos;
  if (std::optional<int64_t> n = ParseGoInt(s)) {
    seconds = *n;
  } else if (integer && s.size() > 1) {
    return OutOfRange();  // digits only, beyond int64
  } else if (s.back() == 'd') {
    std::optional<int64_t> days = ParseGoInt(s.substr(0, s.size() - 1));
    if (!days.has_value()) return invalid();
    if (*days < 0) return absl::InvalidArgumentError("duration must not be negative");
    if (*days > kMaxDurationSeconds / 86400) return OutOfRange();
    seconds = *days * 86400;
  } else {
    absl::StatusOr<int64_t> nanos = ParseGoDurationNanos(s);
    if (absl::IsOutOfRange(nanos.status())) return OutOfRange();
    if (!nanos.ok()) return invalid();
    if (*nanos < 0) return absl::InvalidArgumentError("duration must not be negative");
    return *nanos;
  }
  if (seconds < 0) return absl::InvalidArgumentError("duration must not be negative");
  if (seconds > kMaxDurationSeconds) return OutOfRange();
  return seconds * kNanosPerSecond;
}

absl::StatusOr<int64_t> ParseDurationSeconds(std::string_view text) {
  absl::StatusOr<int64_t> nanos = ParseVaultDurationNanos(text);
  if (!nanos.ok()) return nanos.status();
  return *nanos / kNanosPerSecond;
}

}  // namespace strongroom
