#include "absl/strings/str_cat.h"
#include "appliance/core/seal.h"
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
  ASSIGN_OR_RETURN(kek_, token_->GenerateKek(config_.key_label));
  return token_->CheckKekPolicy(kek_);
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
  RETURN_IF_ERROR(token_->CheckKekPolicy(*kek));
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

}  // namespace strongroom::core
