// What the allowlist filters (the worker's, the agent's) share: a SIGSYS handler that names the
// refused syscall on stderr before the process dies, and loading a filter.
#pragma once

#include <seccomp.h>

#include "absl/status/status.h"

namespace strongroom::sandbox {

// Installs the SIGSYS handler (SA_RESETHAND): it writes "<prefix><number><suffix>" to stderr in
// one write, async-signal-safe, then lets the signal kill the process. Both strings must outlive
// the process (literals).
absl::Status InstallSigsysReport(const char* prefix, const char* suffix);

// LeakSanitizer's check first in sanitizer builds (it needs calls the filters forbid), then
// seccomp_load.
absl::Status LoadFilter(scmp_filter_ctx ctx);

}  // namespace strongroom::sandbox
