// The seal: where the KEK lives. The core only asks it to create/check the KEK and to wrap or
// unwrap the keyring blob; Pkcs11Seal does that inside a PKCS#11 token, so the KEK never leaves it.
#pragma once

#include <memory>
#include <mutex>
#include <span>
#include <string>
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
};

struct Pkcs11SealConfig {
  hsm::TokenConfig token;
  std::string key_label = "strongroom-kek";
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

 private:
  Pkcs11SealConfig config_;
  std::mutex mu_;
  std::unique_ptr<hsm::Token> token_;
  CK_OBJECT_HANDLE kek_ = CK_INVALID_HANDLE;
};

}  // namespace strongroom::core
