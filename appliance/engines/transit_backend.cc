#include "appliance/engines/transit_backend.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <atomic>
#include <map>
#include <mutex>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "appliance/core/core.h"
#include "appliance/core/seal.h"
#include "appliance/engines/routes.h"
#include "audit/keys.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "hsm/token.h"

namespace strongroom::engines {
namespace {

using core::Bad;
using core::Operation;
using core::Request;
using core::Response;
using core::json::array;
using core::json::object;

constexpr char kKeyPrefix[] = "policy/";
constexpr char kCiphertextPrefix[] = "vault:v";
constexpr size_t kNonceBytes = 12;
// Each version's HMAC key. Vault uses 32 bytes; SoftHSM2 requires an HMAC key at least as long
// as the digest, so 64 bytes lets every algorithm up to sha2-512 run in the token.
constexpr size_t kHmacKeyBytes = 64;
constexpr uint64_t kReserveBlock = 65536;  // nonce budget reserved durably at a time
constexpr int64_t kMaxRandomBytes = 128 * 1024;

std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
std::string Str(std::span<const uint8_t> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}
absl::string_view Av(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// The token's errors are ours, not the client's: anything but a failed authentication tag
// becomes an internal error (500; the detail stays in the broker log).
constexpr std::string_view kAuthFailed = "cipher: message authentication failed";
// Vault encrypts with RSA keys using OAEP with SHA-256; SoftHSM2 2.6.1 decrypts OAEP with SHA-1
// only (CKR_ARGUMENTS_BAD otherwise), and the private key may not leave the token to do it
// elsewhere, so RSA keys sign and verify only.
constexpr std::string_view kNoRsaEncryption =
    "rsa keys sign and verify only here: Vault's RSA-OAEP (SHA-256) decryption is not available "
    "inside this PKCS#11 token";
absl::Status FromToken(const absl::Status& s) {
  if (s.ok() || (absl::IsInvalidArgument(s) && s.message() == Av(kAuthFailed))) return s;
  return absl::InternalError(absl::StrCat("PKCS#11: ", s.message()));
}
template <typename T>
absl::StatusOr<T> FromToken(absl::StatusOr<T> r) {
  if (r.ok()) return r;
  return FromToken(r.status());
}

// Key types this engine creates. Asymmetric types are refused until they are built.
using PairType = hsm::Token::PairType;

struct KeyType {
  std::string_view name;
  CK_KEY_TYPE kind;  // CKK_AES, CKK_GENERIC_SECRET ("hmac"), CKK_EC, CKK_EC_EDWARDS or CKK_RSA
  size_t bytes;      // symmetric key size
  PairType pair;     // asymmetric types
  std::string_view public_name;  // the "name" Vault shows for a public key
};
constexpr KeyType kKeyTypes[] = {
    {"aes256-gcm96", CKK_AES, 32, PairType::kEcP256, ""},
    {"aes128-gcm96", CKK_AES, 16, PairType::kEcP256, ""},
    {"hmac", CKK_GENERIC_SECRET, 32, PairType::kEcP256, ""},
    {"ecdsa-p256", CKK_EC, 0, PairType::kEcP256, "P-256"},
    {"ecdsa-p384", CKK_EC, 0, PairType::kEcP384, "P-384"},
    {"ecdsa-p521", CKK_EC, 0, PairType::kEcP521, "P-521"},
    {"ed25519", CKK_EC_EDWARDS, 0, PairType::kEd25519, "ed25519"},
    {"rsa-2048", CKK_RSA, 0, PairType::kRsa2048, "rsa-2048"},
    {"rsa-3072", CKK_RSA, 0, PairType::kRsa3072, "rsa-3072"},
    {"rsa-4096", CKK_RSA, 0, PairType::kRsa4096, "rsa-4096"},
};
bool IsAsymmetric(const KeyType& t) {
  return t.kind == CKK_EC || t.kind == CKK_EC_EDWARDS || t.kind == CKK_RSA;
}
const KeyType* FindKeyType(std::string_view name) {
  for (const auto& t : kKeyTypes) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

struct Version {
  int64_t created = 0;     // Unix seconds
  std::string key_blob;    // wrapped AES key or private key (absent for "hmac" keys)
  std::string public_key;  // asymmetric types: DER SubjectPublicKeyInfo (public)
  std::string hmac_blob;   // wrapped HMAC key
  uint64_t reserved = 0;   // encryptions durably reserved for this version (the nonce budget)
  uint64_t used = 0;       // encryptions made; after a load it starts at `reserved`
  CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
  CK_OBJECT_HANDLE hmac = CK_INVALID_HANDLE;
};

struct Key {
  std::mutex mu;
  std::string name;
  std::string type;
  bool deletion_allowed = false;
  int64_t min_decryption_version = 1;
  int64_t min_encryption_version = 0;
  int64_t min_available_version = 0;
  int64_t latest_version = 0;
  int64_t auto_rotate_period = 0;  // seconds
  int64_t last_rotated = 0;        // Unix seconds
  size_t key_size = 0;             // hmac keys
  std::map<int64_t, Version> versions;
};

std::string KeyToJson(const Key& k) {
  object o;
  o["name"] = k.name;
  o["type"] = k.type;
  o["deletion_allowed"] = k.deletion_allowed;
  o["min_decryption_version"] = k.min_decryption_version;
  o["min_encryption_version"] = k.min_encryption_version;
  o["min_available_version"] = k.min_available_version;
  o["latest_version"] = k.latest_version;
  o["auto_rotate_period"] = k.auto_rotate_period;
  o["last_rotated"] = k.last_rotated;
  o["key_size"] = static_cast<int64_t>(k.key_size);
  object versions;
  for (const auto& [n, v] : k.versions) {
    object vo;
    vo["created"] = v.created;
    if (!v.key_blob.empty()) vo["key"] = absl::Base64Escape(v.key_blob);
    if (!v.public_key.empty()) vo["public_key"] = absl::Base64Escape(v.public_key);
    vo["hmac_key"] = absl::Base64Escape(v.hmac_blob);
    vo["reserved"] = v.reserved;
    versions[std::to_string(n)] = std::move(vo);
  }
  o["versions"] = std::move(versions);
  return core::Serialize(o);
}

absl::StatusOr<std::shared_ptr<Key>> KeyFromJson(std::string_view text) {
  ASSIGN_OR_RETURN(auto o, core::ParseObject(text));
  auto k = std::make_shared<Key>();
  auto str = [&](const char* f) {
    return core::GetString(o, f).value_or(std::nullopt).value_or("");
  };
  auto num = [&](const char* f, int64_t def) {
    return core::GetInt(o, f).value_or(std::nullopt).value_or(def);
  };
  k->name = str("name");
  k->type = str("type");
  k->deletion_allowed = core::GetBool(o, "deletion_allowed").value_or(std::nullopt).value_or(false);
  k->min_decryption_version = num("min_decryption_version", 1);
  k->min_encryption_version = num("min_encryption_version", 0);
  k->min_available_version = num("min_available_version", 0);
  k->latest_version = num("latest_version", 0);
  k->auto_rotate_period = num("auto_rotate_period", 0);
  k->last_rotated = num("last_rotated", 0);
  k->key_size = static_cast<size_t>(num("key_size", 0));
  const auto* versions = o.if_contains("versions");
  if (versions == nullptr || !versions->is_object())
    return absl::DataLossError("transit key corrupt");
  for (const auto& [n, vv] : versions->as_object()) {
    int64_t num_v = 0;
    if (!absl::SimpleAtoi(Av(std::string_view(n.data(), n.size())), &num_v) || !vv.is_object()) {
      return absl::DataLossError("transit key corrupt");
    }
    const auto& vo = vv.as_object();
    Version v;
    v.created = core::GetInt(vo, "created").value_or(std::nullopt).value_or(0);
    const std::string key = core::GetString(vo, "key").value_or(std::nullopt).value_or("");
    const std::string hmac = core::GetString(vo, "hmac_key").value_or(std::nullopt).value_or("");
    const std::string pub = core::GetString(vo, "public_key").value_or(std::nullopt).value_or("");
    if (!absl::Base64Unescape(key, &v.key_blob) || !absl::Base64Unescape(hmac, &v.hmac_blob) ||
        !absl::Base64Unescape(pub, &v.public_key)) {
      return absl::DataLossError("transit key corrupt");
    }
    v.reserved =
        static_cast<uint64_t>(core::GetInt(vo, "reserved").value_or(std::nullopt).value_or(0));
    v.used = v.reserved;  // whatever was reserved may have been used before a crash
    k->versions[num_v] = std::move(v);
  }
  return k;
}

// Base64 in, as Vault's fields are. `what` names the field in the error.
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

// Vault's "vault:v<N>:<base64>" parsing, with Vault's error texts.
absl::StatusOr<std::pair<int64_t, std::string>> ParseVersioned(std::string_view text,
                                                               std::string_view kind) {
  if (!absl::StartsWith(Av(text), "vault:"))
    return Bad(absl::StrCat("invalid ", Av(kind), ": no prefix"));
  std::vector<std::string> parts = absl::StrSplit(Av(text), absl::MaxSplits(':', 2));
  if (parts.size() != 3) return Bad(absl::StrCat("invalid ", Av(kind), ": wrong number of fields"));
  int64_t version = 0;
  if (parts[1].size() < 2 || parts[1][0] != 'v' ||
      !absl::SimpleAtoi(parts[1].substr(1), &version) || version < 0) {
    return Bad(absl::StrCat("invalid ", Av(kind), ": version number could not be decoded"));
  }
  if (version == 0) version = 1;  // Vault reads v0 as v1
  std::string raw;
  if (!absl::Base64Unescape(parts[2], &raw)) {
    return Bad(absl::StrCat("invalid ", Av(kind), ": could not decode base64"));
  }
  return std::make_pair(version, std::move(raw));
}

// The AAD the token always receives: never empty (SoftHSM2 2.6.1 mishandles GCM with an empty
// AAD), and binding the key name and version, so a ciphertext cannot be moved between keys or
// versions. The client's associated_data is appended.
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

absl::StatusOr<CK_MECHANISM_TYPE> HmacMechanism(std::string_view alg) {
  if (alg.empty() || alg == "sha2-256") return CKM_SHA256_HMAC;
  if (alg == "sha2-224") return CKM_SHA224_HMAC;
  if (alg == "sha2-384") return CKM_SHA384_HMAC;
  if (alg == "sha2-512") return CKM_SHA512_HMAC;
  return Bad(absl::StrCat("unsupported algorithm ", Av(alg)));
}

const EVP_MD* HashAlgorithm(std::string_view alg) {
  if (alg.empty() || alg == "sha2-256") return EVP_sha256();
  if (alg == "sha2-224") return EVP_sha224();
  if (alg == "sha2-384") return EVP_sha384();
  if (alg == "sha2-512") return EVP_sha512();
  if (alg == "sha3-224") return EVP_sha3_224();
  if (alg == "sha3-256") return EVP_sha3_256();
  if (alg == "sha3-384") return EVP_sha3_384();
  if (alg == "sha3-512") return EVP_sha3_512();
  return nullptr;
}

// ---- asymmetric helpers (public-key operations run in OpenSSL: the public key is public) -----

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

// Vault's public_key field: PEM for ECDSA and RSA, base64 of the raw 32 bytes for Ed25519.
std::string PublicKeyText(const KeyType& t, const std::string& der) {
  auto key = LoadPublic(der);
  if (!key.ok()) return "";
  if (t.kind == CKK_EC_EDWARDS) {
    uint8_t raw[32];
    size_t len = sizeof raw;
    if (EVP_PKEY_get_raw_public_key(key->get(), raw, &len) != 1) return "";
    return absl::Base64Escape(std::string(reinterpret_cast<char*>(raw), len));
  }
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, key->get());
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(len));
  BIO_free(bio);
  return pem;
}

struct SignHash {
  const EVP_MD* md;  // nullptr: "none"
  CK_MECHANISM_TYPE mech;
  CK_RSA_PKCS_MGF_TYPE mgf;
  std::string_view digest_info;  // DER DigestInfo prefix for PKCS#1 v1.5
};

absl::StatusOr<SignHash> SignHashFor(std::string_view alg) {
  using namespace std::string_view_literals;
  if (alg.empty() || alg == "sha2-256") {
    return SignHash{
        EVP_sha256(), CKM_SHA256, CKG_MGF1_SHA256,
        "\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20"sv};
  }
  if (alg == "sha2-224") {
    return SignHash{
        EVP_sha224(), CKM_SHA224, CKG_MGF1_SHA224,
        "\x30\x2d\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x04\x05\x00\x04\x1c"sv};
  }
  if (alg == "sha2-384") {
    return SignHash{
        EVP_sha384(), CKM_SHA384, CKG_MGF1_SHA384,
        "\x30\x41\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x02\x05\x00\x04\x30"sv};
  }
  if (alg == "sha2-512") {
    return SignHash{
        EVP_sha512(), CKM_SHA512, CKG_MGF1_SHA512,
        "\x30\x51\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x03\x05\x00\x04\x40"sv};
  }
  if (alg == "none") return SignHash{nullptr, 0, 0, ""sv};
  return Bad(absl::StrCat("unsupported hash algorithm ", Av(alg)));
}

struct SignOptions {
  std::string hash_algorithm;
  bool prehashed = false;
  std::string signature_algorithm = "pss";
  std::string marshaling = "asn1";
  std::string salt_length = "auto";
};

absl::StatusOr<SignOptions> ReadSignOptions(const object& in, std::string_view url_alg) {
  SignOptions o;
  ASSIGN_OR_RETURN(auto h, core::GetString(in, "hash_algorithm"));
  if (!h) {
    ASSIGN_OR_RETURN(h, core::GetString(in, "algorithm"));
  }
  o.hash_algorithm = url_alg.empty() ? h.value_or("sha2-256") : std::string(url_alg);
  ASSIGN_OR_RETURN(auto pre, core::GetBool(in, "prehashed"));
  o.prehashed = pre.value_or(false);
  ASSIGN_OR_RETURN(auto sa, core::GetString(in, "signature_algorithm"));
  if (sa && !sa->empty()) o.signature_algorithm = *sa;
  if (o.signature_algorithm != "pss" && o.signature_algorithm != "pkcs1v15") {
    return Bad(absl::StrCat("unsupported signature algorithm ", o.signature_algorithm));
  }
  ASSIGN_OR_RETURN(auto m, core::GetString(in, "marshaling_algorithm"));
  if (m && !m->empty()) o.marshaling = *m;
  if (o.marshaling != "asn1" && o.marshaling != "jws") {
    return Bad(absl::StrCat("unsupported marshaling algorithm ", o.marshaling));
  }
  if (const auto* sl = in.if_contains("salt_length"); sl != nullptr && !sl->is_null()) {
    o.salt_length = sl->is_string() ? std::string(sl->as_string()) : core::Serialize(*sl);
  }
  return o;
}

// The bytes the token signs for ECDSA and RSA-PSS: the digest of the input (or the input when
// prehashed, which must then be a digest of the right size).
absl::StatusOr<std::string> DigestFor(const SignHash& h, std::string_view input, bool prehashed) {
  if (h.md == nullptr) return Bad("hash algorithm none is only valid with pkcs1v15 signatures");
  if (prehashed) {
    if (input.size() != static_cast<size_t>(EVP_MD_get_size(h.md))) {
      return Bad("prehashed input has the wrong length for the hash algorithm");
    }
    return std::string(input);
  }
  unsigned char sum[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(input.data(), input.size(), sum, &len, h.md, nullptr) != 1) {
    return absl::InternalError("digest failed");
  }
  return std::string(reinterpret_cast<char*>(sum), len);
}

absl::StatusOr<int> PssSaltLength(const std::string& spec, const SignHash& h, size_t modulus_bytes,
                                  bool for_verify) {
  const int hlen = EVP_MD_get_size(h.md);
  if (spec == "auto") {
    return for_verify ? RSA_PSS_SALTLEN_AUTO : static_cast<int>(modulus_bytes) - hlen - 2;
  }
  if (spec == "hash") return hlen;
  int n = 0;
  if (!absl::SimpleAtoi(spec, &n) || n < 0 || n > static_cast<int>(modulus_bytes) - hlen - 2) {
    return Bad("invalid salt_length");
  }
  return n;
}

class TransitBackend final : public core::Backend {
 public:
  explicit TransitBackend(core::Core* core) : core_(core) {}

