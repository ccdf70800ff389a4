// The strongroom-audit binary: exit codes, text and --json output, proof bundles.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "audit/json.h"
#include "tests/unit/audit/test_log.h"

#ifndef SR_AUDIT_BINARY
#error "SR_AUDIT_BINARY must name the strongroom-audit binary"
#endif

namespace strongroom::audit {
namespace {

namespace fs = std::filesystem;
using testing::LogBuilder;
using testing::MustKey;
using testing::MustPublic;

struct Outcome {
  int exit_code = -1;
  std::string out;
};

std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') {
      q += "'\\''";
    } else {
      q.push_back(c);
    }
  }
  return q + "'";
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("audit_cli_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    LogBuilder b(&key_);
    for (int i = 0; i < 4; ++i) {
      b.AddRecords(7);
      b.AddCheckpoint();
      notes_.push_back(b.last_note());
    }
    b.AddRecords(2);
    lines_ = b.lines();
    pubkey_ = Write("audit.pem", MustPublic(key_).ToPem());
    old_ = Write("audit.log.1", b.Text(0, 20));
    new_ = Write("audit.log", b.Text(20));
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& contents) {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << contents;
    return p.string();
  }

  Outcome Exec(const std::vector<std::string>& args) {
    std::string cmd = Quote(SR_AUDIT_BINARY);
    for (const std::string& a : args) cmd += " " + Quote(a);
    cmd += " 2>/dev/null";
    Outcome run;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) return run;
    char buf[4096];
    size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) run.out.append(buf, n);
    const int status = ::pclose(p);
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return run;
  }

  PrivateKey key_ = MustKey(KeyType::kEcdsaP256);
  fs::path dir_;
  std::vector<std::string> lines_;
  std::vector<std::string> notes_;
  std::string pubkey_, old_, new_;
};

