// The audit file's group commit (appliance/core/audit_file.h): records queued while a batch is
// written go out together in the next one, in the order they were queued; an appender returns
// only once its batch (ended by its MAC or checkpoint line) is written and synced, or failed; a
// failed batch fails its own records and no others; checkpoints end batches; rotation and
// closing under load lose nothing acknowledged. And, with real processes killed mid-batch and
// the file cut as a power loss would leave it, the recovered log verifies offline and holds
// every acknowledged record.
#include "appliance/core/audit_file.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "audit/chain.h"
#include "audit/encoding.h"
#include "audit/json.h"
#include "audit/merkle.h"
#include "audit/verifier.h"
#include "tests/support/cluster_support.h"
#include "tests/unit/core/audit_test_files.h"
#include "tests/unit/core/audit_test_seal.h"

namespace strongroom::core {
namespace {

using ::testing::ElementsAre;
using testing::Lines;
using testing::ReadFile;

std::string TypeOf(const std::string& line) {
  auto obj = audit::ParseJson(line);
  if (!obj.ok()) return "";
  const audit::Json* t = obj->Find("type");
  return t != nullptr ? t->str() : "";
}

// The request ids of the records in `text`, in file order.
std::vector<std::string> RecordIds(const std::string& text) {
  std::vector<std::string> ids;
  for (const std::string& l : Lines(text)) {
    auto obj = audit::ParseJson(l);
    if (!obj.ok()) continue;
    const audit::Json* req = obj->Find("request");
    if (req == nullptr) continue;
    const audit::Json* id = req->Find("id");
    if (id != nullptr) ids.push_back(id->str());
  }
  return ids;
}

// Records per batch: the records between consecutive proof lines (MAC or checkpoint).
std::vector<int> BatchSizes(const std::string& text) {
  std::vector<int> sizes;
  int n = 0;
  for (const std::string& l : Lines(text)) {
    const std::string t = TypeOf(l);
    if (t == "mac" || t == "checkpoint") {
      if (n > 0) sizes.push_back(n);
      n = 0;
    } else if (t == "request" || t == "response") {
      ++n;
    }
  }
  if (n > 0) sizes.push_back(n);  // an unproven tail
  return sizes;
}

audit::PreparedRecord Record(const std::string& id) {
  auto obj = audit::ParseJson(
      absl::StrCat(R"({"time":"2024-05-01T12:00:00.000000001Z","type":"request","auth":{},)",
                   R"("request":{"id":")", id, R"(","operation":"update","path":"secret/data/x",)",
                   R"("data":{"v":"hmac-sha256:00"}}})"));
  EXPECT_TRUE(obj.ok()) << obj.message();
  auto prepared = audit::PrepareRecord(*obj);
  EXPECT_TRUE(prepared.ok()) << prepared.message();
  return std::move(prepared).value();
}

audit::Report Verify(const std::vector<std::string>& paths, const audit::PublicKey& key,
                     bool require_signed_tail) {
  std::vector<audit::PublicKey> keys;
  keys.push_back(audit::PublicKey::FromDer(key.spki_der()).value());
  audit::VerifyOptions vo;
  vo.keys = keys;
  vo.require_signed_tail = require_signed_tail;
  return audit::VerifyFiles(paths, vo);
}

// The saved chain state, kept in a file (as the broker keeps it in barrier storage): written to
// a temporary file and renamed, so a process killed while saving leaves the old or the new one.
void SaveState(const std::string& path, const audit::ChainState& st, uint64_t offset,
               const std::string& note) {
  std::string text =
      absl::StrCat(st.last_seq, "\n", audit::HexEncode(st.last_hash), "\n", st.tree.size(), "\n",
                   offset, "\n", audit::HexEncode(std::string_view(note)), "\n");
  for (const audit::Hash& h : st.tree.nodes()) text += audit::HexEncode(h) + "\n";
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
  }
  std::rename(tmp.c_str(), path.c_str());
}

AuditFileSaved LoadState(const std::string& path) {
  std::istringstream in(ReadFile(path));
  AuditFileSaved saved;
  std::string hash, note_hex;
  uint64_t tree_size = 0;
  in >> saved.state.last_seq >> hash >> tree_size >> saved.offset >> note_hex;
  saved.state.last_hash = audit::HashFromHex(hash).value_or(audit::Hash{});
  std::vector<audit::Hash> nodes;
  for (std::string h; in >> h;) nodes.push_back(audit::HashFromHex(h).value_or(audit::Hash{}));
  auto range = audit::CompactRange::FromNodes(tree_size, nodes);
  EXPECT_TRUE(range.ok()) << range.message();
  if (range.ok()) saved.state.tree = std::move(range).value();
  for (size_t i = 0; i + 1 < note_hex.size(); i += 2) {
    saved.note.push_back(static_cast<char>(std::stoi(note_hex.substr(i, 2), nullptr, 16)));
  }
  return saved;
}

class AuditFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = strongroom::testing::NewTempDir("audit-file-test");
    ASSERT_FALSE(dir_.empty());
    path_ = dir_ + "/audit.log";
    state_path_ = dir_ + "/state";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  AuditFileOptions Options(testing::AuditTestSeal* seal, uint64_t checkpoint_entries = 1000) {
    AuditFileOptions o;
    o.path = path_;
    o.device_id = "file";
    o.node_id = "node1";
    o.keys.push_back(seal->public_key());
    o.seal = seal;
    o.clock = [this] { return absl::FromUnixSeconds(1714564800) + absl::Nanoseconds(++ticks_); };
    o.checkpoint_entries = checkpoint_entries;
    o.save = [this](const audit::ChainState& st, uint64_t offset, const std::string& note) {
      ++saves_;
      SaveState(state_path_, st, offset, note);
      return absl::OkStatus();
    };
    return o;
  }

