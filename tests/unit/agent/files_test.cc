// The agent's file operations: atomic replace with exact modes, bounded reads, commands.
#include "cli/agent/files.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace strongroom::agent {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class FilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/agent-files-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_F(FilesTest, AtomicWriteSetsTheExactModeWhateverTheUmask) {
  const mode_t old = umask(0077);
  const std::string p = dir_ + "/a/b/out";
  ASSERT_TRUE(AtomicWrite(p, "one", 0644, /*create_dirs=*/true).ok());
  umask(old);
  struct stat st;
  ASSERT_EQ(stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  EXPECT_EQ(*ReadFileBounded(p, 100), "one");
  const ino_t first = st.st_ino;
  ASSERT_TRUE(AtomicWrite(p, "two", 0600, false).ok());
  ASSERT_EQ(stat(p.c_str(), &st), 0);
  EXPECT_NE(st.st_ino, first);  // a new file renamed over the old one
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(ExistingMode(p), 0600u);
  // No temporary file left behind.
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir_ + "/a/b")) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

TEST_F(FilesTest, AtomicWriteTakesTheLongestFileName) {
  const std::string p = dir_ + "/" + std::string(255, 'n');  // NAME_MAX
  ASSERT_TRUE(AtomicWrite(p, "x", 0644, false).ok());
  EXPECT_EQ(*ReadFileBounded(p, 10), "x");
}

TEST_F(FilesTest, AtomicWriteWithoutCreateDirsFailsOnAMissingDirectory) {
  absl::Status s = AtomicWrite(dir_ + "/missing/out", "x", 0644, false);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("cannot create"));
}

TEST_F(FilesTest, ReadFileBoundedRefusesLargeFilesAndDirectories) {
  const std::string p = dir_ + "/big";
  std::ofstream(p) << std::string(1000, 'x');
  EXPECT_EQ(ReadFileBounded(p, 1000)->size(), 1000u);
  auto big = ReadFileBounded(p, 999);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReadFileBounded(dir_, 10).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReadFileBounded(dir_ + "/none", 10).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(FilesTest, RunCommandReportsStatusAndTimesOut) {
  EXPECT_TRUE(RunCommand("touch " + dir_ + "/ran", absl::Seconds(10)).ok());
  EXPECT_TRUE(fs::exists(dir_ + "/ran"));
  EXPECT_THAT(RunCommand("exit 3", absl::Seconds(10)).message(), HasSubstr("status 3"));
  absl::Status slow = RunCommand("sleep 30", absl::Milliseconds(200));
  EXPECT_EQ(slow.code(), absl::StatusCode::kDeadlineExceeded);
}

}  // namespace
}  // namespace strongroom::agent
