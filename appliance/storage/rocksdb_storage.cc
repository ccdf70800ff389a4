#include "appliance/storage/rocksdb_storage.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/strings.h"

namespace strongroom::storage {
namespace {

absl::Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat("storage ", Av(what), ": ", s.ToString()));
}

rocksdb::WriteOptions WriteOpts(bool sync) {
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  wo.disableWAL = !sync;
  return wo;
}

rocksdb::Slice S(std::string_view v) { return rocksdb::Slice(v.data(), v.size()); }

size_t OpBytes(const BatchOp& op) { return op.key.size() + op.value.size(); }

}  // namespace

// One batch in the commit queue. Its fields other than `done_` are guarded by the store's mu_.
class RocksDbStorage::Queued {
 public:
  explicit Queued(std::vector<BatchOp> ops) : ops_(std::move(ops)) {
    for (const auto& op : ops_) bytes_ += OpBytes(op);
  }
  std::vector<BatchOp> ops_;  // not resized while queued: the overlay points into it
  size_t bytes_ = 0;
  uint64_t seq_ = 0;
  std::atomic<bool> done_{false};
  absl::Status status_;
  // Threads asleep on cv_ waiting for this batch: its submitter, and others holding its ticket
  // (KV v2's readers wait for a stripe's last write), so every wake-up is notify_all.
  int waiters_ = 0;
  std::condition_variable cv_;
};

// What Submit hands back: waits for its batch; one never waited for is waited for when the last
// reference goes, so a batch is never left queued with nobody to lead its group. The store must
// outlive it.
class RocksDbStorage::Ticket final : public PendingWrite {
 public:
  Ticket(RocksDbStorage* store, std::shared_ptr<Queued> q) : store_(store), q_(std::move(q)) {}
  ~Ticket() override {
    if (!Done()) store_->WaitFor(q_.get()).IgnoreError();
  }
  absl::Status Wait() override { return store_->WaitFor(q_.get()); }
  bool Done() const override { return q_->done_.load(std::memory_order_acquire); }

 private:
  RocksDbStorage* store_;
  std::shared_ptr<Queued> q_;
};

absl::StatusOr<std::unique_ptr<RocksDbStorage>> RocksDbStorage::Open(const std::string& path,
                                                                     bool sync) {
  return OpenWithEnv(path, sync, nullptr);
}

absl::StatusOr<std::unique_ptr<RocksDbStorage>> RocksDbStorage::OpenWithEnv(const std::string& path,
                                                                            bool sync,
                                                                            rocksdb::Env* env) {
  rocksdb::Options options;
  if (env != nullptr) options.env = env;
  options.create_if_missing = true;
  options.paranoid_checks = true;
  options.max_open_files = 256;
  options.keep_log_file_num = 4;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, path, &db);
  if (!s.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open RocksDB at \"", path, "\": ", s.ToString()));
  }
  return std::unique_ptr<RocksDbStorage>(new RocksDbStorage(db, sync));
}

RocksDbStorage::RocksDbStorage(rocksdb::DB* db, bool sync) : db_(db), sync_(sync) {}

RocksDbStorage::~RocksDbStorage() {
  // Batches still queued (their tickets must not outlive the store) are committed first.
  for (;;) {
    std::shared_ptr<Queued> last;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.empty()) break;
      last = queue_.back();
    }
    WaitFor(last.get()).IgnoreError();
  }
  if (db_) db_->Close().PermitUncheckedError();
}

absl::StatusOr<std::optional<std::string>> RocksDbStorage::Get(std::string_view key) {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), S(key), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocks(s, "get");
  return std::optional<std::string>(std::move(value));
}

absl::Status RocksDbStorage::Put(std::string_view key, std::string_view value) {
  if (!sync_) return FromRocks(db_->Put(WriteOpts(false), S(key), S(value)), "put");
  std::vector<BatchOp> ops;
  ops.push_back(BatchOp::Put(std::string(key), std::string(value)));
  return Submit(std::move(ops))->Wait();
}

absl::Status RocksDbStorage::Delete(std::string_view key) {
  if (!sync_) return FromRocks(db_->Delete(WriteOpts(false), S(key)), "delete");
  std::vector<BatchOp> ops;
  ops.push_back(BatchOp::Delete(std::string(key)));
  return Submit(std::move(ops))->Wait();
}

absl::StatusOr<std::vector<std::string>> RocksDbStorage::List(std::string_view prefix) {
  std::vector<std::string> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  it->Seek(S(prefix));
  while (it->Valid()) {
    std::string_view key(it->key().data(), it->key().size());
    if (!key.starts_with(prefix)) break;
    AppendListName(prefix, key, &out);
    const std::string& name = out.back();
    if (name.back() == '/') {
      // Skip the whole folder: seek just past "<prefix><name>" ('/' + 1 == '0').
      std::string next = absl::StrCat(Av(prefix), name);
      next.back() = static_cast<char>('/' + 1);
      it->Seek(next);
    } else {
      it->Next();
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), "list");
  return out;
}

absl::Status RocksDbStorage::Apply(const std::vector<BatchOp>& ops) {
  if (sync_) return Submit(ops)->Wait();
  rocksdb::WriteBatch batch;
  for (const auto& op : ops) {
    rocksdb::Status s = op.kind == BatchOp::Kind::kPut ? batch.Put(S(op.key), S(op.value))
                                                       : batch.Delete(S(op.key));
    if (!s.ok()) return FromRocks(s, "batch");
  }
  return FromRocks(db_->Write(WriteOpts(false), &batch), "batch write");
}

