// Transit: Vault's wire formats and algorithm names, and the public-key side of signatures
// (digests before signing, verification with the stored public key). Nothing here touches the
// token or a key value: what needs a key runs in the token (transit_backend.cc).
#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "appliance/core/json.h"
#include "appliance/engines/transit_keys.h"
#include "hsm/pkcs11.h"

namespace strongroom::engines::transit {

inline absl::string_view Av(std::string_view s) { return absl::string_view(s.data(), s.size()); }
inline std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string Str(std::span<const uint8_t> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

inline constexpr char kVersionPrefix[] = "vault:v";

// Base64 in, as Vault's fields are; `missing` is the error when `required` and absent.
absl::StatusOr<std::string> DecodeB64(const core::json::object& o, const char* field, bool required,
                                      std::string_view missing);

// Vault's "vault:v<N>:<base64>" parsing, with Vault's error texts ("invalid <kind>: ...").
// `url_safe`: the payload is base64url without padding (JWS-marshaled signatures).
absl::StatusOr<std::pair<int64_t, std::string>> ParseVersioned(std::string_view text,
                                                               std::string_view kind,
                                                               bool url_safe = false);

// The AAD the token always receives: never empty (SoftHSM2 2.6.1 mishandles GCM with an empty
// AAD), and binding the key name and version, so a ciphertext cannot be moved between keys or
// versions. The client's associated_data is appended.
std::string BoundAad(const std::string& name, int64_t version, std::string_view client_aad);

// AES-GCM nonces of Transit encryptions: 96 bits, random (as Vault's), so a version is rotated
// before it has made transit_max_encryptions of them (transit_ops.cc). They come from OpenSSL's
// DRBG in blocks of kNoncesPerDraw per thread: one RAND_bytes call costs about 2 us of CPU here
// (a getpid() system call for its fork check, and the DRBG's set-up) whether it makes 12 bytes
// or 768. Each nonce of a block is handed out once, by the thread that drew the block; a forked
// child drops what its parent drew (hsm::ForkGeneration), so the two never share nonces.
inline constexpr size_t kNonceBytes = 12;
inline constexpr size_t kNoncesPerDraw = 64;
// A fresh nonce into `out`; Internal when the random generator fails.
absl::Status NextNonce(std::span<uint8_t, kNonceBytes> out);

// One of Vault's hash algorithm names and how the token and OpenSSL spell it.
struct HashAlg {
  std::string_view name;         // "sha2-256"
  const EVP_MD* (*md)();         // OpenSSL's digest
  size_t size;                   // digest bytes
  CK_MECHANISM_TYPE digest;      // PKCS#11 digest mechanism (RSA-PSS hashAlg)
  CK_MECHANISM_TYPE hmac;        // PKCS#11 HMAC mechanism
  CK_RSA_PKCS_MGF_TYPE mgf;      // MGF1 with this hash (RSA-PSS)
  std::string_view digest_info;  // DER DigestInfo prefix (RSA PKCS#1 v1.5)
  bool in_hash_endpoint;         // accepted by transit/hash (Vault's list there has no sha1)
};
// sha1, sha2-224/256/384/512, sha3-224/256/384/512; nullptr for anything else.
const HashAlg* FindHash(std::string_view name);
// Whether the name is a SHA-3 one (for messages about what the token lacks).
bool IsSha3(const HashAlg& h);

// sign/verify options, parsed as Vault parses them.
struct SignOptions {
  const HashAlg* hash = nullptr;  // nullptr: "none"
  std::string hash_name;
  bool prehashed = false;
  std::string signature_algorithm = "pss";  // RSA: "pss" or "pkcs1v15"
  bool jws = false;                         // marshaling_algorithm "jws"
  std::string salt_length = "auto";         // RSA-PSS: "auto", "hash" or a number
};
absl::StatusOr<SignOptions> ReadSignOptions(const core::json::object& in, std::string_view url_alg);

// The bytes an ECDSA or RSA key signs for `input`: its digest, or `input` itself when it is
// prehashed (then it must have the digest's length).
absl::StatusOr<std::string> DigestFor(const HashAlg& h, std::string_view input, bool prehashed);

// The RSA-PSS salt length for `spec`; for_verify lets "auto" accept any length.
absl::StatusOr<int> PssSaltLength(const std::string& spec, const HashAlg& h, size_t modulus_bytes,
                                  bool for_verify);

// Whether `sig` (raw signature bytes as sign produced them, before base64) is valid for `input`
// under the stored public key `spki` of a key of type `kt`.
absl::StatusOr<bool> VerifyWithPublicKey(const KeyType& kt, const std::string& spki,
                                         std::string_view input, std::string sig,
                                         const SignOptions& opts);

// Bytes of an RSA key's modulus, from its stored public key.
absl::StatusOr<size_t> RsaModulusBytes(const std::string& spki);

}  // namespace strongroom::engines::transit
