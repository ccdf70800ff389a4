// Token: key pairs kept as token objects because the token cannot wrap them, RSA-OAEP inside the
// token, and the mechanism query the engines use to refuse what the token cannot do.
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <algorithm>
#include <mutex>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/metrics_catalog.h"
#include "base/status_macros.h"
#include "hsm/op_metrics.h"
#include "hsm/rv.h"
#include "hsm/token.h"
#include "hsm/token_internal.h"

namespace strongroom::hsm {

using internal::Check;
using internal::FindGuard;
using internal::In;
using internal::InfoFor;
using internal::kFalse;
using internal::kTrue;
using internal::ObjectGuard;
using internal::PairInfo;
using internal::PublicSpki;
using internal::PublicTemplate;
using internal::ReadAttribute;
using internal::Sv;

namespace {

constexpr CK_OBJECT_CLASS kPrivateKeyClass = CKO_PRIVATE_KEY;
constexpr CK_OBJECT_CLASS kPublicKeyClass = CKO_PUBLIC_KEY;
constexpr CK_KEY_TYPE kRsaKey = CKK_RSA;

// Up to `max` private key token objects with CKA_ID == id (an empty id: every one).
absl::StatusOr<std::vector<CK_OBJECT_HANDLE>> FindPrivateTokenKeys(Token::Lease& lease,
                                                                   std::span<const uint8_t> id,
                                                                   size_t max) {
  std::vector<CK_ATTRIBUTE> tmpl = {In(CKA_CLASS, kPrivateKeyClass), In(CKA_TOKEN, kTrue)};
  if (!id.empty()) tmpl.push_back(In(CKA_ID, id.data(), id.size()));
  RETURN_IF_ERROR(Check(lease,
                        lease.fn()->C_FindObjectsInit(lease.handle(), tmpl.data(),
                                                      static_cast<CK_ULONG>(tmpl.size())),
                        "C_FindObjectsInit"));
  FindGuard guard(lease);
  std::vector<CK_OBJECT_HANDLE> out;
  CK_OBJECT_HANDLE batch[64];
  while (out.size() < max) {
    CK_ULONG count = 0;
    RETURN_IF_ERROR(
        Check(lease, lease.fn()->C_FindObjects(lease.handle(), batch, std::size(batch), &count),
              "C_FindObjects"));
    if (count == 0) break;
    out.insert(out.end(), batch, batch + std::min<size_t>(count, std::size(batch)));
  }
  return out;
}

absl::Status CheckId(std::span<const uint8_t> id) {
  if (id.empty() || id.size() > Token::kMaxStoredKeyId) {
    return absl::InvalidArgumentError(
        absl::StrCat("a stored key's id must be 1 to ", Token::kMaxStoredKeyId, " bytes"));
  }
  return absl::OkStatus();
}

size_t HashBytes(CK_MECHANISM_TYPE hash) { return hash == CKM_SHA_1 ? 20 : 32; }

// The modulus and public exponent of a DER SubjectPublicKeyInfo holding an RSA key.
absl::Status RsaNumbers(std::string_view spki, std::vector<uint8_t>* n, std::vector<uint8_t>* e) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(spki.data());
  EVP_PKEY* key = d2i_PUBKEY(nullptr, &p, static_cast<long>(spki.size()));
  if (key == nullptr || EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
    EVP_PKEY_free(key);
    return absl::InvalidArgumentError("the public key is not an RSA SubjectPublicKeyInfo");
  }
  BIGNUM* bn_n = nullptr;
  BIGNUM* bn_e = nullptr;
  const bool ok = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &bn_n) == 1 &&
                  EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &bn_e) == 1 &&
                  BN_num_bytes(bn_n) > 0 && BN_num_bytes(bn_n) <= 2048 && BN_num_bytes(bn_e) > 0 &&
                  BN_num_bytes(bn_e) <= 8;
  if (ok) {
    n->resize(static_cast<size_t>(BN_num_bytes(bn_n)));
    e->resize(static_cast<size_t>(BN_num_bytes(bn_e)));
    BN_bn2bin(bn_n, n->data());
    BN_bn2bin(bn_e, e->data());
  }
  BN_free(bn_n);
  BN_free(bn_e);
  EVP_PKEY_free(key);
  if (!ok) return absl::InvalidArgumentError("the RSA public key is malformed or too large");
  return absl::OkStatus();
}

