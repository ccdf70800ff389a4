// Debian 12's Abseil is built with its own absl::string_view (ABSL_OPTION_USE_STD_STRING_VIEW 0),
// which does not convert from std::string_view. Our code uses std::string_view (Boost.JSON and
// the standard library take it); Av() is the one bridge into Abseil's string APIs.
#pragma once

#include <string_view>

#include "absl/strings/string_view.h"

namespace strongroom {

inline absl::string_view Av(std::string_view s) { return absl::string_view(s.data(), s.size()); }
inline std::string_view Sv(absl::string_view s) { return std::string_view(s.data(), s.size()); }

}  // namespace strongroom
