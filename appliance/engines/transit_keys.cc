#include "appliance/engines/transit_keys.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "base/log.h"
#include "base/status_macros.h"

namespace strongroom::engines::transit {
namespace {

using core::json::object;

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

absl::string_view Av(std::string_view s) { return absl::string_view(s.data(), s.size()); }

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};

}  // namespace

const KeyType* FindKeyType(std::string_view name) {
  for (const auto& t : kKeyTypes) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

bool IsAsymmetric(const KeyType& t) {
  return t.kind == CKK_EC || t.kind == CKK_EC_EDWARDS || t.kind == CKK_RSA;
}

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
    if (!v.token_object.empty()) {
      vo["token_object"] = absl::Base64Escape(v.token_object);
      vo["holder"] = v.holder;
    }
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
  auto str = [&](const object& from, const char* f) {
    return core::GetString(from, f).value_or(std::nullopt).value_or("");
  };
  auto num = [&](const char* f, int64_t def) {
    return core::GetInt(o, f).value_or(std::nullopt).value_or(def);
  };
  k->name = str(o, "name");
  k->type = str(o, "type");
  k->deletion_allowed = core::GetBool(o, "deletion_allowed").value_or(std::nullopt).value_or(false);
  k->min_decryption_version = num("min_decryption_version", 1);
  k->min_encryption_version = num("min_encryption_version", 0);
  k->min_available_version = num("min_available_version", 0);
  k->latest_version = num("latest_version", 0);
  k->auto_rotate_period = num("auto_rotate_period", 0);
  k->last_rotated = num("last_rotated", 0);
  const int64_t key_size = num("key_size", 0);
  if (key_size < 0 || key_size > kMaxHmacKeySize) return absl::DataLossError("transit key corrupt");
  k->key_size = static_cast<size_t>(key_size);
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
    if (!absl::Base64Unescape(str(vo, "key"), &v.key_blob) ||
        !absl::Base64Unescape(str(vo, "hmac_key"), &v.hmac_blob) ||
        !absl::Base64Unescape(str(vo, "public_key"), &v.public_key) ||
        !absl::Base64Unescape(str(vo, "token_object"), &v.token_object)) {
      return absl::DataLossError("transit key corrupt");
    }
    v.holder = str(vo, "holder");
    v.reserved =
        static_cast<uint64_t>(core::GetInt(vo, "reserved").value_or(std::nullopt).value_or(0));
    v.used = v.reserved;  // whatever was reserved may have been used before a crash
    k->versions[num_v] = std::move(v);
  }
  return k;
}

TokenKey::TokenKey(hsm::Token& token, CK_OBJECT_HANDLE handle, Kind kind, std::string id)
    : token_(token), handle_(handle), kind_(kind), id_(std::move(id)) {}

TokenKey::~TokenKey() {
  if (kind_ == Kind::kTokenObject && !doomed_.load()) return;
  if (absl::Status s = token_.DestroyObject(handle_); !s.ok()) {
    // A session object goes with the token's login session at the latest; a token object's
    // registry record stays, and the sweep destroys it later.
    LogWarn("transit: could not destroy a key object in the token: %s", s.message());
  } else if (kind_ == Kind::kTokenObject) {
    LogInfo("transit: destroyed the token object of a removed version after its last use");
  }
}

void DropHandles(Version& v) {
  v.key.reset();
  v.hmac.reset();
}

std::string PublicKeyText(const KeyType& t, const std::string& der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<EVP_PKEY, PkeyFree> key(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
  if (!key) return "";
  if (t.kind == CKK_EC_EDWARDS) {
    uint8_t raw[32];
    size_t len = sizeof raw;
    if (EVP_PKEY_get_raw_public_key(key.get(), raw, &len) != 1) return "";
    return absl::Base64Escape(std::string(reinterpret_cast<char*>(raw), len));
  }
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return "";
  std::string pem;
  if (PEM_write_bio_PUBKEY(bio, key.get()) == 1) {
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio, &data);
    if (len > 0) pem.assign(data, static_cast<size_t>(len));
  }
  BIO_free(bio);
  return pem;
}

object KeyObject(const Key& k, bool rsa_encryption) {
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
  const bool encrypts =
      t != nullptr && (t->kind == CKK_AES || (t->kind == CKK_RSA && rsa_encryption));
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

}  // namespace strongroom::engines::transit