TEST_F(CliTest, Help) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"--help"},
                                             {"help"},
                                             {"verify", "--help"},
                                             {"inclusion", "--help"},
                                             {"consistency", "--help"}}) {
    Outcome r = Exec(args);
    EXPECT_EQ(r.exit_code, 0) << args[0];
    EXPECT_NE(r.out.find("Usage: strongroom-audit"), std::string::npos) << args[0];
  }
  EXPECT_EQ(Exec({}).exit_code, 2);
  EXPECT_EQ(Exec({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(Exec({"verify", "--bogus", old_}).exit_code, 2);
}

TEST_F(CliTest, VerifyIntactLog) {
  Outcome r = Exec({"verify", "--pubkey", pubkey_, old_, new_});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("OK: audit log intact"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("entries verified:   30"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("4 verified"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(testing::Time(1) + " .. " + testing::Time(30)), std::string::npos) << r.out;

  Outcome j = Exec({"verify", "--json", "--pubkey=" + pubkey_, old_, new_});
  EXPECT_EQ(j.exit_code, 0);
  Result<Json> report = ParseJson(j.out);
  ASSERT_TRUE(report.ok()) << report.message() << "\n" << j.out;
  EXPECT_TRUE(report->Find("ok")->bool_value());
  EXPECT_EQ(report->Find("entries")->AsUint(), 30u);
  EXPECT_EQ(report->Find("checkpoints")->AsUint(), 4u);
  EXPECT_EQ(report->Find("unsigned_lines")->AsUint(), 2u);
  EXPECT_EQ(report->Find("break")->type(), Json::Type::kNull);
  EXPECT_EQ(report->Find("last_checkpoint")->Find("file")->str(), new_);
}

TEST_F(CliTest, VerifyNamesTheFirstBreak) {
  std::vector<std::string> lines = lines_;
  lines.erase(lines.begin() + 9);
  std::string text;
  for (const std::string& l : lines) text += l;
  const std::string bad = Write("bad.log", text);
  Outcome r = Exec({"verify", "--pubkey", pubkey_, bad});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out.rfind(bad + ":10: seq 10: found seq 11 where seq 10 belongs", 0), 0u) << r.out;
  Outcome j = Exec({"verify", "--json", "--pubkey", pubkey_, bad});
  EXPECT_EQ(j.exit_code, 1);
  Result<Json> report = ParseJson(j.out);
  ASSERT_TRUE(report.ok()) << j.out;
  EXPECT_FALSE(report->Find("ok")->bool_value());
  const Json* brk = report->Find("break");
  ASSERT_TRUE(brk != nullptr && brk->is_object());
  EXPECT_EQ(brk->Find("file")->str(), bad);
  EXPECT_EQ(brk->Find("line")->AsUint(), 10u);
  EXPECT_EQ(brk->Find("seq")->AsUint(), 10u);
  EXPECT_EQ(brk->Find("kind")->str(), "tamper");
}

TEST_F(CliTest, VerifyWithTrustedCheckpoint) {
  const std::string cp = Write("latest.checkpoint", notes_.back());
  EXPECT_EQ(Exec({"verify", "--pubkey", pubkey_, "--checkpoint", cp, old_, new_}).exit_code, 0);
  // Only the older file: the tail is missing.
  Outcome r = Exec({"verify", "--pubkey", pubkey_, "--checkpoint", cp, old_});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find(old_ + ":21: seq 21: "), std::string::npos) << r.out;
  // A checkpoint line copied from the log works too.
  const std::string cp_line = Write("cp.line", lines_[31]);
  EXPECT_EQ(Exec({"verify", "--pubkey", pubkey_, "--checkpoint", cp_line, old_, new_}).exit_code,
            0);
  // A checkpoint not signed by the key is an input error.
  PrivateKey other = MustKey(KeyType::kEcdsaP256);
  const std::string other_pem = Write("other.pem", MustPublic(other).ToPem());
  EXPECT_EQ(Exec({"verify", "--pubkey", other_pem, "--checkpoint", cp, old_, new_}).exit_code, 2);
}

TEST_F(CliTest, VerifyInputErrors) {
  EXPECT_EQ(Exec({"verify", old_}).exit_code, 2);                    // no key
  EXPECT_EQ(Exec({"verify", "--pubkey", pubkey_}).exit_code, 2);     // no files
  EXPECT_EQ(Exec({"verify", "--pubkey", old_, old_}).exit_code, 2);  // not a key
  EXPECT_EQ(Exec({"verify", "--pubkey", pubkey_, (dir_ / "missing").string()}).exit_code, 2);
  // Wrong key: the checkpoints do not verify -> broken, not an input error.
  PrivateKey other = MustKey(KeyType::kEd25519);
  const std::string other_pem = Write("other.pem", MustPublic(other).ToPem());
  Outcome r = Exec({"verify", "--pubkey", other_pem, old_, new_});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find(":8: seq 8: checkpoint rejected"), std::string::npos) << r.out;
  // Both keys: fine.
  EXPECT_EQ(Exec({"verify", "--pubkey", other_pem, "--pubkey", pubkey_, old_, new_}).exit_code, 0);
}

TEST_F(CliTest, InclusionProof) {
  Outcome r = Exec({"inclusion", "--pubkey", pubkey_, "--seq", "10", old_, new_});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("OK: entry seq 10 is leaf 8 of the checkpoint at tree size 28"),
            std::string::npos)
      << r.out;
  Outcome j = Exec({"inclusion", "--pubkey", pubkey_, "--seq", "10", "--json", old_, new_});
  ASSERT_EQ(j.exit_code, 0);
  Result<Json> bundle = ParseJson(j.out);
  ASSERT_TRUE(bundle.ok()) << j.out;
  EXPECT_EQ(bundle->Find("leaf_index")->AsUint(), 8u);
  EXPECT_EQ(bundle->Find("entry")->str() + "\n", lines_[9]);
  const std::string path = Write("proof.json", j.out);
  Outcome check = Exec({"inclusion", "--pubkey", pubkey_, "--proof", path});
  EXPECT_EQ(check.exit_code, 0) << check.out;
  // A tampered bundle fails: another entry, or another leaf index.
  Json forged = *bundle;
  forged.Set("leaf_index", Json::Uint(9));
  EXPECT_EQ(Exec({"inclusion", "--pubkey", pubkey_, "--proof",
                  Write("forged1.json", CanonicalJson(forged))})
                .exit_code,
            1);
  forged = *bundle;
  std::string entry = forged.Find("entry")->str();
  entry.replace(entry.find("agent/7"), 7, "agent/8");
  forged.Set("entry", Json::String(entry));
  EXPECT_EQ(Exec({"inclusion", "--pubkey", pubkey_, "--proof",
                  Write("forged2.json", CanonicalJson(forged))})
                .exit_code,
            1);
  // Against an earlier checkpoint given by the auditor.
  const std::string cp = Write("cp", notes_[1]);  // tree size 14
  Outcome early =
      Exec({"inclusion", "--pubkey", pubkey_, "--seq", "10", "--checkpoint", cp, old_, new_});
  EXPECT_EQ(early.exit_code, 0) << early.out;
  EXPECT_NE(early.out.find("tree size 14"), std::string::npos) << early.out;
  // A checkpoint line is not an entry; the unsigned tail is not proven yet.
  EXPECT_EQ(Exec({"inclusion", "--pubkey", pubkey_, "--seq", "8", old_, new_}).exit_code, 2);
  EXPECT_EQ(Exec({"inclusion", "--pubkey", pubkey_, "--seq", "33", old_, new_}).exit_code, 1);
  EXPECT_EQ(Exec({"inclusion", "--pubkey", pubkey_, "--seq", "99", old_, new_}).exit_code, 2);
  EXPECT_EQ(Exec({"inclusion", "--pubkey", pubkey_, old_, new_}).exit_code, 2);
}

