#include "appliance/core/barrier.h"

#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include <cstring>
#include <memory>
#include <mutex>

#include "absl/status/status.h"
#include "base/random_pool.h"
#include "base/status_macros.h"

namespace strongroom::core {
namespace {

constexpr uint8_t kFormat = 0x01;
constexpr size_t kNonce = 12;
constexpr size_t kTag = 16;
constexpr size_t kHeader = 1 + 4 + kNonce;

absl::Status Sealed() { return absl::UnavailableError("Vault is sealed"); }

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using Ctx = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

// AES-256-GCM fetched from the default provider once (EVP_aes_256_gcm() makes every Init fetch
// it again, a lookup under OpenSSL's locks); nullptr if it cannot be fetched.
const EVP_CIPHER* Aes256Gcm() {
  static EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return cipher;
}

}  // namespace

void Barrier::Unseal(Keyring keyring) {
  std::unique_lock lock(mu_);
  keyring_ = std::move(keyring);
  ++generation_;
}

void Barrier::Install(Keyring keyring) {
  std::unique_lock lock(mu_);
  keyring_ = std::move(keyring);
  ++generation_;
  encryptions_.store(0);
}

void Barrier::Seal() {
  std::unique_lock lock(mu_);
  keyring_.reset();  // SecureBytes zero their pages
  ++generation_;
}

bool Barrier::sealed() const {
  std::shared_lock lock(mu_);
  return !keyring_.has_value();
}

absl::StatusOr<Keyring> Barrier::CopyKeyring() const {
  std::shared_lock lock(mu_);
  if (!keyring_) return Sealed();
  return keyring_->Clone();
}

absl::StatusOr<Barrier::KeyStatus> Barrier::Status() const {
  std::shared_lock lock(mu_);
  if (!keyring_) return Sealed();
  const auto& t = keyring_->Active();
  return KeyStatus{t.term, t.install_unix_ns, encryptions_.load()};
}

namespace {

// AES-256-GCM under `key` with `aad`: the stored layout above, `term` in the header.
absl::StatusOr<std::string> SealWith(const uint8_t* key, uint32_t term, std::string_view aad,
                                     std::string_view plaintext) {
  std::string out(kHeader + plaintext.size() + kTag, '\0');
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  p[0] = kFormat;
  p[1] = static_cast<uint8_t>(term >> 24);
  p[2] = static_cast<uint8_t>(term >> 16);
  p[3] = static_cast<uint8_t>(term >> 8);
  p[4] = static_cast<uint8_t>(term);
  RETURN_IF_ERROR(PooledRandomBytes(p + 5, kNonce));  // fresh, used once
  Ctx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  const EVP_CIPHER* cipher = Aes256Gcm();
  if (!ctx || cipher == nullptr ||
      EVP_EncryptInit_ex(ctx.get(), cipher, nullptr, key, p + 5) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, reinterpret_cast<const uint8_t*>(aad.data()),
                        static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), p + kHeader, &len,
                        reinterpret_cast<const uint8_t*>(plaintext.data()),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), p + kHeader + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag, p + kHeader + plaintext.size()) !=
          1) {
    return absl::InternalError("barrier encryption failed");
  }
  return out;
}

// The term a sealed value names; DataLoss when it is not in the barrier's format.
absl::StatusOr<uint32_t> TermOf(std::string_view stored) {
  if (stored.size() < kHeader + kTag || static_cast<uint8_t>(stored[0]) != kFormat) {
    return absl::DataLossError("barrier: stored value has an unknown format");
  }
  const auto* p = reinterpret_cast<const uint8_t*>(stored.data());
  return (uint32_t{p[1]} << 24) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 8) | uint32_t{p[4]};
}

absl::StatusOr<std::string> OpenWith(const uint8_t* key, std::string_view aad,
                                     std::string_view stored) {
  const auto* p = reinterpret_cast<const uint8_t*>(stored.data());
  const size_t ct_len = stored.size() - kHeader - kTag;
  std::string out(ct_len, '\0');
  Ctx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  const EVP_CIPHER* cipher = Aes256Gcm();
  if (!ctx || cipher == nullptr ||
      EVP_DecryptInit_ex(ctx.get(), cipher, nullptr, key, p + 5) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, reinterpret_cast<const uint8_t*>(aad.data()),
                        static_cast<int>(aad.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<uint8_t*>(out.data()), &len, p + kHeader,
                        static_cast<int>(ct_len)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag,
                          const_cast<uint8_t*>(p + kHeader + ct_len)) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<uint8_t*>(out.data()) + len, &len) != 1) {
    return absl::DataLossError("barrier: value failed authentication");
  }
  return out;
}

// HKDF-SHA256 of a term's key for one purpose: a key of its own, whose nonces and ciphertexts
// nothing else shares.
absl::StatusOr<SecureBytes> Derive(const SecureBytes& key, std::string_view purpose) {
  SecureBytes out(Keyring::kKeySize);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr);
  size_t len = out.size();
  const bool ok =
      ctx != nullptr && EVP_PKEY_derive_init(ctx) == 1 &&
      EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) == 1 &&
      EVP_PKEY_CTX_set1_hkdf_key(ctx, key.data(), static_cast<int>(key.size())) == 1 &&
      EVP_PKEY_CTX_add1_hkdf_info(ctx, reinterpret_cast<const unsigned char*>(purpose.data()),
                                  static_cast<int>(purpose.size())) == 1 &&
      EVP_PKEY_derive(ctx, out.data(), &len) == 1 && len == out.size();
  EVP_PKEY_CTX_free(ctx);
  if (!ok) return absl::InternalError("barrier: key derivation failed");
  return out;
}

}  // namespace

