#include "hsm/token_internal.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "hsm/rv.h"

namespace strongroom::hsm::internal {

absl::Status Check(Token::Lease& lease, CK_RV rv, std::string_view what) {
  switch (rv) {
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_CLOSED:
    case CKR_DEVICE_REMOVED:
    case CKR_DEVICE_ERROR:
    case CKR_TOKEN_NOT_PRESENT:
      lease.Discard();
      break;
    default:
      break;
  }
  return RvToStatus(rv, what);
}

absl::Status Unsupported(std::string_view what, std::string_view call, CK_RV rv) {
  return absl::UnimplementedError(absl::StrCat("this PKCS#11 token does not offer ", Sv(what), " (",
                                               Sv(call), ": ", Sv(RvName(rv)), ")"));
}

ObjectGuard::~ObjectGuard() {
  if (object_ == CK_INVALID_HANDLE) return;
  const CK_RV rv = lease_.fn()->C_DestroyObject(lease_.handle(), object_);
  if (rv != CKR_OK) {
    LogWarn("C_DestroyObject on a temporary object: %s; closing its session instead",
            std::string(RvName(rv)));
    lease_.Discard();
  }
}

FindGuard::~FindGuard() {
  if (lease_.fn()->C_FindObjectsFinal(lease_.handle()) != CKR_OK) lease_.Discard();
}

absl::StatusOr<std::vector<uint8_t>> WrapObjectOn(Token::Lease& lease, CK_OBJECT_HANDLE kek,
                                                  CK_OBJECT_HANDLE object, std::string_view what) {
  CK_MECHANISM mech = {CKM_AES_KEY_WRAP_PAD, nullptr, 0};
  CK_ULONG len = 0;
  const CK_RV size_rv = lease.fn()->C_WrapKey(lease.handle(), &mech, kek, object, nullptr, &len);
  if (size_rv == CKR_KEY_NOT_WRAPPABLE) {
    return absl::FailedPreconditionError(
        "this PKCS#11 token cannot wrap private keys of this type (CKR_KEY_NOT_WRAPPABLE)");
  }
  RETURN_IF_ERROR(Check(lease, size_rv, absl::StrCat(Sv(what), "C_WrapKey(size)")));
  std::vector<uint8_t> blob(len);
  RETURN_IF_ERROR(
      Check(lease, lease.fn()->C_WrapKey(lease.handle(), &mech, kek, object, blob.data(), &len),
            absl::StrCat(Sv(what), "C_WrapKey")));
  blob.resize(len);
  return blob;
}

absl::StatusOr<std::vector<uint8_t>> ReadAttribute(Token::Lease& lease, CK_OBJECT_HANDLE object,
                                                   CK_ATTRIBUTE_TYPE type) {
  CK_ATTRIBUTE a = {type, nullptr, 0};
  RETURN_IF_ERROR(Check(lease, lease.fn()->C_GetAttributeValue(lease.handle(), object, &a, 1),
                        "C_GetAttributeValue(size)"));
  if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > kMaxAttributeBytes) {
    return absl::InternalError("C_GetAttributeValue: the attribute is unavailable or too large");
  }
  std::vector<uint8_t> out(a.ulValueLen);
  a.pValue = out.data();
  RETURN_IF_ERROR(Check(lease, lease.fn()->C_GetAttributeValue(lease.handle(), object, &a, 1),
                        "C_GetAttributeValue"));
  out.resize(a.ulValueLen);
  return out;
}

PairInfo InfoFor(Token::PairType t) {
  switch (t) {
    case Token::PairType::kEcP256:
      return {CKK_EC,
              CKM_EC_KEY_PAIR_GEN,
              {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07},
              "prime256v1",
              0};
    case Token::PairType::kEcP384:
      return {
          CKK_EC, CKM_EC_KEY_PAIR_GEN, {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22}, "secp384r1", 0};
    case Token::PairType::kEcP521:
      return {
          CKK_EC, CKM_EC_KEY_PAIR_GEN, {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23}, "secp521r1", 0};
    case Token::PairType::kEd25519:
      return {
          CKK_EC_EDWARDS, CKM_EC_EDWARDS_KEY_PAIR_GEN, {0x06, 0x03, 0x2b, 0x65, 0x70}, nullptr, 0};
    case Token::PairType::kRsa2048:
      return {CKK_RSA, CKM_RSA_PKCS_KEY_PAIR_GEN, {}, nullptr, 2048};
    case Token::PairType::kRsa3072:
      return {CKK_RSA, CKM_RSA_PKCS_KEY_PAIR_GEN, {}, nullptr, 3072};
    case Token::PairType::kRsa4096:
      return {CKK_RSA, CKM_RSA_PKCS_KEY_PAIR_GEN, {}, nullptr, 4096};
  }
  return {};
}

