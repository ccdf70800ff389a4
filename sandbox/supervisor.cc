#include "sandbox/supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/log.h"

namespace strongroom::sandbox {
namespace {

constexpr auto kMaxBackoff = std::chrono::milliseconds(10000);
constexpr auto kHealthyRun = std::chrono::seconds(30);
constexpr int kFirstFreeFd = 10;

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exited with status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    std::string text =
        absl::StrCat("killed by signal ", WTERMSIG(status), " (", strsignal(WTERMSIG(status)), ")");
    if (WTERMSIG(status) == SIGSYS) {
      absl::StrAppend(&text,
                      ": the seccomp filter stopped a syscall outside the worker's policy (its "
                      "number is in the worker's last log line)");
    }
    return text;
  }
  return "stopped";
}

}  // namespace

Supervisor::Supervisor(std::string worker_binary, int listen_fd, int count, OnStarted on_started)
    : binary_(std::move(worker_binary)), listen_fd_(listen_fd), on_started_(std::move(on_started)) {
  workers_.resize(static_cast<size_t>(count));
  if (listen_fd_ < kFirstFreeFd) {
    // Keep the listener out of the 3..4 range the children's descriptors are dup2'ed onto.
    int moved = fcntl(listen_fd_, F_DUPFD_CLOEXEC, kFirstFreeFd);
    if (moved >= 0) {
      close(listen_fd_);
      listen_fd_ = moved;
    }
  }
}

absl::Status Supervisor::StartAll() {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < workers_.size(); ++i) {
    if (absl::Status s = Spawn(i); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status Supervisor::Spawn(size_t index) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return absl::InternalError(absl::StrCat("socketpair: ", strerror(errno)));
  }
  // The TLS signing channel: one packet per request and per answer.
  int sign[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sign) != 0) {
    const int err = errno;
    close(sv[0]);
    close(sv[1]);
    return absl::InternalError(absl::StrCat("socketpair: ", strerror(err)));
  }
  // The worker blocks on this channel in the middle of a handshake: a broker that does not
  // answer within 10 s makes the read fail (the worker then exits and is restarted) instead of
  // hanging it. Set here, on the socket, so the worker needs no setsockopt of its own.
  const timeval sign_timeout{10, 0};
  setsockopt(sign[1], SOL_SOCKET, SO_RCVTIMEO, &sign_timeout, sizeof sign_timeout);
  setsockopt(sign[1], SOL_SOCKET, SO_SNDTIMEO, &sign_timeout, sizeof sign_timeout);
  // The child's dup2 onto 3..5 must not clobber a source descriptor: move the child's ends
  // above the target range first (the listener was placed there by the constructor).
  for (int* fd : {&sv[1], &sign[1]}) {
    if (*fd < kFirstFreeFd) {
      int moved = fcntl(*fd, F_DUPFD_CLOEXEC, kFirstFreeFd);
      close(*fd);
      *fd = moved;
    }
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  // dup2 onto 3..5 clears close-on-exec for them; every other descriptor of the broker is
  // opened O_CLOEXEC, so the worker inherits exactly stdin/stdout/stderr, 3, 4 and 5.
  posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
  posix_spawn_file_actions_adddup2(&fa, listen_fd_, 4);
  posix_spawn_file_actions_adddup2(&fa, sign[1], 5);
  // Nothing else crosses into the worker, even descriptors someone forgot to mark close-on-exec.
  posix_spawn_file_actions_addclosefrom_np(&fa, 6);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t defaults;
  sigfillset(&defaults);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::string index_arg = absl::StrCat("--worker-index=", index);
  std::vector<std::string> args = extra_args_;
  std::vector<char*> argv = {const_cast<char*>(binary_.c_str()), index_arg.data()};
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // Empty environment, except sanitizer options so test builds keep their settings.
  std::vector<std::string> env_store;
  for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"}) {
    if (const char* v = getenv(name)) env_store.push_back(absl::StrCat(name, "=", v));
  }
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_t pid = 0;
  int rc = posix_spawn(&pid, binary_.c_str(), &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(sv[1]);
  close(sign[1]);
  if (rc != 0) {
    close(sv[0]);
    close(sign[0]);
    return absl::InternalError(absl::StrCat("cannot start worker ", binary_, ": ", strerror(rc)));
  }
  auto& w = workers_[index];
  w.pid = pid;
  w.started = std::chrono::steady_clock::now();
  LogInfo("worker %d started (pid %d)", static_cast<int>(index), pid);
  on_started_(static_cast<int>(index), sv[0], sign[0], pid);
  return absl::OkStatus();
}

