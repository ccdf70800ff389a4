// The worker's sandbox: what a compromised worker is left with (docs/threat-model.md).
//
// EnterWorkerSandbox runs once, after the worker has its settings and sockets and before it
// reads a byte from a client:
//   1. when the kernel allows: new mount, network, IPC and UTS namespaces (with a new user
//      namespace when not root) and a chroot into an empty, read-only tmpfs, so no file of the
//      host is reachable by name and no new network connection can leave the namespace;
//   2. not dumpable, RLIMIT_CORE 0 (no core files, no ptrace attach by same-uid processes);
//   3. when given ids: setgroups([]), then the given gid and uid (real, effective, saved), then
//      no capability left. Started as root this follows step 1; started as a non-root user with
//      CAP_SETUID and CAP_SETGID (the systemd unit) it comes before step 1;
//   4. PR_SET_NO_NEW_PRIVS;
//   5. the seccomp allowlist below (InstallWorkerFilter). A syscall outside it is never
//      executed: the SIGSYS handler writes the syscall number to stderr (the broker's log) and
//      the process dies of SIGSYS; the broker logs the death and restarts the worker.
#pragma once

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"

namespace strongroom::sandbox {

struct WorkerSandboxOptions {
  // The unprivileged ids to change to (needs root, or CAP_SETUID and CAP_SETGID).
  uid_t uid = 0;
  gid_t gid = 0;
  bool drop_privileges = false;
};

// All steps above. Namespaces are best effort (logged when the kernel refuses them, as in
// containers without user namespaces); every other step failing is an error and the worker
// must exit.
absl::Status EnterWorkerSandbox(const WorkerSandboxOptions& options);

// Step 5 alone: the allowlist filter (default: trap, report, die). Also used by the test that
// tries each forbidden syscall.
absl::Status InstallWorkerFilter();

}  // namespace strongroom::sandbox
