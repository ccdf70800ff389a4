// KV v2's writes through Storage::Submit (engines/kv_backend.cc, KvV2::Commit): a write holds its
// path's stripe only while it reads and submits, and waits for durability after releasing it.
// The store here is a stand-in whose writes stay pending until the test releases (or fails)
// them, as RocksDbStorage's do while a group's sync runs: what the engine may and may not do
// while a write is in flight is then checked step by step, with no timing.
#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "appliance/core/json.h"
#include "appliance/core/mount_entry.h"
#include "appliance/engines/kv_backend.h"
#include "appliance/storage/memory_storage.h"

namespace strongroom::engines {
namespace {

using core::Operation;

// Storage whose submitted writes stay pending (GetLatest sees them, Get does not) until
// Release() commits them in order or Fail() fails them all and every later write.
class HeldStorage final : public storage::Storage {
 public:
  absl::StatusOr<std::optional<std::string>> Get(std::string_view key) override {
    auto v = committed_.Get(key);
    if (after_get) after_get(key);
    return v;
  }
  absl::Status Put(std::string_view key, std::string_view value) override {
    return Submit({storage::BatchOp::Put(std::string(key), std::string(value))})->Wait();
  }
  absl::Status Delete(std::string_view key) override {
    return Submit({storage::BatchOp::Delete(std::string(key))})->Wait();
  }
  absl::StatusOr<std::vector<std::string>> List(std::string_view prefix) override {
    return committed_.List(prefix);
  }
  absl::Status Apply(const std::vector<storage::BatchOp>& ops) override {
    return Submit(ops)->Wait();
  }
  std::shared_ptr<storage::PendingWrite> Submit(std::vector<storage::BatchOp> ops) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!failed_.ok()) return std::make_shared<storage::FinishedWrite>(failed_);
    if (!hold_) return std::make_shared<storage::FinishedWrite>(committed_.Apply(ops));
    auto w = std::make_shared<Held>(this);
    for (const auto& op : ops) {
      overlay_[op.key] = op.kind == storage::BatchOp::Kind::kPut
                             ? std::optional<std::string>(op.value)
                             : std::optional<std::string>();
    }
    pending_.push_back({std::move(ops), w});
    cv_.notify_all();
    return w;
  }
  absl::StatusOr<std::optional<std::string>> GetLatest(std::string_view key) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = overlay_.find(std::string(key));
      if (it != overlay_.end()) return it->second;
    }
    return committed_.Get(key);
  }

  void Hold() {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = true;
  }
  // Commits every pending write, in submission order; later writes are held still.
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& p : pending_) {
      p.write->Finish(committed_.Apply(p.ops));
    }
    pending_.clear();
    overlay_.clear();
    cv_.notify_all();
  }
  // Fails every pending write and every later one.
  void Fail() {
    std::lock_guard<std::mutex> lock(mu_);
    failed_ = absl::UnavailableError("storage batch write: injected sync failure");
    for (auto& p : pending_) p.write->Finish(failed_);
    pending_.clear();
    overlay_.clear();
    cv_.notify_all();
  }
  // Blocks until `pred()` holds (checked whenever a write is submitted or a waiter arrives).
  void AwaitState(const std::function<bool()>& pred) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, pred);
  }
  // Wakes AwaitState to check its predicate again.
  void Poke() {
    std::lock_guard<std::mutex> lock(mu_);
    cv_.notify_all();
  }
  size_t pending() const { return pending_.size(); }  // under AwaitState's predicate
  int waiters() const { return waiters_; }            // likewise
  // Called after every committed read (from the reading thread).
  std::function<void(std::string_view)> after_get;

 private:
  class Held final : public storage::PendingWrite {
   public:
    explicit Held(HeldStorage* s) : s_(s) {}
    absl::Status Wait() override {
      std::unique_lock<std::mutex> lock(s_->mu_);
      ++s_->waiters_;
      s_->cv_.notify_all();
      s_->cv_.wait(lock, [&] { return done_; });
      --s_->waiters_;
      return status_;
    }
    bool Done() const override {
      std::lock_guard<std::mutex> lock(s_->mu_);
      return done_;
    }
    void Finish(absl::Status s) {  // under s_->mu_
      status_ = std::move(s);
      done_ = true;
    }

   private:
    HeldStorage* s_;
    bool done_ = false;
    absl::Status status_;
  };
  struct Pending {
    std::vector<storage::BatchOp> ops;
    std::shared_ptr<Held> write;
  };

  mutable std::mutex mu_;
  std::condition_variable cv_;
  storage::MemoryStorage committed_;
  std::map<std::string, std::optional<std::string>> overlay_;
  std::deque<Pending> pending_;
  bool hold_ = false;
  absl::Status failed_;
  int waiters_ = 0;
};

class KvPipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    core::MountEntry e;
    e.type = "kv";
    e.options["version"] = "2";
    auto b = MakeKvBackend(e);
    ASSERT_TRUE(b.ok()) << b.status();
    kv_ = std::move(*b);
  }
  absl::StatusOr<core::Response> Do(Operation op, const std::string& rel,
                                    core::json::object data = {}) {
    core::Request req;
    req.operation = op;
    req.rel_path = rel;
    req.path = "secret/" + rel;
    req.has_data = !data.empty();
    req.data = std::move(data);
    req.storage = &store_;
    return kv_->Handle(req);
  }
  absl::StatusOr<core::Response> Write(const std::string& key, const std::string& v,
                                       std::optional<int64_t> cas = std::nullopt) {
    core::json::object d;
    d["v"] = v;
    core::json::object body;
    body["data"] = std::move(d);
    if (cas) {
      core::json::object o;
      o["cas"] = *cas;
      body["options"] = std::move(o);
    }
    return Do(Operation::kUpdate, "data/" + key, std::move(body));
  }
  static int64_t VersionOf(const absl::StatusOr<core::Response>& r) {
    if (!r.ok() || !r->data) return -1;
    return r->data->at("version").as_int64();
  }
  // The data's "v" of a read answer ("" when there is none).
  static std::string ValueOf(const absl::StatusOr<core::Response>& r) {
    if (!r.ok() || !r->data || r->http_status != 200) return "";
    const auto& d = r->data->at("data");
    if (!d.is_object() || !d.as_object().contains("v")) return "";
    return std::string(d.as_object().at("v").as_string());
  }

  HeldStorage store_;
  std::unique_ptr<core::Backend> kv_;
};

// The stripe is not held across the sync: a second write of the same key reads the first
// (still pending) and is submitted behind it, so both are in flight together and share a sync.
// (Before: the first held the stripe until durable; the second could not even read.)
TEST_F(KvPipelineTest, TwoWritesOfOneKeyAreInFlightTogether) {
  store_.Hold();
  absl::StatusOr<core::Response> first, second;
  std::thread a([&] { first = Write("k", "one"); });
  store_.AwaitState([&] { return store_.pending() == 1; });
  std::thread b([&] { second = Write("k", "two"); });
  store_.AwaitState([&] { return store_.pending() == 2; });
  store_.Release();
  a.join();
  b.join();
  EXPECT_EQ(VersionOf(first), 1) << first.status();
  EXPECT_EQ(VersionOf(second), 2) << second.status();
  auto read = Do(Operation::kRead, "data/k");
  EXPECT_EQ(ValueOf(read), "two");
  core::json::object q;
  q["version"] = 1;
  EXPECT_EQ(ValueOf(Do(Operation::kRead, "data/k", std::move(q))), "one");
}

// check-and-set is decided against the latest version, pending ones included: a cas naming the
// pending version is accepted (and queued behind it), one naming the committed version is not.
TEST_F(KvPipelineTest, CheckAndSetSeesTheVersionInFlight) {
  store_.Hold();
  absl::StatusOr<core::Response> first, next;
  std::thread a([&] { first = Write("k", "one", 0); });
  store_.AwaitState([&] { return store_.pending() == 1; });
  auto stale = Write("k", "stale", 0);  // answered at once: no write is submitted
  EXPECT_FALSE(stale.ok());
  EXPECT_EQ(stale.status().message(), "check-and-set parameter did not match the current version");
  std::thread b([&] { next = Write("k", "two", 1); });
  store_.AwaitState([&] { return store_.pending() == 2; });
  store_.Release();
  a.join();
  b.join();
  EXPECT_EQ(VersionOf(first), 1);
  EXPECT_EQ(VersionOf(next), 2);
}

