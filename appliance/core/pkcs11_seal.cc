#include <openssl/sha.h>

#include "absl/strings/str_cat.h"
#include "appliance/core/seal.h"
#include "audit/keys.h"
#include "base/log.h"
#include "base/status_macros.h"

namespace strongroom::core {

absl::Status Pkcs11Seal::Open() {
  std::lock_guard<std::mutex> lock(mu_);
  if (token_) return absl::OkStatus();
  ASSIGN_OR_RETURN(token_, hsm::Token::Open(config_.token));
  return absl::OkStatus();
}

absl::Status Pkcs11Seal::CreateKek() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!token_) return absl::FailedPreconditionError("the PKCS#11 token is not open");
  ASSIGN_OR_RETURN(kek_, token_->GenerateKek(config_.key_label, Mode()));
  RETURN_IF_ERROR(token_->CheckKekPolicy(kek_, Mode()));
  if (config_.cluster) {
    // Every node must hold the same Transit KEK: it is made now and travels with the barrier
    // KEK when nodes join.
    ASSIGN_OR_RETURN(transit_kek_, token_->GenerateKek(config_.transit_kek_label, Mode()));
    RETURN_IF_ERROR(token_->CheckKekPolicy(transit_kek_, Mode()));
  }
  return absl::OkStatus();
}

absl::Status Pkcs11Seal::FindKek() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!token_) return absl::FailedPreconditionError("the PKCS#11 token is not open");
  auto kek = token_->FindSecretKey(config_.key_label);
  if (!kek.ok()) {
    if (absl::IsNotFound(kek.status())) {
      return absl::NotFoundError(absl::StrCat("no key labelled \"", config_.key_label,
                                              "\" in token \"", token_->label(), "\""));
    }
    return kek.status();
  }
  RETURN_IF_ERROR(token_->CheckKekPolicy(*kek, Mode()));
  kek_ = *kek;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<uint8_t>> Pkcs11Seal::Wrap(std::span<const uint8_t> plaintext) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!token_ || kek_ == CK_INVALID_HANDLE) return absl::FailedPreconditionError("no KEK");
  return token_->WrapSecret(kek_, plaintext);
}

absl::StatusOr<SecureBytes> Pkcs11Seal::Unwrap(std::span<const uint8_t> blob) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!token_ || kek_ == CK_INVALID_HANDLE) return absl::FailedPreconditionError("no KEK");
  return token_->UnwrapSecret(kek_, blob);
}

absl::Status Pkcs11Seal::FindAuditKeyLocked(bool create) {
  if (audit_key_) return absl::OkStatus();
  if (!token_) return absl::FailedPreconditionError("the PKCS#11 token is not open");
  auto key = token_->FindSigningKey(config_.audit_key_label);
  if (!key.ok() && absl::IsNotFound(key.status()) && create) {
    key = token_->GenerateSigningKey(config_.audit_key_label);
    if (key.ok()) {
      LogInfo("audit signing key \"%s\" (ECDSA P-256) generated in token \"%s\"",
              config_.audit_key_label, token_->label());
    }
  }
  if (!key.ok()) return key.status();
  ASSIGN_OR_RETURN(auto attrs, token_->GetKeyAttributes(key->private_key));
  if (!attrs.sensitive || attrs.extractable || !attrs.sign) {
    return absl::FailedPreconditionError(
        absl::StrCat("the audit key \"", config_.audit_key_label,
                     "\" must be sensitive, not extractable and able to sign; refusing to use it"));
  }
  ASSIGN_OR_RETURN(audit_key_der_, token_->EcPublicKeySpki(key->public_key));
  audit_key_ = *key;
  return absl::OkStatus();
}

absl::StatusOr<std::string> Pkcs11Seal::AuditPublicKeyDer(bool create) {
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(FindAuditKeyLocked(create));
  return audit_key_der_;
}

absl::StatusOr<std::string> Pkcs11Seal::AuditSign(std::string_view message) {
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(FindAuditKeyLocked(/*create=*/false));
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const uint8_t*>(message.data()), message.size(), digest);
  ASSIGN_OR_RETURN(std::string raw, token_->SignEcdsa(audit_key_->private_key, digest));
  auto der = audit::EcdsaRawToDer(raw);
  if (!der.ok()) return absl::InternalError(der.message());
  return *std::move(der);
}

absl::StatusOr<std::string> Pkcs11Seal::AuditMac(std::string_view message) {
  CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
  hsm::Token* token = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!token_) return absl::FailedPreconditionError("the PKCS#11 token is not open");
    if (audit_mac_key_ == CK_INVALID_HANDLE) {
      auto found = token_->FindSecretKey(config_.audit_mac_label);
      if (!found.ok() && absl::IsNotFound(found.status())) {
        found = token_->GenerateMacKey(config_.audit_mac_label);
        if (found.ok()) {
          LogInfo("audit MAC key \"%s\" (HMAC-SHA256) generated in token \"%s\"",
                  config_.audit_mac_label, token_->label());
        }
      }
      if (!found.ok()) return found.status();
      ASSIGN_OR_RETURN(auto attrs, token_->GetKeyAttributes(*found));
      if (attrs.object_class != CKO_SECRET_KEY || attrs.key_type != CKK_GENERIC_SECRET ||
          !attrs.sensitive || attrs.extractable || !attrs.sign) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the audit MAC key \"", config_.audit_mac_label,
            "\" must be a generic secret, sensitive, not extractable and able to sign"));
      }
      audit_mac_key_ = *found;
    }
    key = audit_mac_key_;
    token = token_.get();
  }
  // Outside the seal's lock: the token's sessions are its own, and batch MACs must not queue
  // behind KEK operations.
  ASSIGN_OR_RETURN(auto mac, token->Hmac(key, CKM_SHA256_HMAC,
                                         std::span(reinterpret_cast<const uint8_t*>(message.data()),
                                                   message.size())));
  if (mac.size() != 32) return absl::InternalError("audit MAC has the wrong length");
  return std::string(mac.begin(), mac.end());
}

