// Retention (issue 23, item 3): rotated files compressed by logrotate are read as they are, and
// verification can start at any rotated file, given the signed checkpoint line that ends the
// file before it (StartPoint, --from-checkpoint), so older files can be archived elsewhere.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "audit/chain.h"
#include "audit/merkle.h"
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
using testing::Rechain;

std::string WithoutNewline(const std::string& line) { return line.substr(0, line.size() - 1); }

#define EXPECT_BREAK(report, want_file, want_line, reason_part)                                   \
  do {                                                                                            \
    const Report& r_ = (report);                                                                  \
    ASSERT_FALSE(r_.ok()) << "not detected";                                                      \
    EXPECT_EQ(r_.failure->file, (want_file)) << r_.failure->ToString();                           \
    EXPECT_EQ(r_.failure->line, static_cast<uint64_t>(want_line)) << r_.failure->ToString();      \
    EXPECT_NE(r_.failure->reason.find(reason_part), std::string::npos) << r_.failure->ToString(); \
  } while (0)

class RetentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    keys_.push_back(MustPublic(key_));
    // Three "days", each ended by the checkpoint the daemon writes at SIGHUP, and a live file:
    //   lines 1-10 (seq 1-10): 9 records, checkpoint (size 9)      -> audit.log-1
    //   lines 11-20:           9 records, checkpoint (size 18)     -> audit.log-2
    //   lines 21-30:           9 records, checkpoint (size 27)     -> audit.log-3
    //   lines 31-35:           4 records, checkpoint (31), 2 more records -> audit.log (live)
    for (int i = 0; i < 3; ++i) {
      b_.AddRecords(9);
      b_.AddCheckpoint();
    }
    b_.AddRecords(4);
    b_.AddCheckpoint();
    b_.AddRecords(2);
    lines_ = b_.lines();
    ASSERT_EQ(lines_.size(), 37u);
    dir_ = fs::temp_directory_path() /
           ("audit_retention_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
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

  Report Verify(const std::vector<std::string>& files, VerifyOptions options) {
    return VerifyFiles(files, options);
  }

  // The start point after line index `i` (0-based) of lines_, which must be a checkpoint.
  StartPoint Start(size_t i) {
    Result<StartPoint> s = OpenStartPoint(lines_[i], keys_, "start.line");
    EXPECT_TRUE(s.ok()) << s.message();
    return s.ok() ? std::move(s).value() : StartPoint{};
  }

  PrivateKey key_ = MustKey(KeyType::kEcdsaP256);
  std::vector<PublicKey> keys_;
  LogBuilder b_{&key_};
  std::vector<std::string> lines_;
  fs::path dir_;
};

TEST_F(RetentionTest, CompressedRotatedFilesVerifyLikePlainOnes) {
  const std::string day1 = Write("audit.log-1.gz", Gzip(Join(lines_, 0, 10)));
  const std::string day2 = Write("audit.log-2.gz", Gzip(Join(lines_, 10, 20)));
  // The newest rotated file stays plain for a day (delaycompress); the name does not matter.
  const std::string day3 = Write("audit.log-3", Join(lines_, 20, 30));
  const std::string live = Write("audit.log", Join(lines_, 30));
  Report r = Verify({day1, day2, day3, live}, Options());
  ASSERT_TRUE(r.ok()) << r.failure->ToString();
  EXPECT_EQ(r.files, 4u);
  EXPECT_EQ(r.lines, 37u);
  EXPECT_EQ(r.checkpoints, 4u);
  EXPECT_EQ(r.state, b_.state());
  // gzip is recognised by its content, not the name.
  const std::string renamed = Write("day1-renamed", Gzip(Join(lines_, 0, 10)));
  EXPECT_TRUE(Verify({renamed, day2, day3, live}, Options()).ok());
  // A gzip file made of several members (gzip output concatenated) is one file.
  const std::string members =
      Write("audit.log-1-2.gz", Gzip(Join(lines_, 0, 4)) + Gzip(Join(lines_, 4, 20)));
  EXPECT_TRUE(Verify({members, day3, live}, Options()).ok());
}

