// The storage interface every engine and the core see. It carries no RocksDB types, so the
// single-node RocksDB store, the in-memory store used in tests and a Raft-replicated store all
// pass the same conformance suite (tests/unit/storage/storage_conformance_test.cc).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace strongroom::storage {

struct BatchOp {
  enum class Kind { kPut, kDelete };
  Kind kind = Kind::kPut;
  std::string key;
  std::string value;

  static BatchOp Put(std::string key, std::string value) {
    return {Kind::kPut, std::move(key), std::move(value)};
  }
  static BatchOp Delete(std::string key) { return {Kind::kDelete, std::move(key), {}}; }
};

class Storage {
 public:
  virtual ~Storage() = default;

  // nullopt when the key does not exist.
  virtual absl::StatusOr<std::optional<std::string>> Get(std::string_view key) = 0;
  virtual absl::Status Put(std::string_view key, std::string_view value) = 0;
  // Deleting a missing key is not an error.
  virtual absl::Status Delete(std::string_view key) = 0;
  // Vault's physical List: the names directly below `prefix`, sorted; a name that has keys
  // below it is returned once, with a trailing '/'. ("a/b", "a/c/d" under "a/" -> "b", "c/").
  virtual absl::StatusOr<std::vector<std::string>> List(std::string_view prefix) = 0;
  // All of `ops` or none of them.
  virtual absl::Status Apply(const std::vector<BatchOp>& ops) = 0;
};

// Keys below `prefix` of `parent`, with the prefix stripped: the per-mount view
// (`logical/<uuid>/`) engines are handed, as in Vault.
class View final : public Storage {
 public:
  View(Storage* parent, std::string prefix) : parent_(parent), prefix_(std::move(prefix)) {}
  absl::StatusOr<std::optional<std::string>> Get(std::string_view key) override;
  absl::Status Put(std::string_view key, std::string_view value) override;
  absl::Status Delete(std::string_view key) override;
  absl::StatusOr<std::vector<std::string>> List(std::string_view prefix) override;
  absl::Status Apply(const std::vector<BatchOp>& ops) override;
  const std::string& prefix() const { return prefix_; }

 private:
  std::string Full(std::string_view key) const { return prefix_ + std::string(key); }
  Storage* parent_;
  std::string prefix_;
};

// Deletes every key below `prefix` (used when a mount is disabled).
absl::Status DeletePrefix(Storage& storage, std::string_view prefix);

// Helper shared by implementations: folds a sorted run of full keys into List() names.
void AppendListName(std::string_view prefix, std::string_view key, std::vector<std::string>* out);

}  // namespace strongroom::storage
