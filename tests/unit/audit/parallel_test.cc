// Verification on every core (audit/parallel_verify.h) and the fast path (audit/fast_line.h)
// change nothing but the speed: on intact logs and on every kind of tampering, with tiny chunks
// (so that logs of a few dozen lines split into many segments, at every possible place), the
// report is the one a single pass of the full parser makes — same break (file, line, seq,
// reason), same counts, same state, same leaves.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

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

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

std::string Describe(const Report& r) {
  std::string s =
      r.ok() ? "ok" : r.failure->ToString() + (r.failure->kind == Break::Kind::kIo ? " (io)" : "");
  s += " lines=" + std::to_string(r.lines) + " entries=" + std::to_string(r.entries) +
       " checkpoints=" + std::to_string(r.checkpoints) + " macs=" + std::to_string(r.macs) +
       " files=" + std::to_string(r.files) + " bytes=" + std::to_string(r.bytes) +
       " unsigned=" + std::to_string(r.unsigned_lines) +
       " unproven=" + std::to_string(r.unproven_lines) +
       " first_seq=" + std::to_string(r.first_seq) + " time=" + r.first_time + ".." + r.last_time +
       " origin=" + r.origin + " trusted=" + std::to_string(r.trusted_matched) +
       " seq=" + std::to_string(r.state.last_seq) + " hash=" + HexEncode(r.state.last_hash) +
       " tree=" + std::to_string(r.state.tree.size()) + "/" + HexEncode(r.state.tree.Root());
  if (r.last_checkpoint) {
    s += " last_cp=" + r.last_checkpoint->file + ":" + std::to_string(r.last_checkpoint->line) +
         "@" + std::to_string(r.last_checkpoint->seq);
  }
  for (const UnprovenTail& u : r.unproven) {
    s += " unproven=" + std::to_string(u.marker_seq) + "/" + std::to_string(u.lines) + "@" +
         u.file + ":" + std::to_string(u.marker_line);
  }
  s += " unproven_markers=" + std::to_string(r.unproven_markers);
  s += " leaves=" + std::to_string(r.leaf_hashes.size());
  for (const Hash& h : r.leaf_hashes) s += HexEncode(h).substr(0, 4);
  for (uint64_t q : r.leaf_seqs) s += "," + std::to_string(q);
  for (const VerifiedCheckpoint& c : r.all_checkpoints) {
    s += " cp=" + c.file + ":" + std::to_string(c.line) + "@" + std::to_string(c.seq);
  }
  if (r.captured_line) s += " captured=" + *r.captured_line;
  return s;
}

class ParallelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    keys_.push_back(MustPublic(key_));
    dir_ = fs::temp_directory_path() /
           ("audit_parallel_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    // Batches of records ended by MAC lines, a checkpoint every 5 entries, an unproven range,
    // and an unsigned tail: 3 files, the first compressed.
    for (int i = 0; i < 9; ++i) {
      b_.AddRecords(2);
      b_.AddMac();
      b_.AddRecords(3);
      b_.AddCheckpoint();
      if (i == 5) {
        b_.AddRecords(2);
        b_.AddUnproven(2);
      }
    }
    b_.AddRecords(3);
    lines_ = b_.lines();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<std::string> Files(const std::vector<std::string>& lines, bool gzip_first = true) {
    const size_t a = lines.size() / 3;
    const size_t b = 2 * lines.size() / 3;
    const std::string first = Join(lines, 0, a);
    return {Write("audit.log-1" + std::string(gzip_first ? ".gz" : ""),
                  gzip_first ? Gzip(first) : first),
            Write("audit.log-2", Join(lines, a, b)), Write("audit.log", Join(lines, b))};
  }

  std::string Write(const std::string& name, const std::string& contents) {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary | std::ios::trunc) << contents;
    return p.string();
  }

  // Every way of verifying `files` gives the report of one pass of the full parser.
  void ExpectSameEverywhere(const std::vector<std::string>& files, VerifyOptions options = {}) {
    if (options.keys.empty()) options.keys = keys_;
    VerifyOptions reference = options;
    reference.threads = 1;
    reference.full_parser_only = true;
    const std::string want = Describe(VerifyFiles(files, reference));
    for (unsigned threads : {1u, 2u, 3u, 5u}) {
      for (uint64_t chunk : {uint64_t{0}, uint64_t{200}, uint64_t{900}, uint64_t{4000}}) {
        if (threads == 1 && chunk != 0) continue;
        // Under the sanitizers (ten times slower) a third of the matrix, the Release run has all.
        if (kSanitized && (threads == 3 || chunk == 900)) continue;
        VerifyOptions o = options;
        o.threads = threads;
        o.chunk_bytes = chunk;
        ASSERT_EQ(Describe(VerifyFiles(files, o)), want)
            << threads << " threads, chunks of " << chunk << " bytes";
      }
    }
  }

  PrivateKey key_ = MustKey(KeyType::kEcdsaP256);
  std::vector<PublicKey> keys_;
  LogBuilder b_{&key_};
  std::vector<std::string> lines_;
  fs::path dir_;
};

