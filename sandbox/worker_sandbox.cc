#include "sandbox/worker_sandbox.h"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "sandbox/capabilities.h"
#include "sandbox/lsan.h"
#include "sandbox/sigsys.h"

namespace strongroom::sandbox {
namespace {

absl::Status Errno(std::string_view what) {
  return absl::InternalError(absl::StrCat(std::string(what), ": ", strerror(errno)));
}

struct FilterDeleter {
  void operator()(scmp_filter_ctx ctx) const { seccomp_release(ctx); }
};

// Namespaces and an empty root. Best effort: false (with the reason logged) when the kernel or
// the container does not allow it.
bool EnterEmptyRoot(bool root) {
  int flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS;
  const uid_t uid = getuid();
  const gid_t gid = getgid();
  if (!root) flags |= CLONE_NEWUSER;
  if (unshare(flags) != 0) {
    LogWarn("sandbox: no new namespaces (%s); the seccomp filter still applies", strerror(errno));
    return false;
  }
  if (!root) {
    // Map ourselves so that the ids stay what they were (no privilege outside the namespace).
    auto write_file = [](const char* path, const std::string& text) {
      int fd = open(path, O_WRONLY | O_CLOEXEC);
      if (fd < 0) return false;
      const bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
      close(fd);
      return ok;
    };
    if (!write_file("/proc/self/setgroups", "deny") ||
        !write_file("/proc/self/uid_map", absl::StrCat(uid, " ", uid, " 1\n")) ||
        !write_file("/proc/self/gid_map", absl::StrCat(gid, " ", gid, " 1\n"))) {
      LogWarn("sandbox: user namespace id maps refused (%s)", strerror(errno));
      return false;
    }
  }
  // An empty, read-only tmpfs over /tmp in our private mount namespace becomes the root.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
      mount("strongroom-empty", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
            "size=4k,mode=0555") != 0 ||
      mount(nullptr, "/tmp", nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
            nullptr) != 0 ||
      chroot("/tmp") != 0 || chdir("/") != 0) {
    LogWarn("sandbox: no empty root (%s)", strerror(errno));
    return false;
  }
  return true;
}

// setgroups([]), then the gid and uid (real, effective, saved), then no capability at all; fails
// unless the ids stay changed.
absl::Status DropIds(const WorkerSandboxOptions& options) {
  if (options.uid == 0) return absl::InvalidArgumentError("workers must not run as root");
  if (setgroups(0, nullptr) != 0) return Errno("setgroups");
  if (setresgid(options.gid, options.gid, options.gid) != 0) return Errno("setresgid");
  if (setresuid(options.uid, options.uid, options.uid) != 0) return Errno("setresuid");
  // From root the kernel cleared the capabilities with the uid; from a non-root user with
  // CAP_SETUID/CAP_SETGID it did not.
  if (absl::Status s = DropAllCapabilities(); !s.ok()) return s;
  uid_t r = 0, e = 0, saved = 0;
  if (getresuid(&r, &e, &saved) != 0 || r != options.uid || e != options.uid ||
      saved != options.uid) {
    return absl::InternalError("the uid did not change");
  }
  if (setuid(0) == 0 || geteuid() == 0) {
    return absl::InternalError("privileges could be regained after the drop");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status InstallWorkerFilter() {
  if (absl::Status s = InstallSigsysReport("strongroom-worker: seccomp: syscall ",
                                           " is outside the worker's policy; exiting\n");
      !s.ok()) {
    return s;
  }
  std::unique_ptr<void, FilterDeleter> ctx(seccomp_init(SCMP_ACT_TRAP));
  if (!ctx) return absl::InternalError("seccomp_init failed");
  int rc = 0;
  auto allow = [&](int nr) {
    if (rc == 0) rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, nr, 0);
  };
  auto allow_if = [&](int nr, scmp_arg_cmp cmp) {
    if (rc == 0) rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, nr, 1, cmp);
  };

  // I/O on descriptors the worker already holds (client sockets, the broker socketpair,
  // stderr). There is no open/openat/socket/connect/bind/listen: it cannot make new ones,
  // except accepted connections.
  allow(SCMP_SYS(read));
  allow(SCMP_SYS(write));
  allow(SCMP_SYS(readv));
  allow(SCMP_SYS(writev));
  allow(SCMP_SYS(recvfrom));
  allow(SCMP_SYS(sendto));
  allow(SCMP_SYS(recvmsg));
  allow(SCMP_SYS(sendmsg));
  allow(SCMP_SYS(accept4));     // new client connections on the inherited listener
  allow(SCMP_SYS(accept));      // (asio uses either)
  allow(SCMP_SYS(shutdown));    // ending a client connection
  allow(SCMP_SYS(close));       // closing one
  allow(SCMP_SYS(getsockopt));  // asio reads SO_ERROR and friends
  allow(SCMP_SYS(setsockopt));  // TCP_NODELAY, SO_LINGER on client sockets
  allow(SCMP_SYS(getsockname));
  allow(SCMP_SYS(getpeername));  // the client's address for the audit record
  allow(SCMP_SYS(lseek));        // stdio on stderr
  allow(SCMP_SYS(fstat));        // stdio on stderr
  allow(SCMP_SYS(newfstatat));   // glibc's fstat; the root is an empty tmpfs
  // fcntl: only flag reads and writes (non-blocking mode, close-on-exec), never F_DUPFD.
  for (int cmd : {F_GETFL, F_SETFL, F_GETFD, F_SETFD}) {
    allow_if(SCMP_SYS(fcntl), SCMP_A1(SCMP_CMP_EQ, static_cast<scmp_datum_t>(cmd)));
  }
  // ioctl: non-blocking mode and bytes available on sockets, isatty() from stdio.
  for (unsigned long req :
       {static_cast<unsigned long>(FIONBIO), static_cast<unsigned long>(FIONREAD),
        static_cast<unsigned long>(TCGETS)}) {
    allow_if(SCMP_SYS(ioctl), SCMP_A1(SCMP_CMP_EQ, static_cast<scmp_datum_t>(req)));
  }

  // The event loop (asio on epoll, timers on timerfd, wake-ups on eventfd).
  allow(SCMP_SYS(epoll_create1));
  allow(SCMP_SYS(epoll_ctl));
  allow(SCMP_SYS(epoll_wait));
  allow(SCMP_SYS(epoll_pwait));
  allow(SCMP_SYS(eventfd2));
  allow(SCMP_SYS(timerfd_create));
  allow(SCMP_SYS(timerfd_settime));
  allow(SCMP_SYS(timerfd_gettime));
  allow(SCMP_SYS(poll));   // blocking IPC reads
  allow(SCMP_SYS(ppoll));  // (glibc may use either)

  // Time (normally served by the vDSO without a syscall).
  allow(SCMP_SYS(clock_gettime));
  allow(SCMP_SYS(clock_getres));
  allow(SCMP_SYS(gettimeofday));
  allow(SCMP_SYS(nanosleep));
  allow(SCMP_SYS(clock_nanosleep));

  // Memory: malloc and the C++ runtime. No executable mappings: mmap and mprotect with
  // PROT_EXEC are refused, so injected code cannot be made runnable.
  allow(SCMP_SYS(brk));
  allow(SCMP_SYS(munmap));
  allow(SCMP_SYS(mremap));
  allow(SCMP_SYS(madvise));
  allow_if(SCMP_SYS(mmap), SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
  allow_if(SCMP_SYS(mprotect), SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));

  // Randomness for TLS (OpenSSL's DRBG seeds from getrandom).
  allow(SCMP_SYS(getrandom));

  // Threads are not used; these are the runtime's own bookkeeping.
  allow(SCMP_SYS(futex));
  allow(SCMP_SYS(rt_sigprocmask));
  allow(SCMP_SYS(rt_sigreturn));
  allow(SCMP_SYS(sched_yield));
  allow(SCMP_SYS(sigaltstack));  // sanitizer runtimes query their alternate signal stack
#ifdef SR_LSAN
  allow(SCMP_SYS(pipe2));  // AddressSanitizer probes memory through a pipe (sanitizer builds only)
#endif
  allow(SCMP_SYS(restart_syscall));
  allow(SCMP_SYS(getpid));  // log lines carry the pid
  allow(SCMP_SYS(gettid));
  // Only to deliver SIGSYS to itself from the handler above: the thread group must be this
  // process (its pid, fixed here: the worker never forks or changes pid namespace) and the signal
  // SIGSYS. Any other target (the broker, the spawner, another worker) traps like every call
  // outside the list; so do kill, tkill, rt_sigqueueinfo, rt_tgsigqueueinfo, pidfd_open and
  // pidfd_send_signal, which are not listed at all (tests/adversarial/boundary_test.cc).
  if (rc == 0) {
    rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 2,
                          SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(getpid())),
                          SCMP_A2(SCMP_CMP_EQ, static_cast<scmp_datum_t>(SIGSYS)));
  }

  // Leaving.
  allow(SCMP_SYS(exit));
  allow(SCMP_SYS(exit_group));

  if (rc != 0) return absl::InternalError(absl::StrCat("seccomp_rule_add: ", strerror(-rc)));
  return LoadFilter(ctx.get());
}