CK_RSA_PKCS_OAEP_PARAMS OaepParams(CK_MECHANISM_TYPE hash) {
  CK_RSA_PKCS_OAEP_PARAMS p{};
  p.hash_alg = hash;
  p.mgf = hash == CKM_SHA_1 ? CKG_MGF1_SHA1 : CKG_MGF1_SHA256;
  p.source = CKZ_DATA_SPECIFIED;
  p.source_data = nullptr;  // the empty label
  p.source_data_len = 0;
  return p;
}

absl::Status CheckOaepHash(CK_MECHANISM_TYPE hash) {
  if (hash != CKM_SHA_1 && hash != CKM_SHA256) {
    return absl::InvalidArgumentError("RSA-OAEP hash must be SHA-1 or SHA-256");
  }
  return absl::OkStatus();
}

std::string_view OaepName(CK_MECHANISM_TYPE hash) {
  return hash == CKM_SHA_1 ? "RSA-OAEP with SHA-1" : "RSA-OAEP with SHA-256";
}

}  // namespace

absl::StatusOr<std::string> Token::GenerateStoredPair(PairType type, std::span<const uint8_t> id,
                                                      std::string_view label) {
  RETURN_IF_ERROR(CheckId(id));
  if (label.empty() || label.size() > kMaxStoredKeyLabel) {
    return absl::InvalidArgumentError(
        absl::StrCat("a stored key's label must be 1 to ", kMaxStoredKeyLabel, " bytes"));
  }
  const PairInfo info = InfoFor(type);
  // Check-then-create must not interleave with another creation of the same id.
  std::lock_guard<std::mutex> create_lock(create_mu_);
  const metrics::ScopedTimer timer(OperationHistogram("generate_key_pair", InfoFor(type).gen));
  ASSIGN_OR_RETURN(Lease lease, Acquire());
  ASSIGN_OR_RETURN(auto existing, FindPrivateTokenKeys(lease, id, 1));
  if (!existing.empty()) {
    return absl::AlreadyExistsError("a private key with this CKA_ID already exists in the token");
  }
  const bool rsa = info.key_type == CKK_RSA;
  std::vector<CK_ATTRIBUTE> pub = PublicTemplate(info);
  CK_ATTRIBUTE priv[] = {
      In(CKA_TOKEN, kTrue),         // survives restarts: this object is the only copy
      In(CKA_PRIVATE, kTrue),       // invisible without login
      In(CKA_SENSITIVE, kTrue),     // never readable
      In(CKA_EXTRACTABLE, kFalse),  // never wrapped out, by anyone
      In(CKA_SIGN, kTrue),
      In(CKA_DECRYPT, rsa ? kTrue : kFalse),
      In(CKA_UNWRAP, kFalse),
      In(CKA_DERIVE, kFalse),
      In(CKA_MODIFIABLE, kFalse),  // nobody can later flip the flags above
      In(CKA_ID, id.data(), id.size()),
      In(CKA_LABEL, label.data(), label.size()),
  };
  CK_MECHANISM mech = {info.gen, nullptr, 0};
  CK_OBJECT_HANDLE pub_h = CK_INVALID_HANDLE, priv_h = CK_INVALID_HANDLE;
  RETURN_IF_ERROR(Check(lease,
                        lease.fn()->C_GenerateKeyPair(lease.handle(), &mech, pub.data(),
                                                      static_cast<CK_ULONG>(pub.size()), priv,
                                                      std::size(priv), &pub_h, &priv_h),
                        "C_GenerateKeyPair"));
  ObjectGuard pub_guard(lease, pub_h);
  // Until the public key is read the pair is not usable: a failure destroys the private half too.
  ObjectGuard priv_guard(lease, priv_h);
  ASSIGN_OR_RETURN(std::string spki, PublicSpki(lease, pub_h, info));
  priv_guard.Release();
  return spki;
}