TEST_F(CliTest, ConsistencyProof) {
  Outcome r = Exec({"consistency", "--pubkey", pubkey_, "--from", "7", "--to", "21", old_, new_});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("OK: the checkpoint at tree size 7"), std::string::npos) << r.out;
  Outcome j = Exec({"consistency", "--pubkey", pubkey_, "--from", "14", "--json", old_, new_});
  ASSERT_EQ(j.exit_code, 0) << j.out;
  Result<Json> bundle = ParseJson(j.out);
  ASSERT_TRUE(bundle.ok()) << j.out;
  const std::string path = Write("proof.json", j.out);
  Outcome check = Exec({"consistency", "--pubkey", pubkey_, "--proof", path});
  EXPECT_EQ(check.exit_code, 0) << check.out;
  EXPECT_NE(check.out.find("tree size 14"), std::string::npos);
  EXPECT_NE(check.out.find("tree size 28"), std::string::npos);
  // Swap in a checkpoint from a forked history signed by the same key: not consistent.
  LogBuilder fork(&key_, "dev1", "node1", "fork");
  for (int i = 0; i < 4; ++i) {
    fork.AddRecords(7);
    fork.AddCheckpoint();
  }
  Json forged = *bundle;
  forged.Set("checkpoint2", Json::String(fork.last_note()));
  Outcome bad = Exec(
      {"consistency", "--pubkey", pubkey_, "--proof", Write("forged.json", CanonicalJson(forged))});
  EXPECT_EQ(bad.exit_code, 1) << bad.out;
  EXPECT_EQ(Exec({"consistency", "--pubkey", pubkey_, "--from", "5", old_, new_}).exit_code, 2);
  EXPECT_EQ(Exec({"consistency", "--pubkey", pubkey_, old_, new_}).exit_code, 2);
}