  // A new log, opened with its signed checkpoint of the empty log (as Enable does).
  std::unique_ptr<AuditFile> NewLog(testing::AuditTestSeal* seal, uint64_t checkpoint_entries) {
    auto f = std::make_unique<AuditFile>(Options(seal, checkpoint_entries));
    EXPECT_TRUE(f->OpenNew(absl::StatusCode::kFailedPrecondition, "is not empty").ok());
    EXPECT_TRUE(f->Checkpoint(/*force=*/true).ok());
    return f;
  }

  std::string dir_;
  std::string path_;
  std::string state_path_;
  std::atomic<int64_t> ticks_{0};
  std::atomic<int> saves_{0};
};

// Waits (up to a minute: a bound against hanging, not a timing assertion) for `done`.
template <typename F>
bool WaitFor(F done) {
  for (int i = 0; i < 60000 && !done(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return done();
}

// Holds the first batch in the token (the seal's first MAC call) until Release(), so that the
// test can queue records behind it; counts the MAC calls. `after`, if given, runs in every MAC
// call once any hold is over, with the call's number (1 for the first).
class FirstBatchGate {
 public:
  explicit FirstBatchGate(testing::AuditTestSeal* seal, std::function<void(int)> after = {}) {
    seal->before_mac = [this, after = std::move(after)] {
      const int call = ++mac_calls_;
      if (call == 1) {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return released_; });
      }
      if (after) after(call);
    };
  }
  // Whether the first batch came to its MAC (and is held there) in time.
  bool WaitHeld() {
    return WaitFor([&] { return mac_calls_.load() == 1; });
  }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
  }
  int mac_calls() const { return mac_calls_.load(); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
  std::atomic<int> mac_calls_{0};
};

// Eight appenders; the first batch is held in the token until the seven others have queued:
// they go out as one batch, with one MAC and one sync, in the order they queued.
TEST_F(AuditFileTest, RecordsQueuedDuringABatchGoOutTogetherInTheNext) {
  testing::AuditTestSeal seal;
  auto f = NewLog(&seal, 1000);
  FirstBatchGate gate(&seal);
  std::vector<std::thread> threads;
  std::vector<absl::Status> results(8);
  threads.emplace_back([&] { results[0] = f->Append(Record("r0")); });
  ASSERT_TRUE(gate.WaitHeld());
  for (int t = 1; t < 8; ++t) {
    // One at a time, so that the queue's order is known.
    threads.emplace_back([&, t] { results[t] = f->Append(Record(absl::StrCat("r", t))); });
    ASSERT_TRUE(WaitFor([&] { return f->queued() == static_cast<size_t>(t); }));
  }
  gate.Release();
  for (auto& t : threads) t.join();
  for (const auto& r : results) EXPECT_TRUE(r.ok()) << r;
  EXPECT_EQ(gate.mac_calls(), 2);  // one MAC per batch
  f->Close();
  const std::string text = ReadFile(path_);
  EXPECT_THAT(BatchSizes(text), ElementsAre(1, 7));
  EXPECT_THAT(RecordIds(text), ElementsAre("r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"));
  const audit::Report report = Verify({path_}, seal.public_key(), true);
  EXPECT_TRUE(report.ok()) << report.failure->ToString();
  EXPECT_EQ(report.entries, 8u);
}

