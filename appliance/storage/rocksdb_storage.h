// Single-node Storage on RocksDB. Every write is synced (WriteOptions::sync); concurrent writers
// are group-committed by RocksDB's write thread (one fsync covers the writes queued behind it).
#pragma once

#include <memory>
#include <string>

#include "appliance/storage/storage.h"

namespace rocksdb {
class DB;
}

namespace strongroom::storage {

class RocksDbStorage final : public Storage {
 public:
  // Creates the directory's database when missing.
  static absl::StatusOr<std::unique_ptr<RocksDbStorage>> Open(const std::string& path);
  ~RocksDbStorage() override;

  absl::StatusOr<std::optional<std::string>> Get(std::string_view key) override;
  absl::Status Put(std::string_view key, std::string_view value) override;
  absl::Status Delete(std::string_view key) override;
  absl::StatusOr<std::vector<std::string>> List(std::string_view prefix) override;
  absl::Status Apply(const std::vector<BatchOp>& ops) override;

 private:
  explicit RocksDbStorage(rocksdb::DB* db);
  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace strongroom::storage
