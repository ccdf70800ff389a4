#include "sandbox/agent_filter.h"

#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "sandbox/sigsys.h"

namespace strongroom::sandbox {
absl::Status InstallAgentFilter() {
  if (absl::Status s = InstallSigsysReport("strongroom agent: seccomp: syscall ",
                                           " is outside the agent's policy; exiting\n");
      !s.ok()) {
    return s;
  }
  std::unique_ptr<void, void (*)(scmp_filter_ctx)> ctx(seccomp_init(SCMP_ACT_TRAP),
                                                       seccomp_release);
  if (!ctx) return absl::InternalError("seccomp_init failed");
  // Every thread: the resolver's detached threads may already exist.
  int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_TSYNC, 1);
  auto allow = [&](int nr) {
    if (rc == 0) rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, nr, 0);
  };
  auto allow_if = [&](int nr, scmp_arg_cmp cmp) {
    if (rc == 0) rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, nr, 1, cmp);
  };

  // Descriptors: reads and writes on files, sockets, stderr and the runner's socket.
  allow(SCMP_SYS(read));
  allow(SCMP_SYS(write));
  allow(SCMP_SYS(readv));
  allow(SCMP_SYS(writev));
  allow(SCMP_SYS(pread64));  // OpenSSL and glibc read files in pieces
  allow(SCMP_SYS(lseek));
  allow(SCMP_SYS(close));
  allow(SCMP_SYS(dup));  // stdio
  // Files: the configuration, credentials (JWT, role and secret ids), CA certificates, template
  // sources; rendered files and token sinks written next to their destination and renamed over it.
  allow(SCMP_SYS(openat));
  allow(SCMP_SYS(open));
  allow(SCMP_SYS(newfstatat));
  allow(SCMP_SYS(fstat));
  allow(SCMP_SYS(stat));
  allow(SCMP_SYS(lstat));
  allow(SCMP_SYS(statx));
  allow(SCMP_SYS(access));  // OpenSSL probes its configuration file
  allow(SCMP_SYS(faccessat));
  allow(SCMP_SYS(faccessat2));
  allow(SCMP_SYS(getdents64));  // OpenSSL's directory of CA certificates (ca_path)
  allow(SCMP_SYS(rename));
  allow(SCMP_SYS(renameat));
  allow(SCMP_SYS(renameat2));
  allow(SCMP_SYS(unlink));  // temporary files after a failed write; the pid file; a secret id
  allow(SCMP_SYS(unlinkat));
  allow(SCMP_SYS(mkdir));  // create_dest_dirs
  allow(SCMP_SYS(mkdirat));
  allow(SCMP_SYS(fchmod));  // perms and a sink's mode
  allow(SCMP_SYS(fsync));   // a rendered file is durable before it replaces the old one
  allow(SCMP_SYS(fdatasync));
  allow(SCMP_SYS(readlink));  // glibc resolving /etc/localtime for log times
  for (int cmd : {F_GETFL, F_SETFL, F_GETFD, F_SETFD, F_DUPFD_CLOEXEC}) {
    allow_if(SCMP_SYS(fcntl), SCMP_A1(SCMP_CMP_EQ, static_cast<scmp_datum_t>(cmd)));
  }
  // asio's non-blocking mode and the terminal check of stdio.
  for (unsigned long req : {static_cast<unsigned long>(FIONBIO), static_cast<unsigned long>(TCGETS),
                            static_cast<unsigned long>(FIONREAD)}) {
    allow_if(SCMP_SYS(ioctl), SCMP_A1(SCMP_CMP_EQ, static_cast<scmp_datum_t>(req)));
  }

  // Network: TCP to the server, UDP to the resolver, Unix sockets to nscd. No listening socket.
  for (int domain : {AF_INET, AF_INET6, AF_UNIX}) {
    allow_if(SCMP_SYS(socket), SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(domain)));
  }
  allow(SCMP_SYS(connect));
  allow(SCMP_SYS(getsockopt));
  allow(SCMP_SYS(setsockopt));
  allow(SCMP_SYS(getsockname));
  allow(SCMP_SYS(getpeername));
  allow(SCMP_SYS(sendto));
  allow(SCMP_SYS(recvfrom));
  allow(SCMP_SYS(sendmsg));
  allow(SCMP_SYS(recvmsg));
  allow(SCMP_SYS(sendmmsg));  // glibc's resolver sends A and AAAA queries together
  allow(SCMP_SYS(shutdown));
  allow(SCMP_SYS(bind));  // glibc's resolver binds its UDP socket to an ephemeral port
  allow(SCMP_SYS(poll));
  allow(SCMP_SYS(ppoll));
  allow(SCMP_SYS(epoll_create1));
  allow(SCMP_SYS(epoll_ctl));
  allow(SCMP_SYS(epoll_wait));
  allow(SCMP_SYS(epoll_pwait));
  allow(SCMP_SYS(eventfd2));  // asio's reactor interrupter
  allow(SCMP_SYS(timerfd_create));
  allow(SCMP_SYS(timerfd_settime));
  allow(SCMP_SYS(pipe2));  // asio falls back to a pipe; AddressSanitizer probes memory with one

  // Time.
  allow(SCMP_SYS(clock_gettime));
  allow(SCMP_SYS(clock_getres));
  allow(SCMP_SYS(gettimeofday));
  allow(SCMP_SYS(nanosleep));
  allow(SCMP_SYS(clock_nanosleep));

  // Memory, never executable.
  allow(SCMP_SYS(brk));
  allow(SCMP_SYS(munmap));
  allow(SCMP_SYS(mremap));
  allow(SCMP_SYS(madvise));
  allow_if(SCMP_SYS(mmap), SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
  allow_if(SCMP_SYS(mprotect), SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
  allow(SCMP_SYS(getrandom));  // OpenSSL's DRBG, random temporary file names

  // Threads (the resolver's), never processes: clone must carry CLONE_THREAD; clone3 answers
  // ENOSYS so that glibc falls back to clone, whose flags the filter can read.
  allow_if(SCMP_SYS(clone), SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
  if (rc == 0) rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  allow(SCMP_SYS(set_robust_list));
  allow(SCMP_SYS(rseq));
  allow(SCMP_SYS(futex));
  allow(SCMP_SYS(sched_yield));
  allow(SCMP_SYS(sched_getaffinity));  // glibc sizing a thread's stack cache
  allow(SCMP_SYS(exit));
  allow(SCMP_SYS(exit_group));

  // Signals: the loop's sigtimedwait, masks, and SIGSYS or SIGABRT to itself only.
  allow(SCMP_SYS(rt_sigtimedwait));
  allow(SCMP_SYS(rt_sigprocmask));
  // Any handler but SIGSYS's, so the report of a denied call stays. Each signal number is
  // allowed by full 64-bit equality: the kernel reads the number as an int, so a "not SIGSYS"
  // rule would let (1 << 32 | SIGSYS) through (libseccomp 2.5's 32-bit comparisons do not help
  // here: SCMP_A0_32 with SCMP_CMP_NE still compares the high half).
  for (int sig = 1; sig <= SIGRTMAX; ++sig) {
    if (sig != SIGSYS) {
      allow_if(SCMP_SYS(rt_sigaction), SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(sig)));
    }
  }
  allow(SCMP_SYS(rt_sigreturn));
  allow(SCMP_SYS(sigaltstack));
  allow(SCMP_SYS(restart_syscall));
  allow(SCMP_SYS(getpid));
  allow(SCMP_SYS(gettid));
  allow(SCMP_SYS(getuid));  // glibc and OpenSSL look at ids (secure_getenv, home directories)
  allow(SCMP_SYS(geteuid));
  allow(SCMP_SYS(getgid));
  allow(SCMP_SYS(getegid));
  allow(SCMP_SYS(uname));
  allow(SCMP_SYS(sysinfo));  // glibc's sysconf(_SC_PHYS_PAGES), asked by qsort and OpenSSL
  if (rc == 0) {
    rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
                          SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(getpid())));
  }

  if (rc != 0) return absl::InternalError(absl::StrCat("seccomp_rule_add: ", strerror(-rc)));
  return LoadFilter(ctx.get());
}

}  // namespace strongroom::sandbox
