// The templates' commands run in a process of their own, forked before the agent installs its
// seccomp filter and before it holds a token: the agent itself may never execute a program, and
// a command never inherits the token, the client's memory or the filter.
//
// The runner is given the configured commands when it is forked and runs only those: the agent
// sends the index of one (4 bytes, little-endian, on a SOCK_SEQPACKET socketpair) and receives
// one answer (1 byte: an absl::StatusCode; then its message, at most 1 KiB). Anything else ends
// the runner, so a subverted agent cannot make it run a command line of its choosing. Commands
// run one at a time, each in its own process group with the default signal dispositions. The
// runner is a child subreaper and reaps what the commands leave behind (the agent, under its
// filter, cannot wait for anything). It ends when the agent's end of the socket closes, and when
// the agent dies (PR_SET_PDEATHSIG).
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace strongroom::agent {

inline constexpr size_t kMaxCommandBytes = 64 * 1024;

struct RunnerCommand {
  std::string command;  // for /bin/sh -c
  absl::Duration timeout;
};

class CommandRunner {
 public:
  // Forks the runner with its commands. Call before any thread exists.
  static absl::StatusOr<CommandRunner> Start(std::vector<RunnerCommand> commands);

  CommandRunner(CommandRunner&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  CommandRunner& operator=(CommandRunner&&) = delete;
  CommandRunner(const CommandRunner&) = delete;
  ~CommandRunner();

  // Runs command `index` of those given to Start; OK when it exited 0.
  absl::Status Run(size_t index);

 private:
  explicit CommandRunner(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace strongroom::agent
