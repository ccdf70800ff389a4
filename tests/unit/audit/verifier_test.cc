// The offline verifier (audit/verifier.h) on synthetic logs: an intact log (rotated or not)
// passes, and every kind of tampering is caught at the right line.
#include "audit/verifier.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "audit/chain.h"
#include "audit/checkpoint.h"
#include "tests/unit/audit/test_log.h"

namespace strongroom::audit {
namespace {

namespace fs = std::filesystem;
using testing::LogBuilder;
using testing::Must;
using testing::MustKey;
using testing::MustPublic;
using testing::Rechain;
using testing::VaultRecord;

struct File {
  std::string name;
  std::string contents;
};

std::string Join(const std::vector<std::string>& lines, size_t from = 0, size_t to = SIZE_MAX) {
  std::string out;
  for (size_t i = from; i < lines.size() && i < to; ++i) out += lines[i];
  return out;
}

// Chains an arbitrary object (no checks), for forging lines the writer would refuse to make.
std::string ChainRaw(Json obj, const ChainState& state) {
  obj.Set("seq", Json::Uint(state.last_seq + 1));
  obj.Set("prev_hash", Json::String(HexEncode(state.last_hash)));
  const Hash h = Sha256({AsBytes(state.last_hash), CanonicalJson(obj)});
  obj.Set("hash", Json::String(HexEncode(h)));
  return CanonicalJson(obj) + "\n";
}

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    keys_.push_back(MustPublic(key_));
    // Standard log: 4 checkpoints after every 7 records, then 2 unsigned records.
    //   lines 1-7 records (seq 1-7), 8 checkpoint (size 7), 9-15 records, 16 checkpoint (14),
    //   17-23 records, 24 checkpoint (21), 25-31 records, 32 checkpoint (28), 33-34 records.
    for (int i = 0; i < 4; ++i) {
      builder_.AddRecords(7);
      builder_.AddCheckpoint();
      notes_.push_back(builder_.last_note());
    }
    builder_.AddRecords(2);
    lines_ = builder_.lines();
    ASSERT_EQ(lines_.size(), 34u);
  }

  Report Verify(const std::vector<File>& files, VerifyOptions options = {}) {
    if (options.keys.empty()) options.keys = keys_;
    Verifier v(options);
    for (const File& f : files) {
      v.BeginFile(f.name);
      v.AddFileContents(f.contents);
      if (v.failed()) break;
    }
    return v.Finish();
  }

  Report VerifyText(const std::string& text, VerifyOptions options = {}) {
    return Verify({{"audit.log", text}}, std::move(options));
  }

  Report VerifyLines(const std::vector<std::string>& lines, VerifyOptions options = {}) {
    return VerifyText(Join(lines), std::move(options));
  }

  Checkpoint Trusted(const std::string& note) {
    Result<Checkpoint> cp = OpenCheckpoint(note, keys_);
    EXPECT_TRUE(cp.ok()) << cp.message();
    return cp.ok() ? *cp : Checkpoint();
  }

  // The chain state after the first `n` lines of `lines`.
  ChainState StateAfter(const std::vector<std::string>& lines, size_t n) {
    VerifyOptions options;
    options.keys = keys_;
    Verifier v(options);
    v.BeginFile("prefix");
    v.AddFileContents(Join(lines, 0, n));
    return v.Finish().state;
  }

  PrivateKey key_ = MustKey(KeyType::kEcdsaP256);
  std::vector<PublicKey> keys_;
  LogBuilder builder_{&key_};
  std::vector<std::string> lines_;
  std::vector<std::string> notes_;
};

#define EXPECT_BREAK(report, want_file, want_line, reason_part)                                   \
  do {                                                                                            \
    const Report& r_ = (report);                                                                  \
    ASSERT_FALSE(r_.ok()) << "tampering not detected";                                            \
    EXPECT_EQ(r_.failure->file, (want_file)) << r_.failure->ToString();                           \
    EXPECT_EQ(r_.failure->line, static_cast<uint64_t>(want_line)) << r_.failure->ToString();      \
    EXPECT_NE(r_.failure->reason.find(reason_part), std::string::npos) << r_.failure->ToString(); \
  } while (0)

