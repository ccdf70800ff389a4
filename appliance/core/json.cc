// The one translation unit that compiles Boost.JSON's implementation.
#include "appliance/core/json.h"

#include <openssl/rand.h>

#include <algorithm>
#include <boost/json/src.hpp>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/strings.h"

namespace strongroom::core {

absl::StatusOr<json::object> ParseObject(std::string_view text, unsigned max_depth) {
  size_t i = 0;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  if (i == text.size()) return json::object();
  json::parse_options opts;
  opts.max_depth = max_depth;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec, {}, opts);
  if (ec)
    return absl::InvalidArgumentError(absl::StrCat("failed to parse JSON input: ", ec.message()));
  if (!v.is_object())
    return absl::InvalidArgumentError("failed to parse JSON input: not an object");
  return std::move(v.as_object());
}

absl::StatusOr<std::optional<std::string>> GetString(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return std::optional<std::string>();
  const auto& v = it->value();
  if (v.is_string()) return std::optional<std::string>(std::string(v.as_string()));
  if (v.is_int64()) return std::optional<std::string>(std::to_string(v.as_int64()));
  if (v.is_uint64()) return std::optional<std::string>(std::to_string(v.as_uint64()));
  if (v.is_bool()) return std::optional<std::string>(v.as_bool() ? "true" : "false");
  return absl::InvalidArgumentError(absl::StrCat("field \"", Av(key), "\" must be a string"));
}

absl::StatusOr<std::optional<int64_t>> GetInt(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return std::optional<int64_t>();
  const auto& v = it->value();
  if (v.is_int64()) return std::optional<int64_t>(v.as_int64());
  if (v.is_uint64() && v.as_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    return std::optional<int64_t>(static_cast<int64_t>(v.as_uint64()));
  }
  // Range first: converting a double outside int64 is undefined behaviour.
  if (v.is_double() && std::abs(v.as_double()) < 9.2e18 &&
      v.as_double() == static_cast<double>(static_cast<int64_t>(v.as_double()))) {
    return std::optional<int64_t>(static_cast<int64_t>(v.as_double()));
  }
  int64_t n = 0;
  if (v.is_string() && absl::SimpleAtoi(Av(v.as_string()), &n)) {
    return std::optional<int64_t>(n);
  }
  return absl::InvalidArgumentError(absl::StrCat("field \"", Av(key), "\" must be an integer"));
}

absl::StatusOr<std::optional<bool>> GetBool(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return std::optional<bool>();
  const auto& v = it->value();
  if (v.is_bool()) return std::optional<bool>(v.as_bool());
  if (v.is_string()) {
    std::string_view s = v.as_string();
    if (s == "true" || s == "1" || s == "t" || s == "T" || s == "TRUE" || s == "True")
      return std::optional<bool>(true);
    if (s == "false" || s == "0" || s == "f" || s == "F" || s == "FALSE" || s == "False")
      return std::optional<bool>(false);
  }
  if (v.is_int64()) return std::optional<bool>(v.as_int64() != 0);
  return absl::InvalidArgumentError(absl::StrCat("field \"", Av(key), "\" must be a boolean"));
}

namespace {

absl::Status DurationOutOfRange() {
  return absl::InvalidArgumentError(absl::StrCat("duration is out of range (at most ",
                                                 FormatGoDuration(kMaxDurationSeconds),
                                                 ", about 292 years)"));
}

}  // namespace