// A reader of a key whose write is in flight waits for it, then reads one consistent state.
// The store commits the pending write right after the reader's first read (metadata): a reader
// that did not wait would read metadata naming version 1 and then find version 1's data pruned
// by that commit (max_versions 1), and answer with a torn state (data null).
TEST_F(KvPipelineTest, AReaderWaitsForTheWritesInFlightOnItsKey) {
  core::json::object m;
  m["max_versions"] = 1;
  ASSERT_TRUE(Do(Operation::kUpdate, "metadata/k", std::move(m)).ok());
  ASSERT_EQ(VersionOf(Write("k", "one")), 1);
  store_.Hold();
  absl::StatusOr<core::Response> second;
  std::thread w([&] { second = Write("k", "two"); });
  store_.AwaitState([&] { return store_.pending() == 1 && store_.waiters() == 1; });
  std::atomic<bool> read_done{false};
  store_.after_get = [&](std::string_view key) {
    if (key == "metadata/k") store_.Release();
  };
  absl::StatusOr<core::Response> read;
  std::thread r([&] {
    read = Do(Operation::kRead, "data/k");
    read_done = true;
    store_.Poke();
  });
  // The reader either waits for the write (a second waiter) or, wrongly, reads past it.
  store_.AwaitState([&] { return store_.waiters() == 2 || read_done.load(); });
  store_.Release();
  r.join();
  w.join();
  store_.after_get = nullptr;
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->http_status, 200);
  EXPECT_EQ(ValueOf(read), "two") << "torn read: " << core::Serialize(*read->data);
  EXPECT_EQ(VersionOf(second), 2);
}

// A write built on a pending write that then fails is not acknowledged either, and nothing of
// either is left: the next writer starts again from the committed state.
TEST_F(KvPipelineTest, AFailedWriteFailsTheWritesBuiltOnIt) {
  ASSERT_EQ(VersionOf(Write("k", "zero")), 1);
  store_.Hold();
  absl::StatusOr<core::Response> first, second;
  std::thread a([&] { first = Write("k", "one"); });
  store_.AwaitState([&] { return store_.pending() == 1; });
  std::thread b([&] { second = Write("k", "two", 2); });
  store_.AwaitState([&] { return store_.pending() == 2; });
  store_.Fail();
  a.join();
  b.join();
  EXPECT_EQ(first.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ValueOf(Do(Operation::kRead, "data/k")), "zero");
  auto meta = Do(Operation::kRead, "metadata/k");
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(meta->data->at("current_version").as_int64(), 1);
}

// Metadata writes and version operations go through the same pipeline: a metadata change made
// while a data write is in flight keeps that write's version (it read the pending metadata).
TEST_F(KvPipelineTest, AMetadataWriteBehindAPendingDataWriteKeepsItsVersion) {
  store_.Hold();
  absl::StatusOr<core::Response> data, meta;
  std::thread a([&] { data = Write("k", "one"); });
  store_.AwaitState([&] { return store_.pending() == 1; });
  std::thread b([&] {
    core::json::object m;
    core::json::object cm;
    cm["owner"] = "ops";
    m["custom_metadata"] = std::move(cm);
    meta = Do(Operation::kUpdate, "metadata/k", std::move(m));
  });
  store_.AwaitState([&] { return store_.pending() == 2; });
  store_.Release();
  a.join();
  b.join();
  ASSERT_TRUE(meta.ok()) << meta.status();
  auto m = Do(Operation::kRead, "metadata/k");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->data->at("current_version").as_int64(), 1);
  EXPECT_EQ(m->data->at("custom_metadata").as_object().at("owner").as_string(), "ops");
  EXPECT_EQ(ValueOf(Do(Operation::kRead, "data/k")), "one");
}

}  // namespace
}  // namespace strongroom::engines
