#include "sandbox/spawner.h"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/log.h"

namespace strongroom::sandbox {
namespace {

// One message each way; fixed layout, both ends are the same binary.
struct Message {
  enum Type : uint32_t { kStarted = 1, kStats = 2, kStop = 3, kKill = 4 };
  uint32_t type = 0;
  int32_t index = 0;
  int32_t pid = 0;
  int32_t configured = 0;
  int32_t running = 0;
  uint32_t crash_loop = 0;
  uint64_t restarts = 0;
  uint64_t seccomp_kills = 0;
};

// A started worker's broker-side sockets travel together: its IPC socketpair end and its TLS
// signing channel end (appliance/tls/sign_channel.h).
constexpr int kMaxPassedFds = 2;

bool Send(int fd, const Message& m, int pass_fd, int pass_fd2 = -1) {
  iovec iov{const_cast<Message*>(&m), sizeof m};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(kMaxPassedFds * sizeof(int))] = {};
  if (pass_fd >= 0) {
    const int fds[kMaxPassedFds] = {pass_fd, pass_fd2};
    const size_t count = pass_fd2 >= 0 ? 2 : 1;
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(count * sizeof(int));
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(count * sizeof(int));
    memcpy(CMSG_DATA(c), fds, count * sizeof(int));
  }
  ssize_t n;
  do {
    n = sendmsg(fd, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(sizeof m);
}

// 1: a message (and passed[0..1], or -1); 0: nothing waiting; -1: the peer is gone.
int Receive(int fd, Message* m, int (&passed)[kMaxPassedFds], bool wait) {
  passed[0] = passed[1] = -1;
  iovec iov{m, sizeof *m};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(kMaxPassedFds * sizeof(int))] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | (wait ? 0 : MSG_DONTWAIT));
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
  if (n <= 0) return -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      const size_t count =
          std::min<size_t>((c->cmsg_len - CMSG_LEN(0)) / sizeof(int), kMaxPassedFds);
      memcpy(passed, CMSG_DATA(c), count * sizeof(int));
    }
  }
  if (n != static_cast<ssize_t>(sizeof *m) || (msg.msg_flags & MSG_CTRUNC) != 0) {
    for (int& p : passed) {
      if (p >= 0) close(p);
      p = -1;
    }
    return -1;
  }
  return 1;
}

std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exited with status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return absl::StrCat("was killed by signal ", WTERMSIG(status), " (",
                        strsignal(WTERMSIG(status)), ")");
  }
  return "stopped";
}

Message StatsMessage(const Supervisor::Stats& s) {
  Message m;
  m.type = Message::kStats;
  m.configured = s.configured;
  m.running = s.running;
  m.crash_loop = s.crash_loop ? 1 : 0;
  m.restarts = s.restarts;
  m.seccomp_kills = s.seccomp_kills;
  return m;
}

// The spawner process: never returns.
[[noreturn]] void RunSpawner(int fd, std::string binary, int listen_fd, int count,
                             std::vector<std::string> extra_args, uid_t worker_uid) {
  SetLogRole("spawner");
  // Signals stay blocked (inherited mask); SIGCHLD is taken with sigtimedwait. SIGTERM/SIGINT
  // are left pending: the spawner stops when the broker says so or goes away.
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  bool broker_gone = false;
  Supervisor supervisor(std::move(binary), listen_fd, count,
                        [&](int index, int broker_fd, int sign_fd, pid_t pid) {
                          Message m;
                          m.type = Message::kStarted;
                          m.index = index;
                          m.pid = pid;
                          if (!Send(fd, m, broker_fd, sign_fd)) broker_gone = true;
                          close(broker_fd);
                          close(sign_fd);
                        });
  supervisor.set_extra_args(std::move(extra_args));
  supervisor.set_worker_uid(worker_uid);
  int exit_code = 0;
  if (absl::Status s = supervisor.StartAll(); !s.ok()) {
    LogError("%s", s.message());
    exit_code = 1;
    broker_gone = true;
  }
  Supervisor::Stats last;
  last.configured = -1;
  while (!broker_gone) {
    pollfd p{fd, POLLIN, 0};
    timespec ts{0, 100 * 1000 * 1000};
    siginfo_t info;
    sigtimedwait(&chld, &info, &ts);
    supervisor.Poll();
    while (poll(&p, 1, 0) > 0) {
      Message m;
      int passed[kMaxPassedFds];
      int r = Receive(fd, &m, passed, false);
      for (int passed_fd : passed) {
        if (passed_fd >= 0) close(passed_fd);
      }
      if (r < 0 || m.type == Message::kStop) {
        broker_gone = true;
        break;
      }
      if (r == 0) break;
      if (m.type == Message::kKill) {
        // Only a worker of ours (the broker may not use the spawner to signal anything else).
        const auto pids = supervisor.Pids();
        if (std::find(pids.begin(), pids.end(), m.pid) != pids.end()) supervisor.Kill(m.pid);
      }
    }
    const Supervisor::Stats now = supervisor.GetStats();
    if (now.configured != last.configured || now.running != last.running ||
        now.restarts != last.restarts || now.seccomp_kills != last.seccomp_kills ||
        now.crash_loop != last.crash_loop) {
      if (!Send(fd, StatsMessage(now), -1)) broker_gone = true;
      last = now;
    }
  }
  supervisor.StopAll(std::chrono::milliseconds(3000));
  _exit(exit_code);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Spawner>> Spawner::Start(std::string worker_binary, int listen_fd,
                                                        int count,
                                                        std::vector<std::string> extra_args,
                                                        uid_t worker_uid) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    return absl::InternalError(absl::StrCat("socketpair: ", strerror(errno)));
  }
  const pid_t pid = fork();
  if (pid < 0) {
    close(sv[0]);
    close(sv[1]);
    return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  }
  if (pid == 0) {
    close(sv[0]);
    RunSpawner(sv[1], std::move(worker_binary), listen_fd, count, std::move(extra_args),
               worker_uid);
  }
  close(sv[1]);
  close(listen_fd);  // the spawner hands it to workers; the broker never accepts
  LogInfo("spawner started (pid %d)", pid);
  return std::unique_ptr<Spawner>(new Spawner(pid, sv[0]));
}

