// A misbehaving worker is ended and the others keep serving. The real strongroomd runs from a
// temporary folder where its "strongroom-worker" is tests/support/fake_worker.cc: worker 0 breaks
// the worker protocol in one way per test case, every other worker is the real one. What
// ipc/strongroom_ipc.proto promises: a frame over its cap, a frame that does not parse, a message
// in the wrong state or in the wrong direction ends that worker (the broker kills and restarts
// it), never the broker.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <ostream>
#include <string>
#include <system_error>

#include "nlohmann/json.hpp"
#include "tests/support/daemon.h"

namespace strongroom::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

struct BadWorker {
  const char* mode;    // fake-worker-mode (tests/support/fake_worker.cc)
  const char* logged;  // what the broker logs, after "worker 0: ", when it ends worker 0
  int times;           // how often worker 0 is ended (and restarted) while the test runs
};

void PrintTo(const BadWorker& bad, std::ostream* os) { *os << bad.mode; }

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t count = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

// The pid in the supervisor's "worker N started (pid P)" line.
pid_t StartedPid(const std::string& log, int index) {
  const std::string needle = "worker " + std::to_string(index) + " started (pid ";
  const size_t at = log.find(needle);
  return at == std::string::npos ? -1 : std::atoi(log.c_str() + at + needle.size());
}

// strongroomd looks for its worker next to /proc/self/exe: a hard link or a copy, not a symlink.
std::error_code LinkOrCopy(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::create_hard_link(from, to, ec);
  if (ec) {
    ec.clear();
    fs::copy_file(from, to, ec);
  }
  return ec;
}

class MisbehavingWorkerTest : public ::testing::TestWithParam<BadWorker> {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/strongroom-fakebin-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    bin_dir_ = tmpl;
    std::error_code ec = LinkOrCopy(BuildDir() + "/strongroomd", bin_dir_ + "/strongroomd");
    ASSERT_FALSE(ec) << ec.message();
    ec = LinkOrCopy(STRONGROOM_FAKE_WORKER, bin_dir_ + "/strongroom-worker");
    ASSERT_FALSE(ec) << ec.message();
    std::ofstream(bin_dir_ + "/real-worker-path") << BuildDir() << "/strongroom-worker\n";
    std::ofstream(bin_dir_ + "/fake-worker-mode") << GetParam().mode << "\n";
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
    fs::remove_all(bin_dir_, ignored);
  }

  std::string bin_dir_;
  std::unique_ptr<Daemon> d_;
};

TEST_P(MisbehavingWorkerTest, IsEndedAndTheOthersKeepServing) {
  const BadWorker& bad = GetParam();
  const pid_t broker = d_->pid();
  const pid_t real_worker = StartedPid(d_->Log(), 1);
  ASSERT_GT(real_worker, 0) << d_->Log();
  d_->Init(1, 1);
  ASSERT_FALSE(d_->root_token().empty()) << d_->Log();
  ASSERT_EQ(d_->Root("POST", "/v1/sys/mounts/secret", {{"type", "kv-v2"}}).status, 204);

  // Use the API until the broker has ended worker 0 `times` times: each time the supervisor
  // restarts it (with back-off) and the new worker 0 misbehaves again.
  const std::string ended = "worker 0: " + std::string(bad.logged);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(180);
  int round = 0;
  do {
    ASSERT_LT(std::chrono::steady_clock::now(), give_up)
        << "expected \"" << ended << "\" " << bad.times << " times\n"
        << d_->Log();
    ++round;
    ASSERT_EQ(d_->Call("GET", "/v1/sys/health").status, 200) << "round " << round << d_->Log();
    const std::string value = "round-" + std::to_string(round);
    auto w = d_->Root("POST", "/v1/secret/data/probe", {{"data", {{"v", value}}}});
    ASSERT_EQ(w.status, 200) << w.body;
    ASSERT_EQ(d_->Root("GET", "/v1/secret/data/probe").Json()["data"]["data"]["v"], value);
  } while (Count(d_->Log(), ended) < static_cast<size_t>(bad.times));
  // The spawner reaps and restarts the ended worker a moment after the broker ends it.
  EXPECT_TRUE(d_->WaitForLog("restarting in")) << d_->Log();
  const std::string log = d_->Log();
  EXPECT_THAT(log, HasSubstr(std::string("misbehaving: ") + bad.mode));  // the fake was in use
  EXPECT_THAT(log, HasSubstr("worker 0 (pid "));                         // reaped, then ...
  EXPECT_THAT(log, HasSubstr("restarting in"));                          // ... restarted
  // The real worker was never disturbed, and the broker is alive and still answers.
  EXPECT_THAT(log, Not(HasSubstr("worker 1 (pid ")));
  EXPECT_THAT(d_->WorkerPids(), Contains(real_worker));
  EXPECT_EQ(kill(broker, 0), 0);
  EXPECT_EQ(d_->Call("GET", "/v1/sys/health").status, 200);
  EXPECT_EQ(d_->Root("GET", "/v1/secret/data/probe").Json()["data"]["data"]["v"],
            "round-" + std::to_string(round));
  // And it shuts down cleanly.
  const int status = d_->Stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << "\n" << d_->Log();
}

