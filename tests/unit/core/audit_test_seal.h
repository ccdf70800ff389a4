// A Seal for the audit writer's unit tests: the audit signing key is a software Ed25519 key
// (deterministic signatures, so logs are reproducible byte for byte) and the batch MAC is a
// software HMAC-SHA256. Counts its calls; MAC and signature failures can be switched on. Every
// other Seal operation is Unimplemented.
#pragma once

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <atomic>
#include <functional>
#include <string>
#include <string_view>

#include "appliance/core/seal.h"
#include "audit/keys.h"

namespace strongroom::core::testing {

class AuditTestSeal final : public Seal {
 public:
  AuditTestSeal()
      : key_(audit::PrivateKey::Ed25519FromSeed(std::string(32, 'k')).value()), mac_key_(32, 'm') {}

  const audit::PrivateKey& key() const { return key_; }
  audit::PublicKey public_key() const { return key_.Public().value(); }

  std::atomic<int> macs{0};
  std::atomic<int> signatures{0};
  std::atomic<bool> fail_mac{false};
  std::atomic<bool> fail_sign{false};
  // Runs at the start of every MAC (set before the seal is used): tests hold a batch here.
  std::function<void()> before_mac;

  std::string type() const override { return "test"; }
  absl::Status Open() override { return absl::OkStatus(); }
  absl::Status CreateKek() override { return absl::UnimplementedError("test seal"); }
  absl::Status FindKek() override { return absl::UnimplementedError("test seal"); }
  absl::StatusOr<std::vector<uint8_t>> Wrap(std::span<const uint8_t>) override {
    return absl::UnimplementedError("test seal");
  }
  absl::StatusOr<SecureBytes> Unwrap(std::span<const uint8_t>) override {
    return absl::UnimplementedError("test seal");
  }
  absl::StatusOr<std::string> AuditPublicKeyDer(bool) override { return public_key().spki_der(); }
  absl::StatusOr<std::string> AuditSign(std::string_view message) override {
    ++signatures;
    if (fail_sign) return absl::UnavailableError("test seal: signing switched off");
    auto sig = key_.Sign(message);
    if (!sig.ok()) return absl::InternalError(sig.message());
    return *std::move(sig);
  }
  absl::StatusOr<std::string> AuditMac(std::string_view message) override {
    ++macs;
    if (before_mac) before_mac();
    if (fail_mac) return absl::UnavailableError("test seal: MACs switched off");
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), mac_key_.data(), static_cast<int>(mac_key_.size()),
         reinterpret_cast<const unsigned char*>(message.data()), message.size(), out, &len);
    return std::string(reinterpret_cast<char*>(out), len);
  }
  absl::StatusOr<hsm::Token*> TransitToken() override {
    return absl::UnimplementedError("test seal");
  }
  absl::StatusOr<CK_OBJECT_HANDLE> TransitKek() override {
    return absl::UnimplementedError("test seal");
  }
  absl::StatusOr<hsm::Token::WrappedForPeer> WrapKeksForPeer(std::string_view,
                                                             std::string_view) override {
    return absl::UnimplementedError("test seal");
  }
  absl::StatusOr<std::string> BeginJoin() override { return absl::UnimplementedError("test seal"); }
  absl::Status CompleteJoin(std::string_view, const std::vector<std::vector<uint8_t>>&,
                            std::string_view) override {
    return absl::UnimplementedError("test seal");
  }

 private:
  audit::PrivateKey key_;
  std::string mac_key_;
};

}  // namespace strongroom::core::testing
