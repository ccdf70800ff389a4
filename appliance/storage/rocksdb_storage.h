// Single-node Storage on RocksDB. Every write is synced (WriteOptions::sync); concurrent writers
// are group-committed by RocksDB's write thread (one fsync covers the writes queued behind it).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "appliance/storage/storage.h"

namespace rocksdb {
class DB;
class Snapshot;
}  // namespace rocksdb

namespace strongroom::storage {

class RocksDbStorage final : public Storage {
 public:
  // Creates the directory's database when missing. `sync` false: writes are not fsynced and skip
  // RocksDB's write-ahead log (the Raft state machine, rebuilt from the Raft log at each start).
  static absl::StatusOr<std::unique_ptr<RocksDbStorage>> Open(const std::string& path,
                                                              bool sync = true);
  ~RocksDbStorage() override;

  absl::StatusOr<std::optional<std::string>> Get(std::string_view key) override;
  absl::Status Put(std::string_view key, std::string_view value) override;
  absl::Status Delete(std::string_view key) override;
  absl::StatusOr<std::vector<std::string>> List(std::string_view prefix) override;
  absl::Status Apply(const std::vector<BatchOp>& ops) override;

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
  RocksDbStorage(rocksdb::DB* db, bool sync);
  std::unique_ptr<rocksdb::DB> db_;
  bool sync_;
};

}  // namespace strongroom::storage