std::shared_ptr<PendingWrite> RocksDbStorage::Submit(std::vector<BatchOp> ops) {
  if (!sync_) return std::make_shared<FinishedWrite>(Apply(ops));
  auto q = std::make_shared<Queued>(std::move(ops));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!failed_.ok()) return std::make_shared<FinishedWrite>(failed_);
    q->seq_ = ++next_seq_;
    for (const auto& op : q->ops_) {
      Overlay& o = overlay_[op.key];
      o.seq = q->seq_;
      o.value = op.kind == BatchOp::Kind::kPut ? &op.value : nullptr;
    }
    queue_.push_back(q);
  }
  return std::make_shared<Ticket>(this, std::move(q));
}

absl::StatusOr<std::optional<std::string>> RocksDbStorage::GetLatest(std::string_view key) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!overlay_.empty()) {
      auto it = overlay_.find(std::string(key));
      if (it != overlay_.end()) {
        if (it->second.value == nullptr) return std::optional<std::string>();
        return std::optional<std::string>(*it->second.value);
      }
    }
  }
  // Nothing queued for `key`: its committed value is its latest (a batch queued for it after
  // this point would come from a caller racing its own lock).
  return Get(key);
}

absl::Status RocksDbStorage::WaitFor(Queued* w) {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (w->done_.load(std::memory_order_relaxed)) return w->status_;
    if (!committing_) {
      // Not answered and no group in flight: `w` is still queued. Lead the next group.
      committing_ = true;
      std::vector<std::shared_ptr<Queued>> group;
      size_t bytes = 0;
      while (!queue_.empty() && group.size() < kMaxGroupBatches &&
             (group.empty() || bytes + queue_.front()->bytes_ <= kMaxGroupBytes)) {
        bytes += queue_.front()->bytes_;
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      const absl::Status latched = failed_;
      lock.unlock();
      absl::Status s = latched.ok() ? WriteGroup(group) : latched;
      lock.lock();
      stats_.groups += latched.ok() ? 1 : 0;
      stats_.batches += group.size();
      if (!s.ok() && failed_.ok()) failed_ = s;
      for (const auto& q : group) {
        q->status_ = s;
        q->done_.store(true, std::memory_order_release);
        if (q->waiters_ > 0) q->cv_.notify_all();
      }
      if (s.ok()) {
        // Committed keys read from RocksDB again, unless a later queued batch set them since.
        const uint64_t last = group.back()->seq_;
        for (const auto& q : group) {
          for (const auto& op : q->ops_) {
            auto it = overlay_.find(op.key);
            if (it != overlay_.end() && it->second.seq <= last) overlay_.erase(it);
          }
        }
      } else {
        // Everything queued after a failed group may rest on it: it fails too, and so does
        // every later write (failed_ is latched).
        overlay_.clear();
        for (const auto& q : queue_) {
          q->status_ = failed_;
          q->done_.store(true, std::memory_order_release);
          std::vector<BatchOp>().swap(q->ops_);
          if (q->waiters_ > 0) q->cv_.notify_all();
        }
        stats_.batches += queue_.size();
        queue_.clear();
      }
      // A ticket may be kept after its answer (KvV2 keeps each stripe's last): not its bytes.
      for (const auto& q : group) std::vector<BatchOp>().swap(q->ops_);
      committing_ = false;
      // Hand the lead to a writer of the next group that is already waiting (if none is, the
      // next to call Wait leads).
      for (const auto& q : queue_) {
        if (q->waiters_ > 0) {
          q->cv_.notify_all();
          break;
        }
      }
      continue;
    }
    ++w->waiters_;
    ++waiting_;
    w->cv_.wait(lock);
    --waiting_;
    --w->waiters_;
  }
}

absl::Status RocksDbStorage::WriteGroup(const std::vector<std::shared_ptr<Queued>>& group) {
  rocksdb::WriteBatch batch;
  size_t ops = 0;
  for (const auto& q : group) {
    for (const auto& op : q->ops_) {
      rocksdb::Status s = op.kind == BatchOp::Kind::kPut ? batch.Put(S(op.key), S(op.value))
                                                         : batch.Delete(S(op.key));
      if (!s.ok()) return FromRocks(s, "batch");
      ++ops;
    }
  }
  if (ops == 0) return absl::OkStatus();
  return FromRocks(db_->Write(WriteOpts(true), &batch), "batch write");
}

RocksDbStorage::CommitStats RocksDbStorage::commit_stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  CommitStats out = stats_;
  out.queued = queue_.size();
  out.waiting = static_cast<uint64_t>(waiting_);
  return out;
}

std::unique_ptr<RocksDbStorage::View> RocksDbStorage::Pin() {
  return std::unique_ptr<View>(new View(db_.get(), db_->GetSnapshot()));
}

RocksDbStorage::View::~View() { db_->ReleaseSnapshot(snapshot_); }

absl::Status RocksDbStorage::View::Scan(const ScanFn& each) const {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot_;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (!each(std::string_view(it->key().data(), it->key().size()),
              std::string_view(it->value().data(), it->value().size()))) {
      break;
    }
  }
  return FromRocks(it->status(), "scan");
}

absl::Status RocksDbStorage::Scan(const ScanFn& each) { return Pin()->Scan(each); }

absl::Status RocksDbStorage::Clear() {
  if (sync_) {
    std::vector<BatchOp> ops;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      ops.push_back(BatchOp::Delete(it->key().ToString()));
    }
    if (!it->status().ok()) return FromRocks(it->status(), "clear");
    return Submit(std::move(ops))->Wait();
  }
  rocksdb::WriteBatch batch;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    rocksdb::Status s = batch.Delete(it->key());
    if (!s.ok()) return FromRocks(s, "clear");
  }
  if (!it->status().ok()) return FromRocks(it->status(), "clear");
  return FromRocks(db_->Write(WriteOpts(sync_), &batch), "clear");
}

}  // namespace strongroom::storage
