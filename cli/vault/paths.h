// Path and query helpers shared by the commands.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace strongroom::vault {

// Vault's sanitizePath: surrounding spaces and slashes removed.
std::string SanitizePath(std::string_view path);
// Go's url.QueryEscape.
std::string QueryEscape(std::string_view s);
// A secret typed at a terminal without echo (prompt on stderr), or the first line of a pipe.
absl::StatusOr<std::string> ReadSecret(std::string_view prompt);

}  // namespace strongroom::vault