TEST_F(ParallelTest, IntactLogs) {
  ExpectSameEverywhere(Files(lines_));
  ExpectSameEverywhere(Files(lines_, /*gzip_first=*/false));
  ExpectSameEverywhere({Write("all", Join(lines_))});
  ExpectSameEverywhere({Write("all.gz", Gzip(Join(lines_)))});
  // Which lines took the fast path: every record and MAC line, nothing else.
  VerifyOptions o;
  o.keys = keys_;
  Verifier v(o);
  v.BeginFile("all");
  v.AddFileContents(Join(lines_));
  EXPECT_EQ(v.fast_path_lines(), v.Finish().entries + 9);
}

TEST_F(ParallelTest, WithOptions) {
  VerifyOptions o;
  o.keep_leaves = true;
  o.capture_seq = 23;
  ExpectSameEverywhere(Files(lines_), o);
  o.require_signed_tail = true;
  ExpectSameEverywhere(Files(lines_), o);
  // A trusted checkpoint that is in the log, and one from a longer copy of it.
  VerifyOptions t;
  Result<ChainedRecord> cp_line = ParseChainedLine(lines_[20].substr(0, lines_[20].size() - 1));
  ASSERT_TRUE(cp_line.ok() && cp_line->is_checkpoint);
  Result<Checkpoint> mid = OpenCheckpoint(cp_line->note, keys_);
  ASSERT_TRUE(mid.ok());
  t.trusted = *mid;
  ExpectSameEverywhere(Files(lines_), t);
  std::vector<std::string> shorter(lines_.begin(), lines_.begin() + 15);
  ExpectSameEverywhere(Files(shorter), t);
  // Starting after a checkpoint.
  VerifyOptions s;
  s.keys = keys_;
  Result<StartPoint> start = OpenStartPoint(lines_[13], keys_, "start.line");
  ASSERT_TRUE(start.ok()) << start.message();
  s.start = *start;
  std::vector<std::string> rest(lines_.begin() + 14, lines_.end());
  ExpectSameEverywhere(Files(rest), s);
}

TEST_F(ParallelTest, EveryDeletedLine) {
  for (size_t i = 0; i < lines_.size(); ++i) {
    std::vector<std::string> lines = lines_;
    lines.erase(lines.begin() + static_cast<long>(i));
    ExpectSameEverywhere(Files(lines));
    if (HasFatalFailure()) return;
  }
}

TEST_F(ParallelTest, EditedLines) {
  for (size_t i = 0; i < lines_.size(); i += 3) {
    for (size_t at : {size_t{1}, lines_[i].size() / 2, lines_[i].size() - 3}) {
      std::vector<std::string> lines = lines_;
      lines[i][at] = static_cast<char>(lines[i][at] ^ 0x01);
      ExpectSameEverywhere(Files(lines, i % 2 == 0));
      if (HasFatalFailure()) return;
      if (!ParseJson(lines[i].substr(0, lines[i].size() - 1)).ok()) continue;
      Rechain(&lines, i);  // the edit hidden from the chain: a checkpoint catches it
      ExpectSameEverywhere(Files(lines, i % 2 == 0));
      if (HasFatalFailure()) return;
    }
  }
}

TEST_F(ParallelTest, OtherBreaks) {
  std::vector<std::string> lines = lines_;
  std::swap(lines[10], lines[11]);
  ExpectSameEverywhere(Files(lines));
  // A checkpoint by another key.
  PrivateKey other = MustKey(KeyType::kEcdsaP256);
  LogBuilder foreign(&other);
  foreign.AddRecords(2);
  foreign.AddCheckpoint(&other);
  ExpectSameEverywhere({Files(lines_)[0], Write("foreign", Join(foreign.lines()))});
  // Files out of order, a file missing, a file that cannot be opened, an empty file.
  const std::vector<std::string> f = Files(lines_);
  ExpectSameEverywhere({f[1], f[0], f[2]});
  ExpectSameEverywhere({f[0], f[2]});
  ExpectSameEverywhere({f[0], (dir_ / "missing").string(), f[2]});
  ExpectSameEverywhere({f[0], Write("empty", ""), f[1], f[2]});
  // A cut last line; a cut gzip file; a blank line; a line of 16 MiB and more.
  std::string cut = Join(lines_);
  cut.pop_back();
  ExpectSameEverywhere({Write("cut", cut)});
  const std::string gz = Gzip(Join(lines_, 0, 30));
  ExpectSameEverywhere({Write("cut.gz", gz.substr(0, gz.size() - 40))});
  lines = lines_;
  lines.insert(lines.begin() + 17, "\n");
  ExpectSameEverywhere(Files(lines));
  lines = lines_;
  lines.insert(lines.begin() + 25, std::string(kMaxLineBytes + 1, 'x') + "\n");
  ExpectSameEverywhere(Files(lines, false));
}

}  // namespace
}  // namespace strongroom::audit