TEST_F(AuditLogTest, IntactLogVerifies) {
  Report r = VerifyLines(lines_);
  ASSERT_TRUE(r.ok()) << r.failure->ToString();
  EXPECT_EQ(r.files, 1u);
  EXPECT_EQ(r.lines, 34u);
  EXPECT_EQ(r.entries, 30u);
  EXPECT_EQ(r.checkpoints, 4u);
  EXPECT_EQ(r.unsigned_lines, 2u);
  EXPECT_EQ(r.origin, "strongroom-audit/dev1/node1");
  EXPECT_EQ(r.first_time, testing::Time(1));
  EXPECT_EQ(r.last_time, testing::Time(30));
  ASSERT_TRUE(r.last_checkpoint.has_value());
  EXPECT_EQ(r.last_checkpoint->line, 32u);
  EXPECT_EQ(r.last_checkpoint->checkpoint.tree_size, 28u);
  EXPECT_EQ(r.state, builder_.state());
}

TEST_F(AuditLogTest, IntactEd25519LogVerifies) {
  PrivateKey ed = MustKey(KeyType::kEd25519);
  LogBuilder b(&ed, "file", "n2");
  b.AddRecords(3);
  b.AddCheckpoint();
  std::vector<PublicKey> keys;
  keys.push_back(MustPublic(ed));
  VerifyOptions options;
  options.keys = keys;
  EXPECT_TRUE(VerifyText(b.Text(), options).ok());
  std::vector<std::string> lines = b.lines();
  lines.erase(lines.begin() + 1);
  EXPECT_BREAK(VerifyLines(lines, options), "audit.log", 2, "found seq 3 where seq 2 belongs");
  // And the ECDSA key does not vouch for it.
  EXPECT_BREAK(VerifyText(b.Text()), "audit.log", 4, "not signed by the audit key");
}

class RotatedFilesTest : public AuditLogTest {
 protected:
  void SetUp() override {
    AuditLogTest::SetUp();
    dir_ = fs::temp_directory_path() /
           ("audit_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& contents) {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << contents;
    return p.string();
  }

  fs::path dir_;
};

TEST_F(RotatedFilesTest, ChainContinuesAcrossFiles) {
  const std::string old_file = Write("audit.log.1", Join(lines_, 0, 20));
  const std::string empty = Write("audit.log.empty", "");
  const std::string new_file = Write("audit.log", Join(lines_, 20));
  VerifyOptions options;
  options.keys = keys_;
  Report r = VerifyFiles(std::vector<std::string>{old_file, empty, new_file}, options);
  ASSERT_TRUE(r.ok()) << r.failure->ToString();
  EXPECT_EQ(r.files, 3u);
  EXPECT_EQ(r.lines, 34u);
  EXPECT_EQ(r.last_checkpoint->file, new_file);
  EXPECT_EQ(r.last_checkpoint->line, 12u);

  // Wrong order: the newer file first.
  EXPECT_BREAK(VerifyFiles(std::vector<std::string>{new_file, old_file}, options), new_file, 1,
               "starts at seq 21, not 1");
  // A missing middle file.
  const std::string a = Write("a", Join(lines_, 0, 10));
  const std::string b = Write("b", Join(lines_, 10, 20));
  (void)b;
  EXPECT_BREAK(VerifyFiles(std::vector<std::string>{a, new_file}, options), new_file, 1,
               "found seq 21 where seq 11 belongs");
  // An unreadable file is an I/O failure, not tampering.
  Report missing =
      VerifyFiles(std::vector<std::string>{old_file, (dir_ / "nope").string()}, options);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.failure->kind, Break::Kind::kIo);
  EXPECT_EQ(missing.failure->line, 1u);
}

TEST_F(RotatedFilesTest, OverlongLineIsRejected) {
  std::string text = Join(lines_, 0, 3);
  text += std::string(kMaxLineBytes + 10, 'x') + "\n";
  VerifyOptions options;
  options.keys = keys_;
  const std::string path = Write("big", text);
  EXPECT_BREAK(VerifyFiles(std::vector<std::string>{path}, options), path, 4, "longer than 16 MiB");
  const std::string unterminated =
      Write("big2", Join(lines_, 0, 3) + std::string(kMaxLineBytes + 1, 'x'));
  EXPECT_BREAK(VerifyFiles(std::vector<std::string>{unterminated}, options), unterminated, 4,
               "longer than 16 MiB");
}

