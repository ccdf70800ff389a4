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

 private:
  storage::Storage* physical_;
  // `ops` with every value sealed for its path; Sealed when sealed.
  absl::Status SealOps(std::vector<storage::BatchOp>& ops);

  mutable std::shared_mutex mu_;
  std::optional<Keyring> keyring_;
  std::atomic<uint64_t> encryptions_{0};
};

}  // namespace strongroom::core