  std::span<const core::Route> Routes() const override { return TransitRoutes(); }

  ~TransitBackend() override {
    auto token = Token();
    if (!token.ok()) return;
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [name, k] : keys_) {
      std::lock_guard<std::mutex> klock(k->mu);
      for (auto& [n, v] : k->versions) DropHandles(**token, v);
    }
  }

  absl::StatusOr<bool> Exists(const Request& req) override {
    const std::string& p = req.rel_path;
    for (const char* prefix : {"keys/", "encrypt/"}) {
      if (absl::StartsWith(p, prefix)) {
        const std::string name = p.substr(std::string_view(prefix).size());
        if (name.empty() || absl::StrContains(name, "/")) return true;
        ASSIGN_OR_RETURN(auto k, Find(*req.storage, name));
        return k != nullptr;
      }
    }
    return true;
  }

  absl::StatusOr<Response> Handle(Request& req) override {
    const std::string& p = req.rel_path;
    const bool write = req.operation == Operation::kUpdate || req.operation == Operation::kCreate;
    if (p == "keys" || p == "keys/") {
      if (req.operation != Operation::kList) return core::UnsupportedOperation();
      return ListKeys(req);
    }
    if (absl::StartsWith(p, "keys/")) {
      std::vector<std::string> parts = absl::StrSplit(p.substr(5), '/');
      if (parts.size() == 1) return OneKey(req, parts[0]);
      if (parts.size() == 2 && write) {
        if (parts[1] == "config") return Config(req, parts[0]);
        if (parts[1] == "rotate") return RotateEndpoint(req, parts[0]);
        if (parts[1] == "trim") return Trim(req, parts[0]);
      }
      return absl::NotFoundError("");
    }
    if (absl::StartsWith(p, "export/") || absl::StartsWith(p, "backup/") ||
        absl::StartsWith(p, "restore")) {
      return Bad(
          "exporting or backing up keys is not supported: Transit keys never leave the PKCS#11 "
          "token");
    }
    if (!write && !absl::StartsWith(p, "random") && !absl::StartsWith(p, "hash")) {
      return core::UnsupportedOperation();
    }
    auto rest = [&](std::string_view prefix) { return p.substr(prefix.size()); };
    if (absl::StartsWith(p, "encrypt/")) return Batch(req, rest("encrypt/"), Op::kEncrypt);
    if (absl::StartsWith(p, "decrypt/")) return Batch(req, rest("decrypt/"), Op::kDecrypt);
    if (absl::StartsWith(p, "rewrap/")) return Batch(req, rest("rewrap/"), Op::kRewrap);
    if (absl::StartsWith(p, "hmac/")) return Batch(req, rest("hmac/"), Op::kHmac);
    if (absl::StartsWith(p, "verify/")) return Batch(req, rest("verify/"), Op::kVerify);
    if (absl::StartsWith(p, "datakey/")) return Datakey(req, rest("datakey/"));
    if (absl::StartsWith(p, "sign/")) return Batch(req, rest("sign/"), Op::kSign);
    if (p == "random" || absl::StartsWith(p, "random/")) return Random(req);
    if (p == "hash" || absl::StartsWith(p, "hash/")) return Hash(req);
    return absl::NotFoundError("");
  }

