// File operations of the agent: bounded reads of credentials and templates, and the atomic
// replace every rendered file and token sink gets (a reader sees the old file or the new one,
// never a part).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace strongroom::agent {

// The whole file, refused past `max_bytes` (FailedPrecondition) and when it is not a regular
// file. NotFound when it does not exist.
absl::StatusOr<std::string> ReadFileBounded(const std::string& path, size_t max_bytes);

// The mode bits of an existing file, nullopt when there is none.
std::optional<uint32_t> ExistingMode(const std::string& path);

// Writes `content` to a new file next to `path` with `mode` (umask not applied), fsyncs it and
// renames it over `path`; creates missing parent directories (0755) when `create_dirs`.
absl::Status AtomicWrite(const std::string& path, std::string_view content, uint32_t mode,
                         bool create_dirs);

// Runs `command` with /bin/sh -c in its own process group, stdin from /dev/null; kills the
// group when `timeout` passes. OK when it exited 0.
absl::Status RunCommand(const std::string& command, absl::Duration timeout);

}  // namespace strongroom::agent
