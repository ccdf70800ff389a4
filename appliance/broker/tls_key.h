// The listener's TLS key in the seal's PKCS#11 token (listener "tcp" { tls_key_label = ... }):
// an ECDSA P-256 pair generated inside the token, whose private half is sensitive, never
// extractable and sign-only (hsm::Token::GenerateSigningKey, as for the audit key). The broker
// signs the workers' handshake digests with it (tls_sign_server.h) and, for the operator's CLI,
// self-signed certificates and certificate requests; the key is never read.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "appliance/tls/remote_ec_key.h"
#include "hsm/token.h"

namespace strongroom::broker {

class TokenTlsKey {
 public:
  // Creates the pair in the token. AlreadyExists when a private key with the label exists.
  static absl::StatusOr<TokenTlsKey> Generate(hsm::Token* token, std::string_view label);
  // Finds the pair and checks the private half (sensitive, not extractable, may sign but not
  // decrypt or unwrap) and the public half (EC P-256). NotFound names the label and the CLI
  // command that creates the key.
  static absl::StatusOr<TokenTlsKey> Find(hsm::Token* token, std::string_view label);

  // DER SubjectPublicKeyInfo.
  const std::string& public_key_der() const { return spki_der_; }
  const std::string& label() const { return label_; }

  // DER ECDSA signature computed by the token over `digest`, which must be 20, 28, 32, 48 or
  // 64 bytes (a message digest; nothing else is ever signed). Thread-safe.
  absl::StatusOr<std::string> SignDigest(std::span<const uint8_t> digest) const;

  // An EVP_PKEY whose signatures are SignDigest (for X509_sign / X509_REQ_sign). It refers to
  // the token: it must not outlive it.
  absl::StatusOr<tls::PkeyPtr> Pkey() const;

 private:
  TokenTlsKey(hsm::Token* token, hsm::SigningKey key, std::string label, std::string spki_der)
      : token_(token), key_(key), label_(std::move(label)), spki_der_(std::move(spki_der)) {}

  hsm::Token* token_;
  hsm::SigningKey key_;
  std::string label_;
  std::string spki_der_;
};

}  // namespace strongroom::broker