absl::StatusOr<CK_OBJECT_HANDLE> Token::FindStoredKey(std::span<const uint8_t> id) {
  RETURN_IF_ERROR(CheckId(id));
  ASSIGN_OR_RETURN(Lease lease, Acquire());
  ASSIGN_OR_RETURN(auto found, FindPrivateTokenKeys(lease, id, 2));
  if (found.empty()) return absl::NotFoundError("no private key with this CKA_ID in the token");
  if (found.size() > 1) {
    return absl::FailedPreconditionError("more than one private key with this CKA_ID in the token");
  }
  return found[0];
}

absl::Status Token::DestroyStoredKey(std::span<const uint8_t> id) {
  RETURN_IF_ERROR(CheckId(id));
  ASSIGN_OR_RETURN(Lease lease, Acquire());
  ASSIGN_OR_RETURN(auto found, FindPrivateTokenKeys(lease, id, 16));
  if (found.empty()) return absl::NotFoundError("no private key with this CKA_ID in the token");
  for (CK_OBJECT_HANDLE h : found) {
    RETURN_IF_ERROR(
        Check(lease, lease.fn()->C_DestroyObject(lease.handle(), h), "C_DestroyObject"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Token::StoredKeyInfo>> Token::ListStoredKeys(
    std::string_view label_prefix) {
  ASSIGN_OR_RETURN(Lease lease, Acquire());
  ASSIGN_OR_RETURN(auto found, FindPrivateTokenKeys(lease, {}, kMaxListedKeys + 1));
  if (found.size() > kMaxListedKeys) {
    return absl::ResourceExhaustedError(
        absl::StrCat("more than ", kMaxListedKeys, " private keys in the token"));
  }
  std::vector<StoredKeyInfo> out;
  for (CK_OBJECT_HANDLE h : found) {
    auto label = ReadAttribute(lease, h, CKA_LABEL);
    if (!label.ok()) continue;  // no label (or unreadable): not one of ours
    std::string text(label->begin(), label->end());
    if (!absl::StartsWith(text, Sv(label_prefix))) continue;
    ASSIGN_OR_RETURN(auto id, ReadAttribute(lease, h, CKA_ID));
    out.push_back({std::move(id), std::move(text)});
  }
  return out;
}

absl::StatusOr<std::vector<uint8_t>> Token::RsaOaepEncrypt(std::string_view public_spki,
                                                           CK_MECHANISM_TYPE hash,
                                                           std::span<const uint8_t> plaintext) {
  RETURN_IF_ERROR(CheckOaepHash(hash));
  std::vector<uint8_t> n, e;
  RETURN_IF_ERROR(RsaNumbers(public_spki, &n, &e));
  if (n.size() < 2 * HashBytes(hash) + 2 || plaintext.size() > n.size() - 2 * HashBytes(hash) - 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "plaintext too long for ", Sv(OaepName(hash)), " with this key (at most ",
        n.size() < 2 * HashBytes(hash) + 2 ? 0 : n.size() - 2 * HashBytes(hash) - 2, " bytes)"));
  }
  const metrics::ScopedTimer timer(OperationHistogram("encrypt", CKM_RSA_PKCS_OAEP));
  ASSIGN_OR_RETURN(Lease lease, Acquire());
  CK_ATTRIBUTE tmpl[] = {
      In(CKA_CLASS, kPublicKeyClass),
      In(CKA_KEY_TYPE, kRsaKey),
      In(CKA_TOKEN, kFalse),
      In(CKA_ENCRYPT, kTrue),
      In(CKA_VERIFY, kFalse),
      In(CKA_WRAP, kFalse),
      In(CKA_MODULUS, n.data(), n.size()),
      In(CKA_PUBLIC_EXPONENT, e.data(), e.size()),
  };
  CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE;
  RETURN_IF_ERROR(Check(lease,
                        lease.fn()->C_CreateObject(lease.handle(), tmpl, std::size(tmpl), &pub),
                        "C_CreateObject(RSA public key)"));
  ObjectGuard guard(lease, pub);
  CK_RSA_PKCS_OAEP_PARAMS params = OaepParams(hash);
  CK_MECHANISM mech = {CKM_RSA_PKCS_OAEP, &params, sizeof params};
  const CK_RV init = lease.fn()->C_EncryptInit(lease.handle(), &mech, pub);
  if (internal::IsUnsupportedMechanism(init)) {
    return internal::Unsupported(OaepName(hash), "C_EncryptInit", init);
  }
  RETURN_IF_ERROR(Check(lease, init, "C_EncryptInit(CKM_RSA_PKCS_OAEP)"));
  std::vector<uint8_t> out(n.size());
  CK_ULONG out_len = out.size();
  const CK_RV rv =
      lease.fn()->C_Encrypt(lease.handle(), const_cast<uint8_t*>(plaintext.data()),
                            static_cast<CK_ULONG>(plaintext.size()), out.data(), &out_len);
  if (rv != CKR_OK) lease.Discard();  // a failed C_Encrypt may leave the operation active
  RETURN_IF_ERROR(Check(lease, rv, "C_Encrypt(CKM_RSA_PKCS_OAEP)"));
  out.resize(out_len);
  return out;
}

absl::StatusOr<std::vector<uint8_t>> Token::RsaOaepDecrypt(CK_OBJECT_HANDLE private_key,
                                                           CK_MECHANISM_TYPE hash,
                                                           std::span<const uint8_t> ciphertext) {
  RETURN_IF_ERROR(CheckOaepHash(hash));
  // RSA-16384 at most: nothing longer is an RSA ciphertext, and the buffer below is sized by it.
  if (ciphertext.empty() || ciphertext.size() > 2048) {
    return absl::InvalidArgumentError("RSA-OAEP decryption failed: bad ciphertext length");
  }
  const metrics::ScopedTimer timer(OperationHistogram("decrypt", CKM_RSA_PKCS_OAEP));
  ASSIGN_OR_RETURN(Lease lease, Acquire());
  CK_RSA_PKCS_OAEP_PARAMS params = OaepParams(hash);
  CK_MECHANISM mech = {CKM_RSA_PKCS_OAEP, &params, sizeof params};
  const CK_RV init = lease.fn()->C_DecryptInit(lease.handle(), &mech, private_key);
  if (internal::IsUnsupportedMechanism(init)) {
    return internal::Unsupported(OaepName(hash), "C_DecryptInit", init);
  }
  RETURN_IF_ERROR(Check(lease, init, "C_DecryptInit(CKM_RSA_PKCS_OAEP)"));
  std::vector<uint8_t> out(ciphertext.size());
  CK_ULONG out_len = out.size();
  const CK_RV rv =
      lease.fn()->C_Decrypt(lease.handle(), const_cast<uint8_t*>(ciphertext.data()),
                            static_cast<CK_ULONG>(ciphertext.size()), out.data(), &out_len);
  if (rv != CKR_OK) {
    lease.Discard();  // the operation may still be active
    if (rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_ENCRYPTED_DATA_LEN_RANGE ||
        rv == CKR_GENERAL_ERROR || rv == CKR_DATA_INVALID || rv == CKR_DATA_LEN_RANGE) {
      return absl::InvalidArgumentError("RSA-OAEP decryption failed");
    }
    return RvToStatus(rv, "C_Decrypt(CKM_RSA_PKCS_OAEP)");
  }
  out.resize(out_len);
  return out;
}

bool Token::HasMechanism(CK_MECHANISM_TYPE mechanism, CK_FLAGS flags) {
  const auto key = std::make_pair(mechanism, flags);
  {
    std::lock_guard<std::mutex> lock(mechanisms_mu_);
    if (auto it = mechanisms_.find(key); it != mechanisms_.end()) return it->second;
  }
  CK_MECHANISM_INFO info{};
  const CK_RV rv = module_->fn()->C_GetMechanismInfo(slot_, mechanism, &info);
  const bool has = rv == CKR_OK && (info.flags & flags) == flags;
  if (rv != CKR_OK && rv != CKR_MECHANISM_INVALID) {
    // Not cached: a transient failure must not hide a mechanism for good.
    LogWarn("C_GetMechanismInfo(0x%x): %s", static_cast<unsigned>(mechanism),
            std::string(RvName(rv)));
    return false;
  }
  std::lock_guard<std::mutex> lock(mechanisms_mu_);
  mechanisms_[key] = has;
  return has;
}

}  // namespace strongroom::hsm