Spawner::~Spawner() {
  Stop();
  close(fd_);
}

void Spawner::Poll(const Supervisor::OnStarted& on_started) {
  while (alive_) {
    Message m;
    int passed[kMaxPassedFds];
    const int r = Receive(fd_, &m, passed, false);
    if (r == 0) break;
    if (r < 0) {
      MarkGone("its socket closed");
      break;
    }
    if (m.type == Message::kStarted && passed[0] >= 0 && passed[1] >= 0) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        worker_pids_.push_back(m.pid);
      }
      on_started(m.index, passed[0], passed[1], m.pid);
    } else if (m.type == Message::kStats) {
      for (int p : passed) {
        if (p >= 0) close(p);
      }
      std::lock_guard<std::mutex> lock(mu_);
      stats_.configured = m.configured;
      stats_.running = m.running;
      stats_.crash_loop = m.crash_loop != 0;
      stats_.restarts = m.restarts;
      stats_.seccomp_kills = m.seccomp_kills;
    } else {
      for (int p : passed) {
        if (p >= 0) close(p);
      }
    }
  }
  // The spawner is the broker's only child: reap it as soon as it has exited (no zombie).
  if (pid_ > 0) {
    int status = 0;
    pid_t r;
    do {
      r = waitpid(pid_, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == pid_ || (r < 0 && errno == ECHILD)) {
      LogError("the spawner (pid %d) %s", pid_,
               r == pid_ ? DescribeStatus(status) : "was reaped elsewhere");
      pid_ = 0;
      MarkGone("the process ended");
    }
  }
}

void Spawner::MarkGone(const char* why) {
  if (alive_.exchange(false)) {
    LogError("the spawner is gone (%s): workers are no longer started or restarted", why);
  }
}

bool Spawner::Gone() const {
  if (!alive_) return true;
  // The spawner's end closes when it exits or is killed: POLLHUP on ours, before any reap.
  pollfd p{fd_, POLLIN, 0};
  return poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL)) != 0;
}

Supervisor::Stats Spawner::stats() const {
  const bool gone = Gone();
  std::lock_guard<std::mutex> lock(mu_);
  Supervisor::Stats s = stats_;
  // Workers whose spawner is gone are unsupervised and about to be stopped with the broker:
  // none counts as running (sys/health never reports them as alive).
  if (gone) s.running = 0;
  return s;
}

void Spawner::Kill(pid_t pid) {
  Message m;
  m.type = Message::kKill;
  m.pid = pid;
  Send(fd_, m, -1);
}

void Spawner::Stop() {
  if (pid_ <= 0) return;
  Message m;
  m.type = Message::kStop;
  Send(fd_, m, -1);
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  if (r == pid_ && !alive_) {
    // It had died on its own (Poll saw its socket close first): say how.
    LogError("the spawner (pid %d) %s", pid_, DescribeStatus(status));
  }
  pid_ = 0;
  alive_ = false;
}

}  // namespace strongroom::sandbox
