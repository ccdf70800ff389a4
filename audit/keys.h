// Audit signing keys as the verifier and the writer see them: ECDSA P-256 with SHA-256 (DER
// signatures; C2SP signed-note signature type 0x02) or Ed25519 (type 0x01). Verifiers load a
// PEM SubjectPublicKeyInfo; PrivateKey exists for tests, fuzzing and software-key deployments —
// the broker signs with its PKCS#11 key and hands the signature to AttachSignature (chain.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "audit/result.h"

typedef struct evp_pkey_st EVP_PKEY;  // NOLINT: OpenSSL's own spelling

namespace strongroom::audit {

enum class KeyType { kEcdsaP256, kEd25519 };

// C2SP signed-note signature type identifier bytes.
inline constexpr uint8_t kSigTypeEd25519 = 0x01;
inline constexpr uint8_t kSigTypeEcdsa = 0x02;

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const;
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

class PublicKey {
 public:
  // A PEM "PUBLIC KEY" (SubjectPublicKeyInfo) block; other key types and curves are refused.
  static Result<PublicKey> FromPem(std::string_view pem);
  // DER SubjectPublicKeyInfo.
  static Result<PublicKey> FromDer(std::string_view der);

  PublicKey(PublicKey&&) = default;
  PublicKey& operator=(PublicKey&&) = default;

  KeyType type() const { return type_; }
  // DER SubjectPublicKeyInfo; EC points always in uncompressed form.
  const std::string& spki_der() const { return spki_der_; }
  std::string ToPem() const;

  // The C2SP note key ID for this key under `key_name`:
  //   Ed25519: SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4]
  //   ECDSA:   SHA-256(DER SubjectPublicKeyInfo)[:4] (the name is not part of it)
  uint32_t KeyId(std::string_view key_name) const;

  // True when `signature` (DER for ECDSA, 64 bytes for Ed25519) is valid for `message`.
  bool Verify(std::string_view message, std::string_view signature) const;

 private:
  PublicKey(PkeyPtr key, KeyType type, std::string spki_der)
      : key_(std::move(key)), type_(type), spki_der_(std::move(spki_der)) {}

  PkeyPtr key_;
  KeyType type_;
  std::string spki_der_;
};

class PrivateKey {
 public:
  static Result<PrivateKey> Generate(KeyType type);
  static Result<PrivateKey> FromPem(std::string_view pem);
  // A deterministic Ed25519 key from a 32-byte seed (fuzzing and reproducible tests).
  static Result<PrivateKey> Ed25519FromSeed(std::string_view seed);

  PrivateKey(PrivateKey&&) = default;
  PrivateKey& operator=(PrivateKey&&) = default;

  KeyType type() const { return type_; }
  Result<PublicKey> Public() const;
  std::string ToPem() const;
  // ECDSA: DER signature over SHA-256(message). Ed25519: RFC 8032 signature over message.
  Result<std::string> Sign(std::string_view message) const;

 private:
  PrivateKey(PkeyPtr key, KeyType type) : key_(std::move(key)), type_(type) {}

  PkeyPtr key_;
  KeyType type_;
};

// PKCS#11 CKM_ECDSA returns r || s (2 x 32 bytes for P-256, 2 x 48 for P-384, 2 x 66 for P-521);
// notes carry DER. Converts one into the other (minimal DER INTEGERs).
Result<std::string> EcdsaRawToDer(std::string_view raw);

}  // namespace strongroom::audit
