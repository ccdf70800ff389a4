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
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
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

class BoundaryTest : public AdversarialTest {
 protected:
  // The broker, its two workers and the spawner between them (the workers' parent).
  void FindProcesses() {
    broker_ = d_.pid();
    workers_ = d_.WorkerPids();
    ASSERT_EQ(workers_.size(), 2u) << d_.Log();
    spawner_ = ParentOf(workers_[0]);
    ASSERT_GT(spawner_, 0);
    ASSERT_NE(spawner_, broker_);
  }
  pid_t broker_ = -1, spawner_ = -1;
  std::vector<pid_t> workers_;
};

// Item 12. Before the fix: "tgkill(broker, SIGSYS): exited 0" and the broker died of SIGSYS.
TEST_F(BoundaryTest, WorkerFilterCannotSignalBrokerSpawnerOrOtherWorkers) {
  ASSERT_NO_FATAL_FAILURE(FindProcesses());
  const pid_t broker = broker_, spawner = spawner_;
  const std::vector<pid_t> workers = workers_;
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
  ASSERT_NO_FATAL_FAILURE(FindProcesses());
  const pid_t broker = broker_, spawner = spawner_;
  const std::vector<pid_t> workers = workers_;
  // The spawner reports its workers a moment after starting them.
  HttpResponse before;
  ASSERT_TRUE(Eventually([&] {
    before = d_.Call("GET", "/v1/sys/health");
    return before.status == 200 && before.Json()["strongroom_workers"]["running"] == 2;
  })) << before.body;

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

// The Uid and capability lines of /proc/PID/status ("Uid:\t1\t1\t1\t1", "CapEff:\t00..."), by
// name.
std::string StatusLine(pid_t pid, const std::string& name) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + ":", 0) == 0) {
      std::string value = line.substr(name.size() + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      return value;
    }
  }
  return "";
}

// Item 12, the shipped systemd unit: strongroomd runs as a non-root service user with CAP_SETUID
// and CAP_SETGID as ambient capabilities (and nothing else in its bounding set). The workers
// must then run under a uid of their own (no signal or ptrace of the broker's uid reaches the
// broker from them), with no capability left, and the broker must drop the capabilities too.
// Here the service user is "daemon" (uid 1) and worker_user falls back to "nobody".
// Before the fix: the workers ran as uid 1, like the broker, and the broker kept CapEff
// 00000000000000c0.
class BoundaryUidTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bin_dir_ = d_.dir() + "/bin";
    ASSERT_EQ(mkdir(bin_dir_.c_str(), 0755), 0);
    const std::string wrapper = bin_dir_ + "/strongroomd";
    std::ofstream w(wrapper);
    w << "#!/bin/sh\n"
         "# strongroomd as systemd/strongroom.service starts it (User=, AmbientCapabilities=,\n"
         "# CapabilityBoundingSet=, NoNewPrivileges=).\n"
         "set -e\n"
         "chown -R daemon:daemon \"$(dirname \"${1#-config=}\")\" \"$(dirname "
         "\"$SOFTHSM2_CONF\")\"\n"
         "exec setpriv --reuid=daemon --regid=daemon --clear-groups "
         "--bounding-set=-all,+setuid,+setgid --inh-caps=-all,+setuid,+setgid "
         "--ambient-caps=+setuid,+setgid --no-new-privs "
      << BuildDir() << "/strongroomd \"$@\"\n";
    w.close();
    ASSERT_EQ(chmod(wrapper.c_str(), 0755), 0);
    d_.options().bin_dir = bin_dir_;
  }
  Daemon d_;
  std::string bin_dir_;
};

