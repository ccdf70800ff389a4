// Single-node Storage on RocksDB. Every write is durable before it is acknowledged: writes are
// group-committed by a commit queue of our own (below), each group one RocksDB write batch, one
// WAL append and one sync.
//
// Group commit. Put, Delete, Apply and Submit queue their batch in one commit order. The first
// waiter to find no commit in progress leads: it takes every queued batch (bounded by
// kMaxGroupBatches and kMaxGroupBytes), writes them as one WriteBatch with WriteOptions::sync,
// then answers each waiter of the group with the outcome and hands the lead to a waiter of the
// next group. So concurrent writers share one sync, RocksDB sees one writer at a time, and a
// waiter sleeps once and is woken once. What follows from one batch per group:
//  * a write is acknowledged only once its group's sync has returned;
//  * a crash leaves each group, and so each write, whole or absent (RocksDB's WAL recovery drops
//    a torn record whole; kPointInTimeRecovery stops there, so no later group survives either);
//  * a failed group write fails every write of the group, and the store then refuses every
//    later write (the failure is latched: after a failed sync the file's state is unknown, as
//    RocksDB itself holds): nothing acknowledged before is lost, nothing built on the failed
//    writes is acknowledged. A restart clears it (RocksDB recovers from its WAL).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "appliance/storage/storage.h"

namespace rocksdb {
class DB;
class Env;
class Snapshot;
}  // namespace rocksdb

namespace strongroom::storage {

class RocksDbStorage final : public Storage {
 public:
  // Creates the directory's database when missing. `sync` false: writes are not fsynced and skip
  // RocksDB's write-ahead log (the Raft state machine, rebuilt from the Raft log at each start).
  static absl::StatusOr<std::unique_ptr<RocksDbStorage>> Open(const std::string& path,
                                                              bool sync = true);
  // For tests: with `env` (not owned, outlives the store) in place of RocksDB's default, to
  // inject I/O failures.
  static absl::StatusOr<std::unique_ptr<RocksDbStorage>> OpenWithEnv(const std::string& path,
                                                                     bool sync, rocksdb::Env* env);
  ~RocksDbStorage() override;

  absl::StatusOr<std::optional<std::string>> Get(std::string_view key) override;
  absl::Status Put(std::string_view key, std::string_view value) override;
  absl::Status Delete(std::string_view key) override;
  absl::StatusOr<std::vector<std::string>> List(std::string_view prefix) override;
  absl::Status Apply(const std::vector<BatchOp>& ops) override;
  std::shared_ptr<PendingWrite> Submit(std::vector<BatchOp> ops) override;
  absl::StatusOr<std::optional<std::string>> GetLatest(std::string_view key) override;

  // A group takes at most this many queued batches, and stops adding batches once it holds
  // this many bytes of keys and values (it always takes the first).
  static constexpr size_t kMaxGroupBatches = 1024;
  static constexpr size_t kMaxGroupBytes = 16u << 20;

  // Counters of the commit queue since Open (tests and benchmarks).
  struct CommitStats {
    uint64_t batches = 0;  // batches committed or failed through the queue
    uint64_t groups = 0;   // RocksDB writes (one sync each) the queue made for them
    uint64_t queued = 0;   // now: batches waiting for a group
    uint64_t waiting = 0;  // now: threads asleep waiting for a batch (not the leader)
  };
  CommitStats commit_stats() const;

  // Called for each pair in key order; answering false stops the scan there.
  using ScanFn = std::function<bool(std::string_view key, std::string_view value)>;

  // The store as it is now, kept while writes go on, to be scanned later from any thread (the
  // Raft snapshot: pinned on the loop, written out off it). Released when destroyed; the storage
  // must outlive it.
  class View {
   public:
    ~View();
    View(const View&) = delete;
    View& operator=(const View&) = delete;
    // Every pair of the view, in key order (until `each` answers false).
    absl::Status Scan(const ScanFn& each) const;

   private:
    friend class RocksDbStorage;
    View(rocksdb::DB* db, const rocksdb::Snapshot* snapshot) : db_(db), snapshot_(snapshot) {}
    rocksdb::DB* db_;
    const rocksdb::Snapshot* snapshot_;
  };
  std::unique_ptr<View> Pin();

  // Every pair, in key order, from one consistent view (until `each` answers false).
  absl::Status Scan(const ScanFn& each);
  // Deletes every key.
  absl::Status Clear();

 private:
  class Queued;
  class Ticket;
  // The newest value `key` is given by a queued batch not yet committed, and the sequence
  // number of that batch. `value` points into that batch's ops (nullptr: deleted); the batch
  // keeps them until its entries leave the overlay (both under mu_).
  struct Overlay {
    const std::string* value = nullptr;
    uint64_t seq = 0;
  };

  RocksDbStorage(rocksdb::DB* db, bool sync);
  // Blocks until `w` is committed or failed, leading groups while none is in progress.
  absl::Status WaitFor(Queued* w);
  // The leader's part: writes `group` as one synced batch.
  absl::Status WriteGroup(const std::vector<std::shared_ptr<Queued>>& group);

  std::unique_ptr<rocksdb::DB> db_;
  bool sync_;

  mutable std::mutex mu_;                      // the commit queue
  std::deque<std::shared_ptr<Queued>> queue_;  // submitted, not yet taken by a leader
  bool committing_ = false;                    // a leader is writing a group
  absl::Status failed_;                        // latched: every later write fails with it
  uint64_t next_seq_ = 0;
  int waiting_ = 0;                                   // threads asleep in WaitFor
  std::unordered_map<std::string, Overlay> overlay_;  // GetLatest's view of queued batches
  CommitStats stats_;
};

}  // namespace strongroom::storage