// Many appenders at once: every acknowledged record is in the log exactly once, each thread's
// records in the order it appended them, and the log verifies with checkpoints all along.
TEST_F(AuditFileTest, ConcurrentAppendersAreAllDurableAndInOrder) {
  testing::AuditTestSeal seal;
  auto f = NewLog(&seal, 64);
  constexpr int kThreads = 8;
  constexpr int kEach = 150;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        if (!f->Append(Record(absl::StrCat("t", t, "-", i))).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  f->Close();
  const std::string text = ReadFile(path_);
  const std::vector<std::string> ids = RecordIds(text);
  ASSERT_EQ(ids.size(), static_cast<size_t>(kThreads * kEach));
  std::map<int, int> next;  // thread -> next index expected
  for (const std::string& id : ids) {
    int t = -1, i = -1;
    ASSERT_EQ(std::sscanf(id.c_str(), "t%d-%d", &t, &i), 2) << id;
    EXPECT_EQ(i, next[t]) << "thread " << t << " out of order";
    next[t] = i + 1;
  }
  const audit::Report report = Verify({path_}, seal.public_key(), true);
  ASSERT_TRUE(report.ok()) << report.failure->ToString();
  EXPECT_EQ(report.entries, static_cast<uint64_t>(kThreads * kEach));
  // A checkpoint ends the batch in which 64 unsigned records are reached (a batch holds at most
  // one record per appender).
  EXPECT_GE(report.checkpoints, static_cast<uint64_t>(kThreads * kEach / (64 + kThreads)));
  // Every batch ends with exactly one proof line.
  EXPECT_EQ(report.macs + report.checkpoints - 2, BatchSizes(text).size());
}

// A batch whose MAC the token refuses is not written: its records fail, and the records queued
// behind it go out in the next batch.
TEST_F(AuditFileTest, AFailedBatchFailsItsOwnRecordsOnly) {
  testing::AuditTestSeal seal;
  auto f = NewLog(&seal, 1000);
  FirstBatchGate gate(&seal, [&](int call) { seal.fail_mac = call == 1; });
  absl::Status first;
  std::thread t0([&] { first = f->Append(Record("doomed")); });
  ASSERT_TRUE(gate.WaitHeld());
  std::vector<std::thread> threads;
  std::vector<absl::Status> results(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] { results[t] = f->Append(Record(absl::StrCat("ok", t))); });
  }
  ASSERT_TRUE(WaitFor([&] { return f->queued() == 4; }));
  gate.Release();
  t0.join();
  for (auto& t : threads) t.join();
  EXPECT_TRUE(absl::IsUnavailable(first)) << first;
  for (const auto& r : results) EXPECT_TRUE(r.ok()) << r;
  f->Close();
  const std::string text = ReadFile(path_);
  EXPECT_THAT(text, ::testing::Not(::testing::HasSubstr("doomed")));
  EXPECT_EQ(RecordIds(text).size(), 4u);
  const audit::Report report = Verify({path_}, seal.public_key(), true);
  EXPECT_TRUE(report.ok()) << report.failure->ToString();
}