namespace {

// CKA_EC_POINT is a DER OCTET STRING around the point; strip it.
std::vector<uint8_t> StripOctetString(std::vector<uint8_t> v) {
  if (v.size() >= 2 && v[0] == 0x04) {
    size_t len = v[1], hdr = 2;
    if (v[1] == 0x81 && v.size() >= 3) {
      len = v[2];
      hdr = 3;
    } else if (v[1] == 0x82 && v.size() >= 4) {
      len = (static_cast<size_t>(v[2]) << 8) | v[3];
      hdr = 4;
    }
    if (hdr + len == v.size())
      return std::vector<uint8_t>(v.begin() + static_cast<long>(hdr), v.end());
  }
  return v;
}

absl::StatusOr<std::string> SpkiOf(EVP_PKEY* pkey) {
  if (pkey == nullptr) return absl::InternalError("cannot build the public key");
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(pkey, &der);
  EVP_PKEY_free(pkey);
  if (len <= 0) return absl::InternalError("cannot encode the public key");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

// An EVP_PKEY from OSSL_PARAMs of `type` ("RSA", "EC"); nullptr on any failure.
EVP_PKEY* FromParams(const char* type, OSSL_PARAM* params) {
  if (params == nullptr) return nullptr;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  EVP_PKEY* pkey = nullptr;
  if (ctx == nullptr || EVP_PKEY_fromdata_init(ctx) != 1 ||
      EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    pkey = nullptr;
  }
  EVP_PKEY_CTX_free(ctx);
  return pkey;
}

}  // namespace

absl::StatusOr<std::string> PublicSpki(Token::Lease& lease, CK_OBJECT_HANDLE pub,
                                       const PairInfo& info) {
  if (info.key_type == CKK_RSA) {
    ASSIGN_OR_RETURN(auto n, ReadAttribute(lease, pub, CKA_MODULUS));
    ASSIGN_OR_RETURN(auto e, ReadAttribute(lease, pub, CKA_PUBLIC_EXPONENT));
    BIGNUM* bn_n = BN_bin2bn(n.data(), static_cast<int>(n.size()), nullptr);
    BIGNUM* bn_e = BN_bin2bn(e.data(), static_cast<int>(e.size()), nullptr);
    OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM* params = nullptr;
    if (bn_n != nullptr && bn_e != nullptr && bld != nullptr &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) == 1) {
      params = OSSL_PARAM_BLD_to_param(bld);
    }
    EVP_PKEY* pkey = FromParams("RSA", params);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    return SpkiOf(pkey);
  }
  ASSIGN_OR_RETURN(auto point_der, ReadAttribute(lease, pub, CKA_EC_POINT));
  const std::vector<uint8_t> point = StripOctetString(std::move(point_der));
  if (info.key_type == CKK_EC_EDWARDS) {
    return SpkiOf(
        EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, point.data(), point.size()));
  }
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>(info.group),
                                       0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, const_cast<uint8_t*>(point.data()),
                                        point.size()),
      OSSL_PARAM_construct_end(),
  };
  return SpkiOf(FromParams("EC", params));
}

std::vector<CK_ATTRIBUTE> PublicTemplate(const PairInfo& info) {
  static const uint8_t kExponent[] = {0x01, 0x00, 0x01};
  const bool rsa = info.key_type == CKK_RSA;
  std::vector<CK_ATTRIBUTE> pub = {
      In(CKA_TOKEN, kFalse),
      In(CKA_VERIFY, kTrue),
      In(CKA_ENCRYPT, rsa ? kTrue : kFalse),
      In(CKA_WRAP, kFalse),
  };
  if (rsa) {
    pub.push_back(In(CKA_MODULUS_BITS, info.modulus_bits));
    pub.push_back(In(CKA_PUBLIC_EXPONENT, kExponent, sizeof kExponent));
  } else {
    pub.push_back(In(CKA_EC_PARAMS, info.params.data(), info.params.size()));
  }
  return pub;
}

}  // namespace strongroom::hsm::internal
