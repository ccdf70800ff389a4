// An initialised, unsealed Core in this process: real barrier (AES-GCM keyring) over
// MemoryStorage, the real engine table, the real request pipeline (token, ACL, route table,
// backend). The seal is a stand-in that keeps the keyring blob as it is (no PKCS#11 token): the
// tests here are about the engines and the router above the barrier, not about the KEK.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "appliance/core/core.h"
#include "appliance/core/seal.h"
#include "appliance/engines/registry.h"
#include "appliance/storage/memory_storage.h"

namespace strongroom::testing {

class PassThroughSeal final : public core::Seal {
 public:
  std::string type() const override { return "pkcs11"; }
  absl::Status Open() override { return absl::OkStatus(); }
  absl::Status CreateKek() override { return absl::OkStatus(); }
  absl::Status FindKek() override { return absl::OkStatus(); }
  absl::StatusOr<std::vector<uint8_t>> Wrap(std::span<const uint8_t> plaintext) override {
    return std::vector<uint8_t>(plaintext.begin(), plaintext.end());
  }
  absl::StatusOr<SecureBytes> Unwrap(std::span<const uint8_t> blob) override {
    SecureBytes out(blob.size());
    std::copy(blob.begin(), blob.end(), out.data());
    return out;
  }
  absl::StatusOr<std::string> AuditPublicKeyDer(bool) override { return Unavailable(); }
  absl::StatusOr<std::string> AuditSign(std::string_view) override { return Unavailable(); }
  absl::StatusOr<std::string> AuditMac(std::string_view) override { return Unavailable(); }
  absl::StatusOr<hsm::Token*> TransitToken() override { return Unavailable(); }
  absl::StatusOr<CK_OBJECT_HANDLE> TransitKek() override { return Unavailable(); }
  absl::StatusOr<hsm::Token::WrappedForPeer> WrapKeksForPeer(std::string_view,
                                                             std::string_view) override {
    return Unavailable();
  }
  absl::StatusOr<std::string> BeginJoin() override { return Unavailable(); }
  absl::Status CompleteJoin(std::string_view, const std::vector<std::vector<uint8_t>>&,
                            std::string_view) override {
    return Unavailable();
  }

 private:
  static absl::Status Unavailable() { return absl::UnavailableError("not in this test"); }
};

struct Reply {
  absl::Status status;
  core::Response response;
  int code() const;  // the HTTP status the worker would send
};

class CoreFixture : public ::testing::Test {
 protected:
  void SetUp() override;
  // The engine table the core is built with (the appliance's by default).
  virtual std::vector<core::EngineType> Engines() { return engines::EngineTable(); }
  // One request through Core::Handle with `token` (empty: none).
  Reply Do(const std::string& token, core::Operation op, const std::string& path,
           core::json::object data = {});
  Reply Root(core::Operation op, const std::string& path, core::json::object data = {}) {
    return Do(root_, op, path, std::move(data));
  }
  // Mounts KV version 2 at `path` ("secret": sys/mounts/secret), as root.
  Reply MountKv2(const std::string& path) {
    return Root(core::Operation::kUpdate, "sys/mounts/" + path,
                {{"type", "kv"}, {"options", core::json::object{{"version", "2"}}}});
  }
  // A token with `policies` (created by root through auth/token/create).
  std::string TokenWith(const std::vector<std::string>& policies);

  storage::MemoryStorage physical_;
  std::unique_ptr<core::Core> core_;
  std::string root_;
  absl::Time now_ = absl::FromUnixSeconds(1700000000);
};

}  // namespace strongroom::testing