// Any single-byte change anywhere in a line is caught on that line: in a record, in a
// checkpoint (including its signature) and in the last line.
TEST_F(AuditLogTest, EveryOneByteEditIsCaughtOnItsLine) {
  int edits = 0;
  for (size_t index : {size_t{9}, size_t{7}, size_t{33}}) {
    for (size_t pos = 0; pos < lines_[index].size(); ++pos) {
      for (int flip : {0x01, 0x20}) {
        std::vector<std::string> lines = lines_;
        lines[index][pos] = static_cast<char>(static_cast<unsigned char>(lines[index][pos]) ^ flip);
        Report r = VerifyLines(lines);
        ASSERT_FALSE(r.ok()) << "edit at line " << index + 1 << " byte " << pos << " undetected";
        ASSERT_EQ(r.failure->line, index + 1) << r.failure->ToString();
        ++edits;
      }
    }
  }
  std::cout << "[          ] " << edits << " single-byte edits, all caught on their line\n";
}

TEST_F(AuditLogTest, DeletedLine) {
  std::vector<std::string> lines = lines_;
  lines.erase(lines.begin() + 9);
  EXPECT_BREAK(VerifyLines(lines), "audit.log", 10, "found seq 11 where seq 10 belongs");
  lines = lines_;
  lines.erase(lines.begin() + 15);  // a checkpoint
  EXPECT_BREAK(VerifyLines(lines), "audit.log", 16, "found seq 17 where seq 16 belongs");
  lines = lines_;
  lines.erase(lines.begin());
  EXPECT_BREAK(VerifyLines(lines), "audit.log", 1, "starts at seq 2");
}

TEST_F(AuditLogTest, InsertedForgedLine) {
  // A forged record with a correct seq, prev_hash and hash, inserted after line 9.
  Result<ChainedLine> forged = MakeChainedLine(VaultRecord(99, "forged"), StateAfter(lines_, 9));
  ASSERT_TRUE(forged.ok());
  std::vector<std::string> lines = lines_;
  lines.insert(lines.begin() + 9, forged->line);
  EXPECT_BREAK(VerifyLines(lines), "audit.log", 11, "found seq 10 where seq 11 belongs");
  // The tamperer also renumbers and rehashes everything after it: the next checkpoint (now
  // line 17) no longer matches, and it cannot be re-signed.
  Rechain(&lines, 10);
  EXPECT_BREAK(VerifyLines(lines), "audit.log", 17, "checkpoint");
}

TEST_F(AuditLogTest, EditedRecordWithRechainedTail) {
  std::vector<std::string> lines = lines_;
  const size_t at = lines[9].find("secret/data/lobstack/agent/7");
  ASSERT_NE(at, std::string::npos);
  lines[9].replace(at, 28, "secret/data/lobstack/agent/8");
  EXPECT_BREAK(VerifyLines(lines), "audit.log", 10, "does not match the line's content");
  Rechain(&lines, 9);
  EXPECT_BREAK(VerifyLines(lines), "audit.log", 16, "checkpoint head (seq 15)");
}

TEST_F(AuditLogTest, SwappedLines) {
  std::vector<std::string> lines = lines_;
  std::swap(lines[9], lines[10]);
  EXPECT_BREAK(VerifyLines(lines), "audit.log", 10, "found seq 11 where seq 10 belongs");
  lines = lines_;
  std::swap(lines[6], lines[7]);  // a checkpoint and the record before it
  EXPECT_BREAK(VerifyLines(lines), "audit.log", 7, "found seq 8 where seq 7 belongs");
}

TEST_F(AuditLogTest, LinesCutBeforeLastCheckpoint) {
  std::vector<std::string> lines = lines_;
  lines.erase(lines.begin() + 17, lines.begin() + 20);  // lines 18-20
  EXPECT_BREAK(VerifyLines(lines), "audit.log", 18, "found seq 21 where seq 18 belongs");
  // Renumbered and rehashed: the checkpoint that was line 24 (now 21) gives it away.
  Rechain(&lines, 17);
  EXPECT_BREAK(VerifyLines(lines), "audit.log", 21, "checkpoint");
  // Cutting a whole signed stretch including its checkpoint and rechaining: still caught at the
  // next checkpoint (its tree size and root cover the missing records).
  lines = lines_;
  lines.erase(lines.begin() + 8, lines.begin() + 16);  // lines 9-16
  Rechain(&lines, 8);
  EXPECT_BREAK(VerifyLines(lines), "audit.log", 16, "checkpoint");
}

