#include "cli/agent/command_runner.h"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "cli/agent/files.h"

namespace strongroom::agent {
namespace {

constexpr size_t kMaxReplyBytes = 1024;

// Reaps every child that has ended (commands' orphans reparented to the runner).
void ReapAll() {
  while (waitpid(-1, nullptr, WNOHANG) > 0) {
  }
}

// The runner's loop: one index, one command, one answer.
[[noreturn]] void Serve(int fd, const std::vector<RunnerCommand>& commands) {
  for (;;) {
    pollfd p = {fd, POLLIN, 0};
    const int ready = poll(&p, 1, 1000);
    ReapAll();
    if (ready < 0 && errno != EINTR) _exit(0);
    if (ready <= 0) continue;
    unsigned char buf[8];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n != 4) _exit(0);  // closed, or not an index: the agent is gone or not itself
    const uint32_t index = static_cast<uint32_t>(buf[0]) | static_cast<uint32_t>(buf[1]) << 8 |
                           static_cast<uint32_t>(buf[2]) << 16 |
                           static_cast<uint32_t>(buf[3]) << 24;
    if (index >= commands.size()) _exit(0);
    absl::Status s = RunCommand(commands[index].command, commands[index].timeout);
    ReapAll();
    std::string reply(1, static_cast<char>(s.code()));
    reply.append(std::string(s.message()).substr(0, kMaxReplyBytes));
    if (send(fd, reply.data(), reply.size(), MSG_NOSIGNAL) < 0) _exit(0);
  }
}

}  // namespace

absl::StatusOr<CommandRunner> CommandRunner::Start(std::vector<RunnerCommand> commands) {
  for (const RunnerCommand& c : commands) {
    if (c.command.empty() || c.command.size() > kMaxCommandBytes) {
      return absl::InvalidArgumentError("a template's command is empty or longer than 64 KiB");
    }
  }
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    return absl::InternalError(absl::StrCat("socketpair: ", strerror(errno)));
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  }
  if (pid == 0) {
    close(fds[0]);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(0);  // the agent died before the line above
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    // Every other descriptor closed (the agent's configuration files, stdin).
    for (int fd = 3; fd < 1024; ++fd) {
      if (fd != fds[1]) close(fd);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGTERM, SIG_IGN);  // the agent ends first and closes the socket
    signal(SIGINT, SIG_IGN);
    Serve(fds[1], commands);
  }
  close(fds[1]);
  return CommandRunner(fds[0]);
}

// Closing the socket ends the runner (it reads EOF); it is not waited for: the agent's filter
// has no wait4, and the runner is reaped by init once the agent is gone.
CommandRunner::~CommandRunner() {
  if (fd_ >= 0) close(fd_);
}

absl::Status CommandRunner::Run(size_t index) {
  const uint32_t i = static_cast<uint32_t>(index);
  const unsigned char request[4] = {
      static_cast<unsigned char>(i), static_cast<unsigned char>(i >> 8),
      static_cast<unsigned char>(i >> 16), static_cast<unsigned char>(i >> 24)};
  if (send(fd_, request, sizeof request, MSG_NOSIGNAL) < 0) {
    return absl::UnavailableError(absl::StrCat("command runner: ", strerror(errno)));
  }
  std::string reply(1 + kMaxReplyBytes, '\0');
  ssize_t n;
  do {
    n = recv(fd_, reply.data(), reply.size(), 0);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return absl::UnavailableError("command runner: ended");
  const auto code = static_cast<absl::StatusCode>(static_cast<unsigned char>(reply[0]));
  return absl::Status(code, reply.substr(1, static_cast<size_t>(n) - 1));
}

}  // namespace strongroom::agent
