// Capabilities around the worker's change of user (issue 15, item 12).
//
// Under the shipped systemd unit strongroomd is not root: it starts as the service user with
// CAP_SETUID and CAP_SETGID as ambient capabilities (and nothing else in its bounding set). The
// spawner keeps them, so that every worker it starts can change to `worker_user` (a uid of its
// own, never the broker's, so no signal or ptrace of the broker's uid reaches the broker from a
// worker); the broker drops them right after forking the spawner, and each worker drops them
// right after changing its ids.
#pragma once

#include "absl/status/status.h"

namespace strongroom::sandbox {

// CAP_SETUID and CAP_SETGID are both in the calling thread's effective set.
bool HasSetIdCapabilities();

// Empties the calling thread's permitted, effective, inheritable and ambient sets and checks
// that they are empty. Call it while the process has a single thread (capabilities are per
// thread; threads started later inherit the empty sets).
absl::Status DropAllCapabilities();

}  // namespace strongroom::sandbox
