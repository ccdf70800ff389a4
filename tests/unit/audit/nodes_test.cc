// Clusters (issue 23, item 4): every node writes its own chain under its own origin; one
// verification over all nodes' files groups them by origin, orders each group by seq, verifies
// each chain and reports per node (audit/node_groups.h).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "audit/node_groups.h"
#include "audit/verifier.h"
#include "tests/unit/audit/test_log.h"

namespace strongroom::audit {
namespace {

namespace fs = std::filesystem;
using testing::Gzip;
using testing::Join;
using testing::LogBuilder;
using testing::MustKey;
using testing::MustPublic;

constexpr char kNode1[] = "strongroom-audit/file/node1";
constexpr char kNode2[] = "strongroom-audit/file/node2";
constexpr char kNode3[] = "strongroom-audit/file/node3";

class NodesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    keys_.push_back(MustPublic(key_));
    dir_ = fs::temp_directory_path() /
           ("audit_nodes_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    // node1: two rotated files ended by checkpoints and a live file with no checkpoint yet.
    for (int i = 0; i < 2; ++i) {
      n1_.AddRecords(5);
      n1_.AddCheckpoint();
    }
    n1_.AddRecords(3);
    a1_ = Write("n1-audit.log-1.gz", Gzip(Join(n1_.lines(), 0, 6)));
    a2_ = Write("n1-audit.log-2", Join(n1_.lines(), 6, 12));
    a3_ = Write("n1-audit.log", Join(n1_.lines(), 12));
    // node2: one rotated file and a live file with a checkpoint in it.
    n2_.AddRecords(4);
    n2_.AddCheckpoint();
    n2_.AddRecords(2);
    n2_.AddCheckpoint();
    n2_.AddRecord();
    b1_ = Write("n2-audit.log-1", Join(n2_.lines(), 0, 5));
    b2_ = Write("n2-audit.log", Join(n2_.lines(), 5));
    // node3: a single file.
    n3_.AddRecords(2);
    n3_.AddCheckpoint();
    c1_ = Write("n3-audit.log", Join(n3_.lines()));
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& contents) {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << contents;
    return p.string();
  }

  VerifyOptions Options() {
    VerifyOptions o;
    o.keys = keys_;
    return o;
  }

  PrivateKey key_ = MustKey(KeyType::kEcdsaP256);
  std::vector<PublicKey> keys_;
  LogBuilder n1_{&key_, "file", "node1", "a"};
  LogBuilder n2_{&key_, "file", "node2", "b"};
  LogBuilder n3_{&key_, "file", "node3", "c"};
  fs::path dir_;
  std::string a1_, a2_, a3_, b1_, b2_, c1_;
};

TEST_F(NodesTest, FilesAreGroupedByOriginAndOrderedBySeq) {
  // Any order in, e.g. a shell glob that lists the live file first.
  const std::vector<std::string> files = {b2_, a3_, c1_, a2_, b1_, a1_};
  FileGroups g = GroupFilesByOrigin(files);
  ASSERT_TRUE(g.several_origins());
  ASSERT_EQ(g.nodes.size(), 3u);
  EXPECT_TRUE(g.unattributed.empty());
  EXPECT_EQ(g.nodes[0].origin, kNode1);
  EXPECT_EQ(g.nodes[0].files, (std::vector<std::string>{a1_, a2_, a3_}));  // a3: no checkpoint
  EXPECT_EQ(g.nodes[1].origin, kNode2);
  EXPECT_EQ(g.nodes[1].files, (std::vector<std::string>{b1_, b2_}));
  EXPECT_EQ(g.nodes[2].origin, kNode3);
  EXPECT_EQ(g.nodes[2].files, (std::vector<std::string>{c1_}));

  Result<MultiReport> m = VerifyNodes(g, Options(), {}, {});
  ASSERT_TRUE(m.ok()) << m.message();
  ASSERT_TRUE(m->ok());
  ASSERT_EQ(m->nodes.size(), 3u);
  EXPECT_EQ(m->nodes[0].report.state, n1_.state());
  EXPECT_EQ(m->nodes[1].report.state, n2_.state());
  EXPECT_EQ(m->nodes[2].report.state, n3_.state());
  EXPECT_EQ(m->nodes[0].report.unsigned_lines, 3u);
}

TEST_F(NodesTest, OneOriginKeepsTheOrderGiven) {
  // One node's files: nothing is reordered, so files out of order are a break, as before.
  FileGroups g = GroupFilesByOrigin(std::vector<std::string>{a2_, a1_, a3_});
  EXPECT_FALSE(g.several_origins());
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].files, (std::vector<std::string>{a2_, a1_, a3_}));
  // Files with no checkpoint at all are one log too.
  FileGroups none = GroupFilesByOrigin(std::vector<std::string>{a3_});
  EXPECT_FALSE(none.several_origins());
  EXPECT_EQ(none.nodes[0].origin, "");
}

