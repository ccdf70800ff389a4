// The spawner: a small process forked from strongroomd before it opens storage or the PKCS#11
// token, which owns the listening socket and runs the Supervisor (start, reap, restart with
// back-off). It hands every started worker's broker-side sockets (IPC and TLS signing
// channel) to the broker over a SOCK_SEQPACKET pair (SCM_RIGHTS), with its pid and index, and
// reports the workers' state.
//
// Why a process of its own: the broker, which holds the token session and the keyring, runs
// under a seccomp filter that forbids exec (broker_filter.h). Only the spawner, which never sees
// a key, a secret or a request, can start worker binaries.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sandbox/supervisor.h"

namespace strongroom::sandbox {

class Spawner {
 public:
  // Forks the spawner, which starts `count` workers at once. Takes `listen_fd` (closed here).
  // `worker_uid`: the uid the workers change to (extra_args carry it to them), 0 if none.
  static absl::StatusOr<std::unique_ptr<Spawner>> Start(std::string worker_binary, int listen_fd,
                                                        int count,
                                                        std::vector<std::string> extra_args,
                                                        uid_t worker_uid = 0);
  ~Spawner();

  // Takes the spawner's messages without blocking: every started worker goes to `on_started`
  // (which owns the fd); state updates are kept for stats(). Call from the main loop.
  // Also reaps the spawner once it has exited (it is a child of the broker): then alive() turns
  // false and the log says how it ended.
  void Poll(const Supervisor::OnStarted& on_started);
  // The last state the spawner reported; `running` is 0 once the spawner is gone, whether or not
  // Poll has noticed yet (no worker is supervised any more, and the broker is about to stop).
  Supervisor::Stats stats() const;
  // Kills one worker (protocol violation); the spawner restarts it like a crashed one.
  void Kill(pid_t pid);
  // Asks the spawner to stop every worker and exit, then reaps it.
  void Stop();
  pid_t pid() const { return pid_; }
  // False once Poll has found the spawner gone (its socket closed or the process reaped). The
  // broker cannot start another one (its seccomp filter forbids fork and exec, and the listener
  // went with the spawner), so the daemon then stops with a non-zero status and the service
  // manager restarts it.
  bool alive() const { return alive_.load(); }
  // Without blocking, from any thread: the spawner's end of the socket is closed (it exited or
  // was killed), whether or not Poll has noticed yet.
  bool Gone() const;

 private:
  Spawner(pid_t pid, int fd) : pid_(pid), fd_(fd) {}
  void MarkGone(const char* why);
  pid_t pid_;
  int fd_;
  std::atomic<bool> alive_{true};
  mutable std::mutex mu_;
  Supervisor::Stats stats_;
  std::vector<pid_t> worker_pids_;  // every worker reported started (for Kill's check)
};

}  // namespace strongroom::sandbox