TEST_F(AuditLogTest, SplicedLogs) {
  // Same device and key, different history.
  LogBuilder other(&key_, "dev1", "node1", "b");
  for (int i = 0; i < 4; ++i) {
    other.AddRecords(7);
    other.AddCheckpoint();
  }
  std::vector<std::string> lines(lines_.begin(), lines_.begin() + 12);
  lines.insert(lines.end(), other.lines().begin() + 12, other.lines().end());
  EXPECT_BREAK(VerifyLines(lines), "audit.log", 13,
               "prev_hash is not the hash of the previous line");
  // Another device's log, rechained onto ours: its checkpoints name another origin.
  LogBuilder dev2(&key_, "dev2", "node1");
  for (int i = 0; i < 4; ++i) {
    dev2.AddRecords(7);
    dev2.AddCheckpoint();
  }
  lines.assign(lines_.begin(), lines_.begin() + 16);
  lines.insert(lines.end(), dev2.lines().begin() + 16, dev2.lines().end());
  EXPECT_BREAK(VerifyLines(lines), "audit.log", 17, "prev_hash");
  Rechain(&lines, 16);
  EXPECT_BREAK(VerifyLines(lines), "audit.log", 24, "origin strongroom-audit/dev2/node1 differs");
}

TEST_F(AuditLogTest, CheckpointSignedByAnotherKey) {
  PrivateKey other = MustKey(KeyType::kEcdsaP256);
  LogBuilder b(&key_);
  b.AddRecords(7);
  b.AddCheckpoint();
  b.AddRecords(7);
  b.AddCheckpoint(&other);
  b.AddRecords(2);
  b.AddCheckpoint();
  EXPECT_BREAK(VerifyText(b.Text()), "audit.log", 16, "not signed by the audit key");
  // Trusting both keys (a key rotation) accepts it.
  std::vector<PublicKey> both;
  both.push_back(MustPublic(key_));
  both.push_back(MustPublic(other));
  VerifyOptions options;
  options.keys = both;
  EXPECT_TRUE(VerifyText(b.Text(), options).ok());
}

TEST_F(AuditLogTest, CheckpointThatLiesAboutTheTree) {
  // Properly signed notes that do not describe the log (what a compromised signer could make).
  const ChainState state = StateAfter(lines_, 7);
  auto forge = [&](uint64_t size, Hash root, uint64_t head_seq, std::string time,
                   std::string line_time) {
    Checkpoint cp;
    cp.device_id = "dev1";
    cp.node_id = "node1";
    cp.tree_size = size;
    cp.root = root;
    cp.head_seq = head_seq;
    cp.head_hash = state.last_hash;
    cp.time = std::move(time);
    const std::string note = Must(SignCheckpoint(Must(FormatCheckpointText(cp)), key_));
    Json obj = Json::Object();
    obj.Set("checkpoint", Json::String(note));
    obj.Set("time", Json::String(std::move(line_time)));
    obj.Set("type", Json::String("checkpoint"));
    std::vector<std::string> lines(lines_.begin(), lines_.begin() + 7);
    lines.push_back(ChainRaw(std::move(obj), state));
    return lines;
  };
  const Hash root = state.tree.Root();
  EXPECT_TRUE(VerifyLines(forge(7, root, 7, "t1", "t1")).ok());
  EXPECT_BREAK(VerifyLines(forge(8, root, 7, "t1", "t1")), "audit.log", 8,
               "checkpoint signs 8 entries but 7 precede it");
  Hash bad_root = root;
  bad_root[3] ^= 1;
  EXPECT_BREAK(VerifyLines(forge(7, bad_root, 7, "t1", "t1")), "audit.log", 8,
               "checkpoint root differs");
  EXPECT_BREAK(VerifyLines(forge(7, root, 6, "t1", "t1")), "audit.log", 8, "checkpoint head");
  EXPECT_BREAK(VerifyLines(forge(7, root, 7, "t1", "t2")), "audit.log", 8, "time differs");
}