absl::StatusOr<hsm::Token*> Pkcs11Seal::TransitToken() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!token_) return absl::FailedPreconditionError("the PKCS#11 token is not open");
  return token_.get();
}

absl::StatusOr<hsm::Token*> Pkcs11Seal::OpenToken() {
  RETURN_IF_ERROR(Open());
  std::lock_guard<std::mutex> lock(mu_);
  return token_.get();
}

absl::StatusOr<CK_OBJECT_HANDLE> Pkcs11Seal::TransitKek() {
  std::lock_guard<std::mutex> lock(mu_);
  if (transit_kek_ != CK_INVALID_HANDLE) return transit_kek_;
  if (!token_) return absl::FailedPreconditionError("the PKCS#11 token is not open");
  auto kek = token_->FindSecretKey(config_.transit_kek_label);
  if (!kek.ok() && absl::IsNotFound(kek.status()) && config_.cluster) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the Transit KEK \"", config_.transit_kek_label, "\" is missing from token \"",
        token_->label(), "\"; in a Raft cluster it is created at sys/init and received at join"));
  }
  if (!kek.ok() && absl::IsNotFound(kek.status())) {
    kek = token_->GenerateKek(config_.transit_kek_label);
    if (kek.ok()) {
      LogInfo("Transit KEK \"%s\" generated in token \"%s\"", config_.transit_kek_label,
              token_->label());
    }
  }
  if (!kek.ok()) return kek.status();
  RETURN_IF_ERROR(token_->CheckKekPolicy(*kek, Mode()));
  transit_kek_ = *kek;
  return transit_kek_;
}

absl::StatusOr<hsm::Token::WrappedForPeer> Pkcs11Seal::WrapKeksForPeer(std::string_view peer_point,
                                                                       std::string_view node_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!config_.cluster) return absl::FailedPreconditionError("not a Raft cluster node");
  if (!token_ || kek_ == CK_INVALID_HANDLE) return absl::FailedPreconditionError("no KEK");
  if (transit_kek_ == CK_INVALID_HANDLE) {
    auto kek = token_->FindSecretKey(config_.transit_kek_label);
    if (!kek.ok()) return kek.status();
    RETURN_IF_ERROR(token_->CheckKekPolicy(*kek, Mode()));
    transit_kek_ = *kek;
  }
  const CK_OBJECT_HANDLE keys[] = {kek_, transit_kek_};
  return token_->WrapKeysForPeer(keys, peer_point, node_id);
}

absl::StatusOr<std::string> Pkcs11Seal::BeginJoin() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!config_.cluster) return absl::FailedPreconditionError("not a Raft cluster node");
  if (!token_) return absl::FailedPreconditionError("the PKCS#11 token is not open");
  if (transport_) {
    (void)token_->DestroyObject(transport_->private_key);
    (void)token_->DestroyObject(transport_->public_key);
    transport_.reset();
  }
  ASSIGN_OR_RETURN(auto key, token_->GenerateTransportKey());
  transport_ = key;
  return key.public_point;
}

absl::Status Pkcs11Seal::CompleteJoin(std::string_view ephemeral_point,
                                      const std::vector<std::vector<uint8_t>>& blobs,
                                      std::string_view node_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!token_ || !transport_) return absl::FailedPreconditionError("no join in progress");
  if (blobs.size() != 2) return absl::InvalidArgumentError("expected the two cluster KEKs");
  auto kek =
      token_->UnwrapKekFromPeer(*transport_, ephemeral_point, blobs[0], config_.key_label, node_id);
  absl::StatusOr<CK_OBJECT_HANDLE> transit =
      kek.ok() ? token_->UnwrapKekFromPeer(*transport_, ephemeral_point, blobs[1],
                                           config_.transit_kek_label, node_id)
               : kek.status();
  (void)token_->DestroyObject(transport_->private_key);
  (void)token_->DestroyObject(transport_->public_key);
  transport_.reset();
  if (!kek.ok()) return kek.status();
  if (!transit.ok()) return transit.status();
  RETURN_IF_ERROR(token_->CheckKekPolicy(*kek, Mode()));
  RETURN_IF_ERROR(token_->CheckKekPolicy(*transit, Mode()));
  kek_ = *kek;
  transit_kek_ = *transit;
  LogInfo("received the cluster's KEKs \"%s\" and \"%s\" into token \"%s\"", config_.key_label,
          config_.transit_kek_label, token_->label());
  return absl::OkStatus();
}

}  // namespace strongroom::core
