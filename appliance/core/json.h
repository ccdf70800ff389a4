// JSON helpers over Boost.JSON for the broker. Input from workers is parsed with a depth limit
// and treated as hostile; typed field readers give Vault's coercions (durations as "1h"/"90s"/
// seconds, bools as true/"true", ints as numbers or numeric strings).
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/duration.h"

namespace strongroom::core {

namespace json = boost::json;

inline constexpr unsigned kMaxJsonDepth = 64;

// Parses an object (empty input -> empty object). InvalidArgument on anything else.
absl::StatusOr<json::object> ParseObject(std::string_view text, unsigned max_depth = kMaxJsonDepth);

// Field readers: nullopt when absent or null; InvalidArgument naming the field on a wrong type.
absl::StatusOr<std::optional<std::string>> GetString(const json::object& o, std::string_view key);
absl::StatusOr<std::optional<int64_t>> GetInt(const json::object& o, std::string_view key);
absl::StatusOr<std::optional<bool>> GetBool(const json::object& o, std::string_view key);
using ::strongroom::kMaxDurationSeconds;  // base/duration.h

// Seconds, as Vault's parseutil.ParseDurationSecond reads them: 90, "90", "90s", "1h30m",
// "768h", "2d" (an integer number of 24-hour days). Negative, "inf" and anything beyond
// kMaxDurationSeconds are InvalidArgument.
absl::StatusOr<std::optional<int64_t>> GetDurationSeconds(const json::object& o,
                                                          std::string_view key);
// Array of strings or comma-separated string.
absl::StatusOr<std::optional<std::vector<std::string>>> GetStringList(const json::object& o,
                                                                      std::string_view key);
using ::strongroom::ParseDurationSeconds;  // base/duration.h: Vault's ParseDurationSecond
// *out = base + secs, or InvalidArgument when the sum does not fit an int64 (expirations are
// computed with this, never with a bare +).
absl::Status AddSeconds(int64_t base, int64_t secs, int64_t* out);

// Go's time.Duration String() for whole seconds ("0s", "1h0m0s", "3h25m19s").
std::string FormatGoDuration(int64_t seconds);
// RFC 3339 with nanoseconds, UTC, trailing zeros trimmed (Go's time.RFC3339Nano). Exact for
// any finite time up to year 9999 (the fraction does not pass through int64 nanoseconds); times
// outside years 0000-9999 are clamped to that range, so it never prints "infinite-future".
std::string FormatRfc3339Nano(absl::Time t);

std::string Serialize(const json::value& v);
// A JSON array of strings.
json::array ToArray(const std::vector<std::string>& v);
// Fills `out` from OpenSSL's CSPRNG; if the generator fails the process aborts (never returns
// predictable bytes). NewUuid, RandomBase62 and RandomHex draw from it.
void RandomBytesOrAbort(uint8_t* out, size_t n);
std::string NewUuid();
// Random string over [0-9A-Za-z].
std::string RandomBase62(size_t n);
std::string RandomHex(size_t bytes);

}  // namespace strongroom::core