TEST_F(AuditLogTest, TruncatedTailNeedsATrustedCheckpoint) {
  // Cut right after the checkpoint at line 24: on its own, indistinguishable from an older log.
  Report alone = VerifyLines(std::vector<std::string>(lines_.begin(), lines_.begin() + 24));
  EXPECT_TRUE(alone.ok());
  // With the newest checkpoint the auditor fetched from the live service, it is caught.
  VerifyOptions options;
  options.trusted = Trusted(notes_.back());  // line 32: 28 entries, head seq 31
  EXPECT_BREAK(VerifyLines(std::vector<std::string>(lines_.begin(), lines_.begin() + 24), options),
               "audit.log", 25, "the tail was cut off or this is an older copy");
  EXPECT_BREAK(VerifyLines(std::vector<std::string>(lines_.begin(), lines_.begin() + 30), options),
               "audit.log", 31, "the tail was cut off");
  // The checkpoint's own line may be missing as long as everything it covers is there.
  Report upto_head =
      VerifyLines(std::vector<std::string>(lines_.begin(), lines_.begin() + 31), options);
  EXPECT_TRUE(upto_head.ok()) << upto_head.failure->ToString();
  EXPECT_TRUE(upto_head.trusted_matched);
  // The full log contains it.
  Report full = VerifyLines(lines_, options);
  ASSERT_TRUE(full.ok()) << full.failure->ToString();
  EXPECT_TRUE(full.trusted_matched);
}

TEST_F(AuditLogTest, OlderCopyWithTrustedCheckpoint) {
  // An older copy taken when the log had 24 lines; the service has moved on since.
  const std::string older = Join(lines_, 0, 24);
  builder_.AddRecords(5);
  builder_.AddCheckpoint();
  VerifyOptions options;
  options.trusted = Trusted(builder_.last_note());
  EXPECT_BREAK(VerifyText(older, options), "audit.log", 25, "older copy");
  // Rotated: the auditor was handed only the first file.
  Report r = Verify({{"audit.log.1", Join(builder_.lines(), 0, 20)}}, options);
  EXPECT_BREAK(r, "audit.log.1", 21, "older copy");
  Report both = Verify(
      {{"audit.log.1", Join(builder_.lines(), 0, 20)}, {"audit.log", Join(builder_.lines(), 20)}},
      options);
  EXPECT_TRUE(both.ok()) << both.failure->ToString();
}

TEST_F(AuditLogTest, ForkedLogAgainstTrustedCheckpoint) {
  // The service showed the auditor a checkpoint of one history, the files hold another (both
  // properly signed: the signer equivocated, or the files were regenerated with the key).
  LogBuilder fork(&key_, "dev1", "node1", "fork");
  for (int i = 0; i < 4; ++i) {
    fork.AddRecords(7);
    fork.AddCheckpoint();
  }
  ASSERT_TRUE(VerifyText(fork.Text()).ok());
  VerifyOptions options;
  options.trusted = Trusted(notes_[2]);  // line 24: 21 entries; record 21 is line 23
  Report r = VerifyText(fork.Text(), options);
  EXPECT_BREAK(r, "audit.log", 23, "differs from the trusted checkpoint");
  EXPECT_EQ(r.failure->seq, 23u);  // the breaking line is not counted as verified
  EXPECT_EQ(r.lines, 22u);
  EXPECT_EQ(r.state.last_seq, 22u);
}

TEST_F(AuditLogTest, TruncatedLastLine) {
  std::string text = Join(lines_);
  text.pop_back();  // no newline
  EXPECT_BREAK(VerifyText(text), "audit.log", 34, "incomplete last line");
  text.resize(text.size() - 10);  // cut mid-record
  EXPECT_BREAK(VerifyText(text), "audit.log", 34, "incomplete last line");
  // In the first of two files.
  EXPECT_BREAK(Verify({{"a", Join(lines_, 0, 10).substr(0, Join(lines_, 0, 10).size() - 1)},
                       {"b", Join(lines_, 10)}}),
               "a", 10, "incomplete last line");
}