  void Periodic(storage::Storage& storage, absl::Time now) override {
    if (!loaded_all_) {
      auto names = storage.List(kKeyPrefix);
      if (!names.ok()) return;
      for (const auto& n : *names) (void)Find(storage, n);
      loaded_all_ = true;
    }
    std::vector<std::shared_ptr<Key>> keys;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& [n, k] : keys_) keys.push_back(k);
    }
    for (auto& k : keys) {
      std::lock_guard<std::mutex> lock(k->mu);
      if (k->auto_rotate_period <= 0 || k->latest_version == 0) continue;
      if (absl::ToUnixSeconds(now) - k->last_rotated < k->auto_rotate_period) continue;
      if (absl::Status s = RotateLocked(storage, *k); !s.ok()) {
        LogError("transit: auto-rotation of key %s failed: %s", k->name, s.message());
      } else {
        LogInfo("transit: key %s auto-rotated to version %d", k->name,
                static_cast<int>(k->latest_version));
      }
    }
  }

 private:
  enum class Op { kEncrypt, kDecrypt, kRewrap, kHmac, kVerify, kSign };

  // The token and the Transit KEK, asked of the seal once: the seal serialises its calls under
  // one mutex (also held while it signs audit checkpoints), which encrypt/decrypt need not take.
  absl::StatusOr<hsm::Token*> Token() {
    if (hsm::Token* t = token_.load()) return t;
    ASSIGN_OR_RETURN(hsm::Token * t, core_->seal()->TransitToken());
    token_.store(t);
    return t;
  }
  absl::StatusOr<CK_OBJECT_HANDLE> TransitKek() {
    if (CK_OBJECT_HANDLE k = kek_.load(); k != CK_INVALID_HANDLE) return k;
    ASSIGN_OR_RETURN(CK_OBJECT_HANDLE k, FromToken(core_->seal()->TransitKek()));
    kek_.store(k);
    return k;
  }

  static void DropHandles(hsm::Token& token, Version& v) {
    for (CK_OBJECT_HANDLE* h : {&v.key, &v.hmac}) {
      if (*h != CK_INVALID_HANDLE) (void)token.DestroyObject(*h);
      *h = CK_INVALID_HANDLE;
    }
  }

  // The cached key, loaded from storage on first use; nullptr when it does not exist.
  absl::StatusOr<std::shared_ptr<Key>> Find(storage::Storage& storage, const std::string& name) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (auto it = keys_.find(name); it != keys_.end()) return it->second;
    }
    ASSIGN_OR_RETURN(auto raw, storage.Get(kKeyPrefix + name));
    if (!raw) return std::shared_ptr<Key>();
    ASSIGN_OR_RETURN(auto k, KeyFromJson(*raw));
    std::lock_guard<std::mutex> lock(mu_);
    return keys_.emplace(name, k).first->second;
  }

  absl::Status Save(storage::Storage& storage, const Key& k) {
    return storage.Put(kKeyPrefix + k.name, KeyToJson(k));
  }

  absl::StatusOr<CK_OBJECT_HANDLE> Handle(const Key& k, Version& v, bool hmac) {
    CK_OBJECT_HANDLE& h = hmac ? v.hmac : v.key;
    if (h != CK_INVALID_HANDLE) return h;
    ASSIGN_OR_RETURN(hsm::Token * token, Token());
    ASSIGN_OR_RETURN(CK_OBJECT_HANDLE kek, TransitKek());
    const KeyType* type = FindKeyType(k.type);
    if (type == nullptr) return absl::DataLossError("transit key of unknown type");
    const std::string& blob = hmac ? v.hmac_blob : v.key_blob;
    if (!hmac && IsAsymmetric(*type)) {
      ASSIGN_OR_RETURN(h, FromToken(token->UnwrapPrivateKey(kek, Bytes(blob), type->pair)));
      return h;
    }
    const size_t bytes = hmac ? (k.type == "hmac" ? k.key_size : kHmacKeyBytes) : type->bytes;
    ASSIGN_OR_RETURN(h, FromToken(token->UnwrapKey(kek, Bytes(blob),
                                                   hmac ? CKK_GENERIC_SECRET : CKK_AES, bytes)));
    return h;
  }

  // A new version: keys generated inside the token, kept only wrapped by the Transit KEK.
  absl::Status RotateLocked(storage::Storage& storage, Key& k) {
    ASSIGN_OR_RETURN(hsm::Token * token, Token());
    ASSIGN_OR_RETURN(CK_OBJECT_HANDLE kek, TransitKek());
    const KeyType* type = FindKeyType(k.type);
    if (type == nullptr) return absl::DataLossError("transit key of unknown type");
    Version v;
    v.created = absl::ToUnixSeconds(core_->Now());
    if (type->kind == CKK_AES) {
      ASSIGN_OR_RETURN(auto blob, FromToken(token->GenerateWrappedKey(kek, CKK_AES, type->bytes)));
      v.key_blob = Str(blob);
    } else if (IsAsymmetric(*type)) {
      auto pair = token->GenerateWrappedPair(kek, type->pair);
      if (absl::IsFailedPrecondition(pair.status())) {
        return Bad(absl::StrCat("key type ", k.type, " is not supported: ", pair.status().message(),
                                "; Transit keys are only ever stored wrapped"));
      }
      RETURN_IF_ERROR(FromToken(pair.status()));
      v.key_blob = Str(pair->private_blob);
      v.public_key = std::move(pair->public_spki);
    }
    ASSIGN_OR_RETURN(auto hmac_blob,
                     FromToken(token->GenerateWrappedKey(
                         kek, CKK_GENERIC_SECRET, k.type == "hmac" ? k.key_size : kHmacKeyBytes)));
    v.hmac_blob = Str(hmac_blob);
    const int64_t next = k.latest_version + 1;
    k.versions[next] = std::move(v);
    k.latest_version = next;
    k.last_rotated = absl::ToUnixSeconds(core_->Now());
    absl::Status s = Save(storage, k);
    if (!s.ok()) {
      k.versions.erase(next);
      k.latest_version = next - 1;
    }
    return s;
  }

  object KeyObject(const Key& k) const {
    object d;
    d["name"] = k.name;
    d["type"] = k.type;
    d["derived"] = false;
    d["deletion_allowed"] = k.deletion_allowed;
    d["exportable"] = false;
    d["allow_plaintext_backup"] = false;
    d["auto_rotate_period"] = k.auto_rotate_period;
    d["imported_key"] = false;
    d["latest_version"] = k.latest_version;
    d["min_available_version"] = k.min_available_version;
    d["min_decryption_version"] = k.min_decryption_version;
    d["min_encryption_version"] = k.min_encryption_version;
    const KeyType* t = FindKeyType(k.type);
    const bool asym = t != nullptr && IsAsymmetric(*t);
    const bool encrypts = t != nullptr && t->kind == CKK_AES;
    d["supports_encryption"] = encrypts;
    d["supports_decryption"] = encrypts;
    d["supports_derivation"] = false;
    d["supports_signing"] = asym;
    if (asym) {
      object keys;
      for (const auto& [n, v] : k.versions) {
        object o;
        o["creation_time"] = core::FormatRfc3339Nano(absl::FromUnixSeconds(v.created));
        o["name"] = std::string(t->public_name);
        o["public_key"] = PublicKeyText(*t, v.public_key);
        o["certificate_chain"] = "";
        keys[std::to_string(n)] = std::move(o);
      }
      d["keys"] = std::move(keys);
    } else if (k.type != "hmac") {
      object keys;
      for (const auto& [n, v] : k.versions) keys[std::to_string(n)] = v.created;
      d["keys"] = std::move(keys);
    } else {
      d["key_size"] = static_cast<int64_t>(k.key_size);
    }
    return d;
  }

  static absl::Status ValidName(const std::string& name) {
    if (name.empty() || absl::StrContains(name, "/")) return Bad("invalid key name");
    return absl::OkStatus();
  }

  absl::StatusOr<std::shared_ptr<Key>> Create(Request& req, const std::string& name,
                                              const object& params, bool* existed) {
    ASSIGN_OR_RETURN(auto type, core::GetString(params, "type"));
    const std::string t = type.value_or("aes256-gcm96");
    const KeyType* kt = FindKeyType(t);
    if (kt == nullptr) {
      static constexpr std::string_view kLater[] = {
          "chacha20-poly1305", "xchacha20-poly1305", "ed25519",  "ecdsa-p256", "ecdsa-p384",
          "ecdsa-p521",        "rsa-2048",           "rsa-3072", "rsa-4096"};
      for (auto l : kLater) {
        if (t == l) {
          return Bad(absl::StrCat("key type ", t,
                                  " is not supported by this strongroom version (supported: "
                                  "aes256-gcm96, aes128-gcm96, hmac, ecdsa-p256, ecdsa-p384, "
                                  "ecdsa-p521, ed25519, rsa-2048, rsa-3072, rsa-4096)"));
        }
      }
      return Bad(absl::StrCat("unknown key type ", t));
    }
    for (const char* refused : {"derived", "convergent_encryption"}) {
      ASSIGN_OR_RETURN(auto b, core::GetBool(params, refused));
      if (b.value_or(false)) {
        return Bad(absl::StrCat(refused,
                                " keys are not supported: key derivation would need the key value "
                                "outside the PKCS#11 token"));
      }
    }
    for (const char* refused : {"exportable", "allow_plaintext_backup"}) {
      ASSIGN_OR_RETURN(auto b, core::GetBool(params, refused));
      if (b.value_or(false)) {
        return Bad(absl::StrCat(refused, " is not supported: Transit keys never leave the token"));
      }
    }
    ASSIGN_OR_RETURN(auto period, core::GetDurationSeconds(params, "auto_rotate_period"));
    RETURN_IF_ERROR(CheckRotatePeriod(period.value_or(0)));
    size_t key_size = 0;
    if (t == "hmac") {
      ASSIGN_OR_RETURN(auto ks, core::GetInt(params, "key_size"));
      key_size = static_cast<size_t>(ks.value_or(32));
      if (key_size < 32 || key_size > 512) return Bad("invalid key_size: must be 32 to 512 bytes");
    }
    std::lock_guard<std::mutex> create_lock(create_mu_);
    ASSIGN_OR_RETURN(auto existing, Find(*req.storage, name));
    if (existing) {
      *existed = true;
      return existing;
    }
    auto k = std::make_shared<Key>();
    k->name = name;
    k->type = t;
    k->auto_rotate_period = period.value_or(0);
    k->key_size = key_size;
    {
      std::lock_guard<std::mutex> lock(k->mu);
      RETURN_IF_ERROR(RotateLocked(*req.storage, *k));
    }
    std::lock_guard<std::mutex> lock(mu_);
    keys_[name] = k;
    return k;
  }

  absl::Status CheckRotatePeriod(int64_t period) const {
    const int64_t min = core_->options().transit_min_auto_rotate_period;
    if (period != 0 && (period < min || period < 0)) {
      return Bad("auto rotate period must be 0 to disable or at least an hour");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<Response> ListKeys(Request& req) {
    ASSIGN_OR_RETURN(auto names, req.storage->List(kKeyPrefix));
    if (names.empty()) return absl::NotFoundError("");
    array keys;
    for (const auto& n : names) keys.emplace_back(n);
    object d;
    d["keys"] = std::move(keys);
    return Response::Data(std::move(d));
  }

  absl::StatusOr<Response> OneKey(Request& req, const std::string& name) {
    RETURN_IF_ERROR(ValidName(name));
    switch (req.operation) {
      case Operation::kRead: {
        ASSIGN_OR_RETURN(auto k, Find(*req.storage, name));
        if (!k) return absl::NotFoundError("");
        std::lock_guard<std::mutex> lock(k->mu);
        return Response::Data(KeyObject(*k));
      }
      case Operation::kCreate:
      case Operation::kUpdate: {
        bool existed = false;
        ASSIGN_OR_RETURN(auto k, Create(req, name, req.data, &existed));
        std::lock_guard<std::mutex> lock(k->mu);
        Response r = Response::Data(KeyObject(*k));
        if (existed) r.warnings.push_back(absl::StrCat("key ", name, " already existed"));
        return r;
      }
      case Operation::kDelete: {
        ASSIGN_OR_RETURN(auto k, Find(*req.storage, name));
        if (!k) {
          return Bad(
              absl::StrCat("error deleting policy ", name, ": could not delete key; not found"));
        }
        std::lock_guard<std::mutex> lock(k->mu);
        if (!k->deletion_allowed) {
          return Bad(absl::StrCat("error deleting policy ", name,
                                  ": deletion is not allowed for this key"));
        }
        RETURN_IF_ERROR(req.storage->Delete(kKeyPrefix + name));
        ASSIGN_OR_RETURN(hsm::Token * token, Token());
        for (auto& [n, v] : k->versions) DropHandles(*token, v);
        std::lock_guard<std::mutex> mlock(mu_);
        keys_.erase(name);
        return Response::Empty();
      }
      default:
        return core::UnsupportedOperation();
    }
  }

  absl::StatusOr<std::shared_ptr<Key>> MustFind(Request& req, const std::string& name) {
    RETURN_IF_ERROR(ValidName(name));
    ASSIGN_OR_RETURN(auto k, Find(*req.storage, name));
    if (!k) return Bad("encryption key not found");
    return k;
  }

  absl::StatusOr<Response> Config(Request& req, const std::string& name) {
    ASSIGN_OR_RETURN(auto k, MustFind(req, name));
    std::lock_guard<std::mutex> lock(k->mu);
    Key next_cfg;
    next_cfg.min_decryption_version = k->min_decryption_version;
    next_cfg.min_encryption_version = k->min_encryption_version;
    ASSIGN_OR_RETURN(auto mdv, core::GetInt(req.data, "min_decryption_version"));
    ASSIGN_OR_RETURN(auto mev, core::GetInt(req.data, "min_encryption_version"));
    ASSIGN_OR_RETURN(auto del, core::GetBool(req.data, "deletion_allowed"));
    ASSIGN_OR_RETURN(auto period, core::GetDurationSeconds(req.data, "auto_rotate_period"));
    for (const char* refused : {"exportable", "allow_plaintext_backup"}) {
      ASSIGN_OR_RETURN(auto b, core::GetBool(req.data, refused));
      if (b.value_or(false)) {
        return Bad(absl::StrCat(refused, " is not supported: Transit keys never leave the token"));
      }
    }
    if (mdv) {
      if (*mdv < 0 || *mdv > k->latest_version) {
        return Bad("cannot set min decryption version to a value greater than the latest version");
      }
      if (*mdv < k->min_available_version) {
        return Bad("cannot set min decryption version below min available version");
      }
      next_cfg.min_decryption_version = *mdv == 0 ? 1 : *mdv;
    }
    if (mev) {
      if (*mev < 0 || *mev > k->latest_version) {
        return Bad("cannot set min encryption version to a value greater than the latest version");
      }
      next_cfg.min_encryption_version = *mev;
    }
    if (next_cfg.min_encryption_version > 0 &&
        next_cfg.min_encryption_version < next_cfg.min_decryption_version) {
      return Bad("min encryption version must be 0 or at least the min decryption version");
    }
    if (period) RETURN_IF_ERROR(CheckRotatePeriod(*period));
    Key before;
    before.min_decryption_version = k->min_decryption_version;
    before.min_encryption_version = k->min_encryption_version;
    before.deletion_allowed = k->deletion_allowed;
    before.auto_rotate_period = k->auto_rotate_period;
    k->min_decryption_version = next_cfg.min_decryption_version;
    k->min_encryption_version = next_cfg.min_encryption_version;
    if (del) k->deletion_allowed = *del;
    if (period) k->auto_rotate_period = *period;
    if (absl::Status s = Save(*req.storage, *k); !s.ok()) {
      k->min_decryption_version = before.min_decryption_version;
      k->min_encryption_version = before.min_encryption_version;
      k->deletion_allowed = before.deletion_allowed;
      k->auto_rotate_period = before.auto_rotate_period;
      return s;
    }
    return Response::Data(KeyObject(*k));
  }

  absl::StatusOr<Response> RotateEndpoint(Request& req, const std::string& name) {
    ASSIGN_OR_RETURN(auto k, MustFind(req, name));
    std::lock_guard<std::mutex> lock(k->mu);
    RETURN_IF_ERROR(RotateLocked(*req.storage, *k));
    return Response::Data(KeyObject(*k));
  }

  absl::StatusOr<Response> Trim(Request& req, const std::string& name) {
    ASSIGN_OR_RETURN(auto k, MustFind(req, name));
    ASSIGN_OR_RETURN(auto mav, core::GetInt(req.data, "min_available_version"));
    if (!mav) return Bad("missing min_available_version");
    std::lock_guard<std::mutex> lock(k->mu);
    if (*mav < k->min_available_version) {
      return Bad("minimum available version cannot be decremented");
    }
    if (*mav > k->min_decryption_version) {
      return Bad("cannot be set to a value greater than minimum decryption version");
    }
    if (k->min_encryption_version > 0 && *mav > k->min_encryption_version) {
      return Bad("cannot be set to a value greater than minimum encryption version");
    }
    ASSIGN_OR_RETURN(hsm::Token * token, Token());
    std::map<int64_t, Version> removed;
    for (auto it = k->versions.begin(); it != k->versions.end() && it->first < *mav;) {
      removed.insert(k->versions.extract(it++));
    }
    const int64_t before = k->min_available_version;
    k->min_available_version = *mav;
    if (absl::Status s = Save(*req.storage, *k); !s.ok()) {
      k->versions.merge(removed);
      k->min_available_version = before;
      return s;
    }
    for (auto& [n, v] : removed) DropHandles(*token, v);
    return Response::Data(KeyObject(*k));
  }

  // ---- per-item operations (the batch machinery calls these) --------------------------------

  absl::StatusOr<std::pair<std::string, int64_t>> EncryptOne(Request& req, Key& k,
                                                             std::string_view plaintext,
                                                             std::string_view aad,
                                                             int64_t key_version) {
    const KeyType* kt = FindKeyType(k.type);
    if (kt != nullptr && kt->kind == CKK_RSA) return Bad(kNoRsaEncryption);
    if (kt == nullptr || kt->kind != CKK_AES) {
      return Bad(absl::StrCat("key type ", k.type, " does not support encryption"));
    }
    CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
    int64_t version = 0;
    {
      std::lock_guard<std::mutex> lock(k.mu);
      version = key_version == 0 ? k.latest_version : key_version;
      if (version > k.latest_version) return Bad("invalid key version");
      if (version < k.min_encryption_version) {
        return Bad(
            "requested version for encryption is less than the minimum encryption key version");
      }
      if (version < k.min_available_version || k.versions.count(version) == 0) {
        return Bad("invalid key version");
      }
      const uint64_t limit = core_->options().transit_max_encryptions;
      if (k.versions[version].used >= limit) {
        if (key_version != 0) {
          return Bad(
              "this key version has reached its encryption limit (random 96-bit nonces); "
              "encrypt with the latest version");
        }
        // Rotate before the bound: a fresh version starts a fresh nonce budget.
        RETURN_IF_ERROR(RotateLocked(*req.storage, k));
        LogInfo(
            "transit: key %s rotated to version %d: the previous version reached %d encryptions",
            k.name, static_cast<int>(k.latest_version), static_cast<int>(limit));
        version = k.latest_version;
      }
      Version& v = k.versions[version];
      if (v.used >= v.reserved) {
        const uint64_t before = v.reserved;
        v.reserved = std::min(limit, v.reserved + kReserveBlock);
        if (absl::Status s = Save(*req.storage, k); !s.ok()) {
          v.reserved = before;
          return s;
        }
      }
      ++v.used;
      ASSIGN_OR_RETURN(handle, Handle(k, v, /*hmac=*/false));
    }
    uint8_t nonce[kNonceBytes];
    if (RAND_bytes(nonce, sizeof nonce) != 1) return absl::InternalError("random generator failed");
    ASSIGN_OR_RETURN(hsm::Token * token, Token());
    const std::string bound = BoundAad(k.name, version, aad);
    ASSIGN_OR_RETURN(
        auto ct, FromToken(token->AesGcmEncrypt(handle, nonce, Bytes(bound), Bytes(plaintext))));
    std::string raw(reinterpret_cast<const char*>(nonce), sizeof nonce);
    raw.append(reinterpret_cast<const char*>(ct.data()), ct.size());
    return std::make_pair(absl::StrCat(kCiphertextPrefix, version, ":", absl::Base64Escape(raw)),
                          version);
  }

  absl::StatusOr<std::string> DecryptOne(Key& k, std::string_view ciphertext,
                                         std::string_view aad) {
    const KeyType* kt = FindKeyType(k.type);
    if (kt != nullptr && kt->kind == CKK_RSA) return Bad(kNoRsaEncryption);
    if (kt == nullptr || kt->kind != CKK_AES) {
      return Bad(absl::StrCat("key type ", k.type, " does not support decryption"));
    }
    ASSIGN_OR_RETURN(auto parsed, ParseVersioned(ciphertext, "ciphertext"));
    auto& [version, raw] = parsed;
    CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
    {
      std::lock_guard<std::mutex> lock(k.mu);
      if (version > k.latest_version) return Bad("invalid ciphertext: version is too new");
      if (version < k.min_decryption_version || k.versions.count(version) == 0) {
        return Bad("ciphertext or signature version is disallowed by policy (too old)");
      }
      ASSIGN_OR_RETURN(handle, Handle(k, k.versions[version], /*hmac=*/false));
    }

    if (raw.size() < kNonceBytes + 16) return Bad("invalid ciphertext: ciphertext too short");
    ASSIGN_OR_RETURN(hsm::Token * token, Token());
    const std::string bound = BoundAad(k.name, version, aad);
    ASSIGN_OR_RETURN(auto plain,
                     FromToken(token->AesGcmDecrypt(
                         handle, Bytes(std::string_view(raw).substr(0, kNonceBytes)), Bytes(bound),
                         Bytes(std::string_view(raw).substr(kNonceBytes)))));
    return std::string(reinterpret_cast<const char*>(plain.data()), plain.size());
  }

  absl::StatusOr<std::string> HmacOne(Key& k, std::string_view input, std::string_view alg,
                                      int64_t key_version, int64_t* used_version) {
    ASSIGN_OR_RETURN(CK_MECHANISM_TYPE mech, HmacMechanism(alg));
    const size_t digest = mech == CKM_SHA224_HMAC   ? 28
                          : mech == CKM_SHA384_HMAC ? 48
                          : mech == CKM_SHA512_HMAC ? 64
                                                    : 32;
    if (k.type == "hmac" && k.key_size < digest) {
      return Bad(absl::StrCat("key_size ", k.key_size, " is too small for ", Av(alg),
                              " in the token; it needs a key of at least ", digest, " bytes"));
    }
    CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
    {
      std::lock_guard<std::mutex> lock(k.mu);
      const int64_t version = key_version == 0 ? k.latest_version : key_version;
      if (version > k.latest_version || k.versions.count(version) == 0) {
        return Bad("invalid key version");
      }
      if (version < k.min_decryption_version && key_version != 0) {
        return Bad("ciphertext or signature version is disallowed by policy (too old)");
      }
      *used_version = version;
      ASSIGN_OR_RETURN(handle, Handle(k, k.versions[version], /*hmac=*/true));
    }
    ASSIGN_OR_RETURN(hsm::Token * token, Token());
    ASSIGN_OR_RETURN(auto mac, FromToken(token->Hmac(handle, mech, Bytes(input))));
    return Str(mac);
  }

  // One item of encrypt/decrypt/rewrap/hmac/verify: the result object or an error.
  absl::StatusOr<object> Item(Request& req, Key& k, Op op, const object& in,
                              std::string_view url_alg) {
    ASSIGN_OR_RETURN(auto kv, core::GetInt(in, "key_version"));
    const int64_t key_version = kv.value_or(0);
    ASSIGN_OR_RETURN(std::string aad, DecodeB64(in, "associated_data", false, ""));
    object out;
    switch (op) {
      case Op::kEncrypt: {
        ASSIGN_OR_RETURN(std::string pt,
                         DecodeB64(in, "plaintext", true, "missing plaintext to encrypt"));
        ASSIGN_OR_RETURN(auto ct, EncryptOne(req, k, pt, aad, key_version));
        out["ciphertext"] = ct.first;
        out["key_version"] = ct.second;
        return out;
      }
      case Op::kDecrypt: {
        ASSIGN_OR_RETURN(auto ct, core::GetString(in, "ciphertext"));
        if (!ct || ct->empty()) return Bad("missing ciphertext to decrypt");
        ASSIGN_OR_RETURN(std::string pt, DecryptOne(k, *ct, aad));
        out["plaintext"] = absl::Base64Escape(pt);
        return out;
      }
      case Op::kRewrap: {
        ASSIGN_OR_RETURN(auto ct, core::GetString(in, "ciphertext"));
        if (!ct || ct->empty()) return Bad("missing ciphertext to rewrap");
        ASSIGN_OR_RETURN(std::string pt, DecryptOne(k, *ct, aad));
        ASSIGN_OR_RETURN(auto next, EncryptOne(req, k, pt, aad, key_version));
        OPENSSL_cleanse(pt.data(), pt.size());
        out["ciphertext"] = next.first;
        out["key_version"] = next.second;
        return out;
      }
      case Op::kHmac:
      case Op::kVerify: {
        ASSIGN_OR_RETURN(std::string input, DecodeB64(in, "input", true, "missing input for HMAC"));
        ASSIGN_OR_RETURN(auto alg_field, core::GetString(in, "algorithm"));
        std::string alg(url_alg.empty() ? alg_field.value_or("") : std::string(url_alg));
        if (op == Op::kHmac) {
          int64_t used = 0;
          ASSIGN_OR_RETURN(std::string mac, HmacOne(k, input, alg, key_version, &used));
          out["hmac"] = absl::StrCat(kCiphertextPrefix, used, ":", absl::Base64Escape(mac));
          out["key_version"] = used;
          return out;
        }
        ASSIGN_OR_RETURN(auto given, core::GetString(in, "hmac"));
        ASSIGN_OR_RETURN(auto sig, core::GetString(in, "signature"));
        if (sig && given) return Bad("provide one of 'signature' or 'hmac', not both");
        if (sig) {
          ASSIGN_OR_RETURN(SignOptions opts, ReadSignOptions(in, url_alg));
          ASSIGN_OR_RETURN(bool valid, VerifySignature(k, input, *sig, opts));
          out["valid"] = valid;
          return out;
        }
        if (!given) return Bad("missing hmac to verify");
        ASSIGN_OR_RETURN(auto parsed, ParseVersioned(*given, "hmac"));
        int64_t used = 0;
        ASSIGN_OR_RETURN(std::string mac, HmacOne(k, input, alg, parsed.first, &used));
        out["valid"] = mac.size() == parsed.second.size() &&
                       CRYPTO_memcmp(mac.data(), parsed.second.data(), mac.size()) == 0;
        return out;
      }
      case Op::kSign: {
        ASSIGN_OR_RETURN(std::string input, DecodeB64(in, "input", true, "missing input to sign"));
        ASSIGN_OR_RETURN(SignOptions opts, ReadSignOptions(in, url_alg));
        ASSIGN_OR_RETURN(auto signed_, SignOne(k, input, opts, key_version));
        out["signature"] = signed_.first;
        out["key_version"] = signed_.second;
        return out;
      }
    }
    return absl::InternalError("unreachable");
  }

  absl::StatusOr<std::pair<std::string, int64_t>> SignOne(Key& k, std::string_view input,
                                                          const SignOptions& opts,
                                                          int64_t key_version) {
    const KeyType* kt = FindKeyType(k.type);
    if (kt == nullptr || !IsAsymmetric(*kt)) {
      return Bad(absl::StrCat("key type ", k.type, " does not support signing"));
    }
    CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
    int64_t version = 0;
    size_t modulus_bytes = 0;
    {
      std::lock_guard<std::mutex> lock(k.mu);
      version = key_version == 0 ? k.latest_version : key_version;
      if (version > k.latest_version || k.versions.count(version) == 0 ||
          version < k.min_encryption_version) {
        return Bad("invalid key version");
      }
      Version& v = k.versions[version];
      if (kt->kind == CKK_RSA) {
        ASSIGN_OR_RETURN(Pkey pub, LoadPublic(v.public_key));
        modulus_bytes = static_cast<size_t>(EVP_PKEY_get_size(pub.get()));
      }
      ASSIGN_OR_RETURN(handle, Handle(k, v, /*hmac=*/false));
    }
    ASSIGN_OR_RETURN(hsm::Token * token, Token());
    std::string sig;
    bool url = false;
    if (kt->kind == CKK_EC_EDWARDS) {
      ASSIGN_OR_RETURN(auto raw,
                       FromToken(token->SignWith(handle, CKM_EDDSA, nullptr, Bytes(input))));
      sig = Str(raw);
    } else {
      ASSIGN_OR_RETURN(SignHash h, SignHashFor(opts.hash_algorithm));
      if (kt->kind == CKK_EC) {
        ASSIGN_OR_RETURN(std::string digest, DigestFor(h, input, opts.prehashed));
        ASSIGN_OR_RETURN(auto raw,
                         FromToken(token->SignWith(handle, CKM_ECDSA, nullptr, Bytes(digest))));
        if (opts.marshaling == "jws") {
          sig = Str(raw);
          url = true;
        } else {
          auto der = audit::EcdsaRawToDer(Str(raw));
          if (!der.ok()) return absl::InternalError(der.message());
          sig = *der;
        }
      } else if (opts.signature_algorithm == "pss") {
        ASSIGN_OR_RETURN(std::string digest, DigestFor(h, input, opts.prehashed));
        ASSIGN_OR_RETURN(int salt, PssSaltLength(opts.salt_length, h, modulus_bytes, false));
        CK_RSA_PKCS_PSS_PARAMS pss{};
        pss.hash_alg = h.mech;
        pss.mgf = h.mgf;
        pss.s_len = static_cast<unsigned long>(salt);
        ASSIGN_OR_RETURN(auto raw,
                         FromToken(token->SignWith(handle, CKM_RSA_PKCS_PSS, &pss, Bytes(digest))));
        sig = Str(raw);
      } else {
        std::string data;
        if (h.md == nullptr) {
          data = std::string(input);  // "none": the input is signed as given
        } else {
          ASSIGN_OR_RETURN(std::string digest, DigestFor(h, input, opts.prehashed));
          data = absl::StrCat(Av(h.digest_info), digest);
        }
        ASSIGN_OR_RETURN(auto raw,
                         FromToken(token->SignWith(handle, CKM_RSA_PKCS, nullptr, Bytes(data))));
        sig = Str(raw);
      }
    }
    std::string encoded = url ? absl::WebSafeBase64Escape(sig) : absl::Base64Escape(sig);
    return std::make_pair(absl::StrCat(kCiphertextPrefix, version, ":", encoded), version);
  }

  absl::StatusOr<bool> VerifySignature(Key& k, std::string_view input, std::string_view signature,
                                       const SignOptions& opts) {
    const KeyType* kt = FindKeyType(k.type);
    if (kt == nullptr || !IsAsymmetric(*kt)) {
      return Bad(absl::StrCat("key type ", k.type, " does not support verification"));
    }
    // "vault:v<N>:<sig>": base64, or base64url without padding for jws.
    if (!absl::StartsWith(Av(signature), "vault:")) return Bad("invalid signature: no prefix");
    std::vector<std::string> parts = absl::StrSplit(Av(signature), absl::MaxSplits(':', 2));
    int64_t version = 0;
    if (parts.size() != 3 || parts[1].size() < 2 || parts[1][0] != 'v' ||
        !absl::SimpleAtoi(parts[1].substr(1), &version)) {
      return Bad("invalid signature: wrong number of fields");
    }
    if (version == 0) version = 1;
    const bool jws = kt->kind == CKK_EC && opts.marshaling == "jws";
    std::string sig;
    if (!(jws ? absl::WebSafeBase64Unescape(parts[2], &sig)
              : absl::Base64Unescape(parts[2], &sig))) {
      return Bad("invalid signature: could not decode base64");
    }
    std::string spki;
    {
      std::lock_guard<std::mutex> lock(k.mu);
      if (version > k.latest_version) return Bad("invalid signature: version is too new");
      if (version < k.min_decryption_version || k.versions.count(version) == 0) {
        return Bad("ciphertext or signature version is disallowed by policy (too old)");
      }
      spki = k.versions[version].public_key;
    }
    ASSIGN_OR_RETURN(Pkey pub, LoadPublic(spki));
    if (kt->kind == CKK_EC_EDWARDS) {
      EVP_MD_CTX* md = EVP_MD_CTX_new();
      const bool ok =
          EVP_DigestVerifyInit(md, nullptr, nullptr, nullptr, pub.get()) == 1 &&
          EVP_DigestVerify(md, reinterpret_cast<const uint8_t*>(sig.data()), sig.size(),
                           reinterpret_cast<const uint8_t*>(input.data()), input.size()) == 1;
      EVP_MD_CTX_free(md);
      return ok;
    }
    ASSIGN_OR_RETURN(SignHash h, SignHashFor(opts.hash_algorithm));
    std::string data;
    if (h.md == nullptr) {
      if (kt->kind != CKK_RSA || opts.signature_algorithm != "pkcs1v15") {
        return Bad("hash algorithm none is only valid with pkcs1v15 signatures");
      }
      data = std::string(input);
    } else {
      ASSIGN_OR_RETURN(data, DigestFor(h, input, opts.prehashed));
    }
    if (jws) {
      auto der = audit::EcdsaRawToDer(sig);
      if (!der.ok()) return false;
      sig = *der;
    }
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(pub.get(), nullptr);
    bool ok = ctx != nullptr && EVP_PKEY_verify_init(ctx) == 1;
    if (ok && kt->kind == CKK_RSA) {
      const bool pss = opts.signature_algorithm == "pss";
      ok =
          EVP_PKEY_CTX_set_rsa_padding(ctx, pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) == 1 &&
          (h.md == nullptr || EVP_PKEY_CTX_set_signature_md(ctx, h.md) == 1);
      if (ok && pss) {
        auto salt = PssSaltLength(opts.salt_length, h,
                                  static_cast<size_t>(EVP_PKEY_get_size(pub.get())), true);
        if (!salt.ok()) {
          EVP_PKEY_CTX_free(ctx);
          return salt.status();
        }
        ok = EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, h.md) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, *salt) == 1;
      }
    } else if (ok) {
      ok = EVP_PKEY_CTX_set_signature_md(ctx, h.md) == 1;
    }
    ok = ok && EVP_PKEY_verify(ctx, reinterpret_cast<const uint8_t*>(sig.data()), sig.size(),
                               reinterpret_cast<const uint8_t*>(data.data()), data.size()) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
  }

  absl::StatusOr<Response> Batch(Request& req, const std::string& rest, Op op) {
    std::vector<std::string> parts = absl::StrSplit(rest, '/');
    if (parts.empty() || parts.size() > 2 || parts[0].empty()) return absl::NotFoundError("");
    if (parts.size() == 2 && op != Op::kHmac && op != Op::kVerify && op != Op::kSign) {
      return absl::NotFoundError("");
    }
    const std::string& name = parts[0];
    const std::string url_alg = parts.size() == 2 ? parts[1] : "";
    RETURN_IF_ERROR(ValidName(name));
    ASSIGN_OR_RETURN(auto k, Find(*req.storage, name));
    if (!k) {
      if (op == Op::kEncrypt && req.operation == Operation::kCreate) {
        bool existed = false;  // Vault's upsert: create on encrypt with the create capability
        ASSIGN_OR_RETURN(k, Create(req, name, req.data, &existed));
      } else {
        return Bad(op == Op::kEncrypt ? "encryption key not found" : "encryption key not found");
      }
    }
    const auto* batch = req.data.if_contains("batch_input");
    if (batch == nullptr || batch->is_null()) {
      ASSIGN_OR_RETURN(object out, Item(req, *k, op, req.data, url_alg));
      return Response::Data(std::move(out));
    }
    if (!batch->is_array()) return Bad("batch_input must be an array of objects");
    if (batch->as_array().empty()) return Bad("missing batch input to process");
    ASSIGN_OR_RETURN(auto partial, core::GetInt(req.data, "partial_failure_response_code"));
    array results;
    bool any_error = false, any_ok = false, only_internal = true;
    for (const auto& item : batch->as_array()) {
      object result;
      absl::StatusOr<object> r = item.is_object()
                                     ? Item(req, *k, op, item.as_object(), url_alg)
                                     : absl::StatusOr<object>(Bad("batch item is not an object"));
      if (r.ok()) {
        result = std::move(*r);
        any_ok = true;
      } else {
        any_error = true;
        const bool internal = r.status().code() != absl::StatusCode::kInvalidArgument &&
                              r.status().code() != absl::StatusCode::kFailedPrecondition;
        if (!internal) only_internal = false;
        result["error"] = internal ? "internal error" : std::string(r.status().message());
        if (internal) LogError("transit batch item failed: %s", r.status().message());
      }
      if (item.is_object()) {
        if (const auto* ref = item.as_object().if_contains("reference"); ref && ref->is_string()) {
          result["reference"] = ref->as_string();
        }
      }
      results.emplace_back(std::move(result));
    }
    object d;
    d["batch_results"] = std::move(results);
    Response resp = Response::Data(std::move(d));
    if (any_error) {
      resp.http_status = only_internal ? 500 : 400;
      if (any_ok && partial && *partial >= 200 && *partial < 600) {
        resp.http_status = static_cast<int>(*partial);
      }
    }
    return resp;
  }

  absl::StatusOr<Response> Datakey(Request& req, const std::string& rest) {
    std::vector<std::string> parts = absl::StrSplit(rest, '/');
    if (parts.size() != 2) return absl::NotFoundError("");
    const std::string& kind = parts[0];
    if (kind != "plaintext" && kind != "wrapped") {
      return Bad("invalid type: must be \"plaintext\" or \"wrapped\"");
    }
    ASSIGN_OR_RETURN(auto k, MustFind(req, parts[1]));
    ASSIGN_OR_RETURN(auto bits, core::GetInt(req.data, "bits"));
    const int64_t b = bits.value_or(256);
    if (b != 128 && b != 256 && b != 512) return Bad("invalid bits: must be 128, 256 or 512");
    ASSIGN_OR_RETURN(std::string aad, DecodeB64(req.data, "associated_data", false, ""));
    ASSIGN_OR_RETURN(auto kv, core::GetInt(req.data, "key_version"));
    std::string dk(static_cast<size_t>(b / 8), '\0');
    if (RAND_bytes(reinterpret_cast<uint8_t*>(dk.data()), static_cast<int>(dk.size())) != 1) {
      return absl::InternalError("random generator failed");
    }
    auto ct = EncryptOne(req, *k, dk, aad, kv.value_or(0));
    if (!ct.ok()) {
      OPENSSL_cleanse(dk.data(), dk.size());
      return ct.status();
    }
    object d;
    d["ciphertext"] = ct->first;
    d["key_version"] = ct->second;
    if (kind == "plaintext") d["plaintext"] = absl::Base64Escape(dk);
    OPENSSL_cleanse(dk.data(), dk.size());
    return Response::Data(std::move(d));
  }

  absl::StatusOr<Response> Random(Request& req) {
    if (req.operation != Operation::kUpdate && req.operation != Operation::kCreate) {
      return core::UnsupportedOperation();
    }
    std::vector<std::string> parts = absl::StrSplit(req.rel_path, '/', absl::SkipEmpty());
    std::string source = "platform";
    int64_t bytes = 32;
    ASSIGN_OR_RETURN(auto body_bytes, core::GetInt(req.data, "bytes"));
    if (body_bytes) bytes = *body_bytes;
    ASSIGN_OR_RETURN(auto body_source, core::GetString(req.data, "source"));
    if (body_source) source = *body_source;
    for (size_t i = 1; i < parts.size(); ++i) {
      int64_t n = 0;
      if (absl::SimpleAtoi(parts[i], &n)) {
        bytes = n;
      } else {
        source = parts[i];
      }
    }
    if (source != "platform" && source != "seal" && source != "all") {
      return Bad("unsupported entropy source; must be \"platform\", \"seal\", or \"all\"");
    }
    if (bytes < 1 || bytes > kMaxRandomBytes) {
      return Bad(absl::StrCat("number of bytes must be between 1 and ", kMaxRandomBytes));
    }
    ASSIGN_OR_RETURN(auto format, core::GetString(req.data, "format"));
    const std::string f = format.value_or("base64");
    if (f != "base64" && f != "hex")
      return Bad("unsupported encoding format; must be \"hex\" or \"base64\"");
    std::string out(static_cast<size_t>(bytes), '\0');
    auto* data = reinterpret_cast<uint8_t*>(out.data());
    if (source != "seal" && RAND_bytes(data, static_cast<int>(out.size())) != 1) {
      return absl::InternalError("random generator failed");
    }
    if (source != "platform") {
      std::string token_bytes(out.size(), '\0');
      ASSIGN_OR_RETURN(hsm::Token * token, Token());
      RETURN_IF_ERROR(FromToken(token->GenerateRandom(
          {reinterpret_cast<uint8_t*>(token_bytes.data()), token_bytes.size()})));
      for (size_t i = 0; i < out.size(); ++i) out[i] ^= token_bytes[i];  // "all": both sources
    }
    object d;
    d["random_bytes"] = f == "hex" ? absl::BytesToHexString(out) : absl::Base64Escape(out);
    return Response::Data(std::move(d));
  }

  absl::StatusOr<Response> Hash(Request& req) {
    if (req.operation != Operation::kUpdate && req.operation != Operation::kCreate) {
      return core::UnsupportedOperation();
    }
    std::string alg;
    if (absl::StartsWith(req.rel_path, "hash/")) alg = req.rel_path.substr(5);
    ASSIGN_OR_RETURN(auto body_alg, core::GetString(req.data, "algorithm"));
    if (alg.empty() && body_alg) alg = *body_alg;
    const EVP_MD* md = HashAlgorithm(alg);
    if (md == nullptr) return Bad(absl::StrCat("unsupported hash algorithm ", alg));
    ASSIGN_OR_RETURN(std::string input, DecodeB64(req.data, "input", true, "missing input"));
    ASSIGN_OR_RETURN(auto format, core::GetString(req.data, "format"));
    const std::string f = format.value_or("hex");
    if (f != "base64" && f != "hex")
      return Bad("unsupported encoding format; must be \"hex\" or \"base64\"");
    unsigned char sum[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(input.data(), input.size(), sum, &len, md, nullptr) != 1) {
      return absl::InternalError("digest failed");
    }
    const std::string s(reinterpret_cast<char*>(sum), len);
    object d;
    d["sum"] = f == "hex" ? absl::BytesToHexString(s) : absl::Base64Escape(s);
    return Response::Data(std::move(d));
  }

  core::Core* core_;
  std::atomic<hsm::Token*> token_{nullptr};
  std::atomic<CK_OBJECT_HANDLE> kek_{CK_INVALID_HANDLE};
  std::mutex mu_;  // keys_
  std::map<std::string, std::shared_ptr<Key>> keys_;
  std::mutex create_mu_;
  bool loaded_all_ = false;  // Periodic has loaded every stored key once
};

}  // namespace

absl::StatusOr<std::unique_ptr<core::Backend>> MakeTransitBackend(const core::MountEntry& entry,
                                                                  core::Core* core) {
  (void)entry;
  return std::unique_ptr<core::Backend>(std::make_unique<TransitBackend>(core));
}

}  // namespace strongroom::engines
