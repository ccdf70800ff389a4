// Worker spawning and supervision. Workers are started with posix_spawn (fork+exec with nothing
// but descriptor shuffling in between: PKCS#11 state never crosses into a child), each with its
// own socketpair to the broker on fd 3, the shared listening socket on fd 4 and its own
// SOCK_SEQPACKET socketpair for TLS signatures on fd 5 (appliance/tls/sign_channel.h), an empty
// environment (no PIN or secret can leak through it) and no other descriptors.
// A worker that exits is restarted with exponential back-off (100 ms doubling to 10 s, reset
// after a worker has run for 30 s); the others keep serving meanwhile.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace strongroom::sandbox {

class Supervisor {
 public:
  // on_started(index, broker_fd, sign_fd, pid) is called after every (re)start; the callee owns
  // broker_fd and sign_fd (the broker ends of fd 3 and fd 5).
  using OnStarted = std::function<void(int index, int broker_fd, int sign_fd, pid_t pid)>;

  // Takes ownership of listen_fd (it may be renumbered).
  Supervisor(std::string worker_binary, int listen_fd, int count, OnStarted on_started);

  // Arguments added to every worker's command line (e.g. the ids to drop to).
  void set_extra_args(std::vector<std::string> args) { extra_args_ = std::move(args); }
  // The uid the workers change to (0: they keep ours). Signals to a worker under another uid
  // are sent with that uid as our effective uid for the call: a non-root spawner has
  // CAP_SETUID but no CAP_KILL.
  void set_worker_uid(uid_t uid) { worker_uid_ = uid; }

  absl::Status StartAll();
  // Reaps exited workers and restarts the ones whose back-off has passed. Call it regularly
  // (the broker's main loop does, on SIGCHLD and every second).
  void Poll();
  // Kills one worker (protocol violation); it is restarted like a crashed one.
  void Kill(pid_t pid);
  // SIGTERM to all workers, then waits up to `grace` and SIGKILLs what is left.
  void StopAll(std::chrono::milliseconds grace);

  std::vector<pid_t> Pids() const;
  uint64_t restarts() const { return restarts_; }

  struct Stats {
    int configured = 0;
    int running = 0;
    uint64_t restarts = 0;       // since start
    uint64_t seccomp_kills = 0;  // deaths by SIGSYS (the worker's filter) since start
    bool crash_loop = false;     // a worker keeps dying soon after each start
  };
  Stats GetStats() const;

 private:
  struct Worker {
    pid_t pid = 0;
    std::chrono::steady_clock::time_point started;
    std::chrono::steady_clock::time_point restart_at;
    std::chrono::milliseconds backoff{100};
  };
  absl::Status Spawn(size_t index);
  // kill(pid, sig), also for a worker under worker_uid_; false (logged) if it was refused.
  bool Signal(pid_t pid, int sig);

  std::string binary_;
  std::vector<std::string> extra_args_;
  uid_t worker_uid_ = 0;
  int listen_fd_;
  OnStarted on_started_;
  mutable std::mutex mu_;
  std::vector<Worker> workers_;
  uint64_t restarts_ = 0;
  uint64_t seccomp_kills_ = 0;
  bool stopping_ = false;
};

}  // namespace strongroom::sandbox
