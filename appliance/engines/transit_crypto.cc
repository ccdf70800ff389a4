#include "appliance/engines/transit_crypto.h"

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <array>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "appliance/core/request.h"
#include "audit/keys.h"
#include "base/status_macros.h"
#include "hsm/fork_generation.h"

namespace strongroom::engines::transit {
namespace {

using core::Bad;
using core::json::object;
using namespace std::string_view_literals;

// PKCS#11 3.0 numbers, absent from the pkcs11.h of Debian 12's p11-kit.
constexpr CK_MECHANISM_TYPE kCkmSha3_256 = 0x2B0, kCkmSha3_256Hmac = 0x2B1;
constexpr CK_MECHANISM_TYPE kCkmSha3_224 = 0x2B5, kCkmSha3_224Hmac = 0x2B6;
constexpr CK_MECHANISM_TYPE kCkmSha3_384 = 0x2C0, kCkmSha3_384Hmac = 0x2C1;
constexpr CK_MECHANISM_TYPE kCkmSha3_512 = 0x2D0, kCkmSha3_512Hmac = 0x2D1;
constexpr CK_RSA_PKCS_MGF_TYPE kMgf1Sha3_224 = 0x6, kMgf1Sha3_256 = 0x7, kMgf1Sha3_384 = 0x8,
                               kMgf1Sha3_512 = 0x9;

// DigestInfo prefixes (RFC 8017 section 9.2 note 1; SHA-3 OIDs 2.16.840.1.101.3.4.2.7-10).
constexpr HashAlg kHashes[] = {
    {"sha1", EVP_sha1, 20, CKM_SHA_1, CKM_SHA_1_HMAC, CKG_MGF1_SHA1,
     "\x30\x21\x30\x09\x06\x05\x2b\x0e\x03\x02\x1a\x05\x00\x04\x14"sv, false},
    {"sha2-224", EVP_sha224, 28, CKM_SHA224, CKM_SHA224_HMAC, CKG_MGF1_SHA224,
     "\x30\x2d\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x04\x05\x00\x04\x1c"sv, true},
    {"sha2-256", EVP_sha256, 32, CKM_SHA256, CKM_SHA256_HMAC, CKG_MGF1_SHA256,
     "\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20"sv, true},
    {"sha2-384", EVP_sha384, 48, CKM_SHA384, CKM_SHA384_HMAC, CKG_MGF1_SHA384,
     "\x30\x41\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x02\x05\x00\x04\x30"sv, true},
    {"sha2-512", EVP_sha512, 64, CKM_SHA512, CKM_SHA512_HMAC, CKG_MGF1_SHA512,
     "\x30\x51\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x03\x05\x00\x04\x40"sv, true},
    {"sha3-224", EVP_sha3_224, 28, kCkmSha3_224, kCkmSha3_224Hmac, kMgf1Sha3_224,
     "\x30\x2d\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x07\x05\x00\x04\x1c"sv, true},
    {"sha3-256", EVP_sha3_256, 32, kCkmSha3_256, kCkmSha3_256Hmac, kMgf1Sha3_256,
     "\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x08\x05\x00\x04\x20"sv, true},
    {"sha3-384", EVP_sha3_384, 48, kCkmSha3_384, kCkmSha3_384Hmac, kMgf1Sha3_384,
     "\x30\x41\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x09\x05\x00\x04\x30"sv, true},
    {"sha3-512", EVP_sha3_512, 64, kCkmSha3_512, kCkmSha3_512Hmac, kMgf1Sha3_512,
     "\x30\x51\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x0a\x05\x00\x04\x40"sv, true},
};

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

absl::StatusOr<Pkey> LoadPublic(const std::string& der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  Pkey key(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
  if (!key) return absl::DataLossError("stored public key is corrupt");
  return key;
}

}  // namespace

absl::Status NextNonce(std::span<uint8_t, kNonceBytes> out) {
  struct Block {
    std::array<uint8_t, kNonceBytes * kNoncesPerDraw> bytes{};
    size_t next = kNonceBytes * kNoncesPerDraw;  // empty: the first call draws
    uint64_t fork_generation = 0;
  };
  thread_local Block block;
  const uint64_t generation = hsm::ForkGeneration();
  if (block.next == block.bytes.size() || block.fork_generation != generation) {
    block.next = block.bytes.size();  // stays empty if the draw fails
    if (RAND_bytes(block.bytes.data(), static_cast<int>(block.bytes.size())) != 1) {
      return absl::InternalError("random generator failed");
    }
    block.next = 0;
    block.fork_generation = generation;
  }
  std::memcpy(out.data(), block.bytes.data() + block.next, kNonceBytes);
  OPENSSL_cleanse(block.bytes.data() + block.next, kNonceBytes);  // handed out: not kept
  block.next += kNonceBytes;
  return absl::OkStatus();
}

absl::StatusOr<std::string> DecodeB64(const object& o, const char* field, bool required,
                                      std::string_view missing) {
  ASSIGN_OR_RETURN(auto v, core::GetString(o, field));
  if (!v) {
    if (required) return Bad(missing);
    return std::string();
  }
  std::string out;
  if (!absl::Base64Unescape(*v, &out)) {
    return Bad(absl::StrCat("failed to base64-decode ", field));
  }
  return out;
}

absl::StatusOr<std::pair<int64_t, std::string>> ParseVersioned(std::string_view text,
                                                               std::string_view kind,
                                                               bool url_safe) {
  // "vault:v<N>:<payload>"; the payload may hold further colons (they fail its decoding).
  constexpr std::string_view kPrefix = "vault:";
  if (!absl::StartsWith(Av(text), Av(kPrefix))) {
    return Bad(absl::StrCat("invalid ", Av(kind), ": no prefix"));
  }
  const std::string_view rest = text.substr(kPrefix.size());
  const size_t colon = rest.find(':');
  if (colon == std::string_view::npos) {
    return Bad(absl::StrCat("invalid ", Av(kind), ": wrong number of fields"));
  }
  const std::string_view tag = rest.substr(0, colon);
  const std::string_view payload = rest.substr(colon + 1);
  int64_t version = 0;
  if (tag.size() < 2 || tag[0] != 'v' || !absl::SimpleAtoi(Av(tag.substr(1)), &version) ||
      version < 0) {
    return Bad(absl::StrCat("invalid ", Av(kind), ": version number could not be decoded"));
  }
  if (version == 0) version = 1;  // Vault reads v0 as v1
  std::string raw;
  if (!(url_safe ? absl::WebSafeBase64Unescape(Av(payload), &raw)
                 : absl::Base64Unescape(Av(payload), &raw))) {
    return Bad(absl::StrCat("invalid ", Av(kind), ": could not decode base64"));
  }
  return std::make_pair(version, std::move(raw));
}

std::string BoundAad(const std::string& name, int64_t version, std::string_view client_aad) {
  std::string aad = "strongroom-transit";
  aad.push_back('\0');
  aad.append(name);
  aad.push_back('\0');
  aad.append(std::to_string(version));
  aad.push_back('\0');
  aad.append(client_aad);
  return aad;
}

const HashAlg* FindHash(std::string_view name) {
  for (const auto& h : kHashes) {
    if (h.name == name) return &h;
  }
  return nullptr;
}

bool IsSha3(const HashAlg& h) { return absl::StartsWith(Av(h.name), "sha3-"); }

absl::StatusOr<SignOptions> ReadSignOptions(const object& in, std::string_view url_alg) {
  SignOptions o;
  std::string name(url_alg);
  if (name.empty()) {
    ASSIGN_OR_RETURN(auto h, core::GetString(in, "hash_algorithm"));
    if (!h || h->empty()) {
      ASSIGN_OR_RETURN(h, core::GetString(in, "algorithm"));
    }
    name = h && !h->empty() ? *h : "sha2-256";
  }
  o.hash_name = name;
  if (name != "none") {
    o.hash = FindHash(name);
    if (o.hash == nullptr) return Bad(absl::StrCat("invalid hash algorithm \"", name, "\""));
  }
  ASSIGN_OR_RETURN(auto pre, core::GetBool(in, "prehashed"));
  o.prehashed = pre.value_or(false);
  ASSIGN_OR_RETURN(auto sa, core::GetString(in, "signature_algorithm"));
  if (sa && !sa->empty()) o.signature_algorithm = *sa;
  if (o.signature_algorithm != "pss" && o.signature_algorithm != "pkcs1v15") {
    return Bad(absl::StrCat("unsupported rsa signature algorithm ", o.signature_algorithm));
  }
  ASSIGN_OR_RETURN(auto m, core::GetString(in, "marshaling_algorithm"));
  const std::string marshaling = m && !m->empty() ? *m : "asn1";
  if (marshaling != "asn1" && marshaling != "jws") {
    return Bad(absl::StrCat("invalid marshaling type \"", marshaling, "\""));
  }
  o.jws = marshaling == "jws";
  if (const auto* sl = in.if_contains("salt_length"); sl != nullptr && !sl->is_null()) {
    o.salt_length = sl->is_string() ? std::string(sl->as_string()) : core::Serialize(*sl);
    if (o.salt_length.size() > 16) return Bad("invalid salt_length");
  }
  if (o.hash == nullptr && (!o.prehashed || o.signature_algorithm != "pkcs1v15")) {
    return Bad("hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15");
  }
  return o;
}

absl::StatusOr<std::string> DigestFor(const HashAlg& h, std::string_view input, bool prehashed) {
  if (prehashed) {
    if (input.size() != h.size) {
      return Bad("prehashed input has the wrong length for the hash algorithm");
    }
    return std::string(input);
  }
  unsigned char sum[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(input.data(), input.size(), sum, &len, h.md(), nullptr) != 1) {
    return absl::InternalError("digest failed");
  }
  return std::string(reinterpret_cast<char*>(sum), len);
}

absl::StatusOr<int> PssSaltLength(const std::string& spec, const HashAlg& h, size_t modulus_bytes,
                                  bool for_verify) {
  const int hlen = static_cast<int>(h.size);
  const int max = static_cast<int>(modulus_bytes) - hlen - 2;
  if (spec == "auto") return for_verify ? RSA_PSS_SALTLEN_AUTO : max;
  if (spec == "hash") return hlen;
  int n = 0;
  if (!absl::SimpleAtoi(spec, &n) || n < 0 || n > max) {
    return Bad(absl::StrCat("requested salt length ", spec, " is invalid"));
  }
  return n;
}

absl::StatusOr<size_t> RsaModulusBytes(const std::string& spki) {
  ASSIGN_OR_RETURN(Pkey pub, LoadPublic(spki));
  const int size = EVP_PKEY_get_size(pub.get());
  if (size <= 0) return absl::DataLossError("stored public key is corrupt");
  return static_cast<size_t>(size);
}

absl::StatusOr<bool> VerifyWithPublicKey(const KeyType& kt, const std::string& spki,
                                         std::string_view input, std::string sig,
                                         const SignOptions& opts) {
  ASSIGN_OR_RETURN(Pkey pub, LoadPublic(spki));
  if (kt.kind == CKK_EC_EDWARDS) {
    EVP_MD_CTX* md = EVP_MD_CTX_new();
    const bool ok =
        md != nullptr && EVP_DigestVerifyInit(md, nullptr, nullptr, nullptr, pub.get()) == 1 &&
        EVP_DigestVerify(md, reinterpret_cast<const uint8_t*>(sig.data()), sig.size(),
                         reinterpret_cast<const uint8_t*>(input.data()), input.size()) == 1;
    EVP_MD_CTX_free(md);
    return ok;
  }
  std::string data;
  if (opts.hash == nullptr) {
    data = std::string(input);  // "none" (pkcs1v15, prehashed): the input as given
  } else {
    ASSIGN_OR_RETURN(data, DigestFor(*opts.hash, input, opts.prehashed));
  }
  if (kt.kind == CKK_EC) {
    if (opts.jws) {
      // r || s, each half the length (Vault splits it in the middle too).
      if (sig.empty() || sig.size() % 2 != 0 || sig.size() > 2 * 66) return false;
      auto der = audit::EcdsaRawToDer(sig);
      if (!der.ok()) return false;
      sig = *der;
    } else {
      const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
      ECDSA_SIG* parsed = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
      if (parsed == nullptr) return Bad("supplied signature is invalid");
      ECDSA_SIG_free(parsed);
      if (p != reinterpret_cast<const unsigned char*>(sig.data()) + sig.size()) {
        return Bad("supplied signature contains extra data");
      }
    }
  }
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(pub.get(), nullptr);
  bool ok = ctx != nullptr && EVP_PKEY_verify_init(ctx) == 1;
  if (ok && kt.kind == CKK_RSA) {
    const bool pss = opts.signature_algorithm == "pss";
    ok = EVP_PKEY_CTX_set_rsa_padding(ctx, pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) == 1 &&
         (opts.hash == nullptr || EVP_PKEY_CTX_set_signature_md(ctx, opts.hash->md()) == 1);
    if (ok && pss) {
      auto salt = PssSaltLength(opts.salt_length, *opts.hash,
                                static_cast<size_t>(EVP_PKEY_get_size(pub.get())), true);
      if (!salt.ok()) {
        EVP_PKEY_CTX_free(ctx);
        return salt.status();
      }
      ok = EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, opts.hash->md()) == 1 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, *salt) == 1;
    }
  } else if (ok && opts.hash != nullptr) {
    ok = EVP_PKEY_CTX_set_signature_md(ctx, opts.hash->md()) == 1;
  }
  ok = ok && EVP_PKEY_verify(ctx, reinterpret_cast<const uint8_t*>(sig.data()), sig.size(),
                             reinterpret_cast<const uint8_t*>(data.data()), data.size()) == 1;
  EVP_PKEY_CTX_free(ctx);
  return ok;
}

}  // namespace strongroom::engines::transit