// A record that cannot be chained (longer than a line may be) fails alone; the rest of its batch
// is written.
TEST_F(AuditFileTest, ARecordThatCannotBeWrittenFailsAloneInItsBatch) {
  testing::AuditTestSeal seal;
  auto f = NewLog(&seal, 1000);
  FirstBatchGate gate(&seal);
  absl::Status first;
  std::thread t0([&] { first = f->Append(Record("first")); });
  ASSERT_TRUE(gate.WaitHeld());
  audit::PreparedRecord huge = Record("huge");
  huge.part[3] += ",\"z\":\"" + std::string(audit::kMaxLineBytes, 'x') + "\"";
  std::vector<audit::PreparedRecord> records;
  records.push_back(Record("a"));
  records.push_back(std::move(huge));
  records.push_back(Record("b"));
  std::vector<absl::Status> results(3);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < records.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = f->Append(std::move(records[i])); });
    ASSERT_TRUE(WaitFor([&] { return f->queued() == i + 1; }));
  }
  gate.Release();
  t0.join();
  for (auto& t : threads) t.join();
  EXPECT_TRUE(first.ok()) << first;
  EXPECT_TRUE(results[0].ok()) << results[0];
  EXPECT_TRUE(absl::IsInternal(results[1])) << results[1];
  EXPECT_TRUE(results[2].ok()) << results[2];
  f->Close();
  EXPECT_THAT(RecordIds(ReadFile(path_)), ElementsAre("first", "a", "b"));
  const audit::Report report = Verify({path_}, seal.public_key(), true);
  EXPECT_TRUE(report.ok()) << report.failure->ToString();
}

// Bytes someone else appends between two batches fail the next batch closed (nothing of it is
// acknowledged) until Reopen's recovery moves them out.
TEST_F(AuditFileTest, ForeignBytesFailTheNextBatchClosedUntilRecovered) {
  testing::AuditTestSeal seal;
  auto f = NewLog(&seal, 1000);
  ASSERT_TRUE(f->Append(Record("before")).ok());
  std::ofstream(path_, std::ios::app) << "{\"forged\":true}\n";
  const absl::Status s = f->Append(Record("refused"));
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_TRUE(absl::IsUnavailable(f->Append(Record("closed"))));
  ASSERT_TRUE(f->Reopen().ok());
  ASSERT_TRUE(f->Append(Record("after")).ok());
  f->Close();
  const std::string text = ReadFile(path_);
  EXPECT_THAT(RecordIds(text), ElementsAre("before", "after"));
  const audit::Report report = Verify({path_}, seal.public_key(), true);
  EXPECT_FALSE(report.failure.has_value()) << report.failure->ToString();
  EXPECT_EQ(report.unproven_markers, 1u);  // the forged line, moved out and reported
}

// A due checkpoint ends the batch that reaches it (no MAC line there), and its state is saved.
TEST_F(AuditFileTest, ADueCheckpointEndsTheBatchAndIsSaved) {
  testing::AuditTestSeal seal;
  auto f = NewLog(&seal, 5);
  ASSERT_EQ(saves_.load(), 1);
  for (int i = 0; i < 12; ++i) ASSERT_TRUE(f->Append(Record(absl::StrCat("c", i))).ok());
  EXPECT_EQ(saves_.load(), 3);  // after records 5 and 10
  std::vector<std::string> types;
  for (const std::string& l : Lines(ReadFile(path_))) types.push_back(TypeOf(l));
  ASSERT_EQ(types.size(), 1u + 12u + 10u + 2u);
  EXPECT_EQ(types[10], "checkpoint");  // checkpoint, 4 x (record, mac), record, checkpoint
  EXPECT_EQ(types[9], "request");
  const AuditFileSaved saved = LoadState(state_path_);
  EXPECT_EQ(saved.state.tree.size(), 10u);
  EXPECT_EQ(
      saved.offset, std::filesystem::file_size(path_) - 0u - [&] {
        // The lines after the second checkpoint: record, mac, record, mac.
        uint64_t tail = 0;
        const auto lines = Lines(ReadFile(path_));
        for (size_t i = lines.size() - 4; i < lines.size(); ++i) tail += lines[i].size() + 1;
        return tail;
      }());
  f->Close();
  EXPECT_EQ(TypeOf(Lines(ReadFile(path_)).back()), "checkpoint");
  const audit::Report report = Verify({path_}, seal.public_key(), true);
  EXPECT_TRUE(report.ok()) << report.failure->ToString();
  EXPECT_EQ(report.checkpoints, 4u);
}

