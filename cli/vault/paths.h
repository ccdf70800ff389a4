// Path and query helpers shared by the commands.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace strongroom::vault {

// Vault's sanitizePath: surrounding spaces and slashes removed.
std::string SanitizePath(std::string_view path);
// Go's url.QueryEscape.
std::string QueryEscape(std::string_view s);
// Replaces `path` with `bytes`: a new file beside it (O_EXCL, never through a symlink, `mode`
// set with fchmod whatever the umask), written, fsynced, renamed into place.
absl::Status WriteFileAtomic(const std::string& path, std::string_view bytes, unsigned mode);
// A secret typed at a terminal without echo (prompt on stderr), or the first line of a pipe.
absl::StatusOr<std::string> ReadSecret(std::string_view prompt);

}  // namespace strongroom::vault
