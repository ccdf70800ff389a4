// The agent's seccomp allowlist (sandbox/agent_filter.h): a child installs it as `strongroom
// agent` does and tries each class of forbidden call; it must die of SIGSYS with the call named.
// What the agent does (files written and renamed, a TCP connection, a thread) keeps working.
#include "sandbox/agent_filter.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace strongroom::sandbox {
namespace {

class AgentFilterDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

void AgentFilter() {
  if (!InstallAgentFilter().ok()) _exit(99);
}

void ExecTrue() {
  char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
  execv("/bin/true", argv);
}

std::string Named(long nr) {
  return absl::StrCat("strongroom agent: seccomp: syscall ", nr, " is outside the agent's policy");
}

TEST_F(AgentFilterDeathTest, ExecutingAProgramKills) {
  EXPECT_EXIT(
      {
        AgentFilter();
        ExecTrue();
        _exit(0);
      },
      ::testing::KilledBySignal(SIGSYS), Named(SYS_execve));
}

TEST_F(AgentFilterDeathTest, ForkingKills) {
  EXPECT_EXIT(
      {
        AgentFilter();
        (void)!fork();  // glibc's fork is clone(SIGCHLD), without CLONE_THREAD
        _exit(0);
      },
      ::testing::KilledBySignal(SIGSYS), Named(SYS_clone));
}

TEST_F(AgentFilterDeathTest, PtraceKills) {
  EXPECT_EXIT(
      {
        const pid_t parent = getppid();
        AgentFilter();
        (void)!ptrace(PTRACE_ATTACH, parent, nullptr, nullptr);
        _exit(0);
      },
      ::testing::KilledBySignal(SIGSYS), Named(SYS_ptrace));
}

TEST_F(AgentFilterDeathTest, SignallingAnotherProcessKills) {
  EXPECT_EXIT(
      {
        const pid_t parent = getppid();
        AgentFilter();
        (void)!kill(parent, SIGTERM);
        _exit(0);
      },
      ::testing::KilledBySignal(SIGSYS), Named(SYS_kill));
}

TEST_F(AgentFilterDeathTest, ANetlinkSocketKills) {
  EXPECT_EXIT(
      {
        AgentFilter();
        (void)!socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
        _exit(0);
      },
      ::testing::KilledBySignal(SIGSYS), Named(SYS_socket));
}

TEST_F(AgentFilterDeathTest, ListeningKills) {
  EXPECT_EXIT(
      {
        AgentFilter();
        const int fd = socket(AF_INET, SOCK_STREAM, 0);
        (void)!listen(fd, 1);
        _exit(0);
      },
      ::testing::KilledBySignal(SIGSYS), Named(SYS_listen));
}

TEST_F(AgentFilterDeathTest, ExecutableMemoryKills) {
  EXPECT_EXIT(
      {
        AgentFilter();
        (void)!mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        _exit(0);
      },
      ::testing::KilledBySignal(SIGSYS), Named(SYS_mmap));
}

TEST_F(AgentFilterDeathTest, ReplacingTheSigsysHandlerKills) {
  EXPECT_EXIT(
      {
        AgentFilter();
        signal(SIGSYS, SIG_IGN);
        _exit(0);
      },
      ::testing::KilledBySignal(SIGSYS), Named(SYS_rt_sigaction));
}

// The kernel truncates rt_sigaction's signal number to an int: a number with high bits set
// must not slip past the rule (a 64-bit comparison would let it through).
void ReplaceSigsysHandlerWithHighBits() {
  struct kernel_sigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)();
    uint64_t mask;
  } action = {SIG_IGN, 0, nullptr, 0};
  syscall(SYS_rt_sigaction, (1UL << 32) | SIGSYS, &action, nullptr, sizeof(uint64_t));
}

TEST_F(AgentFilterDeathTest, ReplacingTheSigsysHandlerWithHighBitsSetKills) {
  EXPECT_EXIT(
      {
        AgentFilter();
        ReplaceSigsysHandlerWithHighBits();
        _exit(0);
      },
      ::testing::KilledBySignal(SIGSYS), Named(SYS_rt_sigaction));
}

TEST_F(AgentFilterDeathTest, ChangingIdsKills) {
  EXPECT_EXIT(
      {
        AgentFilter();
        (void)!setuid(0);
        _exit(0);
      },
      ::testing::KilledBySignal(SIGSYS), Named(SYS_setuid));
}

// Everything the agent does, after the filter; exits 42 when all of it worked.
[[noreturn]] void DoWhatTheAgentDoes() {
  const int server = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(server, 1) != 0 ||
      getsockname(server, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    _exit(10);
  }
  // Named after the test process, which removes it (the death test child is re-executed).
  const std::string dir = absl::StrCat("/tmp/agent-filter-", getppid());
  if (mkdir(dir.c_str(), 0700) != 0) _exit(11);
  AgentFilter();
  // A rendered file: temporary file, mode, fsync, rename; a directory for it.
  const std::string sub = dir + "/secrets";
  if (mkdir(sub.c_str(), 0755) != 0) _exit(12);
  const std::string tmp = sub + "/.out.tmp";
  const std::string out = sub + "/out";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 || fchmod(fd, 0644) != 0 || write(fd, "x", 1) != 1 || fsync(fd) != 0) _exit(13);
  close(fd);
  if (rename(tmp.c_str(), out.c_str()) != 0) _exit(14);
  // A TCP connection, from a thread.
  bool connected = false;
  std::thread([&] {
    const int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    connected = c >= 0 && connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    if (c >= 0) close(c);
  }).join();
  if (!connected) _exit(15);
  _exit(42);
}

TEST_F(AgentFilterDeathTest, WhatTheAgentDoesStillWorks) {
  // A listening socket made before the filter stands in for the server.
  EXPECT_EXIT(DoWhatTheAgentDoes(), ::testing::ExitedWithCode(42), "");
  std::filesystem::remove_all(absl::StrCat("/tmp/agent-filter-", getpid()));
}

}  // namespace
}  // namespace strongroom::sandbox
