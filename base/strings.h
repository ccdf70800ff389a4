// Debian 12's Abseil is built with its own absl::string_view (ABSL_OPTION_USE_STD_STRING_VIEW 0),
// which does not convert from std::string_view. Our code uses std::string_view (Boost.JSON and
// the standard library take it); Av() is the one bridge into Abseil's string APIs.
#pragma once

#include <string_view>

#include "absl/strings/string_view.h"

namespace strongroom {

inline absl::string_view Av(std::string_view s) { return absl::string_view(s.data(), s.size()); }
inline std::string_view Sv(absl::string_view s) { return std::string_view(s.data(), s.size()); }

// Go's strconv.ParseBool: 1 t T TRUE true True / 0 f F FALSE false False; false for anything
// else (then *out is unchanged). Vault's settings, environment variables and annotations, and
// the templates' parseBool, all read booleans this way.
inline bool ParseGoBool(std::string_view s, bool* out) {
  for (std::string_view t : {"1", "t", "T", "TRUE", "true", "True"}) {
    if (s == t) return *out = true;
  }
  for (std::string_view f : {"0", "f", "F", "FALSE", "false", "False"}) {
    if (s == f) {
      *out = false;
      return true;
    }
  }
  return false;
}

}  // namespace strongroom
