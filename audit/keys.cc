#include "audit/keys.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstring>

#include "audit/encoding.h"

namespace strongroom::audit {

void PkeyDeleter::operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }

namespace {

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

std::string OpensslError(std::string_view what) {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  std::string out(what);
  if (code != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    out += ": ";
    out += buf;
  }
  return out;
}

// Which of our two key types `key` is, or an error naming what it is instead.
Result<KeyType> Classify(EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "ED25519")) return KeyType::kEd25519;
  if (EVP_PKEY_is_a(key, "EC")) {
    char group[64] = {};
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &len) != 1) {
      return Err("EC key without a named curve");
    }
    if (std::strcmp(group, "prime256v1") != 0 && std::strcmp(group, "P-256") != 0) {
      return Err(std::string("EC key on curve ") + group + ", want P-256");
    }
    return KeyType::kEcdsaP256;
  }
  return Err("unsupported key type (want ECDSA P-256 or Ed25519)");
}

// DER SubjectPublicKeyInfo with EC points uncompressed, so that the key ID does not depend on
// how the PEM file happened to encode the point.
Result<std::string> SpkiDer(EVP_PKEY* key, KeyType type) {
  if (type == KeyType::kEcdsaP256 &&
      EVP_PKEY_set_utf8_string_param(key, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                     OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED) != 1) {
    return Err(OpensslError("cannot set the EC point format"));
  }
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key, &der);
  if (len <= 0) return Err(OpensslError("cannot encode the public key"));
  std::string out(reinterpret_cast<const char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

std::string PemOf(EVP_PKEY* key, bool is_private) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return {};
  const int ok =
      is_private ? PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)
                 : PEM_write_bio_PUBKEY(bio.get(), key);
  if (ok != 1) return {};
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

}  // namespace

Result<PublicKey> PublicKey::FromPem(std::string_view pem) {
  if (pem.size() > 64 * 1024) return Err("public key file too large");
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return Err(OpensslError("out of memory"));
  PkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return Err(OpensslError("not a PEM public key (SubjectPublicKeyInfo)"));
  AUDIT_ASSIGN_OR_RETURN(KeyType type, Classify(key.get()));
  AUDIT_ASSIGN_OR_RETURN(std::string der, SpkiDer(key.get(), type));
  return PublicKey(std::move(key), type, std::move(der));
}

Result<PublicKey> PublicKey::FromDer(std::string_view der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  PkeyPtr key(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
  if (!key) return Err(OpensslError("not a DER SubjectPublicKeyInfo"));
  if (p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) {
    return Err("trailing data after the public key");
  }
  AUDIT_ASSIGN_OR_RETURN(KeyType type, Classify(key.get()));
  AUDIT_ASSIGN_OR_RETURN(std::string spki, SpkiDer(key.get(), type));
  return PublicKey(std::move(key), type, std::move(spki));
}

std::string PublicKey::ToPem() const { return PemOf(key_.get(), /*is_private=*/false); }

uint32_t PublicKey::KeyId(std::string_view key_name) const {
  Hash h{};
  if (type_ == KeyType::kEd25519) {
    unsigned char raw[32] = {};
    size_t raw_len = sizeof(raw);
    if (EVP_PKEY_get_raw_public_key(key_.get(), raw, &raw_len) != 1 || raw_len != sizeof(raw)) {
      ERR_clear_error();
      return 0;  // cannot happen for a loaded Ed25519 key; 0 matches nothing in practice
    }
    const char type_byte = static_cast<char>(kSigTypeEd25519);
    h = Sha256({key_name, "\n", std::string_view(&type_byte, 1),
                std::string_view(reinterpret_cast<const char*>(raw), raw_len)});
  } else {
    h = Sha256(spki_der_);
  }
  return (static_cast<uint32_t>(h[0]) << 24) | (static_cast<uint32_t>(h[1]) << 16) |
         (static_cast<uint32_t>(h[2]) << 8) | static_cast<uint32_t>(h[3]);
}

bool PublicKey::Verify(std::string_view message, std::string_view signature) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) return false;
  const EVP_MD* md = type_ == KeyType::kEd25519 ? nullptr : EVP_sha256();
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key_.get()) != 1) {
    ERR_clear_error();
    return false;
  }
  const int rc = EVP_DigestVerify(
      ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
      reinterpret_cast<const unsigned char*>(message.data()), message.size());
  ERR_clear_error();
  return rc == 1;
}

Result<PrivateKey> PrivateKey::Generate(KeyType type) {
  PkeyPtr key(type == KeyType::kEd25519 ? EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")
                                        : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return Err(OpensslError("key generation failed"));
  return PrivateKey(std::move(key), type);
}

Result<PrivateKey> PrivateKey::FromPem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return Err(OpensslError("out of memory"));
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return Err(OpensslError("not a PEM private key"));
  AUDIT_ASSIGN_OR_RETURN(KeyType type, Classify(key.get()));
  return PrivateKey(std::move(key), type);
}

Result<PrivateKey> PrivateKey::Ed25519FromSeed(std::string_view seed) {
  if (seed.size() != 32) return Err("Ed25519 seed must be 32 bytes");
  PkeyPtr key(EVP_PKEY_new_raw_private_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(seed.data()), seed.size()));
  if (!key) return Err(OpensslError("cannot build Ed25519 key"));
  return PrivateKey(std::move(key), KeyType::kEd25519);
}

Result<PublicKey> PrivateKey::Public() const {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key_.get(), &der);
  if (len <= 0) return Err(OpensslError("cannot encode the public key"));
  std::string spki(reinterpret_cast<const char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return PublicKey::FromDer(spki);
}

std::string PrivateKey::ToPem() const { return PemOf(key_.get(), /*is_private=*/true); }

Result<std::string> PrivateKey::Sign(std::string_view message) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) return Err("out of memory");
  const EVP_MD* md = type_ == KeyType::kEd25519 ? nullptr : EVP_sha256();
  if (EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, key_.get()) != 1) {
    return Err(OpensslError("sign init failed"));
  }
  size_t len = 0;
  const auto* msg = reinterpret_cast<const unsigned char*>(message.data());
  if (EVP_DigestSign(ctx.get(), nullptr, &len, msg, message.size()) != 1) {
    return Err(OpensslError("sign failed"));
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, msg,
                     message.size()) != 1) {
    return Err(OpensslError("sign failed"));
  }
  sig.resize(len);
  return sig;
}

Result<std::string> EcdsaRawToDer(std::string_view raw) {
  if (raw.empty() || raw.size() % 2 != 0 || raw.size() > 132) {
    return Err("raw ECDSA signature must be r || s of equal lengths");
  }
  const int half = static_cast<int>(raw.size() / 2);
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(ECDSA_SIG_new(), ECDSA_SIG_free);
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), half, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + half, half, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return Err(OpensslError("cannot build ECDSA signature"));
  }
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(sig.get(), &der);
  if (len <= 0) return Err(OpensslError("cannot encode ECDSA signature"));
  std::string out(reinterpret_cast<const char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

}  // namespace strongroom::audit
