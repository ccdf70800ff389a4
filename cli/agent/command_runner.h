// The templates' commands run in a process of their own, forked before the agent installs its
// seccomp filter and before it holds a token: the agent itself may never execute a program, and
// a command never inherits the token, the client's memory or the filter.
//
// Protocol: one SOCK_SEQPACKET socketpair; the agent sends one request (8 bytes: timeout in
// milliseconds, little-endian; then the command, at most kMaxCommandBytes), the runner answers
// with one message (1 byte: an absl::StatusCode; then its message, at most 1 KiB). Commands run
// one at a time. The runner ends when the agent's end of the socket closes, and when the agent
// dies (PR_SET_PDEATHSIG).
#pragma once

#include <sys/types.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace strongroom::agent {

inline constexpr size_t kMaxCommandBytes = 64 * 1024;

class CommandRunner {
 public:
  // Forks the runner. Call before any thread exists.
  static absl::StatusOr<CommandRunner> Start();

  CommandRunner(CommandRunner&& other) noexcept : fd_(other.fd_), pid_(other.pid_) {
    other.fd_ = -1;
    other.pid_ = -1;
  }
  CommandRunner& operator=(CommandRunner&&) = delete;
  CommandRunner(const CommandRunner&) = delete;
  ~CommandRunner();

  // Runs `command` with /bin/sh -c in the runner; OK when it exited 0.
  absl::Status Run(const std::string& command, absl::Duration timeout);

 private:
  CommandRunner(int fd, pid_t pid) : fd_(fd), pid_(pid) {}
  int fd_;
  pid_t pid_;
};

}  // namespace strongroom::agent
