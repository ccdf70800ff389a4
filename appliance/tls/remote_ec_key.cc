// Why the deprecated EC_KEY_METHOD API, and why only in this file.
//
// OpenSSL 3 has two ways to send a key's private operation somewhere else:
//  * a provider (a keymgmt and a signature implementation registered in a library context,
//    fetched by libssl through EVP_DigestSign): the long-term form, but a full one is an order
//    of magnitude more code here (its keymgmt must import, export and match keys against the
//    certificate's key, which the default provider holds, and libssl queries it for group and
//    security bits);
//  * the 1.1-era EC_KEY_METHOD, deprecated in 3.0 but supported through the 3.x series: an
//    EC_KEY whose method is not the built-in one is a "foreign" key, and libcrypto keeps the
//    legacy path for it (EVP_PKEY_CTX -> ECDSA_sign -> the method's sign callback). libssl's
//    TLS 1.2 ServerKeyExchange and TLS 1.3 CertificateVerify signatures, X509_sign and
//    X509_REQ_sign all go through EVP_DigestSign and therefore reach the callback.
// We use the second, isolated here: this translation unit alone defines
// OPENSSL_SUPPRESS_DEPRECATED (before any OpenSSL header); no other file uses EC_KEY. When the
// legacy path goes away (OpenSSL 4), this file becomes a provider with the same interface.
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "appliance/tls/remote_ec_key.h"

#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include <cstring>
#include <mutex>

#include "base/log.h"

namespace strongroom::tls {
namespace {

void FreeSigner(void* /*parent*/, void* ptr, CRYPTO_EX_DATA* /*ad*/, int /*idx*/, long /*argl*/,
                void* /*argp*/) {
  delete static_cast<DigestSigner*>(ptr);
}

// A copied EC_KEY (EC_KEY_dup, EVP_PKEY_dup) gets its own copy of the signer, so that each
// key frees only its own.
int DupSigner(CRYPTO_EX_DATA* /*to*/, const CRYPTO_EX_DATA* /*from*/, void** from_d, int /*idx*/,
              long /*argl*/, void* /*argp*/) {
  if (from_d != nullptr && *from_d != nullptr) {
    *from_d = new DigestSigner(*static_cast<DigestSigner*>(*from_d));
  }
  return 1;
}

int SignerIndex() {
  static const int index = EC_KEY_get_ex_new_index(0, nullptr, nullptr, DupSigner, FreeSigner);
  return index;
}

// The signature from the signer, checked to be one well-formed DER ECDSA-Sig-Value (the worker
// gets it from another process) that fits what OpenSSL allotted for this key.
ECDSA_SIG* CallSigner(const unsigned char* dgst, int dlen, EC_KEY* eckey, std::string* der) {
  auto* signer = static_cast<DigestSigner*>(EC_KEY_get_ex_data(eckey, SignerIndex()));
  if (signer == nullptr || dlen <= 0 || !IsAllowedDigestLength(static_cast<size_t>(dlen))) {
    return nullptr;
  }
  absl::StatusOr<std::string> sig =
      (*signer)(std::span<const uint8_t>(dgst, static_cast<size_t>(dlen)));
  if (!sig.ok()) {
    LogWarn("remote ECDSA signature failed: %s", sig.status().message());
    return nullptr;
  }
  const auto* p = reinterpret_cast<const unsigned char*>(sig->data());
  ECDSA_SIG* parsed = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig->size()));
  if (parsed == nullptr || p != reinterpret_cast<const unsigned char*>(sig->data()) + sig->size() ||
      sig->size() > static_cast<size_t>(ECDSA_size(eckey))) {
    ECDSA_SIG_free(parsed);
    LogWarn("remote ECDSA signature is malformed");
    return nullptr;
  }
  if (der != nullptr) *der = *std::move(sig);
  return parsed;
}

// ECDSA_sign (the EVP path): DER into `sig`, which OpenSSL sized with ECDSA_size.
int Sign(int /*type*/, const unsigned char* dgst, int dlen, unsigned char* sig,
         unsigned int* siglen, const BIGNUM* kinv, const BIGNUM* r, EC_KEY* eckey) {
  if (kinv != nullptr || r != nullptr) return 0;  // precomputed nonces belong to a local key
  std::string der;
  ECDSA_SIG* parsed = CallSigner(dgst, dlen, eckey, &der);
  if (parsed == nullptr) return 0;
  ECDSA_SIG_free(parsed);
  std::memcpy(sig, der.data(), der.size());
  *siglen = static_cast<unsigned int>(der.size());
  return 1;
}

// ECDSA_do_sign (direct callers).
ECDSA_SIG* SignSig(const unsigned char* dgst, int dlen, const BIGNUM* kinv, const BIGNUM* r,
                   EC_KEY* eckey) {
  if (kinv != nullptr || r != nullptr) return nullptr;
  return CallSigner(dgst, dlen, eckey, nullptr);
}

// No nonce precomputation: the nonce is chosen where the private key is.
int SignSetup(EC_KEY* /*eckey*/, BN_CTX* /*ctx*/, BIGNUM** /*kinv*/, BIGNUM** /*r*/) { return 0; }

const EC_KEY_METHOD* RemoteMethod() {
  static const EC_KEY_METHOD* method = [] {
    EC_KEY_METHOD* m = EC_KEY_METHOD_new(EC_KEY_OpenSSL());
    if (m != nullptr) EC_KEY_METHOD_set_sign(m, Sign, SignSetup, SignSig);
    return m;
  }();
  return method;
}

}  // namespace

absl::StatusOr<PkeyPtr> MakeRemoteEcKey(std::string_view spki_der, DigestSigner signer) {
  if (!signer) return absl::InvalidArgumentError("no signer");
  const EC_KEY_METHOD* method = RemoteMethod();
  if (method == nullptr || SignerIndex() < 0) {
    return absl::InternalError("cannot set up the remote EC key method");
  }
  const auto* p = reinterpret_cast<const unsigned char*>(spki_der.data());
  EC_KEY* ec = d2i_EC_PUBKEY(nullptr, &p, static_cast<long>(spki_der.size()));
  if (ec == nullptr ||
      p != reinterpret_cast<const unsigned char*>(spki_der.data()) + spki_der.size()) {
    EC_KEY_free(ec);
    ERR_clear_error();
    return absl::InvalidArgumentError("the public key is not an EC SubjectPublicKeyInfo");
  }
  const EC_GROUP* group = EC_KEY_get0_group(ec);
  if (group == nullptr || EC_GROUP_get_curve_name(group) != NID_X9_62_prime256v1) {
    EC_KEY_free(ec);
    return absl::InvalidArgumentError("the public key is not on P-256");
  }
  auto* owned = new DigestSigner(std::move(signer));
  if (EC_KEY_set_method(ec, method) != 1 || EC_KEY_set_ex_data(ec, SignerIndex(), owned) != 1) {
    delete owned;  // not attached: the ex_data free callback will not see it
    EC_KEY_free(ec);
    ERR_clear_error();
    return absl::InternalError("cannot attach the remote signer to the EC key");
  }
  // From here the EC_KEY owns the signer (FreeSigner runs when the key is freed).
  PkeyPtr pkey(EVP_PKEY_new());
  if (!pkey || EVP_PKEY_assign_EC_KEY(pkey.get(), ec) != 1) {
    EC_KEY_free(ec);
    ERR_clear_error();
    return absl::InternalError("cannot wrap the EC key in an EVP_PKEY");
  }
  return pkey;
}

}  // namespace strongroom::tls
