// The seal: where the KEK lives. The core only asks it to create/check the KEK and to wrap or
// unwrap the keyring blob; Pkcs11Seal does that inside a PKCS#11 token, so the KEK never leaves it.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "base/secure_bytes.h"
#include "hsm/token.h"

namespace strongroom::core {

class Seal {
 public:
  virtual ~Seal() = default;
  virtual std::string type() const = 0;
  // Logs in to the token. Called at start; failures leave the node sealed with the reason.
  virtual absl::Status Open() = 0;
  // Creates the KEK (sys/init). AlreadyExists when the label is taken.
  virtual absl::Status CreateKek() = 0;
  // Finds the KEK by label and checks its attributes (sensitive, not extractable, wrap only).
  virtual absl::Status FindKek() = 0;
  virtual absl::StatusOr<std::vector<uint8_t>> Wrap(std::span<const uint8_t> plaintext) = 0;
  virtual absl::StatusOr<SecureBytes> Unwrap(std::span<const uint8_t> blob) = 0;
  // The audit signing key (ECDSA P-256) kept in the token: its DER SubjectPublicKeyInfo. With
  // `create`, the key pair is generated in the token when it does not exist yet.
  virtual absl::StatusOr<std::string> AuditPublicKeyDer(bool create) = 0;
  // A DER ECDSA signature over SHA-256(message) by the audit key, computed inside the token.
  virtual absl::StatusOr<std::string> AuditSign(std::string_view message) = 0;
  // HMAC-SHA256 of `message` under the audit MAC key, computed inside the token (32 bytes). The
  // key (sensitive, never extractable, sign/verify only) is generated in the token on first use.
  // It authenticates the audit log's batch ends (audit/chain.h, MAC lines).
  virtual absl::StatusOr<std::string> AuditMac(std::string_view message) = 0;
  // Transit: the token that holds Transit keys and the KEK that wraps them. That KEK is not the
  // barrier KEK (a blob of one kind can never be unwrapped as the other); it is created in the
  // token on first use, with the barrier KEK's attributes (wrap/unwrap only, never extractable).
  virtual absl::StatusOr<hsm::Token*> TransitToken() = 0;
  virtual absl::StatusOr<CK_OBJECT_HANDLE> TransitKek() = 0;

  // Raft join. Leading side: both KEKs (barrier and Transit) wrapped for the joining node's
  // transport key. Joining side: a transport key (its public point) for one join, then the
  // received KEKs unwrapped into this token under the configured labels. `node_id`, the
  // joining node's, is bound into the transfer key (hsm::Token::WrapKeysForPeer).
  virtual absl::StatusOr<hsm::Token::WrappedForPeer> WrapKeksForPeer(std::string_view peer_point,
                                                                     std::string_view node_id) = 0;
  virtual absl::StatusOr<std::string> BeginJoin() = 0;
  virtual absl::Status CompleteJoin(std::string_view ephemeral_point,
                                    const std::vector<std::vector<uint8_t>>& blobs,
                                    std::string_view node_id) = 0;
};

struct Pkcs11SealConfig {
  hsm::TokenConfig token;
  std::string key_label = "strongroom-kek";
  std::string audit_key_label = "strongroom-audit";
  std::string audit_mac_label = "strongroom-audit-mac";
  std::string transit_kek_label = "strongroom-transit-kek";
  // Raft cluster: both KEKs are created transferable (hsm::Token::KekMode) at sys/init, and
  // the Transit KEK is never created later on its own (it must be the same on every node).
  bool cluster = false;
};

class Pkcs11Seal final : public Seal {
 public:
  explicit Pkcs11Seal(Pkcs11SealConfig config) : config_(std::move(config)) {}
  std::string type() const override { return "pkcs11"; }
  absl::Status Open() override;
  absl::Status CreateKek() override;
  absl::Status FindKek() override;
  absl::StatusOr<std::vector<uint8_t>> Wrap(std::span<const uint8_t> plaintext) override;
  absl::StatusOr<SecureBytes> Unwrap(std::span<const uint8_t> blob) override;
  absl::StatusOr<std::string> AuditPublicKeyDer(bool create) override;
  absl::StatusOr<std::string> AuditSign(std::string_view message) override;
  absl::StatusOr<std::string> AuditMac(std::string_view message) override;
  absl::StatusOr<hsm::Token*> TransitToken() override;
  absl::StatusOr<CK_OBJECT_HANDLE> TransitKek() override;
  absl::StatusOr<hsm::Token::WrappedForPeer> WrapKeksForPeer(std::string_view peer_point,
                                                             std::string_view node_id) override;
  absl::StatusOr<std::string> BeginJoin() override;
  absl::Status CompleteJoin(std::string_view ephemeral_point,
                            const std::vector<std::vector<uint8_t>>& blobs,
                            std::string_view node_id) override;
  // Opens the token if needed and returns it, for the listener's TLS key (tls_key_label), which
  // lives in the same token. Valid as long as this seal.
  absl::StatusOr<hsm::Token*> OpenToken();

 private:
  absl::Status FindAuditKeyLocked(bool create);
  hsm::Token::KekMode Mode() const {
    return config_.cluster ? hsm::Token::KekMode::kTransferable : hsm::Token::KekMode::kNodeOnly;
  }

  Pkcs11SealConfig config_;
  std::mutex mu_;
  std::unique_ptr<hsm::Token> token_;
  CK_OBJECT_HANDLE kek_ = CK_INVALID_HANDLE;
  std::optional<hsm::SigningKey> audit_key_;
  CK_OBJECT_HANDLE audit_mac_key_ = CK_INVALID_HANDLE;
  CK_OBJECT_HANDLE transit_kek_ = CK_INVALID_HANDLE;
  std::string audit_key_der_;
  std::optional<hsm::Token::TransportKey> transport_;  // between BeginJoin and CompleteJoin
};

}  // namespace strongroom::core