// SIGHUP while appenders write: every rotated file ends with a checkpoint, the files chain into
// one log, and every acknowledged record is in it.
TEST_F(AuditFileTest, RotationUnderLoadLosesNothing) {
  testing::AuditTestSeal seal;
  auto f = NewLog(&seal, 1000);
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::set<std::string> acked;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) {
        const std::string id = absl::StrCat("t", t, "-", i);
        if (f->Append(Record(id)).ok()) {
          std::lock_guard<std::mutex> lock(mu);
          acked.insert(id);
        }
      }
    });
  }
  std::vector<std::string> files;
  for (int r = 0; r < 5; ++r) {
    const size_t before = [&] {
      std::lock_guard<std::mutex> lock(mu);
      return acked.size();
    }();
    ASSERT_TRUE(WaitFor([&] {
      std::lock_guard<std::mutex> lock(mu);
      return acked.size() >= before + 20;
    }));
    const std::string rotated = absl::StrCat(path_, ".", r);
    ASSERT_EQ(std::rename(path_.c_str(), rotated.c_str()), 0);
    ASSERT_TRUE(f->Reopen().ok());
    files.push_back(rotated);
  }
  stop = true;
  for (auto& t : threads) t.join();
  f->Close();
  files.push_back(path_);
  std::set<std::string> logged;
  for (const std::string& file : files) {
    EXPECT_EQ(TypeOf(Lines(ReadFile(file)).back()), "checkpoint") << file;
    for (const std::string& id : RecordIds(ReadFile(file))) EXPECT_TRUE(logged.insert(id).second);
  }
  for (const std::string& id : acked) EXPECT_EQ(logged.count(id), 1u) << id;
  const audit::Report report = Verify(files, seal.public_key(), true);
  EXPECT_TRUE(report.ok()) << report.failure->ToString();
  EXPECT_EQ(report.entries, logged.size());
}

// Closing while appenders write: what was acknowledged is in the file, which ends signed; later
// appends are refused.
TEST_F(AuditFileTest, CloseUnderLoadEndsTheFileSignedAndRefusesTheRest) {
  testing::AuditTestSeal seal;
  auto f = NewLog(&seal, 1000);
  std::atomic<bool> closed{false};
  std::mutex mu;
  std::set<std::string> acked;
  std::atomic<int> refused_after_close{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100000; ++i) {
        const bool was_closed = closed;
        const std::string id = absl::StrCat("t", t, "-", i);
        const absl::Status s = f->Append(Record(id));
        if (s.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          acked.insert(id);
        } else if (was_closed) {
          ++refused_after_close;
          return;
        }
      }
    });
  }
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> lock(mu);
    return acked.size() >= 100;
  }));
  f->Close();
  closed = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(refused_after_close.load(), 4);
  const std::string text = ReadFile(path_);
  EXPECT_EQ(TypeOf(Lines(text).back()), "checkpoint");
  std::set<std::string> logged;
  for (const std::string& id : RecordIds(text)) logged.insert(id);
  for (const std::string& id : acked) EXPECT_EQ(logged.count(id), 1u) << id;
  const audit::Report report = Verify({path_}, seal.public_key(), true);
  EXPECT_TRUE(report.ok()) << report.failure->ToString();
}

// ---- Crashes: real processes, killed mid-batch ----------------------------------------------

// The writer process: appends from 8 threads until killed, reporting each acknowledged record
// on `ack_fd` (one short write per record, atomic on a pipe). Never returns.
[[noreturn]] void WriterChild(AuditFileOptions options, bool fresh, const std::string& state_path,
                              int ack_fd, int round) {
  testing::AuditTestSeal seal;
  options.seal = &seal;
  AuditFile f(std::move(options));
  absl::Status s = fresh ? f.OpenNew(absl::StatusCode::kFailedPrecondition, "is not empty")
                         : f.Resume(LoadState(state_path));
  if (s.ok() && fresh) s = f.Checkpoint(/*force=*/true).status();
  if (!s.ok()) {
    std::fprintf(stderr, "writer child: %s\n", s.ToString().c_str());
    _exit(3);
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0;; ++i) {
        const std::string id = absl::StrCat("r", round, "-t", t, "-", i);
        if (!f.Append(Record(id)).ok()) _exit(4);
        const std::string ack = id + "\n";
        if (::write(ack_fd, ack.data(), ack.size()) != static_cast<ssize_t>(ack.size())) _exit(5);
      }
    });
  }
  for (auto& t : threads) t.join();
  _exit(0);
}