TEST_F(RetentionTest, TamperingInsideACompressedFileIsNamed) {
  std::vector<std::string> lines = lines_;
  lines[13].replace(lines[13].find("agent/7"), 7, "agent/9");
  const std::string day1 = Write("audit.log-1.gz", Gzip(Join(lines, 0, 10)));
  const std::string day2 = Write("audit.log-2.gz", Gzip(Join(lines, 10, 20)));
  EXPECT_BREAK(Verify({day1, day2}, Options()), day2, 4, "does not match the line's content");
}

TEST_F(RetentionTest, DamagedGzipFilesBreakWhereTheDataEnds) {
  const std::string good = Gzip(Join(lines_, 0, 10));
  // Cut off: the last part of the compressed data (and the CRC trailer) is missing.
  const std::string cut = Write("cut.gz", good.substr(0, good.size() / 2));
  Report r = Verify({cut}, Options());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure->kind, Break::Kind::kTamper);
  EXPECT_NE(r.failure->reason.find("gzip file is cut off"), std::string::npos)
      << r.failure->ToString();
  EXPECT_GE(r.failure->line, 1u);
  EXPECT_LT(r.failure->line, 10u);
  // A flipped bit in the compressed data: corrupt (a bad block, or the CRC at the end).
  std::string flipped = good;
  flipped[flipped.size() / 2] = static_cast<char>(flipped[flipped.size() / 2] ^ 0x10);
  Report f = Verify({Write("flipped.gz", flipped)}, Options());
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.failure->kind, Break::Kind::kTamper);
  EXPECT_NE(f.failure->reason.find("gzip"), std::string::npos) << f.failure->ToString();
}

TEST_F(RetentionTest, StartsAtAnyRotatedFileFromTheCheckpointBeforeIt) {
  const std::string day3 = Write("audit.log-3.gz", Gzip(Join(lines_, 20, 30)));
  const std::string live = Write("audit.log", Join(lines_, 30));
  VerifyOptions o = Options();
  o.start = Start(19);  // the checkpoint ending day 2 (seq 20, tree size 18)
  Report r = Verify({day3, live}, o);
  ASSERT_TRUE(r.ok()) << r.failure->ToString();
  EXPECT_EQ(r.first_seq, 21u);
  EXPECT_EQ(r.lines, 17u);
  EXPECT_EQ(r.entries, 15u);
  EXPECT_EQ(r.checkpoints, 2u);
  ASSERT_TRUE(r.start.has_value());
  EXPECT_EQ(r.start->checkpoint.seq, 20u);
  EXPECT_EQ(r.start->checkpoint.checkpoint.tree_size, 18u);
  // The state at the end is the whole log's: the tree continued from the frontier.
  EXPECT_EQ(r.state, b_.state());
  EXPECT_EQ(r.last_checkpoint->line, 5u);
  // From the last checkpoint of all (seq 35): the two lines after it.
  o.start = Start(34);
  Report tail = Verify({Write("tail", Join(lines_, 35))}, o);
  ASSERT_TRUE(tail.ok()) << tail.failure->ToString();
  EXPECT_EQ(tail.lines, 2u);
  EXPECT_EQ(tail.checkpoints, 0u);
  EXPECT_EQ(tail.unsigned_lines, 2u);
  // With nothing after the checkpoint there is nothing to verify.
  EXPECT_FALSE(Verify({Write("empty", "")}, o).ok());
}

TEST_F(RetentionTest, TamperingAfterTheStartIsStillCaught) {
  const std::string day3 = Write("day3", Join(lines_, 20, 30));
  // An edited record, re-chained so every line's hash holds: the next checkpoint's signed head
  // no longer matches.
  std::vector<std::string> lines = lines_;
  lines[22].replace(lines[22].find("agent/7"), 7, "agent/9");
  Rechain(&lines, 22);
  VerifyOptions o = Options();
  o.start = Start(19);
  const std::string edited = Write("edited", Join(lines, 20, 30));
  EXPECT_BREAK(Verify({edited}, o), edited, 10, "checkpoint head (seq 29)");
  // The next checkpoint's root is computed on top of the start's tree: with another tree of the
  // same size in its place (a frontier OpenStartPoint would have refused), it does not match.
  CompactRange other;
  for (int i = 0; i < 18; ++i) other.Append(HashLeaf("other " + std::to_string(i)));
  o.start->state.tree = other;
  EXPECT_BREAK(Verify({day3}, o), day3, 10, "checkpoint root differs");
}

