// Token: the keys Transit keeps wrapped by its KEK (generated in the token, used inside it as
// session objects): secret keys, key pairs, and the operations that use them.
#include <algorithm>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/metrics_catalog.h"
#include "base/status_macros.h"
#include "hsm/op_metrics.h"
#include "hsm/rv.h"
#include "hsm/token.h"
#include "hsm/token_internal.h"

namespace strongroom::hsm {

using internal::Check;
using internal::In;
using internal::InfoFor;
using internal::kFalse;
using internal::kTrue;
using internal::ObjectGuard;
using internal::PairInfo;
using internal::PublicSpki;
using internal::PublicTemplate;
using internal::Sv;
using internal::WrapObjectOn;

absl::StatusOr<std::vector<uint8_t>> Token::GenerateWrappedKey(CK_OBJECT_HANDLE kek,
                                                               CK_KEY_TYPE kind, size_t bytes) {
  const bool aes = kind == CKK_AES;
  if (aes ? (bytes != 16 && bytes != 32)
          : (kind != CKK_GENERIC_SECRET || bytes < 16 || bytes > 512)) {
    return absl::InvalidArgumentError("unsupported key type or size");
  }
  const metrics::ScopedTimer timer(
      OperationHistogram("generate_key", aes ? CKM_AES_KEY_GEN : CKM_GENERIC_SECRET_KEY_GEN));
  ASSIGN_OR_RETURN(Lease lease, Acquire());
  const CK_ULONG len = bytes;
  const CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
  CK_ATTRIBUTE tmpl[] = {
      In(CKA_CLASS, cls),         In(CKA_KEY_TYPE, kind),   In(CKA_VALUE_LEN, len),
      In(CKA_TOKEN, kFalse),  // never stored in the token: the wrapped blob is the copy
      In(CKA_PRIVATE, kTrue),     In(CKA_SENSITIVE, kTrue),  // its value can never be read
      In(CKA_EXTRACTABLE, kTrue),  // only so the KEK can wrap it, once, right below
      In(CKA_ENCRYPT, kFalse),     // this object is used for nothing but that wrap
      In(CKA_DECRYPT, kFalse),    In(CKA_SIGN, kFalse),     In(CKA_VERIFY, kFalse),
      In(CKA_WRAP, kFalse),       In(CKA_UNWRAP, kFalse),
  };
  CK_MECHANISM gen = {aes ? CKM_AES_KEY_GEN : CKM_GENERIC_SECRET_KEY_GEN, nullptr, 0};
  CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
  RETURN_IF_ERROR(
      Check(lease, lease.fn()->C_GenerateKey(lease.handle(), &gen, tmpl, std::size(tmpl), &key),
            "C_GenerateKey"));
  ObjectGuard guard(lease, key);
  return WrapObjectOn(lease, kek, key, "");
}

absl::StatusOr<CK_OBJECT_HANDLE> Token::UnwrapKey(CK_OBJECT_HANDLE kek,
                                                  std::span<const uint8_t> blob, CK_KEY_TYPE kind,
                                                  size_t bytes) {
  const bool aes = kind == CKK_AES;
  // The length travels inside the blob (SoftHSM2 refuses CKA_VALUE_LEN on unwrap); `bytes`
  // only checks it.
  if (blob.size() != ((bytes + 7) / 8) * 8 + 8) {
    return absl::InvalidArgumentError("unwrap failed: blob length does not match the key size");
  }
  const CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
  // AES keys encrypt and decrypt; HMAC keys sign and verify; nothing else, ever.
  const CK_BBOOL crypt = aes ? kTrue : kFalse;
  const CK_BBOOL mac = aes ? kFalse : kTrue;
  CK_ATTRIBUTE tmpl[] = {
      In(CKA_CLASS, cls),     In(CKA_KEY_TYPE, kind),   In(CKA_TOKEN, kFalse),
      In(CKA_PRIVATE, kTrue), In(CKA_SENSITIVE, kTrue), In(CKA_EXTRACTABLE, kFalse),
      In(CKA_ENCRYPT, crypt), In(CKA_DECRYPT, crypt),   In(CKA_SIGN, mac),
      In(CKA_VERIFY, mac),    In(CKA_WRAP, kFalse),     In(CKA_UNWRAP, kFalse),
  };
  const metrics::ScopedTimer timer(OperationHistogram("unwrap", CKM_AES_KEY_WRAP_PAD));
  CK_MECHANISM mech = {CKM_AES_KEY_WRAP_PAD, nullptr, 0};
  std::lock_guard<std::mutex> lock(login_mu_);
  if (login_session_ == nullptr) return absl::FailedPreconditionError("the token is closed");
  CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
  const CK_RV rv = login_session_->fn()->C_UnwrapKey(
      login_session_->handle(), &mech, kek, const_cast<uint8_t*>(blob.data()),
      static_cast<CK_ULONG>(blob.size()), tmpl, std::size(tmpl), &key);
  if (rv == CKR_GENERAL_ERROR || rv == CKR_WRAPPED_KEY_INVALID || rv == CKR_WRAPPED_KEY_LEN_RANGE) {
    return absl::InvalidArgumentError(
        absl::StrCat("unwrap failed: ", Sv(RvName(rv)), " (wrong KEK or altered blob)"));
  }
  RETURN_IF_ERROR(RvToStatus(rv, "C_UnwrapKey"));
  return key;
}

absl::Status Token::DestroyObject(CK_OBJECT_HANDLE object) {
  std::lock_guard<std::mutex> lock(login_mu_);
  if (login_session_ == nullptr) return absl::OkStatus();  // closed: session objects are gone
  return RvToStatus(login_session_->fn()->C_DestroyObject(login_session_->handle(), object),
                    "C_DestroyObject");
}

namespace {

CK_GCM_PARAMS GcmParams(std::span<const uint8_t> iv, std::span<const uint8_t> aad) {
  CK_GCM_PARAMS p{};
  p.iv_ptr = const_cast<uint8_t*>(iv.data());
  p.iv_len = iv.size();
  p.iv_bits = iv.size() * 8;
  p.aad_ptr = const_cast<uint8_t*>(aad.data());
  p.aad_len = aad.size();
  p.tag_bits = 128;
  return p;
}

}  // namespace

absl::StatusOr<std::vector<uint8_t>> Token::AesGcmEncrypt(CK_OBJECT_HANDLE key,
                                                          std::span<const uint8_t> iv,
                                                          std::span<const uint8_t> aad,
                                                          std::span<const uint8_t> plaintext) {
  if (iv.size() != 12 || aad.empty()) {
    return absl::InvalidArgumentError("AES-GCM needs a 12-byte IV and a non-empty AAD");
  }
  const metrics::ScopedTimer timer(OperationHistogram("encrypt", CKM_AES_GCM));
  ASSIGN_OR_RETURN(Lease lease, Acquire());
  CK_GCM_PARAMS params = GcmParams(iv, aad);
  CK_MECHANISM mech = {CKM_AES_GCM, &params, sizeof params};
  RETURN_IF_ERROR(Check(lease, lease.fn()->C_EncryptInit(lease.handle(), &mech, key),
                        "C_EncryptInit(CKM_AES_GCM)"));
  std::vector<uint8_t> out(plaintext.size() + 16);
  CK_ULONG out_len = out.size();
  const CK_RV rv =
      lease.fn()->C_Encrypt(lease.handle(), const_cast<uint8_t*>(plaintext.data()),
                            static_cast<CK_ULONG>(plaintext.size()), out.data(), &out_len);
  if (rv != CKR_OK) lease.Discard();
  RETURN_IF_ERROR(Check(lease, rv, "C_Encrypt(CKM_AES_GCM)"));
  out.resize(out_len);
  return out;
}

absl::StatusOr<std::vector<uint8_t>> Token::AesGcmDecrypt(
    CK_OBJECT_HANDLE key, std::span<const uint8_t> iv, std::span<const uint8_t> aad,
    std::span<const uint8_t> ciphertext_and_tag) {
  if (iv.size() != 12 || aad.empty()) {
    return absl::InvalidArgumentError("AES-GCM needs a 12-byte IV and a non-empty AAD");
  }
  if (ciphertext_and_tag.size() < 16) {
    return absl::InvalidArgumentError("cipher: message authentication failed");
  }
  const metrics::ScopedTimer timer(OperationHistogram("decrypt", CKM_AES_GCM));
  ASSIGN_OR_RETURN(Lease lease, Acquire());
  CK_GCM_PARAMS params = GcmParams(iv, aad);
  CK_MECHANISM mech = {CKM_AES_GCM, &params, sizeof params};
  RETURN_IF_ERROR(Check(lease, lease.fn()->C_DecryptInit(lease.handle(), &mech, key),
                        "C_DecryptInit(CKM_AES_GCM)"));
  // Room for the whole input: SoftHSM2 2.6.1 asks for it before it checks the tag.
  std::vector<uint8_t> out(ciphertext_and_tag.size());
  CK_ULONG out_len = out.size();
  const CK_RV rv =
      lease.fn()->C_Decrypt(lease.handle(), const_cast<uint8_t*>(ciphertext_and_tag.data()),
                            static_cast<CK_ULONG>(ciphertext_and_tag.size()), out.data(), &out_len);
  if (rv != CKR_OK) {
    lease.Discard();
    if (rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_GENERAL_ERROR ||
        rv == CKR_ENCRYPTED_DATA_LEN_RANGE) {
      return absl::InvalidArgumentError("cipher: message authentication failed");
    }
    return RvToStatus(rv, "C_Decrypt(CKM_AES_GCM)");
  }
  out.resize(out_len);
  return out;
}

absl::StatusOr<std::vector<uint8_t>> Token::Hmac(CK_OBJECT_HANDLE key, CK_MECHANISM_TYPE mechanism,
                                                 std::span<const uint8_t> data) {
  const metrics::ScopedTimer timer(OperationHistogram("sign", mechanism));
  ASSIGN_OR_RETURN(Lease lease, Acquire());
  CK_MECHANISM mech = {mechanism, nullptr, 0};
  const CK_RV init = lease.fn()->C_SignInit(lease.handle(), &mech, key);
  if (internal::IsUnsupportedMechanism(init)) {
    return internal::Unsupported(absl::StrFormat("HMAC mechanism 0x%x", mechanism), "C_SignInit",
                                 init);
  }
  RETURN_IF_ERROR(Check(lease, init, "C_SignInit(HMAC)"));
  std::vector<uint8_t> out(64);
  CK_ULONG out_len = out.size();
  const CK_RV rv = lease.fn()->C_Sign(lease.handle(), const_cast<uint8_t*>(data.data()),
                                      static_cast<CK_ULONG>(data.size()), out.data(), &out_len);
  if (rv != CKR_OK) lease.Discard();
  RETURN_IF_ERROR(Check(lease, rv, "C_Sign(HMAC)"));
  out.resize(out_len);
  return out;
}

absl::StatusOr<Token::WrappedPair> Token::GenerateWrappedPair(CK_OBJECT_HANDLE kek, PairType type) {
  const PairInfo info = InfoFor(type);
  const metrics::ScopedTimer timer(OperationHistogram("generate_key_pair", info.gen));
  ASSIGN_OR_RETURN(Lease lease, Acquire());
  const bool rsa = info.key_type == CKK_RSA;
  std::vector<CK_ATTRIBUTE> pub = PublicTemplate(info);
  CK_ATTRIBUTE priv[] = {
      In(CKA_TOKEN, kFalse),      In(CKA_PRIVATE, kTrue),
      In(CKA_SENSITIVE, kTrue),    // never readable
      In(CKA_EXTRACTABLE, kTrue),  // only so the KEK can wrap it, once, right below
      In(CKA_SIGN, kTrue),        In(CKA_DECRYPT, rsa ? kTrue : kFalse),
      In(CKA_UNWRAP, kFalse),     In(CKA_DERIVE, kFalse),
  };
  CK_MECHANISM mech = {info.gen, nullptr, 0};
  CK_OBJECT_HANDLE pub_h = CK_INVALID_HANDLE, priv_h = CK_INVALID_HANDLE;
  RETURN_IF_ERROR(Check(lease,
                        lease.fn()->C_GenerateKeyPair(lease.handle(), &mech, pub.data(), pub.size(),
                                                      priv, std::size(priv), &pub_h, &priv_h),
                        "C_GenerateKeyPair"));
  ObjectGuard pub_guard(lease, pub_h);
  ObjectGuard priv_guard(lease, priv_h);
  WrappedPair out;
  ASSIGN_OR_RETURN(out.public_spki, PublicSpki(lease, pub_h, info));
  // SoftHSM2 2.6.1 cannot wrap EdDSA private keys (FailedPrecondition): a key that cannot be
  // kept wrapped is not made at all.
  ASSIGN_OR_RETURN(out.private_blob, WrapObjectOn(lease, kek, priv_h, "private key: "));
  return out;
}

absl::StatusOr<CK_OBJECT_HANDLE> Token::UnwrapPrivateKey(CK_OBJECT_HANDLE kek,
                                                         std::span<const uint8_t> blob,
                                                         PairType type) {
  const PairInfo info = InfoFor(type);
  const CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
  const bool rsa = info.key_type == CKK_RSA;
  CK_ATTRIBUTE tmpl[] = {
      In(CKA_CLASS, cls),       In(CKA_KEY_TYPE, info.key_type),
      In(CKA_TOKEN, kFalse),    In(CKA_PRIVATE, kTrue),
      In(CKA_SENSITIVE, kTrue), In(CKA_EXTRACTABLE, kFalse),
      In(CKA_SIGN, kTrue),      In(CKA_DECRYPT, rsa ? kTrue : kFalse),
      In(CKA_UNWRAP, kFalse),   In(CKA_DERIVE, kFalse),
  };
  const metrics::ScopedTimer timer(OperationHistogram("unwrap", CKM_AES_KEY_WRAP_PAD));
  CK_MECHANISM mech = {CKM_AES_KEY_WRAP_PAD, nullptr, 0};
  std::lock_guard<std::mutex> lock(login_mu_);
  if (login_session_ == nullptr) return absl::FailedPreconditionError("the token is closed");
  CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
  const CK_RV rv = login_session_->fn()->C_UnwrapKey(
      login_session_->handle(), &mech, kek, const_cast<uint8_t*>(blob.data()),
      static_cast<CK_ULONG>(blob.size()), tmpl, std::size(tmpl), &key);
  RETURN_IF_ERROR(RvToStatus(rv, "C_UnwrapKey(private key)"));
  return key;
}

absl::StatusOr<std::vector<uint8_t>> Token::SignWith(CK_OBJECT_HANDLE key,
                                                     CK_MECHANISM_TYPE mechanism,
                                                     const CK_RSA_PKCS_PSS_PARAMS* pss,
                                                     std::span<const uint8_t> data) {
  const metrics::ScopedTimer timer(OperationHistogram("sign", mechanism));
  ASSIGN_OR_RETURN(Lease lease, Acquire());
  CK_RSA_PKCS_PSS_PARAMS params{};
  if (pss != nullptr) params = *pss;
  CK_MECHANISM mech = {mechanism, pss != nullptr ? &params : nullptr,
                       pss != nullptr ? static_cast<CK_ULONG>(sizeof params) : 0};
  const CK_RV init = lease.fn()->C_SignInit(lease.handle(), &mech, key);
  if (internal::IsUnsupportedMechanism(init)) {
    return internal::Unsupported(
        absl::StrFormat("signature mechanism 0x%x with these parameters", mechanism), "C_SignInit",
        init);
  }
  RETURN_IF_ERROR(Check(lease, init, "C_SignInit"));
  std::vector<uint8_t> out(1024);  // RSA-4096: 512 bytes; Ed25519 64; P-521 132
  CK_ULONG out_len = out.size();
  const CK_RV rv = lease.fn()->C_Sign(lease.handle(), const_cast<uint8_t*>(data.data()),
                                      static_cast<CK_ULONG>(data.size()), out.data(), &out_len);
  if (rv != CKR_OK) lease.Discard();
  RETURN_IF_ERROR(Check(lease, rv, "C_Sign"));
  out.resize(out_len);
  return out;
}

}  // namespace strongroom::hsm