TEST_F(BoundaryUidTest, WorkersOfANonRootBrokerWithSetIdCapabilitiesRunUnderAnotherUid) {
  if (getuid() != 0 || getpwnam("daemon") == nullptr) {
    FAIL() << "needs root and the user \"daemon\" (to start the daemon as that user with the "
              "unit's capabilities); the suite runs as root in CI";
  }
  ASSERT_TRUE(d_.Start()) << d_.Log();
  const pid_t broker = d_.pid();
  const std::vector<pid_t> workers = d_.WorkerPids();
  ASSERT_EQ(workers.size(), 2u) << d_.Log();
  const pid_t spawner = ParentOf(workers[0]);
  const std::string none = "0000000000000000";
  EXPECT_THAT(StatusLine(broker, "Uid"), ::testing::StartsWith("1\t"));
  EXPECT_EQ(StatusLine(broker, "CapEff"), none) << "the broker kept its capabilities";
  EXPECT_EQ(StatusLine(broker, "CapPrm"), none);
  EXPECT_EQ(StatusLine(broker, "CapAmb"), none);
  EXPECT_THAT(StatusLine(spawner, "Uid"), ::testing::StartsWith("1\t"));
  for (pid_t w : workers) {
    const std::string uid = StatusLine(w, "Uid");
    EXPECT_FALSE(uid.empty());
    EXPECT_THAT(uid, ::testing::Not(::testing::StartsWith("1\t")))
        << "worker " << w << " runs under the broker's uid";
    EXPECT_THAT(uid, ::testing::Not(::testing::StartsWith("0\t")));
    EXPECT_EQ(StatusLine(w, "CapEff"), none) << "worker " << w;
    EXPECT_EQ(StatusLine(w, "CapPrm"), none) << "worker " << w;
    EXPECT_EQ(StatusLine(w, "CapAmb"), none) << "worker " << w;
  }
  EXPECT_THAT(d_.Log(), HasSubstr("workers run as uid"));
  // And the appliance works: initialise it and use it.
  d_.Init();
  EXPECT_EQ(d_.Root("POST", "/v1/sys/mounts/secret", {{"type", "kv"}}).status, 204) << d_.Log();
  EXPECT_EQ(d_.Root("PUT", "/v1/secret/x", {{"v", "1"}}).status, 204) << d_.Log();
  // A worker that dies is restarted under the worker uid as well.
  ASSERT_EQ(kill(workers[0], SIGKILL), 0);
  std::vector<pid_t> now;
  ASSERT_TRUE(Eventually([&] {
    now = d_.WorkerPids();
    const std::string log = d_.Log();
    size_t serving = 0;
    for (size_t at = 0; (at = log.find("]: serving", at)) != std::string::npos; ++at) ++serving;
    // The replacement has set up its sandbox once it serves (the third "serving" line).
    return serving >= 3 && now.size() == 2 &&
           std::find(now.begin(), now.end(), workers[0]) == now.end();
  })) << d_.Log();
  for (pid_t w : now) {
    EXPECT_THAT(StatusLine(w, "Uid"), ::testing::Not(::testing::StartsWith("1\t")));
    EXPECT_EQ(StatusLine(w, "CapEff"), none) << "worker " << w;
  }
  // The spawner, without CAP_KILL, still stops workers under another uid: a clean, prompt stop
  // (before Supervisor::Signal, kill() answered EPERM and the spawner waited for them forever).
  const int status = d_.Stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << Describe(status) << d_.Log();
  EXPECT_THAT(d_.Log(), ::testing::Not(HasSubstr("cannot send signal")));
}

// Item 13: the client address is whatever the worker says (docs/threat-model.md: CIDR bindings
// are worker-asserted). What the broker can enforce: it accepts only an IP literal, so a
// compromised worker cannot put a line break, and with it a forged line, into the broker's log
// (approle logs the address of a refused login) or anything but an address into the audit.
// Worker 0 is tests/support/fake_worker.cc in mode "forged-remote-address".
// Before the fix: the login was processed ("answered invalid role or secret ID;") and the log
// held the line "1970-01-01T00:00:00Z [error] broker[1]: FORGED" (the address is short enough
// for the broker's 64-byte cap).
class ForgedRemoteAddressTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/strongroom-fakebin-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    bin_dir_ = tmpl;
    for (const auto& [from, to] :
         {std::pair<std::string, std::string>{BuildDir() + "/strongroomd", "strongroomd"},
          {STRONGROOM_FAKE_WORKER, "strongroom-worker"}}) {
      std::error_code ec;
      std::filesystem::copy_file(from, bin_dir_ + "/" + to, ec);
      ASSERT_FALSE(ec) << from << ": " << ec.message();
      std::filesystem::permissions(bin_dir_ + "/" + to, std::filesystem::perms::owner_all |
                                                            std::filesystem::perms::group_exec |
                                                            std::filesystem::perms::others_exec);
    }
    std::ofstream(bin_dir_ + "/real-worker-path") << BuildDir() << "/strongroom-worker\n";
    std::ofstream(bin_dir_ + "/fake-worker-mode") << "forged-remote-address\n";
    Daemon::Options options;
    options.workers = 2;
    options.bin_dir = bin_dir_;
    options.serving_workers = 1;  // worker 0 never serves
    d_ = std::make_unique<Daemon>(options);
    ASSERT_TRUE(d_->Start()) << d_->Log();
  }
  void TearDown() override {
    d_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(bin_dir_, ignored);
  }
  std::string bin_dir_;
  std::unique_ptr<Daemon> d_;
};

TEST_F(ForgedRemoteAddressTest, IsRefusedAndNeverReachesALogLine) {
  d_->Init(1, 1);
  ASSERT_EQ(d_->Root("POST", "/v1/sys/auth/approle", {{"type", "approle"}}).status, 204);
  ASSERT_TRUE(d_->WaitForLog("forged-remote-address: answered", 60000)) << d_->Log();
  const std::string log = d_->Log();
  EXPECT_THAT(log, HasSubstr("forged-remote-address: answered bad remote address"));
  EXPECT_THAT(log, ::testing::Not(HasSubstr("\n1970-01-01T00:00:00Z [error] broker[1]: FORGED")));
  // Real clients, whose addresses the real worker reports, are unaffected.
  EXPECT_EQ(d_->Call("GET", "/v1/sys/health").status, 200);
}

}  // namespace
}  // namespace strongroom::testing
