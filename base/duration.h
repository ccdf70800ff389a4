// Durations as Vault and Go read them: one parser for the server's API and policies, the
// agent's and the injector's settings, and the CLI's flags.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "absl/status/statusor.h"

namespace strongroom {

// The longest duration Vault can hold: a Go time.Duration is int64 nanoseconds, so about 292
// years (2562047h47m16s). Longer durations are refused instead of wrapping.
inline constexpr int64_t kMaxDurationSeconds = INT64_MAX / 1000000000;

// Go's strconv.ParseInt(s, 10, 64): an optional sign, at least one digit, nothing else.
std::optional<int64_t> ParseGoInt(std::string_view s);

// Go's time.ParseDuration, in nanoseconds: [-+]?(<digits>[.<digits>]<unit>)+ or "0", with the
// units ns us µs μs ms s m h; fractions scaled through a double, as Go does. InvalidArgument
// for what is not a duration, OutOfRange beyond int64 nanoseconds.
absl::StatusOr<int64_t> ParseGoDurationNanos(std::string_view s);

// Vault's parseutil.ParseDurationSecond on text, in nanoseconds: "" is 0; an integer is seconds
// ("90"); an integer and "d" is days ("7d"); anything else a Go duration ("1h30m", "1.5s").
// Nothing else, not even spaces around it. InvalidArgument: `invalid duration "<text>"`, "duration
// must not be negative", and beyond kMaxDurationSeconds "duration is out of range (...)".
absl::StatusOr<int64_t> ParseVaultDurationNanos(std::string_view text);

// The same in whole seconds (a fraction of a second is dropped, as Vault's callers do).
absl::StatusOr<int64_t> ParseDurationSeconds(std::string_view text);

}  // namespace strongroom
