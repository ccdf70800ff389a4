// The seccomp filters themselves: a child process installs the worker's (or the broker's)
// filter exactly as production does and attempts each forbidden syscall; it must die of SIGSYS
// every time, and the worker's handler must name the syscall. Allowed operations keep working.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sandbox/broker_filter.h"
#include "sandbox/worker_sandbox.h"

namespace strongroom::sandbox {
namespace {

class WorkerFilterDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// Installs the worker filter; any failure to install exits 99 (not SIGSYS) so it cannot pass.
void WorkerFilter() {
  if (!InstallWorkerFilter().ok()) _exit(99);
}

void Exec(const char* path) {
  char* argv[] = {const_cast<char*>(path), nullptr};
  execv(path, argv);
}

void ReadParentMemory() {
  char buf[8];
  iovec local{buf, sizeof buf};
  iovec remote{buf, sizeof buf};
  (void)!process_vm_readv(getppid(), &local, 1, &remote, 1, 0);
}

std::string Named(long nr) { return absl::StrCat("seccomp: syscall ", nr, " is outside"); }

TEST_F(WorkerFilterDeathTest, OpeningAFileKills) {
  EXPECT_EXIT(
      {
        WorkerFilter();
        (void)!open("/etc/passwd", O_RDONLY);
        _exit(0);
      },
      ::testing::KilledBySignal(SIGSYS), Named(SYS_openat));
}

TEST_F(WorkerFilterDeathTest, ExecutingAShellKills) {
  EXPECT_EXIT(
      {
        WorkerFilter();
        Exec("/bin/sh");
        _exit(0);
      },
      ::testing::KilledBySignal(SIGSYS), Named(SYS_execve));
}

TEST_F(WorkerFilterDeathTest, ConnectingToATcpPortKills) {
  // The socket is made before the filter (a worker holds sockets too): connect is what is
  // refused. socket() itself is refused as well (next test).
  EXPECT_EXIT(
      {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        WorkerFilter();
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(80);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        (void)!connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
        _exit(0);
      },
      ::testing::KilledBySignal(SIGSYS), Named(SYS_connect));
}

TEST_F(WorkerFilterDeathTest, MakingASocketKills) {
  EXPECT_EXIT(
      {
        WorkerFilter();
        (void)!socket(AF_INET, SOCK_STREAM, 0);
        _exit(0);
      },
      ::testing::KilledBySignal(SIGSYS), Named(SYS_socket));
}

TEST_F(WorkerFilterDeathTest, ForkingKills) {
  EXPECT_EXIT(
      {
        WorkerFilter();
        (void)!fork();  // glibc's fork is clone(SIGCHLD)
        _exit(0);
      },
      ::testing::KilledBySignal(SIGSYS), Named(SYS_clone));
}

TEST_F(WorkerFilterDeathTest, PtracingTheParentKills) {
  // The parent stands in for the broker.
  EXPECT_EXIT(
      {
        const pid_t parent = getppid();
        WorkerFilter();
        (void)!ptrace(PTRACE_ATTACH, parent, nullptr, nullptr);
        _exit(0);
      },
      ::testing::KilledBySignal(SIGSYS), Named(SYS_ptrace));
}

TEST_F(WorkerFilterDeathTest, MakingMemoryExecutableKills) {
  EXPECT_EXIT(
      {
        void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        WorkerFilter();
        (void)!mprotect(p, 4096, PROT_READ | PROT_EXEC);
        _exit(0);
      },
      ::testing::KilledBySignal(SIGSYS), Named(SYS_mprotect));
}

TEST_F(WorkerFilterDeathTest, ChangingTheSigsysHandlerKills) {
  EXPECT_EXIT(
      {
        WorkerFilter();
        signal(SIGSYS, SIG_IGN);
        _exit(0);
      },
      ::testing::KilledBySignal(SIGSYS), Named(SYS_rt_sigaction));
}

TEST_F(WorkerFilterDeathTest, WhatAWorkerDoesStillWorks) {
  // Pipes stand in for the worker's sockets: read, write, non-blocking mode, poll, memory,
  // randomness, time, then a clean exit with a code of its own.
  EXPECT_EXIT(
      {
        int p[2];
        if (pipe(p) != 0) _exit(10);
        WorkerFilter();
        if (fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK) != 0) _exit(11);
        if (write(p[1], "x", 1) != 1) _exit(12);
        char c = 0;
        if (read(p[0], &c, 1) != 1 || c != 'x') _exit(13);
        std::string big(1 << 22, 'a');  // malloc -> mmap
        unsigned char r[32];
        if (getrandom(r, sizeof r, 0) != sizeof r) _exit(14);
        timespec ts;
        if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) _exit(15);
        _exit(big.size() == (1u << 22) ? 42 : 16);
      },
      ::testing::ExitedWithCode(42), "");
}

class BrokerFilterDeathTest : public WorkerFilterDeathTest {};

void BrokerFilter() {
  if (!InstallBrokerFilter().ok()) _exit(99);
}

TEST_F(BrokerFilterDeathTest, ExecKills) {
  EXPECT_EXIT(
      {
        BrokerFilter();
        Exec("/bin/true");
        _exit(0);
      },
      ::testing::KilledBySignal(SIGSYS), "");
}

TEST_F(BrokerFilterDeathTest, ForkKills) {
  EXPECT_EXIT(
      {
        BrokerFilter();
        (void)!fork();
        _exit(0);
      },
      ::testing::KilledBySignal(SIGSYS), "");
}

TEST_F(BrokerFilterDeathTest, PtraceKills) {
  EXPECT_EXIT(
      {
        BrokerFilter();
        (void)!ptrace(PTRACE_ATTACH, getppid(), nullptr, nullptr);
        _exit(0);
      },
      ::testing::KilledBySignal(SIGSYS), "");
}

TEST_F(BrokerFilterDeathTest, ReadingAnotherProcessMemoryKills) {
  EXPECT_EXIT(
      {
        BrokerFilter();
        ReadParentMemory();
        _exit(0);
      },
      ::testing::KilledBySignal(SIGSYS), "");
}

TEST_F(BrokerFilterDeathTest, BpfPerfModulesAndMountsKill) {
  const long kForbidden[] = {SYS_bpf, SYS_perf_event_open, SYS_init_module, SYS_kexec_load,
                             SYS_mount};
  for (long nr : kForbidden) {
    EXPECT_EXIT(
        {
          BrokerFilter();
          syscall(nr, 0, 0, 0, 0, 0);
          _exit(0);
        },
        ::testing::KilledBySignal(SIGSYS), "")
        << "syscall " << nr;
  }
}

TEST_F(BrokerFilterDeathTest, ThreadsFilesAndSocketsStillWork) {
  EXPECT_EXIT(
      {
        BrokerFilter();
        int value = 0;
        std::thread t([&value] { value = 7; });
        t.join();
        int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
        if (fd < 0) _exit(10);
        close(fd);
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        if (s < 0) _exit(11);
        close(s);
        _exit(value == 7 ? 42 : 12);
      },
      ::testing::ExitedWithCode(42), "");
}

}  // namespace
}  // namespace strongroom::sandbox