TEST_F(AuditLogTest, ReformattedLines) {
  std::vector<std::string> lines = lines_;
  lines[4].insert(1, " ");
  EXPECT_BREAK(VerifyLines(lines), "audit.log", 5, "canonical");
  lines = lines_;
  lines[0].insert(lines[0].size() - 1, "\r");  // CRLF line endings
  EXPECT_BREAK(VerifyLines(lines), "audit.log", 1, "canonical");
  lines = lines_;
  lines.insert(lines.begin() + 5, "\n");
  EXPECT_BREAK(VerifyLines(lines), "audit.log", 6, "empty line");
  lines = lines_;
  lines[3] = "not json\n";
  EXPECT_BREAK(VerifyLines(lines), "audit.log", 4, "invalid");
}

TEST_F(AuditLogTest, FirstLineMustStartTheChain) {
  ChainState fake;
  fake.last_hash = Sha256("somewhere else");
  Result<ChainedLine> line = MakeChainedLine(VaultRecord(1), fake);
  ASSERT_TRUE(line.ok());
  std::vector<std::string> lines = lines_;
  lines[0] = line->line;
  EXPECT_BREAK(VerifyLines(lines), "audit.log", 1, "first line's prev_hash is not all zeros");
}

TEST_F(AuditLogTest, UnsignedLogsFail) {
  EXPECT_BREAK(VerifyLines(std::vector<std::string>(lines_.begin(), lines_.begin() + 7)),
               "audit.log", 8, "no signed checkpoint");
  EXPECT_BREAK(VerifyText(""), "audit.log", 1, "empty");
  VerifyOptions options;
  options.keys = keys_;
  Verifier v(options);
  EXPECT_FALSE(v.Finish().ok());
}

TEST_F(AuditLogTest, RequireSignedTail) {
  VerifyOptions options;
  options.require_signed_tail = true;
  EXPECT_BREAK(VerifyLines(lines_, options), "audit.log", 33, "not covered by a signed checkpoint");
  EXPECT_TRUE(
      VerifyLines(std::vector<std::string>(lines_.begin(), lines_.begin() + 32), options).ok());
}

TEST_F(AuditLogTest, KeepsLeavesAndCheckpointsForProofs) {
  VerifyOptions options;
  options.keep_leaves = true;
  options.capture_seq = 10;
  Report r = VerifyLines(lines_, options);
  ASSERT_TRUE(r.ok()) << r.failure->ToString();
  ASSERT_EQ(r.leaf_hashes.size(), 30u);
  ASSERT_EQ(r.leaf_seqs.size(), 30u);
  EXPECT_EQ(r.leaf_seqs[7], 9u);  // seq 8 is a checkpoint
  ASSERT_EQ(r.all_checkpoints.size(), 4u);
  EXPECT_EQ(r.all_checkpoints[1].checkpoint.tree_size, 14u);
  EXPECT_EQ(r.captured_line, lines_[9].substr(0, lines_[9].size() - 1));
  EXPECT_EQ(RootFromLeafHashes(r.leaf_hashes), r.state.tree.Root());
}

// Verifies `lines` (each ending in '\n') as the one file "audit.log", trusting `key`.
Report VerifyWith(const PrivateKey& key, const std::vector<std::string>& lines) {
  std::vector<PublicKey> keys;
  keys.push_back(MustPublic(key));
  VerifyOptions options;
  options.keys = keys;
  Verifier v(options);
  v.BeginFile("audit.log");
  for (const std::string& l : lines) v.AddLine(std::string_view(l).substr(0, l.size() - 1), true);
  return v.Finish();
}

