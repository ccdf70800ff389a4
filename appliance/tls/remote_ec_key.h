// An OpenSSL EVP_PKEY for an ECDSA P-256 key whose private half lives elsewhere: every signature
// is computed by a callback (the worker asks the broker over its signing channel; the broker
// asks the PKCS#11 token). The EVP_PKEY holds only the public key, so it can be given to
// SSL_CTX_use_PrivateKey, X509_sign or X509_REQ_sign without any private key in memory.
#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace strongroom::tls {

// Signs a message digest (what OpenSSL hands to ECDSA: 20, 28, 32, 48 or 64 bytes) and returns
// the DER ECDSA-Sig-Value.
using DigestSigner = std::function<absl::StatusOr<std::string>(std::span<const uint8_t> digest)>;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// `spki_der`: DER SubjectPublicKeyInfo of a P-256 key (other curves and types are refused with
// InvalidArgument). The signer is called from inside OpenSSL (a TLS handshake, X509_sign) on the
// calling thread and must be synchronous; its errors make that OpenSSL operation fail.
absl::StatusOr<PkeyPtr> MakeRemoteEcKey(std::string_view spki_der, DigestSigner signer);

// Digest lengths a remote signer accepts: SHA-1, SHA-224, SHA-256, SHA-384, SHA-512.
inline bool IsAllowedDigestLength(size_t n) {
  return n == 20 || n == 28 || n == 32 || n == 48 || n == 64;
}

}  // namespace strongroom::tls
