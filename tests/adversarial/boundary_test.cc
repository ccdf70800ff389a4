// The process boundary between workers, spawner and broker (issue 15, items 12 and 14).
// Vault API section: sys/health (GET /v1/sys/health) — strongroom's "strongroom_workers" addition
// must never count a dead or unsupervised worker as running.
//
// Item 12: a process under the real worker seccomp filter (sandbox::InstallWorkerFilter, as
// strongroom-worker installs it) tries every signal syscall against the real broker, the
// spawner and a worker; each attempt must kill only the attacker (SIGSYS) and the broker must
// keep answering. The test process runs as root here, so nothing but the filter stops it.
// Item 14: kill -9 of the spawner must make the broker reap it and stop with status 1 (the
// shipped unit has Restart=on-failure), with sys/health never reporting the dead workers.
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "sandbox/worker_sandbox.h"
#include "tests/adversarial/adversarial.h"

namespace strongroom::testing {
namespace {

using ::testing::HasSubstr;

// The state letter of /proc/PID/stat ('R', 'S', 'Z', ...), or 0 when the process is gone.
char ProcState(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t rp = stat.rfind(')');
  if (rp == std::string::npos || rp + 2 >= stat.size()) return 0;
  return stat[rp + 2];
}

bool Dead(pid_t pid) {
  const char s = ProcState(pid);
  return s == 0 || s == 'Z' || s == 'X';
}

pid_t ParentOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t rp = stat.rfind(')');
  if (rp == std::string::npos) return -1;
  std::istringstream rest(stat.substr(rp + 2));
  char state = 0;
  pid_t ppid = -1;
  rest >> state >> ppid;
  return ppid;
}

// Waits (at most ~20 s) until `done` holds; false if it never did.
template <typename F>
bool Eventually(F done) {
  for (int i = 0; i < 400; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

// Runs `attack` in a forked child after installing the worker's seccomp filter; returns the
// child's wait status. The child exits 0 if the attack's syscall returned (was allowed), 99 if
// the filter could not be installed.
template <typename F>
int UnderWorkerFilter(F attack) {
  const pid_t child = fork();
  if (child == 0) {
    if (!sandbox::InstallWorkerFilter().ok()) _exit(99);
    attack();
    _exit(0);
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

std::string Describe(int status) {
  if (WIFEXITED(status)) return "exited " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "stopped";
}

class BoundaryTest : public AdversarialTest {};

// Item 12. Before the fix: "tgkill(broker, SIGSYS): exited 0" and the broker died of SIGSYS.
TEST_F(BoundaryTest, WorkerFilterCannotSignalBrokerSpawnerOrOtherWorkers) {
  const pid_t broker = d_.pid();
  const std::vector<pid_t> workers = d_.WorkerPids();
  ASSERT_EQ(workers.size(), 2u) << d_.Log();
  const pid_t spawner = ParentOf(workers[0]);
  ASSERT_GT(spawner, 0);
  ASSERT_NE(spawner, broker);
  for (const pid_t target : {broker, spawner, workers[1]}) {
    struct Attack {
      const char* name;
      long nr;
      long a0, a1, a2;
    };
    siginfo_t info{};  // for rt_sigqueueinfo: a queued SIGSYS "from" the kernel
    info.si_signo = SIGSYS;
    info.si_code = -1;  // SI_QUEUE
    const long info_addr = reinterpret_cast<long>(&info);
    const Attack attacks[] = {
        {"tgkill(target, target, SIGSYS)", SYS_tgkill, target, target, SIGSYS},
        {"tgkill(target, target, SIGKILL)", SYS_tgkill, target, target, SIGKILL},
        {"kill(target, SIGSYS)", SYS_kill, target, SIGSYS, 0},
        {"tkill(target, SIGSYS)", SYS_tkill, target, SIGSYS, 0},
        {"rt_sigqueueinfo(target, SIGSYS)", SYS_rt_sigqueueinfo, target, SIGSYS, info_addr},
        {"rt_tgsigqueueinfo(target, target, SIGSYS)", SYS_rt_tgsigqueueinfo, target, target,
         SIGSYS},
        {"pidfd_open(target)", SYS_pidfd_open, target, 0, 0},
    };
    for (const Attack& a : attacks) {
      const int status = UnderWorkerFilter([&] { (void)syscall(a.nr, a.a0, a.a1, a.a2, 0L); });
      EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS)
          << a.name << " against pid " << target << ": " << Describe(status);
    }
  }
  // Nobody was hurt: the broker, its spawner and both workers still run and answer.
  EXPECT_FALSE(Dead(broker)) << "the broker died: " << d_.Log();
  EXPECT_FALSE(Dead(spawner));
  for (pid_t w : workers) EXPECT_FALSE(Dead(w)) << "worker " << w;
  EXPECT_EQ(d_.Call("GET", "/v1/sys/health").status, 200) << d_.Log();
}

// Item 12: what the filter's SIGSYS handler needs still works — a worker signals itself.
TEST_F(BoundaryTest, WorkerFilterStillLetsAWorkerSignalItself) {
  const int status = UnderWorkerFilter([] {
    // Blocked, so that the signal stays pending and the exit code shows the call succeeded.
    sigset_t sys;
    sigemptyset(&sys);
    sigaddset(&sys, SIGSYS);
    if (sigprocmask(SIG_BLOCK, &sys, nullptr) != 0) _exit(98);
    if (syscall(SYS_tgkill, getpid(), gettid(), SIGSYS) != 0) _exit(97);
    _exit(42);
  });
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 42) << Describe(status);
}

// Item 14. Before the fix the broker kept running with a zombie spawner, and sys/health, served
// by the surviving worker, still counted the killed worker: "running": 2.
TEST_F(BoundaryTest, KilledSpawnerIsReapedAndStopsTheBroker) {
  const pid_t broker = d_.pid();
  const std::vector<pid_t> workers = d_.WorkerPids();
  ASSERT_EQ(workers.size(), 2u) << d_.Log();
  const pid_t spawner = ParentOf(workers[0]);
  ASSERT_GT(spawner, 0);
  ASSERT_NE(spawner, broker);
  auto before = d_.Call("GET", "/v1/sys/health");
  ASSERT_EQ(before.status, 200);
  ASSERT_EQ(before.Json()["strongroom_workers"]["running"], 2) << before.body;

  ASSERT_EQ(kill(spawner, SIGKILL), 0);
  ASSERT_EQ(kill(workers[0], SIGKILL), 0);
  ASSERT_TRUE(Eventually([&] { return Dead(spawner) && Dead(workers[0]); }));

  // As long as anything answers, sys/health never counts the killed worker, nor any worker
  // whose spawner is gone.
  int answers = 0;
  std::string first_false_answer;
  const bool broker_stopped = Eventually([&] {
    if (Dead(broker)) return true;
    auto h = d_.Call("GET", "/v1/sys/health");
    if (h.status == 200) {
      ++answers;
      const auto w = h.Json()["strongroom_workers"];
      if ((w["running"] != 0 || w["spawner_alive"] != false) && first_false_answer.empty()) {
        first_false_answer = h.body;
      }
    }
    return false;
  });
  EXPECT_EQ(first_false_answer, "") << "sys/health counted workers of a dead spawner";
  EXPECT_TRUE(broker_stopped) << "the broker stays up without its spawner (" << answers
                              << " health answers, state " << ProcState(broker)
                              << ", spawner state " << ProcState(spawner) << ")";
  const int status = d_.Stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1)
      << "systemd's Restart=on-failure needs a failure status: " << Describe(status);
  const std::string log = d_.Log();
  EXPECT_THAT(
      log, HasSubstr("the spawner (pid " + std::to_string(spawner) + ") was killed by signal 9"));
  EXPECT_THAT(log, HasSubstr("stopping with status 1"));
  // The orphaned worker goes with the broker: nothing keeps the listener for the restart.
  EXPECT_TRUE(Eventually([&] { return Dead(workers[1]); }))
      << "worker " << workers[1] << " outlived the broker";
}

}  // namespace
}  // namespace strongroom::testing