// MAC lines (the writer's batch ends) are chained but are not entries, and change nothing else.
TEST(AuditMacLines, AreChainedButNotEntries) {
  PrivateKey key = MustKey(KeyType::kEcdsaP256);
  LogBuilder b(&key);
  b.AddRecords(2);
  b.AddMac();
  b.AddRecords(3);
  b.AddMac();
  b.AddCheckpoint();
  b.AddRecord();
  b.AddMac();
  Report r = VerifyWith(key, b.lines());
  ASSERT_TRUE(r.ok()) << r.failure->ToString();
  EXPECT_TRUE(r.proven());
  EXPECT_EQ(r.entries, 6u);
  EXPECT_EQ(r.macs, 3u);
  EXPECT_EQ(r.lines, 10u);
  EXPECT_EQ(r.unsigned_lines, 2u);
  // A MAC line is a chain line like any other: editing it breaks the chain there.
  std::vector<std::string> lines = b.lines();
  lines[2].replace(lines[2].find("\"mac\":\"") + 7, 1, "0");
  Report r2 = VerifyWith(key, lines);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.failure->line, 3u) << r2.failure->ToString();
}

// A tail the writer moved out at restart is reported, and the log is never called intact; the
// chain and its signatures still verify.
TEST(AuditUnprovenMarkers, AreReportedAndNeverIntact) {
  PrivateKey key = MustKey(KeyType::kEcdsaP256);
  LogBuilder b(&key);
  b.AddRecords(2);
  b.AddCheckpoint();  // seq 3
  b.AddRecord();
  b.AddMac();        // seq 5: the last proof
  b.AddUnproven(2);  // seq 6: two lines that followed were moved out
  b.AddRecord();
  b.AddCheckpoint();
  Report r = VerifyWith(key, b.lines());
  ASSERT_TRUE(r.ok()) << r.failure->ToString();
  EXPECT_FALSE(r.proven());
  ASSERT_EQ(r.unproven.size(), 1u);
  EXPECT_EQ(r.unproven[0].marker_seq, 6u);
  EXPECT_EQ(r.unproven[0].marker_line, 6u);
  EXPECT_EQ(r.unproven[0].lines, 2u);
  EXPECT_EQ(r.unproven[0].moved_to, "/var/log/strongroom/audit.log.unproven-1");
  EXPECT_EQ(r.unproven_lines, 2u);
  EXPECT_EQ(r.entries, 4u);
}

// The marker's fields are checked like every other line's.
TEST(AuditUnprovenMarkers, MalformedMarkersAreRefused) {
  RemovedTail removed;
  removed.reason = std::string(kMaxMarkerReason + 1, 'x');
  EXPECT_FALSE(MakeUnprovenLine(removed, "t", ChainState{}).ok());
  removed.reason = "";
  EXPECT_FALSE(MakeUnprovenLine(removed, "t", ChainState{}).ok());
  removed.reason = "why";
  Result<ChainedLine> line = MakeUnprovenLine(removed, "t", ChainState{});
  ASSERT_TRUE(line.ok()) << line.message();
  std::string text = line->line.substr(0, line->line.size() - 1);
  EXPECT_TRUE(ParseChainedLine(text).ok());
  std::vector<std::string> lines{line->line};
  lines[0].replace(lines[0].find("\"lines\":0"), 9, "\"lines\":-1");
  Rechain(&lines, 0);
  EXPECT_FALSE(ParseChainedLine(lines[0].substr(0, lines[0].size() - 1)).ok());
}

// A checkpoint carries the Merkle frontier, and it must be the tree's.
TEST(AuditCheckpointFrontier, IsWrittenAndChecked) {
  PrivateKey key = MustKey(KeyType::kEcdsaP256);
  LogBuilder b(&key);
  b.AddRecords(5);
  b.AddCheckpoint();
  Result<ChainedRecord> rec =
      ParseChainedLine(std::string_view(b.lines().back()).substr(0, b.lines().back().size() - 1));
  ASSERT_TRUE(rec.ok()) << rec.message();
  ASSERT_TRUE(rec->frontier.has_value());
  EXPECT_EQ(*rec->frontier, b.state().tree.nodes());
  EXPECT_EQ(rec->frontier->size(), 2u);  // 5 = 4 + 1
  // Swapping in another tree's frontier (and re-chaining) is caught even though the note holds.
  std::vector<std::string> lines = b.lines();
  const std::string other = HexEncode(Sha256("other"));
  const size_t at = lines[5].find("\"frontier\":[\"") + 13;
  lines[5].replace(at, 64, other);
  Rechain(&lines, 5);
  Report r = VerifyWith(key, lines);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.failure->reason.find("frontier"), std::string::npos) << r.failure->ToString();
}

}  // namespace
}  // namespace strongroom::audit