TEST_F(NodesTest, EachNodeIsVerifiedOnItsOwn) {
  std::vector<std::string> lines = n2_.lines();
  lines[2].replace(lines[2].find("agent/7"), 7, "agent/9");
  const std::string bad = Write("n2-bad", Join(lines, 0, 5));
  FileGroups g = GroupFilesByOrigin(std::vector<std::string>{a1_, a2_, a3_, bad, b2_, c1_});
  Result<MultiReport> m = VerifyNodes(g, Options(), {}, {});
  ASSERT_TRUE(m.ok()) << m.message();
  EXPECT_FALSE(m->ok());
  EXPECT_TRUE(m->nodes[0].report.ok());
  ASSERT_FALSE(m->nodes[1].report.ok());
  EXPECT_EQ(m->nodes[1].report.failure->file, bad);
  EXPECT_EQ(m->nodes[1].report.failure->line, 3u);
  EXPECT_TRUE(m->nodes[2].report.ok());
  // A node's missing file is a break in that node's chain.
  g = GroupFilesByOrigin(std::vector<std::string>{a1_, a3_, b1_, b2_});
  m = VerifyNodes(g, Options(), {}, {});
  ASSERT_TRUE(m.ok());
  // a3 (no checkpoint) continues a2, which is missing: no node claims it.
  ASSERT_EQ(m->unattributed.size(), 1u);
  EXPECT_EQ(m->unattributed[0].file, a3_);
  EXPECT_NE(m->unattributed[0].reason.find("cannot tell which node"), std::string::npos);
  EXPECT_FALSE(m->ok());
  // Lines 7 and 8 of node1 missing (the file after a1 starts at seq 9).
  const std::string late = Write("n1-late", Join(n1_.lines(), 8));
  g = GroupFilesByOrigin(std::vector<std::string>{late, b1_, a1_, b2_});
  m = VerifyNodes(g, Options(), {}, {});
  ASSERT_TRUE(m.ok());
  ASSERT_FALSE(m->nodes[0].report.ok());
  EXPECT_EQ(m->nodes[0].report.failure->file, late);
  EXPECT_NE(m->nodes[0].report.failure->reason.find("found seq 9 where seq 7 belongs"),
            std::string::npos)
      << m->nodes[0].report.failure->ToString();
  EXPECT_TRUE(m->nodes[1].report.ok());
}

TEST_F(NodesTest, StartingAndTrustedCheckpointsPerNode) {
  // node1's first file archived: it starts from the checkpoint that ends it; node2 from seq 1.
  Result<StartPoint> s1 = OpenStartPoint(n1_.lines()[5], keys_, "n1-start.line");
  ASSERT_TRUE(s1.ok()) << s1.message();
  std::vector<StartPoint> starts;
  starts.push_back(*s1);
  Result<Checkpoint> t2 = OpenCheckpoint(n2_.last_note(), keys_);
  ASSERT_TRUE(t2.ok());
  FileGroups g = GroupFilesByOrigin(std::vector<std::string>{a2_, a3_, b1_, b2_});
  Result<MultiReport> m = VerifyNodes(g, Options(), starts, std::vector<Checkpoint>{*t2});
  ASSERT_TRUE(m.ok()) << m.message();
  ASSERT_TRUE(m->ok());
  EXPECT_EQ(m->nodes[0].report.first_seq, 7u);
  EXPECT_TRUE(m->nodes[1].report.trusted_matched);
  EXPECT_FALSE(m->nodes[0].report.trusted_matched);
  // A checkpoint from a node whose files are not given, or two for one node: refused.
  Result<StartPoint> s3 = OpenStartPoint(n3_.lines().back(), keys_, "n3-start.line");
  ASSERT_TRUE(s3.ok());
  starts.push_back(*s3);
  Result<MultiReport> stray = VerifyNodes(g, Options(), starts, {});
  ASSERT_FALSE(stray.ok());
  EXPECT_NE(stray.message().find(std::string("it is from ") + kNode3), std::string::npos)
      << stray.message();
  starts.back() = *s1;
  EXPECT_FALSE(VerifyNodes(g, Options(), starts, {}).ok());
}

}  // namespace
}  // namespace strongroom::audit