// The end of the first proof line (MAC or checkpoint) after the line holding `id`: a record is
// acknowledged only once the proof after it is synced, so a power loss keeps at least this.
uint64_t DurableEnd(const std::string& text, const std::string& id) {
  const size_t at = text.find("\"id\":\"" + id + "\"");
  if (at == std::string::npos) return 0;
  for (size_t line = text.find('\n', at) + 1; line < text.size();) {
    const size_t end = text.find('\n', line);
    const std::string t = TypeOf(text.substr(line, end - line));
    if (t == "mac" || t == "checkpoint") return end + 1;
    line = end + 1;
  }
  return 0;
}

TEST_F(AuditFileTest, AWriterKilledMidBatchLeavesAVerifiablePrefixWithEveryAcknowledgedRecord) {
  testing::AuditTestSeal seal;
  std::mt19937 rng(22);
  std::set<std::string> acked;
  int unsynced_rounds = 0;  // killed with bytes after the last acknowledged proof
  int torn_rounds = 0;      // and cut there, as by a power loss
  for (int round = 0; round < 6; ++round) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      WriterChild(Options(&seal, 40), round == 0, state_path_, fds[1], round);
    }
    ::close(fds[1]);
    // Let it write a while, a different while each round, then kill it wherever it is.
    const size_t want = 100 + rng() % 400;
    std::string acks;
    size_t count = 0;
    char buf[4096];
    while (count < want) {
      const ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      acks.append(buf, static_cast<size_t>(n));
      count = static_cast<size_t>(std::count(acks.begin(), acks.end(), '\n'));
    }
    // Not right as acknowledgements arrive (then a batch has just ended): anywhere in a batch.
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 4000));
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the writer stopped by itself: " << status;
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) {
      acks.append(buf, static_cast<size_t>(n));
    }
    ::close(fds[0]);
    ASSERT_GE(count, want);
    std::vector<std::string> round_acks = Lines(acks);
    if (!acks.empty() && acks.back() != '\n') round_acks.pop_back();  // a cut ack: not counted

    // A power loss keeps everything synced and any prefix of the rest: cut the file somewhere
    // after the last acknowledged record's proof (not at all in the first round).
    std::string text = ReadFile(path_);
    uint64_t durable = 0;
    for (const std::string& id : round_acks) {
      const uint64_t end = DurableEnd(text, id);
      ASSERT_GT(end, 0u) << id << " was acknowledged but its proof is not in the file";
      durable = std::max(durable, end);
    }
    if (text.size() > durable) ++unsynced_rounds;
    if (round > 0 && text.size() > durable) {
      const uint64_t cut = durable + rng() % (text.size() - durable + 1);
      ASSERT_EQ(::truncate(path_.c_str(), static_cast<off_t>(cut)), 0);
      if (cut < text.size()) ++torn_rounds;
    }
    acked.insert(round_acks.begin(), round_acks.end());

    // Restart: recover from the saved state, write one more record, close.
    AuditFile f(Options(&seal, 40));
    ASSERT_TRUE(f.Resume(LoadState(state_path_)).ok());
    ASSERT_TRUE(f.Append(Record(absl::StrCat("restart-", round))).ok());
    f.Close();
    const audit::Report report = Verify({path_}, seal.public_key(), true);
    ASSERT_FALSE(report.failure.has_value())
        << "round " << round << ": " << report.failure->ToString();
  }
  RecordProperty("unsynced_rounds", unsynced_rounds);
  RecordProperty("torn_rounds", torn_rounds);
  std::printf("rounds killed with unacknowledged bytes: %d, torn by a cut: %d\n", unsynced_rounds,
              torn_rounds);
  // Every acknowledged record is in the log, once; what a cut tore off was never acknowledged.
  std::map<std::string, int> logged;
  for (const std::string& id : RecordIds(ReadFile(path_))) ++logged[id];
  for (const std::string& id : acked) EXPECT_EQ(logged[id], 1) << id;
  for (const auto& [id, n] : logged) EXPECT_EQ(n, 1) << id;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    if (entry.path().string().find(".unproven-") == std::string::npos) continue;
    for (const std::string& id : RecordIds(ReadFile(entry.path().string()))) {
      EXPECT_EQ(acked.count(id), 0u) << id << " was acknowledged but moved out as unproven";
    }
  }
}

}  // namespace
}  // namespace strongroom::core