void Supervisor::Poll() {
  std::lock_guard<std::mutex> lock(mu_);
  int status = 0;
  pid_t pid;
  const auto now = std::chrono::steady_clock::now();
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    for (size_t i = 0; i < workers_.size(); ++i) {
      auto& w = workers_[i];
      if (w.pid != pid) continue;
      w.pid = 0;
      if (stopping_) break;
      if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS) ++seccomp_kills_;
      if (now - w.started > kHealthyRun) w.backoff = std::chrono::milliseconds(100);
      w.restart_at = now + w.backoff;
      LogWarn("worker %d (pid %d) %s; restarting in %d ms", static_cast<int>(i), pid,
              DescribeExit(status), static_cast<int>(w.backoff.count()));
      w.backoff = std::min(w.backoff * 2,
                           std::chrono::duration_cast<std::chrono::milliseconds>(kMaxBackoff));
    }
  }
  if (stopping_) return;
  for (size_t i = 0; i < workers_.size(); ++i) {
    auto& w = workers_[i];
    if (w.pid == 0 && now >= w.restart_at) {
      if (absl::Status s = Spawn(i); s.ok()) {
        ++restarts_;
      } else {
        LogError("%s", s.message());
        w.restart_at = now + w.backoff;
      }
    }
  }
}

bool Supervisor::Signal(pid_t pid, int sig) {
  if (pid <= 0) return false;
  if (kill(pid, sig) == 0) return true;
  int err = errno;
  const uid_t own = geteuid();
  if (err == EPERM && worker_uid_ != 0 && worker_uid_ != own && own != 0) {
    // The worker runs under a uid of its own (sandbox/capabilities.h): signal it as that uid.
    // The spawner is single-threaded, so nothing else runs under the borrowed uid meanwhile.
    if (seteuid(worker_uid_) == 0) {
      const bool sent = kill(pid, sig) == 0;
      err = errno;
      if (seteuid(own) != 0) {
        LogError("cannot return to uid %d after signalling worker pid %d: %s; exiting",
                 static_cast<int>(own), pid, strerror(errno));
        _exit(1);
      }
      if (sent) return true;
    } else {
      err = errno;
    }
  }
  // ESRCH: it has exited already (and was reaped), which is what was wanted.
  if (err != ESRCH) LogError("cannot send signal %d to worker pid %d: %s", sig, pid, strerror(err));
  return false;
}

void Supervisor::Kill(pid_t pid) { Signal(pid, SIGKILL); }

void Supervisor::StopAll(std::chrono::milliseconds grace) {
  std::lock_guard<std::mutex> lock(mu_);
  stopping_ = true;
  for (auto& w : workers_) {
    if (w.pid > 0) Signal(w.pid, SIGTERM);
  }
  const auto deadline = std::chrono::steady_clock::now() + grace;
  for (auto& w : workers_) {
    while (w.pid > 0) {
      int status = 0;
      pid_t r = waitpid(w.pid, &status, WNOHANG);
      if (r == w.pid || (r < 0 && errno == ECHILD)) {
        w.pid = 0;
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        if (!Signal(w.pid, SIGKILL)) {
          w.pid = 0;  // not ours to stop: it exits when the broker closes its socket
          break;
        }
        waitpid(w.pid, &status, 0);
        w.pid = 0;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

Supervisor::Stats Supervisor::GetStats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s;
  s.configured = static_cast<int>(workers_.size());
  s.restarts = restarts_;
  s.seccomp_kills = seccomp_kills_;
  for (const auto& w : workers_) {
    if (w.pid > 0) ++s.running;
    // Four deaths in a row, each within kHealthyRun of its start, doubled the back-off to 1.6 s.
    if (w.backoff >= std::chrono::milliseconds(1600)) s.crash_loop = true;
  }
  return s;
}

std::vector<pid_t> Supervisor::Pids() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<pid_t> out;
  for (const auto& w : workers_) {
    if (w.pid > 0) out.push_back(w.pid);
  }
  return out;
}

}  // namespace strongroom::sandbox
