// The storage interface every engine and the core see. It carries no RocksDB types, so the
// single-node RocksDB store, the in-memory store used in tests and a Raft-replicated store all
// pass the same conformance suite (tests/unit/storage/storage_conformance_test.cc).
#pragma once

#include <memory>
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

// A write placed in its store's commit order and perhaps not durable yet (Storage::Submit).
class PendingWrite {
 public:
  virtual ~PendingWrite() = default;
  // Blocks until the write is durable (OK) or has failed; the same answer to every call, from
  // any thread.
  virtual absl::Status Wait() = 0;
  // Whether Wait() would return at once.
  virtual bool Done() const = 0;
};

// A write whose outcome was known when it was handed back.
class FinishedWrite final : public PendingWrite {
 public:
  explicit FinishedWrite(absl::Status status) : status_(std::move(status)) {}
  absl::Status Wait() override { return status_; }
  bool Done() const override { return true; }

 private:
  absl::Status status_;
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

  // Apply in two steps, for a read-modify-write whose lock need not be held while the write is
  // made durable: Submit places `ops` (all or none, as Apply) in the store's commit order and
  // returns; Wait() on the answer says when they are durable. Everything submitted or applied
  // later commits after them, and fails if they fail. Until they are durable Get does not see
  // them (a reader never sees what may still be lost); GetLatest does. The default applies at
  // once (a store that commits synchronously, such as Raft's: nothing is ever pending).
  virtual std::shared_ptr<PendingWrite> Submit(std::vector<BatchOp> ops) {
    return std::make_shared<FinishedWrite>(Apply(ops));
  }
  // Get, seeing also writes submitted but not yet durable: for the read half of a
  // read-modify-write under a lock whose writes are submitted under the same lock, never to
  // answer a reader. A submitted write that then fails takes every later one with it, so what
  // was built on it fails too.
  virtual absl::StatusOr<std::optional<std::string>> GetLatest(std::string_view key) {
    return Get(key);
  }
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
  std::shared_ptr<PendingWrite> Submit(std::vector<BatchOp> ops) override;
  absl::StatusOr<std::optional<std::string>> GetLatest(std::string_view key) override;
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
