// The command runner (cli/agent/command_runner.h): it runs the commands it was started with,
// by index only, with default signal dispositions, and ends on anything else.
#include "cli/agent/command_runner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace strongroom::agent {
namespace {

using ::testing::HasSubstr;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class CommandRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/agent-runner-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(CommandRunnerTest, RunsItsCommandsByIndexWithDefaultSignals) {
  auto runner = CommandRunner::Start({
      {"grep -E '^(SigIgn|SigBlk):' /proc/$$/status > " + dir_ + "/signals", absl::Seconds(10)},
      {"exit 7", absl::Seconds(10)},
      {"sleep 30", absl::Milliseconds(200)},
  });
  ASSERT_TRUE(runner.ok()) << runner.status();
  ASSERT_TRUE(runner->Run(0).ok());
  // Nothing ignored, nothing blocked: the runner's own SIG_IGN for SIGTERM is not passed on.
  EXPECT_EQ(Slurp(dir_ + "/signals"), "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
  absl::Status failed = runner->Run(1);
  EXPECT_THAT(failed.message(), HasSubstr("status 7"));
  EXPECT_EQ(runner->Run(2).code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(runner->Run(0).ok());  // still serving after failures
}

TEST_F(CommandRunnerTest, AnIndexItWasNotGivenEndsTheRunner) {
  auto runner = CommandRunner::Start({{"true", absl::Seconds(10)}});
  ASSERT_TRUE(runner.ok());
  EXPECT_EQ(runner->Run(1).code(), absl::StatusCode::kUnavailable);
  // Gone for good: a subverted agent gets no second try.
  EXPECT_EQ(runner->Run(0).code(), absl::StatusCode::kUnavailable);
}

TEST_F(CommandRunnerTest, RefusesEmptyAndOversizedCommands) {
  EXPECT_FALSE(CommandRunner::Start({{"", absl::Seconds(1)}}).ok());
  EXPECT_FALSE(
      CommandRunner::Start({{std::string(kMaxCommandBytes + 1, 'x'), absl::Seconds(1)}}).ok());
}

}  // namespace
}  // namespace strongroom::agent
