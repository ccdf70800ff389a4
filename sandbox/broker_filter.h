// The broker's seccomp filter: a denylist (the broker runs RocksDB, the PKCS#11 module and the
// core, whose syscall needs are broad) of what a compromised broker could use to escape, persist
// or reach other processes: exec, ptrace and cross-process memory access, fork (threads only),
// kernel modules, kexec, BPF, perf, keyrings, mounts, chroot/pivot_root, namespace changes,
// reboot/swap/clock changes. A denied syscall kills the broker (SIGSYS); systemd restarts it
// sealed-then-unsealed from the token. Installed on every thread (TSYNC) once the broker is set
// up; workers are started by the spawner (spawner.h), never by the broker.
#pragma once

#include "absl/status/status.h"

namespace strongroom::sandbox {

absl::Status InstallBrokerFilter();

}  // namespace strongroom::sandbox
