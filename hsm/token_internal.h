// Helpers shared by the files that implement Token (token.cc, transit_keys.cc, stored_keys.cc).
// Internal to hsm/: nothing outside the folder includes this header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "hsm/pkcs11.h"
#include "hsm/token.h"

namespace strongroom::hsm::internal {

// Debian 12's Abseil is built with its own absl::string_view (ABSL_OPTION_USE_STD_STRING_VIEW
// is 0), which absl::StrCat takes but std::string_view does not convert to implicitly.
inline absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// The pointer-typed fields of CK_ATTRIBUTE are non-const, but C_CreateObject, C_GenerateKey,
// C_UnwrapKey and C_FindObjectsInit only read the template, so constant inputs are safe here.
inline CK_ATTRIBUTE In(CK_ATTRIBUTE_TYPE type, const void* value, size_t len) {
  return CK_ATTRIBUTE{type, const_cast<void*>(value), static_cast<CK_ULONG>(len)};
}
template <typename T>
CK_ATTRIBUTE In(CK_ATTRIBUTE_TYPE type, const T& value) {
  return In(type, &value, sizeof value);
}

inline constexpr CK_BBOOL kTrue = CK_TRUE;
inline constexpr CK_BBOOL kFalse = CK_FALSE;

// RvToStatus that also keeps `lease` from pooling its session when the code says the session,
// or the token behind it, is gone: handing such a session to the next caller would fail them too.
absl::Status Check(Token::Lease& lease, CK_RV rv, std::string_view what);

// Destroys a temporary object when it goes out of scope, on success and error paths alike:
// these objects hold plaintext secrets inside the token. If destruction fails the session is
// discarded (closing it destroys its session objects) rather than pooled with the secret inside.
class ObjectGuard {
 public:
  ObjectGuard(Token::Lease& lease, CK_OBJECT_HANDLE object) : lease_(lease), object_(object) {}
  ObjectGuard(const ObjectGuard&) = delete;
  ObjectGuard& operator=(const ObjectGuard&) = delete;
  ~ObjectGuard();
  // The object is kept (it is a token object now owned by the caller).
  void Release() { object_ = CK_INVALID_HANDLE; }

 private:
  Token::Lease& lease_;
  CK_OBJECT_HANDLE object_;
};

// Ends a find operation on every path (an active find would make the pooled session unusable
// for the next C_FindObjectsInit).
class FindGuard {
 public:
  explicit FindGuard(Token::Lease& lease) : lease_(lease) {}
  FindGuard(const FindGuard&) = delete;
  FindGuard& operator=(const FindGuard&) = delete;
  ~FindGuard();

 private:
  Token::Lease& lease_;
};

// True for the codes a token answers an *Init call with when it does not offer the mechanism or
// refuses its parameters (SoftHSM2 2.6.1 says CKR_ARGUMENTS_BAD for OAEP or PSS with a hash it
// lacks).
inline bool IsUnsupportedMechanism(CK_RV rv) {
  return rv == CKR_MECHANISM_INVALID || rv == CKR_MECHANISM_PARAM_INVALID ||
         rv == CKR_ARGUMENTS_BAD;
}
// Unimplemented "this PKCS#11 token does not offer <what> (<call>: CKR_...)".
absl::Status Unsupported(std::string_view what, std::string_view call, CK_RV rv);

// C_WrapKey of `object` under `kek` with CKM_AES_KEY_WRAP_PAD (size query, then the wrap).
// `what` prefixes error messages. A key the token refuses to wrap is FailedPrecondition.
absl::StatusOr<std::vector<uint8_t>> WrapObjectOn(Token::Lease& lease, CK_OBJECT_HANDLE kek,
                                                  CK_OBJECT_HANDLE object, std::string_view what);

// Largest attribute ReadAttribute accepts (an RSA-16384 modulus is 2 KiB): a token reporting
// more is refused rather than trusted with an allocation of its choosing.
inline constexpr size_t kMaxAttributeBytes = 16 * 1024;

// Reads one variable-length attribute (at most kMaxAttributeBytes).
absl::StatusOr<std::vector<uint8_t>> ReadAttribute(Token::Lease& lease, CK_OBJECT_HANDLE object,
                                                   CK_ATTRIBUTE_TYPE type);

// How the token makes a key pair of each Token::PairType.
struct PairInfo {
  CK_KEY_TYPE key_type;
  CK_MECHANISM_TYPE gen;
  std::vector<uint8_t> params;  // CKA_EC_PARAMS (EC and Edwards)
  const char* group;            // OpenSSL group name (EC)
  CK_ULONG modulus_bits;        // RSA
};
PairInfo InfoFor(Token::PairType t);

// DER SubjectPublicKeyInfo of the public key object `pub` of a pair made as `info` says.
absl::StatusOr<std::string> PublicSpki(Token::Lease& lease, CK_OBJECT_HANDLE pub,
                                       const PairInfo& info);

// The public-key template of C_GenerateKeyPair for `info`: a session object that verifies (and,
// for RSA, encrypts) only. Points into `info` and static data: keep `info` alive while it is used.
std::vector<CK_ATTRIBUTE> PublicTemplate(const PairInfo& info);

}  // namespace strongroom::hsm::internal
