#include "hsm/op_metrics.h"

#include "base/metrics_catalog.h"

namespace strongroom::hsm {
namespace {

// PKCS#11 3.0's SHA-3 HMAC mechanisms (p11-kit 0.24's pkcs11.h predates them).
constexpr CK_MECHANISM_TYPE kSha3_224Hmac = 0x2B6;
constexpr CK_MECHANISM_TYPE kSha3_256Hmac = 0x2B1;
constexpr CK_MECHANISM_TYPE kSha3_384Hmac = 0x2C1;
constexpr CK_MECHANISM_TYPE kSha3_512Hmac = 0x2D1;

}  // namespace

std::string_view MechanismLabel(CK_MECHANISM_TYPE m) {
  switch (m) {
    case CKM_AES_GCM:
      return "CKM_AES_GCM";
    case CKM_AES_KEY_WRAP_PAD:
      return "CKM_AES_KEY_WRAP_PAD";
    case CKM_SHA_1_HMAC:
      return "CKM_SHA_1_HMAC";
    case CKM_SHA224_HMAC:
      return "CKM_SHA224_HMAC";
    case CKM_SHA256_HMAC:
      return "CKM_SHA256_HMAC";
    case CKM_SHA384_HMAC:
      return "CKM_SHA384_HMAC";
    case CKM_SHA512_HMAC:
      return "CKM_SHA512_HMAC";
    case kSha3_224Hmac:
      return "CKM_SHA3_224_HMAC";
    case kSha3_256Hmac:
      return "CKM_SHA3_256_HMAC";
    case kSha3_384Hmac:
      return "CKM_SHA3_384_HMAC";
    case kSha3_512Hmac:
      return "CKM_SHA3_512_HMAC";
    case CKM_ECDSA:
      return "CKM_ECDSA";
    case CKM_EDDSA:
      return "CKM_EDDSA";
    case CKM_RSA_PKCS:
      return "CKM_RSA_PKCS";
    case CKM_RSA_PKCS_PSS:
      return "CKM_RSA_PKCS_PSS";
    case CKM_RSA_PKCS_OAEP:
      return "CKM_RSA_PKCS_OAEP";
    case CKM_AES_KEY_GEN:
      return "CKM_AES_KEY_GEN";
    case CKM_GENERIC_SECRET_KEY_GEN:
      return "CKM_GENERIC_SECRET_KEY_GEN";
    case CKM_EC_KEY_PAIR_GEN:
      return "CKM_EC_KEY_PAIR_GEN";
    case CKM_EC_EDWARDS_KEY_PAIR_GEN:
      return "CKM_EC_EDWARDS_KEY_PAIR_GEN";
    case CKM_RSA_PKCS_KEY_PAIR_GEN:
      return "CKM_RSA_PKCS_KEY_PAIR_GEN";
    default:
      return "other";
  }
}

metrics::Histogram& OperationHistogram(std::string_view operation, CK_MECHANISM_TYPE mechanism) {
  return metrics::Get().hsm_operation.At(
      {metrics::IndexIn(metrics::kHsmOperations, operation),
       metrics::IndexIn(metrics::kHsmMechanisms, MechanismLabel(mechanism))});
}

metrics::Histogram& RandomHistogram() {
  return metrics::Get().hsm_operation.At({metrics::IndexIn(metrics::kHsmOperations, "random"),
                                          metrics::IndexIn(metrics::kHsmMechanisms, "none")});
}

}  // namespace strongroom::hsm