TEST_F(RetentionTest, FilesThatDoNotContinueTheStartBreakAtTheirFirstLine) {
  VerifyOptions o = Options();
  o.start = Start(9);  // seq 10: the next file must start at seq 11
  // Day 2 missing: day 3 starts at seq 21.
  const std::string day3 = Write("day3", Join(lines_, 20, 30));
  EXPECT_BREAK(Verify({day3}, o), day3, 1,
               "the files start at seq 21, but the starting checkpoint (seq 10) is followed by "
               "seq 11");
  // The right seq, but another log's line: its prev_hash is not the checkpoint line's hash.
  LogBuilder other(&key_, "dev1", "node1", "fork");
  other.AddRecords(9);
  other.AddCheckpoint();
  other.AddRecords(3);
  const std::string forked = Write("forked", Join(other.lines(), 10));
  EXPECT_BREAK(Verify({forked}, o), forked, 1,
               "prev_hash is not the hash of the starting checkpoint line");
  // A gap further on is an ordinary break.
  std::vector<std::string> lines = lines_;
  lines.erase(lines.begin() + 14);
  const std::string gap = Write("gap", Join(lines, 10, 20));
  EXPECT_BREAK(Verify({gap}, o), gap, 5, "found seq 16 where seq 15 belongs");
}

TEST_F(RetentionTest, StartCheckpointsAreChecked) {
  // Signed by another key.
  PrivateKey other = MustKey(KeyType::kEcdsaP256);
  std::vector<PublicKey> other_keys;
  other_keys.push_back(MustPublic(other));
  Result<StartPoint> wrong_key = OpenStartPoint(lines_[19], other_keys, "x");
  ASSERT_FALSE(wrong_key.ok());
  EXPECT_NE(wrong_key.message().find("checkpoint rejected"), std::string::npos)
      << wrong_key.message();
  // A frontier that is not the signed tree's (re-hashed so the line itself holds).
  std::vector<std::string> lines = lines_;
  const size_t at = lines[19].find("\"frontier\":[\"") + 13;
  lines[19].replace(at, 64, HexEncode(Sha256("other")));
  Rechain(&lines, 19);
  Result<StartPoint> bad_frontier = OpenStartPoint(lines[19], keys_, "x");
  ASSERT_FALSE(bad_frontier.ok());
  EXPECT_NE(bad_frontier.message().find("does not reproduce the signed Merkle root"),
            std::string::npos)
      << bad_frontier.message();
  // A frontier with the wrong number of hashes for the tree size (18 = 16 + 2: two).
  lines = lines_;
  const size_t open = lines[19].find("\"frontier\":[") + 12;
  lines[19].insert(open, "\"" + HexEncode(Sha256("extra")) + "\",");
  Rechain(&lines, 19);
  Result<StartPoint> bad_count = OpenStartPoint(lines[19], keys_, "x");
  ASSERT_FALSE(bad_count.ok());
  EXPECT_NE(bad_count.message().find("does not fit the signed tree size"), std::string::npos)
      << bad_count.message();
  // An edited line (its own hash no longer holds), a record instead of a checkpoint, and a
  // checkpoint line without a frontier (an older writer's).
  std::string edited = lines_[19];
  edited[edited.find("\"time\":\"") + 9] ^= 1;
  EXPECT_FALSE(OpenStartPoint(edited, keys_, "x").ok());
  Result<StartPoint> record = OpenStartPoint(lines_[18], keys_, "x");
  ASSERT_FALSE(record.ok());
  EXPECT_NE(record.message().find("not a checkpoint line"), std::string::npos);
  Result<Json> obj = ParseJson(WithoutNewline(lines_[19]));
  ASSERT_TRUE(obj.ok());
  obj->Erase("frontier");
  lines = lines_;
  lines[19] = CanonicalJson(*obj) + "\n";
  Rechain(&lines, 19);
  Result<StartPoint> old = OpenStartPoint(lines[19], keys_, "x");
  ASSERT_FALSE(old.ok());
  EXPECT_NE(old.message().find("no \"frontier\""), std::string::npos) << old.message();
}

