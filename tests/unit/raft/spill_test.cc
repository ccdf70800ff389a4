// File-backed buffers for libraft's large allocations (appliance/raft/spill.h): they hold what
// is written, are released, show in the statistics, fall back to memory when no file can be
// made, and libraft's own raft_malloc/raft_realloc/raft_free go through them once installed.
#include "appliance/raft/spill.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "appliance/raft/libraft.h"
#include "tests/support/cluster_support.h"

namespace strongroom::raft {
namespace {

class SpillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::NewTempDir("sr-spill");
    ASSERT_FALSE(dir_.empty());
    SetSpillDirectory(dir_);
  }
  void TearDown() override {
    SetSpillDirectory("");
    std::filesystem::remove_all(dir_);
  }
  std::string dir_;
};

TEST_F(SpillTest, ABufferHoldsWhatIsWrittenAndIsReleased) {
  const SpillStats before = GetSpillStats();
  const size_t n = 8u << 20;
  auto* p = static_cast<unsigned char*>(SpillAlloc(n));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(SpillSize(p), n);
  EXPECT_EQ(p[0], 0);  // zeroed
  EXPECT_EQ(p[n - 1], 0);
  for (size_t i = 0; i < n; i += 4096) p[i] = static_cast<unsigned char>(i >> 12);
  for (size_t i = 0; i < n; i += 4096) ASSERT_EQ(p[i], static_cast<unsigned char>(i >> 12));
  const SpillStats during = GetSpillStats();
  EXPECT_EQ(during.blocks_now, before.blocks_now + 1);
  EXPECT_EQ(during.bytes_now, before.bytes_now + n);
  // The file is unlinked: nothing is left in the directory to clean up or to read.
  EXPECT_TRUE(std::filesystem::is_empty(dir_));
  EXPECT_TRUE(SpillFree(p));
  EXPECT_EQ(GetSpillStats().blocks_now, before.blocks_now);
  int on_heap = 0;
  EXPECT_FALSE(SpillFree(&on_heap));  // not a spilled block: left alone
  EXPECT_EQ(SpillSize(&on_heap), 0u);
}

TEST_F(SpillTest, WithoutAUsableDirectoryThereIsNoBuffer) {
  SetSpillDirectory(dir_ + "/missing");
  EXPECT_EQ(SpillAlloc(1u << 20), nullptr);
  SetSpillDirectory("");
  EXPECT_EQ(SpillAlloc(1u << 20), nullptr);
}

TEST_F(SpillTest, LibraftsLargeAllocationsAreFileBackedAndReallocKeepsTheirBytes) {
  InstallRaftHeap();
  const size_t big = SpillThreshold();
  void* small = raft_malloc(100);
  ASSERT_NE(small, nullptr);
  EXPECT_EQ(SpillSize(small), 0u);
  std::memset(small, 'x', 100);
  // Growing a heap block past the threshold moves it into a file-backed buffer, bytes kept.
  auto* grown = static_cast<char*>(raft_realloc(small, big));
  ASSERT_NE(grown, nullptr);
  EXPECT_EQ(SpillSize(grown), big);
  EXPECT_EQ(std::string(grown, 100), std::string(100, 'x'));
  // Shrinking it back below the threshold moves it to the heap, bytes kept.
  auto* shrunk = static_cast<char*>(raft_realloc(grown, 50));
  ASSERT_NE(shrunk, nullptr);
  EXPECT_EQ(SpillSize(shrunk), 0u);
  EXPECT_EQ(std::string(shrunk, 50), std::string(50, 'x'));
  raft_free(shrunk);
  void* direct = raft_malloc(big);
  EXPECT_EQ(SpillSize(direct), big);
  raft_free(direct);
  void* zeroed = raft_calloc(big / 8, 8);
  EXPECT_EQ(SpillSize(zeroed), big);
  EXPECT_EQ(static_cast<char*>(zeroed)[big - 1], 0);
  raft_free(zeroed);
  void* aligned = raft_aligned_alloc(4096, big);
  EXPECT_EQ(SpillSize(aligned), big);
  raft_aligned_free(4096, aligned);
  EXPECT_TRUE(std::filesystem::is_empty(dir_));
}

}  // namespace
}  // namespace strongroom::raft