absl::Status EnterWorkerSandbox(const WorkerSandboxOptions& options) {
  // Sanitizer builds: LeakSanitizer reads /proc, which the empty root hides, and stops the world
  // with syscalls the filter forbids; its check runs here, before both.
  LeakCheckBeforeFilter();
  const bool root = geteuid() == 0;
  if (!root && options.drop_privileges) {
    // Started without root but with CAP_SETUID and CAP_SETGID (the systemd unit's ambient
    // capabilities, kept by the spawner): the ids change first, since a new user namespace would
    // leave them unmapped. The change made the process non-dumpable, which would hide
    // /proc/self/uid_map from the namespace step; it is made non-dumpable again right after.
    if (absl::Status s = DropIds(options); !s.ok()) return s;
    if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0) return Errno("PR_SET_DUMPABLE");
  }
  // Namespaces first: an unprivileged process writes its own uid_map through /proc/self, which
  // stops being its own once it is not dumpable.
  EnterEmptyRoot(root);
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return Errno("PR_SET_DUMPABLE");
  const rlimit no_core = {0, 0};
  if (setrlimit(RLIMIT_CORE, &no_core) != 0) return Errno("RLIMIT_CORE");
  if (root && options.drop_privileges) {
    if (absl::Status s = DropIds(options); !s.ok()) return s;
  }
  // Nothing below needs a capability, not even the full set a new user namespace grants inside
  // it, nor what a root worker without ids to change still holds.
  if (absl::Status s = DropAllCapabilities(); !s.ok()) return s;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return Errno("PR_SET_NO_NEW_PRIVS");
  return InstallWorkerFilter();
}

}  // namespace strongroom::sandbox