TEST_F(RetentionTest, TrustedCheckpointWithAStart) {
  const std::string rest = Write("rest", Join(lines_, 20));
  VerifyOptions o = Options();
  o.start = Start(19);
  // A later trusted checkpoint is checked as usual.
  Result<Checkpoint> latest = OpenCheckpoint(b_.last_note(), keys_);
  ASSERT_TRUE(latest.ok());
  o.trusted = *latest;
  Report r = Verify({rest}, o);
  ASSERT_TRUE(r.ok()) << r.failure->ToString();
  EXPECT_TRUE(r.trusted_matched);
  // The start checkpoint itself as the trusted one: trivially contained.
  Result<ChainedRecord> start_line = ParseChainedLine(WithoutNewline(lines_[19]));
  ASSERT_TRUE(start_line.ok());
  o.trusted = *OpenCheckpoint(start_line->note, keys_);
  EXPECT_TRUE(Verify({rest}, o).ok());
  // One from before the start cannot be checked without the earlier files: an input error.
  Result<ChainedRecord> early = ParseChainedLine(WithoutNewline(lines_[9]));
  ASSERT_TRUE(early.ok());
  o.trusted = *OpenCheckpoint(early->note, keys_);
  Report older = Verify({rest}, o);
  ASSERT_FALSE(older.ok());
  EXPECT_EQ(older.failure->kind, Break::Kind::kIo);
  EXPECT_NE(older.failure->reason.find("older than the starting checkpoint"), std::string::npos);
  // A forked log's checkpoint of the same size contradicts the start.
  LogBuilder fork(&key_, "dev1", "node1", "fork");
  for (int i = 0; i < 2; ++i) {
    fork.AddRecords(9);
    fork.AddCheckpoint();
  }
  o.trusted = *OpenCheckpoint(fork.last_note(), keys_);
  Report forked = Verify({rest}, o);
  ASSERT_FALSE(forked.ok());
  EXPECT_NE(forked.failure->reason.find("contradicts the starting checkpoint"), std::string::npos);
}

// Proofs from a start point: the frontier stands in for every leaf before it.
TEST(AuditPartialProofs, MatchProofsOverAllLeaves) {
  std::vector<Hash> leaves;
  for (int i = 0; i < 70; ++i) leaves.push_back(HashLeaf("leaf " + std::to_string(i)));
  for (uint64_t base : {0u, 1u, 5u, 8u, 13u, 32u, 45u, 69u}) {
    CompactRange range;
    for (uint64_t i = 0; i < base; ++i) range.Append(leaves[i]);
    PartialLeaves partial{base, range.nodes(), std::span(leaves).subspan(base)};
    for (uint64_t size = std::max<uint64_t>(base, 1); size <= leaves.size(); ++size) {
      for (uint64_t index = base; index < size; ++index) {
        Result<std::vector<Hash>> want = MakeInclusionProof(leaves, index, size);
        Result<std::vector<Hash>> got = MakeInclusionProof(partial, index, size);
        ASSERT_TRUE(got.ok()) << base << " " << index << " " << size << ": " << got.message();
        ASSERT_EQ(*got, *want) << base << " " << index << " " << size;
      }
      for (uint64_t size1 = std::max<uint64_t>(base, 1); size1 <= size; ++size1) {
        Result<std::vector<Hash>> want = MakeConsistencyProof(leaves, size1, size);
        Result<std::vector<Hash>> got = MakeConsistencyProof(partial, size1, size);
        ASSERT_TRUE(got.ok()) << base << " " << size1 << " " << size << ": " << got.message();
        ASSERT_EQ(*got, *want) << base << " " << size1 << " " << size;
      }
    }
    if (base > 0) {
      EXPECT_FALSE(MakeInclusionProof(partial, base - 1, leaves.size()).ok());
      EXPECT_FALSE(MakeConsistencyProof(partial, base - 1, leaves.size()).ok());
    }
  }
}

}  // namespace
}  // namespace strongroom::audit