// A worker that makes a syscall outside its seccomp policy dies of SIGSYS; the death is logged
// with the syscall number, it is restarted with back-off, the crash loop shows in sys/health, and
// the other worker keeps serving.
class SeccompKilledWorkerTest : public MisbehavingWorkerTest {};

TEST_P(SeccompKilledWorkerTest, IsLoggedRestartedAndVisibleInHealth) {
  const pid_t real_worker = StartedPid(d_->Log(), 1);
  ASSERT_GT(real_worker, 0) << d_->Log();
  d_->Init(1, 1);
  ASSERT_EQ(d_->Root("POST", "/v1/sys/mounts/secret", {{"type", "kv-v2"}}).status, 204);
  // Four deaths in a row, each soon after its start, are a crash loop.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  nlohmann::json health;
  int round = 0;
  do {
    ASSERT_LT(std::chrono::steady_clock::now(), give_up) << health.dump() << "\n" << d_->Log();
    ++round;
    auto h = d_->Call("GET", "/v1/sys/health");
    ASSERT_EQ(h.status, 200) << d_->Log();
    health = h.Json();
    const std::string value = "round-" + std::to_string(round);
    ASSERT_EQ(d_->Root("POST", "/v1/secret/data/probe", {{"data", {{"v", value}}}}).status, 200);
    ASSERT_EQ(d_->Root("GET", "/v1/secret/data/probe").Json()["data"]["data"]["v"], value);
  } while (health["strongroom_workers"]["crash_loop"] != true);
  EXPECT_GE(health["strongroom_workers"]["seccomp_kills"].get<int>(), 4) << health.dump();
  EXPECT_GE(health["strongroom_workers"]["restarts"].get<int>(), 3) << health.dump();
  EXPECT_EQ(health["strongroom_workers"]["configured"], 2) << health.dump();
  const std::string log = d_->Log();
  // The worker's own last words name the syscall (openat is 257 on x86-64) ...
  EXPECT_THAT(log, HasSubstr("seccomp: syscall 257 is outside the worker's policy"));
  // ... and the spawner names the filter and restarts it.
  EXPECT_THAT(log, HasSubstr("killed by signal 31"));
  EXPECT_THAT(log, HasSubstr("the seccomp filter stopped a syscall outside the worker's policy"));
  EXPECT_THAT(log, HasSubstr("restarting in"));
  EXPECT_THAT(log, Not(HasSubstr("worker 1 (pid ")));
  EXPECT_THAT(d_->WorkerPids(), Contains(real_worker));
  const int status = d_->Stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << "\n" << d_->Log();
}

INSTANTIATE_TEST_SUITE_P(Sandbox, SeccompKilledWorkerTest,
                         ::testing::Values(BadWorker{"forbidden-syscall", "", 0}),
                         [](const ::testing::TestParamInfo<BadWorker>&) {
                           return std::string("forbidden_syscall");
                         });

INSTANTIATE_TEST_SUITE_P(
    BadMessages, MisbehavingWorkerTest,
    ::testing::Values(
        BadWorker{"garbage", "protocol violation (frame does not parse)", 3},
        BadWorker{"oversized-length", "protocol violation (frame of 4294967295 bytes over cap", 3},
        BadWorker{"hello-over-cap", "protocol violation (frame over its message's cap)", 3},
        BadWorker{"wrong-version", "protocol violation (wrong protocol version)", 3},
        BadWorker{"request-before-hello", "protocol violation (message out of order)", 3},
        BadWorker{"second-hello", "protocol violation (message out of order)", 3},
        BadWorker{"broker-message", "protocol violation (message not allowed from a worker)", 3},
        BadWorker{"truncated", "protocol violation (peer closed mid-frame)", 3},
        // Valid requests whose answers the worker never reads: once the socket buffer is full the
        // broker's writes time out; that ends the worker like a protocol violation.
        BadWorker{"flood-unread", "cannot send it a response", 1}),
    [](const ::testing::TestParamInfo<BadWorker>& param) {
      std::string name = param.param.mode;
      for (char& c : name) {
        if (c == '-') c = '_';
      }
      return name;
    });

}  // namespace
}  // namespace strongroom::testing