// Retention: compressed rotated files, and starting at a later file from the checkpoint line
// that ends the file before it (docs/audit-verification.md, "Starting at a later file").
TEST_F(CliTest, VerifyFromCheckpointWithCompressedFiles) {
  // lines_[15] is the checkpoint at seq 16 (tree size 14).
  const std::string cp = Write("start.line", lines_[15]);
  const std::string rest = Write("rest.log.gz", testing::Gzip(testing::Join(lines_, 16)));
  Outcome r = Exec({"verify", "--pubkey", pubkey_, "--from-checkpoint", cp, rest});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("OK: audit log intact"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("started after:      checkpoint seq 16 (" + cp + "), tree size 14"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("lines:              18 (seq 17..34)"), std::string::npos) << r.out;
  Outcome j = Exec({"verify", "--json", "--pubkey", pubkey_, "--from-checkpoint", cp, rest});
  Result<Json> report = ParseJson(j.out);
  ASSERT_TRUE(report.ok()) << j.out;
  EXPECT_EQ(report->Find("first_seq")->AsUint(), 17u);
  EXPECT_EQ(report->Find("start_checkpoint")->Find("seq")->AsUint(), 16u);
  // The whole log, compressed, reports the same end state.
  const std::string all = Write("all.log.gz", testing::Gzip(testing::Join(lines_)));
  Outcome whole = Exec({"verify", "--json", "--pubkey", pubkey_, all});
  Result<Json> whole_report = ParseJson(whole.out);
  ASSERT_TRUE(whole_report.ok()) << whole.out;
  EXPECT_EQ(whole_report->Find("root")->str(), report->Find("root")->str());

  // Files that do not continue the checkpoint: a break at their first line.
  const std::string later = Write("later.log", testing::Join(lines_, 20));
  Outcome gap = Exec({"verify", "--pubkey", pubkey_, "--from-checkpoint", cp, later});
  EXPECT_EQ(gap.exit_code, 1) << gap.out;
  EXPECT_EQ(gap.out.rfind(later + ":1: seq 17: the files start at seq 21", 0), 0u) << gap.out;
  // A start checkpoint the key did not sign, a record line, or a whole file: input errors.
  PrivateKey other = MustKey(KeyType::kEcdsaP256);
  const std::string other_pem = Write("other.pem", MustPublic(other).ToPem());
  EXPECT_EQ(Exec({"verify", "--pubkey", other_pem, "--from-checkpoint", cp, rest}).exit_code, 2);
  const std::string record = Write("record.line", lines_[16]);
  EXPECT_EQ(Exec({"verify", "--pubkey", pubkey_, "--from-checkpoint", record, rest}).exit_code, 2);
  const std::string file = Write("file.log", testing::Join(lines_, 8, 16));
  EXPECT_EQ(Exec({"verify", "--pubkey", pubkey_, "--from-checkpoint", file, rest}).exit_code, 2);
}

TEST_F(CliTest, ProofsFromCheckpointEqualProofsOverTheWholeLog) {
  const std::string cp = Write("start.line", lines_[15]);
  const std::string rest = Write("rest.log", testing::Join(lines_, 16));
  // seq 20 is leaf 17; the proof against the latest checkpoint (tree size 28) is the same bytes.
  Outcome whole = Exec({"inclusion", "--pubkey", pubkey_, "--seq", "20", "--json", old_, new_});
  ASSERT_EQ(whole.exit_code, 0) << whole.out;
  Outcome from = Exec(
      {"inclusion", "--pubkey", pubkey_, "--seq", "20", "--json", "--from-checkpoint", cp, rest});
  ASSERT_EQ(from.exit_code, 0) << from.out;
  EXPECT_EQ(from.out, whole.out);
  const std::string bundle = Write("proof.json", from.out);
  EXPECT_EQ(Exec({"inclusion", "--pubkey", pubkey_, "--proof", bundle}).exit_code, 0);
  // An entry before the start cannot be proven from these files.
  EXPECT_EQ(Exec({"inclusion", "--pubkey", pubkey_, "--seq", "10", "--from-checkpoint", cp, rest})
                .exit_code,
            2);
  // Consistency from the start checkpoint's size (14) or later.
  Outcome c_whole =
      Exec({"consistency", "--pubkey", pubkey_, "--from", "14", "--json", old_, new_});
  Outcome c_from = Exec({"consistency", "--pubkey", pubkey_, "--from", "14", "--json",
                         "--from-checkpoint", cp, rest});
  ASSERT_EQ(c_from.exit_code, 0) << c_from.out;
  EXPECT_EQ(c_from.out, c_whole.out);
  EXPECT_EQ(Exec({"consistency", "--pubkey", pubkey_, "--from", "21", "--to", "28",
                  "--from-checkpoint", cp, rest})
                .exit_code,
            0);
  EXPECT_EQ(Exec({"consistency", "--pubkey", pubkey_, "--from", "7", "--from-checkpoint", cp, rest})
                .exit_code,
            2);
}

// Several nodes in one command (docs/audit-verification.md, "Several nodes").
TEST_F(CliTest, VerifySeveralNodes) {
  LogBuilder node2(&key_, "dev1", "node2", "n2");
  node2.AddRecords(3);
  node2.AddCheckpoint();
  node2.AddRecords(3);
  node2.AddCheckpoint();
  node2.AddRecord();
  const std::string n2_old =
      Write("node2.log.1.gz", testing::Gzip(testing::Join(node2.lines(), 0, 4)));
  const std::string n2_new = Write("node2.log", testing::Join(node2.lines(), 4));
  // Newest first, mixed: grouped and ordered by the verifier.
  Outcome r = Exec({"verify", "--pubkey", pubkey_, new_, n2_new, old_, n2_old});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("node strongroom-audit/dev1/node1 (2 files)\nOK: audit log intact"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("node strongroom-audit/dev1/node2 (2 files)\nOK: audit log intact"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("OK: 2 nodes: 2 intact, 0 unproven, 0 broken\n"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("total:              4 files, 43 lines, 37 entries, 6 checkpoints"),
            std::string::npos)
      << r.out;
  Outcome j = Exec({"verify", "--json", "--pubkey", pubkey_, new_, n2_new, old_, n2_old});
  EXPECT_EQ(j.exit_code, 0);
  Result<Json> report = ParseJson(j.out);
  ASSERT_TRUE(report.ok()) << j.out;
  EXPECT_TRUE(report->Find("ok")->bool_value());
  ASSERT_EQ(report->Find("nodes")->items().size(), 2u);
  const Json& first = report->Find("nodes")->items()[0];
  EXPECT_EQ(first.Find("origin")->str(), "strongroom-audit/dev1/node1");
  EXPECT_EQ(first.Find("file_names")->items()[0].str(), old_);
  EXPECT_EQ(report->Find("total")->Find("intact")->AsUint(), 2u);

  // One node broken: exit 1, that node's break, the other still reported intact.
  std::vector<std::string> lines = node2.lines();
  lines[5].replace(lines[5].find("agent/7"), 7, "agent/8");
  const std::string n2_bad = Write("node2-bad.log", testing::Join(lines, 4));
  Outcome bad = Exec({"verify", "--pubkey", pubkey_, old_, new_, n2_old, n2_bad});
  EXPECT_EQ(bad.exit_code, 1) << bad.out;
  EXPECT_NE(bad.out.find(n2_bad + ":2: seq 6: \"hash\" does not match"), std::string::npos)
      << bad.out;
  EXPECT_NE(bad.out.find("FAILED: 2 nodes: 1 intact, 0 unproven, 1 broken"), std::string::npos)
      << bad.out;
  // A file no node claims fails the run.
  const std::string stray = Write("stray.log", testing::Join(lines_, 32));
  Outcome unclaimed = Exec({"verify", "--pubkey", pubkey_, old_, n2_old, n2_new, stray});
  EXPECT_EQ(unclaimed.exit_code, 1) << unclaimed.out;
  EXPECT_NE(unclaimed.out.find("unattributed: " + stray + ": cannot tell which node"),
            std::string::npos)
      << unclaimed.out;
  // Proofs are about one node's log.
  EXPECT_EQ(Exec({"inclusion", "--pubkey", pubkey_, "--seq", "2", old_, n2_old}).exit_code, 2);
}

// A log on a pipe (process substitution, /dev/stdin), plain or gzip.
TEST_F(CliTest, VerifyFromAPipe) {
  const std::string gz = Write("all.gz", testing::Gzip(testing::Join(lines_)));
  for (const std::string& cat : {"cat " + Quote(old_) + " " + Quote(new_), "cat " + Quote(gz)}) {
    const std::string cmd =
        cat + " | " + Quote(SR_AUDIT_BINARY) + " verify --pubkey " + Quote(pubkey_) + " /dev/stdin";
    FILE* p = ::popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string out;
    char buf[4096];
    size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
    const int status = ::pclose(p);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << cmd << "\n" << out;
    EXPECT_NE(out.find("lines:              34 (seq 1..34)"), std::string::npos) << out;
  }
}

// Throughput in the report; --threads.
TEST_F(CliTest, ThreadsAndThroughput) {
  for (const std::string threads : {"1", "3"}) {
    Outcome r = Exec({"verify", "--threads", threads, "--pubkey", pubkey_, old_, new_});
    EXPECT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("  throughput:         "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(" lines/s, "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(" MB/s ("), std::string::npos) << r.out;
    Outcome j = Exec({"verify", "--json", "--threads=" + threads, "--pubkey", pubkey_, old_, new_});
    Result<Json> report = ParseJson(j.out);
    ASSERT_TRUE(report.ok()) << j.out;
    const Json* t = report->Find("throughput");
    ASSERT_TRUE(t != nullptr && t->is_object()) << j.out;
    EXPECT_EQ(t->Find("threads")->str(), threads);
    EXPECT_EQ(t->Find("bytes")->AsUint(), testing::Join(lines_).size());
    for (const char* key : {"seconds", "lines_per_second", "megabytes_per_second"}) {
      ASSERT_TRUE(t->Find(key) != nullptr && t->Find(key)->is_number()) << key;
    }
  }
  EXPECT_EQ(Exec({"verify", "--threads", "0", "--pubkey", pubkey_, old_}).exit_code, 2);
  EXPECT_EQ(Exec({"verify", "--threads", "x", "--pubkey", pubkey_, old_}).exit_code, 2);
}

}  // namespace
}  // namespace strongroom::audit