absl::Status AddSeconds(int64_t base, int64_t secs, int64_t* out) {
  if (__builtin_add_overflow(base, secs, out)) {
    return absl::InvalidArgumentError("TTL is out of range");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<int64_t>> GetDurationSeconds(const json::object& o,
                                                          std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return std::optional<int64_t>();
  const auto& v = it->value();
  if (v.is_int64() || v.is_uint64() || v.is_double()) {
    auto n = GetInt(o, key);
    if (!n.ok() || !n->has_value() || **n < 0) {
      return absl::InvalidArgumentError(absl::StrCat("field \"", Av(key), "\" must be a duration"));
    }
    if (**n > kMaxDurationSeconds) {
      return absl::InvalidArgumentError(
          absl::StrCat("field \"", Av(key), "\": ", DurationOutOfRange().message()));
    }
    return n;
  }
  if (!v.is_string()) {
    return absl::InvalidArgumentError(absl::StrCat("field \"", Av(key), "\" must be a duration"));
  }
  auto d = ParseDurationSeconds(std::string_view(v.as_string()));
  if (!d.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("field \"", Av(key), "\": ", d.status().message()));
  }
  return std::optional<int64_t>(*d);
}

absl::StatusOr<std::optional<std::vector<std::string>>> GetStringList(const json::object& o,
                                                                      std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return std::optional<std::vector<std::string>>();
  const auto& v = it->value();
  std::vector<std::string> out;
  if (v.is_string()) {
    for (auto part : absl::StrSplit(Av(v.as_string()), ',', absl::SkipWhitespace())) {
      out.emplace_back(absl::StripAsciiWhitespace(part));
    }
    return std::optional<std::vector<std::string>>(std::move(out));
  }
  if (v.is_array()) {
    for (const auto& e : v.as_array()) {
      if (!e.is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat("field \"", Av(key), "\" must be a list of strings"));
      }
      out.emplace_back(e.as_string());
    }
    return std::optional<std::vector<std::string>>(std::move(out));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("field \"", Av(key), "\" must be a list of strings"));
}

std::string FormatGoDuration(int64_t seconds) {
  if (seconds == 0) return "0s";
  const int64_t h = seconds / 3600, m = (seconds % 3600) / 60, s = seconds % 60;
  if (h > 0) return absl::StrCat(h, "h", m, "m", s, "s");
  if (m > 0) return absl::StrCat(m, "m", s, "s");
  return absl::StrCat(s, "s");
}

std::string FormatRfc3339Nano(absl::Time t) {
  static const absl::Time kFirst =
      absl::FromCivil(absl::CivilSecond(0, 1, 1, 0, 0, 0), absl::UTCTimeZone());
  static const absl::Time kLast =
      absl::FromCivil(absl::CivilSecond(9999, 12, 31, 23, 59, 59), absl::UTCTimeZone()) +
      absl::Nanoseconds(999999999);
  t = std::clamp(t, kFirst, kLast);
  std::string base = absl::FormatTime("%Y-%m-%dT%H:%M:%S", t, absl::UTCTimeZone());
  // The fraction from the time's own second, not from int64 Unix nanoseconds (which end in 2262).
  const absl::Time second = absl::FromUnixSeconds(absl::ToUnixSeconds(t));  // rounds down
  const int64_t ns = absl::ToInt64Nanoseconds(t - second);
  if (ns != 0) {
    std::string frac = absl::StrFormat("%09d", ns);
    while (!frac.empty() && frac.back() == '0') frac.pop_back();
    absl::StrAppend(&base, ".", frac);
  }
  return base + "Z";
}

json::array ToArray(const std::vector<std::string>& v) {
  json::array a;
  a.reserve(v.size());
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

std::string Serialize(const json::value& v) { return json::serialize(v); }

void RandomBytesOrAbort(uint8_t* out, size_t n) {
  // Tokens, accessors, secret_ids and UUIDs come from here: a generator that fails must never
  // yield a predictable value, and no caller could recover, so the broker stops (systemd or
  // Kubernetes restarts it; a still-broken generator keeps it down, visibly).
  if (n > static_cast<size_t>(std::numeric_limits<int>::max()) ||
      RAND_bytes(out, static_cast<int>(n)) != 1) {
    std::fputs("strongroom: the random generator failed (RAND_bytes); stopping\n", stderr);
    std::abort();
  }
}

std::string NewUuid() {
  uint8_t b[16];
  RandomBytesOrAbort(b, sizeof b);
  b[6] = static_cast<uint8_t>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<uint8_t>((b[8] & 0x3f) | 0x80);
  return absl::StrFormat("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
                         b[12], b[13], b[14], b[15]);
}

std::string RandomBase62(size_t n) {
  static constexpr char kAlphabet[] =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::string out;
  while (out.size() < n) {
    uint8_t b[64];
    RandomBytesOrAbort(b, sizeof b);
    for (uint8_t c : b) {
      if (c < 248 && out.size() < n) out.push_back(kAlphabet[c % 62]);  // 248 = 4*62: no bias
    }
  }
  return out;
}

std::string RandomHex(size_t bytes) {
  std::vector<uint8_t> b(bytes);
  RandomBytesOrAbort(b.data(), b.size());
  std::string out;
  for (uint8_t c : b) absl::StrAppendFormat(&out, "%02x", c);
  return out;
}

}  // namespace strongroom::core