absl::StatusOr<std::string> Barrier::Encrypt(std::string_view path, std::string_view plaintext) {
  std::shared_lock lock(mu_);
  if (!keyring_) return Sealed();
  const auto& term = keyring_->Active();
  ASSIGN_OR_RETURN(std::string out, SealWith(term.key.data(), term.term, path, plaintext));
  encryptions_.fetch_add(1, std::memory_order_relaxed);
  return out;
}

absl::StatusOr<std::string> Barrier::Decrypt(std::string_view path, std::string_view stored) const {
  uint64_t generation = 0;
  return Decrypt(path, stored, &generation);
}

absl::StatusOr<std::string> Barrier::Decrypt(std::string_view path, std::string_view stored,
                                             uint64_t* generation) const {
  std::shared_lock lock(mu_);
  if (!keyring_) return Sealed();
  *generation = generation_;
  ASSIGN_OR_RETURN(const uint32_t term_id, TermOf(stored));
  const Keyring::Term* term = keyring_->Find(term_id);
  if (term == nullptr) return absl::DataLossError("barrier: value sealed with an unknown term");
  return OpenWith(term->key.data(), path, stored);
}

absl::StatusOr<std::string> Barrier::SealDerived(std::string_view purpose,
                                                 std::string_view plaintext) const {
  std::shared_lock lock(mu_);
  if (!keyring_) return Sealed();
  const auto& term = keyring_->Active();
  ASSIGN_OR_RETURN(SecureBytes key, Derive(term.key, purpose));
  return SealWith(key.data(), term.term, purpose, plaintext);
}

absl::StatusOr<std::string> Barrier::OpenDerived(std::string_view purpose,
                                                 std::string_view sealed) const {
  std::shared_lock lock(mu_);
  if (!keyring_) return Sealed();
  ASSIGN_OR_RETURN(const uint32_t term_id, TermOf(sealed));
  const Keyring::Term* term = keyring_->Find(term_id);
  if (term == nullptr) return absl::DataLossError("barrier: value sealed with an unknown term");
  ASSIGN_OR_RETURN(SecureBytes key, Derive(term->key, purpose));
  return OpenWith(key.data(), purpose, sealed);
}

absl::StatusOr<Barrier::Stored> Barrier::GetStored(std::string_view key) const {
  Stored out;
  {
    std::shared_lock lock(mu_);
    if (!keyring_) return Sealed();
    out.generation = generation_;
  }
  ASSIGN_OR_RETURN(out.bytes, physical_->Get(key));
  return out;
}

absl::StatusOr<std::optional<std::string>> Barrier::Get(std::string_view key) {
  ASSIGN_OR_RETURN(auto stored, physical_->Get(key));
  if (!stored) return std::optional<std::string>();
  ASSIGN_OR_RETURN(auto plain, Decrypt(key, *stored));
  return std::optional<std::string>(std::move(plain));
}

absl::Status Barrier::Put(std::string_view key, std::string_view value) {
  ASSIGN_OR_RETURN(auto sealed_value, Encrypt(key, value));
  return physical_->Put(key, sealed_value);
}

absl::Status Barrier::Delete(std::string_view key) {
  if (sealed()) return Sealed();
  return physical_->Delete(key);
}

absl::StatusOr<std::vector<std::string>> Barrier::List(std::string_view prefix) {
  if (sealed()) return Sealed();
  return physical_->List(prefix);
}

absl::Status Barrier::SealOps(std::vector<storage::BatchOp>& ops) {
  for (auto& op : ops) {
    if (op.kind == storage::BatchOp::Kind::kPut) {
      ASSIGN_OR_RETURN(op.value, Encrypt(op.key, op.value));
    }
  }
  if (sealed()) return Sealed();
  return absl::OkStatus();
}

absl::Status Barrier::Apply(const std::vector<storage::BatchOp>& ops) {
  std::vector<storage::BatchOp> sealed_ops = ops;
  RETURN_IF_ERROR(SealOps(sealed_ops));
  return physical_->Apply(sealed_ops);
}

std::shared_ptr<storage::PendingWrite> Barrier::Submit(std::vector<storage::BatchOp> ops) {
  if (absl::Status s = SealOps(ops); !s.ok()) {
    return std::make_shared<storage::FinishedWrite>(std::move(s));
  }
  return physical_->Submit(std::move(ops));
}

absl::StatusOr<std::optional<std::string>> Barrier::GetLatest(std::string_view key) {
  ASSIGN_OR_RETURN(auto stored, physical_->GetLatest(key));
  if (!stored) return std::optional<std::string>();
  ASSIGN_OR_RETURN(auto plain, Decrypt(key, *stored));
  return std::optional<std::string>(std::move(plain));
}

}  // namespace strongroom::core
