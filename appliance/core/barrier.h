// The barrier: a Storage that encrypts every value with AES-256-GCM under the active keyring
// term before it reaches the physical store, with the storage path as associated data (a value
// moved to another path does not decrypt). Layout of a stored value:
//   0x01 | term (u32 BE) | nonce (12) | ciphertext | tag (16)
// Sealed, every operation fails with Unavailable("Vault is sealed").
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>

#include "appliance/core/keyring.h"
#include "appliance/storage/storage.h"

namespace strongroom::core {

class Barrier final : public storage::Storage {
 public:
  explicit Barrier(storage::Storage* physical) : physical_(physical) {}

  void Unseal(Keyring keyring);
  void Seal();  // wipes the keyring
  bool sealed() const;

  // Installs a rotated keyring (already persisted by the caller).
  void Install(Keyring keyring);
  // A copy of the keyring for rotation; FailedPrecondition when sealed.
  absl::StatusOr<Keyring> CopyKeyring() const;

  struct KeyStatus {
    uint32_t term = 0;
    int64_t install_unix_ns = 0;
    uint64_t encryptions = 0;  // since this process installed the term
  };
  absl::StatusOr<KeyStatus> Status() const;

  absl::StatusOr<std::optional<std::string>> Get(std::string_view key) override;
  absl::Status Put(std::string_view key, std::string_view value) override;
  absl::Status Delete(std::string_view key) override;
  absl::StatusOr<std::vector<std::string>> List(std::string_view prefix) override;
  absl::Status Apply(const std::vector<storage::BatchOp>& ops) override;
  std::shared_ptr<storage::PendingWrite> Submit(std::vector<storage::BatchOp> ops) override;
  absl::StatusOr<std::optional<std::string>> GetLatest(std::string_view key) override;

  // Sealing under a key derived (HKDF-SHA256) from the active term's key for `purpose`, with
  // `purpose` as associated data: for what the broker seals that is not stored (batch tokens).
  // Its own key, so it shares neither nonces nor ciphertexts with stored values. Opening
  // finds the term named in the header (kept until the keyring drops it).
  absl::StatusOr<std::string> SealDerived(std::string_view purpose,
                                          std::string_view plaintext) const;
  absl::StatusOr<std::string> OpenDerived(std::string_view purpose, std::string_view sealed) const;

  // Exposed for tests: the sealing transform on its own.
  absl::StatusOr<std::string> Encrypt(std::string_view path, std::string_view plaintext);
  absl::StatusOr<std::string> Decrypt(std::string_view path, std::string_view stored) const;

  // For caches of what was decrypted (tokens, policies, entities): the bytes stored under `key`
  // as they are in the physical store (nullopt: absent) and the generation of the keyring they
  // would be opened under (every Unseal, Install and Seal makes a new one). The same bytes
  // opened under the same generation are the same value, whoever wrote them: this process, a
  // Raft entry applied on a follower, a snapshot installed. So a cache that keeps the bytes and
  // the generation beside what it decrypted, and compares them with GetStored's on each use, is
  // never stale. Sealed: Unavailable.
  struct Stored {
    std::optional<std::string> bytes;
    uint64_t generation = 0;
  };
  absl::StatusOr<Stored> GetStored(std::string_view key) const;
  // Decrypt, and the keyring generation it was opened under.
  absl::StatusOr<std::string> Decrypt(std::string_view path, std::string_view stored,
                                      uint64_t* generation) const;

 private:
  storage::Storage* physical_;
  // `ops` with every value sealed for its path; Sealed when sealed.
  absl::Status SealOps(std::vector<storage::BatchOp>& ops);

  mutable std::shared_mutex mu_;
  std::optional<Keyring> keyring_;
  uint64_t generation_ = 0;  // under mu_: bumped whenever keyring_ is set or reset
  std::atomic<uint64_t> encryptions_{0};
};

}  // namespace strongroom::core
