// The seccomp allowlist of `strongroom agent` (docs/threat-model.md, "The agent"). The agent
// holds a Vault token and parses templates that come from pod annotations; should a template or
// a server answer subvert it, it is left with what rendering needs: its own files and sockets
// (open, write, rename; TCP, UDP for DNS, Unix sockets for nscd), threads (clone with
// CLONE_THREAD only), time, memory without PROT_EXEC, signals to itself. It cannot execute a
// program, fork, trace or signal other processes, load kernel code or change mounts or ids.
// Templates' commands run in a runner process forked before the filter (command_runner.h).
//
// A syscall outside the list is not executed: the process writes the syscall's number to
// stderr and dies of SIGSYS.
#pragma once

#include "absl/status/status.h"

namespace strongroom::sandbox {

absl::Status InstallAgentFilter();

}  // namespace strongroom::sandbox
