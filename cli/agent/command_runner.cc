#include "cli/agent/command_runner.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/agent/files.h"

namespace strongroom::agent {
namespace {

constexpr size_t kMaxReplyBytes = 1024;

// The runner's loop: one request, one command, one answer.
[[noreturn]] void Serve(int fd) {
  std::vector<char> buf(8 + kMaxCommandBytes + 1);
  for (;;) {
    const ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 8 || static_cast<size_t>(n) > 8 + kMaxCommandBytes) _exit(0);  // closed or malformed
    uint64_t ms = 0;
    for (int i = 7; i >= 0; --i)
      ms = ms << 8 | static_cast<unsigned char>(buf[static_cast<size_t>(i)]);
    const std::string command(buf.data() + 8, static_cast<size_t>(n) - 8);
    absl::Status s = RunCommand(
        command, absl::Milliseconds(static_cast<int64_t>(std::min<uint64_t>(ms, 86400000))));
    std::string reply(1, static_cast<char>(s.code()));
    reply.append(std::string(s.message()).substr(0, kMaxReplyBytes));
    if (send(fd, reply.data(), reply.size(), MSG_NOSIGNAL) < 0) _exit(0);
  }
}

}  // namespace

absl::StatusOr<CommandRunner> CommandRunner::Start() {
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
    // Every other descriptor closed (the agent's configuration files, stdin).
    for (int fd = 3; fd < 1024; ++fd) {
      if (fd != fds[1]) close(fd);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGTERM, SIG_IGN);  // the agent ends first and closes the socket
    signal(SIGINT, SIG_IGN);
    Serve(fds[1]);
  }
  close(fds[1]);
  return CommandRunner(fds[0], pid);
}

// Closing the socket ends the runner (it reads EOF); it is not waited for: the agent's filter
// has no wait4, and the runner is reaped by init once the agent is gone.
CommandRunner::~CommandRunner() {
  if (fd_ >= 0) close(fd_);
}

absl::Status CommandRunner::Run(const std::string& command, absl::Duration timeout) {
  if (command.empty() || command.size() > kMaxCommandBytes) {
    return absl::InvalidArgumentError("command is empty or too long");
  }
  const int64_t ms = std::max<int64_t>(1, absl::ToInt64Milliseconds(timeout));
  std::string request(8, '\0');
  for (int i = 0; i < 8; ++i)
    request[static_cast<size_t>(i)] = static_cast<char>(static_cast<uint64_t>(ms) >> (8 * i));
  request.append(command);
  if (send(fd_, request.data(), request.size(), MSG_NOSIGNAL) < 0) {
    return absl::UnavailableError(absl::StrCat("command runner: ", strerror(errno)));
  }
  std::vector<char> reply(1 + kMaxReplyBytes);
  ssize_t n;
  do {
    n = recv(fd_, reply.data(), reply.size(), 0);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return absl::UnavailableError("command runner: ended");
  const auto code = static_cast<absl::StatusCode>(static_cast<unsigned char>(reply[0]));
  return absl::Status(code, std::string(reply.data() + 1, static_cast<size_t>(n) - 1));
}

}  // namespace strongroom::agent
