#include "appliance/engines/transit_store.h"

#include <openssl/rand.h>

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "appliance/core/cluster.h"
#include "appliance/core/core.h"
#include "appliance/core/request.h"
#include "appliance/core/seal.h"
#include "appliance/engines/transit_crypto.h"
#include "base/log.h"
#include "base/status_macros.h"

namespace strongroom::engines::transit {
namespace {

using core::Bad;
using core::json::object;

constexpr size_t kTokenObjectIdBytes = 16;
// The key name's share of a token object's CKA_LABEL (the label is for operators only).
constexpr size_t kLabelNameChars = 150;

// The token's errors are ours, not the client's: they become an internal error (500; the detail
// stays in the broker log).
absl::Status Internal(const absl::Status& s) {
  if (s.ok()) return s;
  return absl::InternalError(absl::StrCat("PKCS#11: ", s.message()));
}

struct RegistryEntry {
  std::string holder;
  std::string key;
  int64_t version = 0;
  std::string label;
};

std::string EntryToJson(const RegistryEntry& e) {
  object o;
  o["holder"] = e.holder;
  o["key"] = e.key;
  o["version"] = e.version;
  o["label"] = e.label;
  return core::Serialize(o);
}

absl::StatusOr<RegistryEntry> EntryFromJson(std::string_view text) {
  ASSIGN_OR_RETURN(auto o, core::ParseObject(text));
  RegistryEntry e;
  ASSIGN_OR_RETURN(auto holder, core::GetString(o, "holder"));
  ASSIGN_OR_RETURN(auto key, core::GetString(o, "key"));
  ASSIGN_OR_RETURN(auto version, core::GetInt(o, "version"));
  ASSIGN_OR_RETURN(auto label, core::GetString(o, "label"));
  if (!holder || !key || !version)
    return absl::DataLossError("transit token-object record corrupt");
  e.holder = *holder;
  e.key = *key;
  e.version = *version;
  e.label = label.value_or("");
  return e;
}

std::string HolderText(const std::string& holder) {
  return holder.empty() ? std::string("this node") : absl::StrCat("node \"", holder, "\"");
}

}  // namespace

std::string RegistryKey(const std::string& id) {
  return absl::StrCat(kRegistryPrefix, absl::BytesToHexString(id));
}

KeyStore::KeyStore(core::Core* core, std::string mount_uuid)
    : core_(core), mount_uuid_(std::move(mount_uuid)) {}

KeyStore::~KeyStore() {
  std::vector<std::shared_ptr<Key>> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [name, c] : keys_) all.push_back(std::move(c.key));
    keys_.clear();
  }
  DropAll(std::move(all));
}

absl::StatusOr<hsm::Token*> KeyStore::Token() {
  if (hsm::Token* t = token_.load()) return t;
  ASSIGN_OR_RETURN(hsm::Token * t, core_->seal()->TransitToken());
  token_.store(t);
  return t;
}

absl::StatusOr<CK_OBJECT_HANDLE> KeyStore::Kek() {
  if (CK_OBJECT_HANDLE k = kek_.load(); k != CK_INVALID_HANDLE) return k;
  auto k = core_->seal()->TransitKek();
  if (!k.ok()) return Internal(k.status());
  kek_.store(*k);
  return *k;
}

std::string KeyStore::SelfNode() {
  core::Cluster* cluster = core_->cluster();
  if (cluster == nullptr) return "";
  std::optional<core::LeaderInfo> leader = cluster->CurrentLeader();
  if (leader && leader->self) return leader->node_id;
  return "";
}

void KeyStore::DropAll(std::vector<std::shared_ptr<Key>> keys) {
  for (auto& k : keys) {
    std::lock_guard<std::mutex> lock(k->mu);
    for (auto& [n, v] : k->versions) DropHandles(v);
  }
}

absl::Status KeyStore::LoadCacheSize(storage::Storage& storage) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cache_size_loaded_) return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(auto raw, storage.Get(kCacheConfigKey));
  int64_t size = 0;
  if (raw) {
    ASSIGN_OR_RETURN(auto o, core::ParseObject(*raw));
    ASSIGN_OR_RETURN(auto s, core::GetInt(o, "size"));
    size = s.value_or(0);
    // As Vault does with a stored size under the minimum: use the minimum.
    if (size != 0 && size < kMinCacheSize) size = kMinCacheSize;
    if (size > kMaxCacheSize) size = kMaxCacheSize;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!cache_size_loaded_) {
    cache_size_ = size;
    cache_size_loaded_ = true;
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> KeyStore::CacheSize(storage::Storage& storage) {
  ASSIGN_OR_RETURN(auto raw, storage.Get(kCacheConfigKey));
  if (!raw) return 0;
  ASSIGN_OR_RETURN(auto o, core::ParseObject(*raw));
  ASSIGN_OR_RETURN(auto s, core::GetInt(o, "size"));
  return s.value_or(0);
}

absl::Status KeyStore::SetCacheSize(storage::Storage& storage, int64_t size) {
  if (size != 0 && (size < kMinCacheSize || size > kMaxCacheSize)) {
    return Bad(absl::StrCat(
        "size must be 0 or a value greater or equal to ", kMinCacheSize,
        size > kMaxCacheSize ? absl::StrCat(" and at most ", kMaxCacheSize) : std::string()));
  }
  object o;
  o["size"] = size;
  RETURN_IF_ERROR(storage.Put(kCacheConfigKey, core::Serialize(o)));
  std::vector<std::shared_ptr<Key>> evicted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cache_size_ = size;
    cache_size_loaded_ = true;
    evicted = EvictLocked();
  }
  DropAll(std::move(evicted));
  return absl::OkStatus();
}

std::vector<std::shared_ptr<Key>> KeyStore::EvictLocked() {
  std::vector<std::shared_ptr<Key>> out;
  if (cache_size_ <= 0) return out;
  while (keys_.size() > static_cast<size_t>(cache_size_)) {
    // The least recently used key only the cache holds: no request has it, and none can get it
    // without mu_, so it can go (with its session objects) without pulling a key from under a
    // request. Keys in use stay; the cache shrinks when they are let go of.
    auto victim = keys_.end();
    for (auto it = keys_.begin(); it != keys_.end(); ++it) {
      if (it->second.key.use_count() != 1) continue;
      if (victim == keys_.end() || it->second.last_use < victim->second.last_use) victim = it;
    }
    if (victim == keys_.end()) break;
    out.push_back(std::move(victim->second.key));
    keys_.erase(victim);
  }
  return out;
}

absl::StatusOr<std::shared_ptr<Key>> KeyStore::Find(storage::Storage& storage,
                                                    const std::string& name) {
  RETURN_IF_ERROR(LoadCacheSize(storage));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = keys_.find(name); it != keys_.end()) {
      it->second.last_use = ++tick_;
      return it->second.key;
    }
  }
  ASSIGN_OR_RETURN(auto raw, storage.Get(kKeyPrefix + name));
  if (!raw) return std::shared_ptr<Key>();
  ASSIGN_OR_RETURN(auto k, KeyFromJson(*raw));
  std::vector<std::shared_ptr<Key>> evicted;
  std::shared_ptr<Key> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto [it, inserted] = keys_.try_emplace(name, CacheEntry{k, 0});
    it->second.last_use = ++tick_;
    out = it->second.key;  // another request may have loaded it meanwhile: use that one
    if (inserted) evicted = EvictLocked();
  }
  DropAll(std::move(evicted));
  return out;
}

void KeyStore::Insert(std::shared_ptr<Key> key) {
  std::vector<std::shared_ptr<Key>> evicted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string name = key->name;
    keys_[name] = CacheEntry{std::move(key), ++tick_};
    evicted = EvictLocked();
  }
  DropAll(std::move(evicted));
}

void KeyStore::Forget(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  keys_.erase(name);
}

std::vector<std::shared_ptr<Key>> KeyStore::Cached() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<Key>> out;
  out.reserve(keys_.size());
  for (auto& [n, c] : keys_) out.push_back(c.key);
  return out;
}

absl::Status KeyStore::Save(storage::Storage& storage, const Key& k) {
  return storage.Put(kKeyPrefix + k.name, KeyToJson(k));
}

absl::StatusOr<std::shared_ptr<TokenKey>> KeyStore::Handle(const Key& k, int64_t n, Version& v,
                                                           bool hmac) {
  std::shared_ptr<TokenKey>& held = hmac ? v.hmac : v.key;
  if (held != nullptr) return held;
  ASSIGN_OR_RETURN(hsm::Token * token, Token());
  const KeyType* type = FindKeyType(k.type);
  if (type == nullptr) return absl::DataLossError("transit key of unknown type");
  if (!hmac && !v.token_object.empty()) {
    auto found = token->FindStoredKey(Bytes(v.token_object));
    if (absl::IsNotFound(found.status())) {
      const std::string self = SelfNode();
      return absl::FailedPreconditionError(absl::StrCat(
          "the private key of version ", n, " of key \"", k.name,
          "\" is not in this node's PKCS#11 token: this token cannot wrap ", k.type,
          " private keys, so each version stays in the token that generated it (",
          HolderText(v.holder), v.holder == self ? "; the object was removed from the token" : "",
          "). Sign where that token is, or rotate the key to make a version this token holds"));
    }
    if (!found.ok()) return Internal(found.status());
    held = std::make_shared<TokenKey>(*token, *found, TokenKey::Kind::kTokenObject, v.token_object);
    return held;
  }
  ASSIGN_OR_RETURN(CK_OBJECT_HANDLE kek, Kek());
  const std::string& blob = hmac ? v.hmac_blob : v.key_blob;
  absl::StatusOr<CK_OBJECT_HANDLE> unwrapped;
  if (!hmac && IsAsymmetric(*type)) {
    unwrapped = token->UnwrapPrivateKey(kek, Bytes(blob), type->pair);
  } else {
    const size_t bytes = hmac ? (k.type == "hmac" ? k.key_size : kHmacKeyBytes) : type->bytes;
    unwrapped = token->UnwrapKey(kek, Bytes(blob), hmac ? CKK_GENERIC_SECRET : CKK_AES, bytes);
  }
  if (!unwrapped.ok()) return Internal(unwrapped.status());
  held = std::make_shared<TokenKey>(*token, *unwrapped, TokenKey::Kind::kSessionObject);
  return held;
}

absl::Status KeyStore::MakeStoredVersion(storage::Storage& storage, const Key& k, int64_t n,
                                         const KeyType& type, Version& v) {
  ASSIGN_OR_RETURN(hsm::Token * token, Token());
  std::string id(kTokenObjectIdBytes, '\0');
  if (RAND_bytes(reinterpret_cast<uint8_t*>(id.data()), static_cast<int>(id.size())) != 1) {
    return absl::InternalError("random generator failed");
  }
  RegistryEntry entry;
  entry.holder = SelfNode();
  entry.key = k.name;
  entry.version = n;
  entry.label = absl::StrCat("strongroom-transit:", mount_uuid_, ":",
                             k.name.substr(0, kLabelNameChars), ":v", n);
  // On record before it exists: a crash after this leaves a record Sweep clears, never an
  // object nobody knows of.
  RETURN_IF_ERROR(storage.Put(RegistryKey(id), EntryToJson(entry)));
  auto spki = token->GenerateStoredPair(type.pair, Bytes(id), entry.label);
  if (!spki.ok()) {
    ForgetObject(storage, id);
    return Internal(spki.status());
  }
  v.public_key = std::move(*spki);
  v.token_object = std::move(id);
  v.holder = entry.holder;
  LogInfo(
      "transit: version %d of %s key %s is the token object \"%s\" (not wrappable by this token)",
      static_cast<int>(n), k.type, k.name, entry.label);
  return absl::OkStatus();
}

void KeyStore::ForgetObject(storage::Storage& storage, const std::string& id) {
  if (absl::Status s = storage.Delete(RegistryKey(id)); !s.ok()) {
    LogWarn("transit: could not remove the record of token object %s: %s",
            absl::BytesToHexString(id), s.message());
  }
}

absl::Status KeyStore::RotateLocked(storage::Storage& storage, Key& k,
                                    std::vector<std::string>* warnings) {
  ASSIGN_OR_RETURN(hsm::Token * token, Token());
  ASSIGN_OR_RETURN(CK_OBJECT_HANDLE kek, Kek());
  const KeyType* type = FindKeyType(k.type);
  if (type == nullptr) return absl::DataLossError("transit key of unknown type");
  const int64_t next = k.latest_version + 1;
  Version v;
  v.created = absl::ToUnixSeconds(core_->Now());
  // The version's HMAC key first: it is only a blob, so a failure later leaves nothing behind.
  auto hmac_blob = token->GenerateWrappedKey(kek, CKK_GENERIC_SECRET,
                                             k.type == "hmac" ? k.key_size : kHmacKeyBytes);
  if (!hmac_blob.ok()) return Internal(hmac_blob.status());
  v.hmac_blob = Str(*hmac_blob);
  std::unique_lock<std::mutex> objects_lock(objects_mu_, std::defer_lock);
  if (type->kind == CKK_AES) {
    auto blob = token->GenerateWrappedKey(kek, CKK_AES, type->bytes);
    if (!blob.ok()) return Internal(blob.status());
    v.key_blob = Str(*blob);
  } else if (IsAsymmetric(*type)) {
    bool stored = ed25519_wrappable_.load() == kNo && type->kind == CKK_EC_EDWARDS;
    if (!stored) {
      auto pair = token->GenerateWrappedPair(kek, type->pair);
      if (absl::IsFailedPrecondition(pair.status()) && type->kind == CKK_EC_EDWARDS) {
        // This token cannot wrap Ed25519 private keys (SoftHSM2 2.6.1): keep them as token
        // objects instead (the wrapped form is used wherever the token can make it).
        ed25519_wrappable_.store(kNo);
        stored = true;
      } else if (absl::IsFailedPrecondition(pair.status())) {
        return Bad(absl::StrCat("key type ", k.type, " is not supported: ", pair.status().message(),
                                "; Transit keys are only ever stored wrapped"));
      } else if (!pair.ok()) {
        return Internal(pair.status());
      } else {
        if (type->kind == CKK_EC_EDWARDS) ed25519_wrappable_.store(kYes);
        v.key_blob = Str(pair->private_blob);
        v.public_key = std::move(pair->public_spki);
      }
    }
    if (stored) {
      objects_lock.lock();  // released after the save below
      RETURN_IF_ERROR(MakeStoredVersion(storage, k, next, *type, v));
    }
  }
  const std::string object_id = v.token_object;
  const std::string holder = v.holder;
  k.versions[next] = std::move(v);
  k.latest_version = next;
  const int64_t last_rotated = k.last_rotated;
  k.last_rotated = absl::ToUnixSeconds(core_->Now());
  absl::Status s = Save(storage, k);
  if (!s.ok()) {
    k.versions.erase(next);
    k.latest_version = next - 1;
    k.last_rotated = last_rotated;
    if (!object_id.empty()) {
      // Nothing refers to it: destroy it now (or leave it to Sweep, which finds its record).
      if (token->DestroyStoredKey(Bytes(object_id)).ok()) ForgetObject(storage, object_id);
    }
    return s;
  }
  if (!object_id.empty() && core_->cluster() != nullptr && warnings != nullptr) {
    warnings->push_back(absl::StrCat(
        "version ", next, " of ", k.type, " key ", k.name, " is kept only in the PKCS#11 token of ",
        HolderText(holder),
        ": this token cannot wrap its private key for the other nodes, so only a node that "
        "shares this token can sign with it (all nodes can verify)"));
  }
  return absl::OkStatus();
}

void KeyStore::ReleaseVersions(storage::Storage& storage, std::map<int64_t, Version>& removed) {
  auto token = Token();
  if (!token.ok()) return;
  const std::string self = SelfNode();
  for (auto& [n, v] : removed) {
    std::shared_ptr<TokenKey> object = v.token_object.empty() ? nullptr : v.key;
    // Session objects: destroyed now, or by the last request still using them.
    DropHandles(v);
    if (v.token_object.empty()) continue;
    // The version is out of its key, so nothing can take a new reference to its object: a count
    // above ours means requests are using it right now. Their last one destroys it; its record
    // stays until Sweep finds the object gone.
    if (object != nullptr && object.use_count() > 1) {
      object->DestroyWhenReleased();
      std::lock_guard<std::mutex> objects_lock(objects_mu_);
      released_in_use_[v.token_object] = object;
      LogInfo(
          "transit: the token object of a removed version is in use; it is destroyed after its "
          "last use");
      continue;
    }
    object.reset();
    absl::Status s = (*token)->DestroyStoredKey(Bytes(v.token_object));
    if (s.ok() || (absl::IsNotFound(s) && v.holder == self)) {
      ForgetObject(storage, v.token_object);
    } else if (absl::IsNotFound(s)) {
      LogInfo(
          "transit: the token object of a removed version stays on record for %s, whose token "
          "holds it; that node destroys it when it is the active node",
          HolderText(v.holder));
    } else {
      LogError("transit: could not destroy the token object of a removed version: %s", s.message());
    }
  }
}

void KeyStore::Sweep(storage::Storage& storage) {
  std::lock_guard<std::mutex> objects_lock(objects_mu_);
  std::erase_if(released_in_use_, [](const auto& e) { return e.second.expired(); });
  auto names = storage.List(kRegistryPrefix);
  if (!names.ok() || names->empty()) return;
  auto token = Token();
  if (!token.ok()) return;
  const std::string self = SelfNode();
  for (const std::string& hex : *names) {
    auto raw = storage.Get(kRegistryPrefix + hex);
    if (!raw.ok() || !raw->has_value()) continue;
    auto entry = EntryFromJson(**raw);
    if (!entry.ok()) {
      LogWarn("transit: token-object record %s is corrupt: %s", hex, entry.status().message());
      continue;
    }
    if (entry->holder != self) continue;  // its holder's business
    const std::string id = absl::HexStringToBytes(hex);
    if (released_in_use_.contains(id)) continue;  // its last user destroys it
    auto key_raw = storage.Get(kKeyPrefix + entry->key);
    if (!key_raw.ok()) continue;  // unreadable now: judge it another time
    bool referenced = false;
    if (key_raw->has_value()) {
      auto key = KeyFromJson(**key_raw);
      if (!key.ok()) continue;  // never destroy on the word of a record we cannot read
      auto it = (*key)->versions.find(entry->version);
      referenced = it != (*key)->versions.end() && it->second.token_object == id;
    }
    if (referenced) continue;
    absl::Status s = (*token)->DestroyStoredKey(Bytes(id));
    if (s.ok() || absl::IsNotFound(s)) {
      ForgetObject(storage, id);
      if (s.ok()) LogInfo("transit: destroyed the unused token object \"%s\"", entry->label);
    } else {
      LogError("transit: could not destroy the unused token object \"%s\": %s", entry->label,
               s.message());
    }
  }
}

void KeyStore::Unmounting(storage::Storage& storage) {
  std::lock_guard<std::mutex> objects_lock(objects_mu_);
  auto names = storage.List(kRegistryPrefix);
  if (!names.ok() || names->empty()) return;
  auto token = Token();
  if (!token.ok()) return;
  for (const std::string& hex : *names) {
    auto raw = storage.Get(kRegistryPrefix + hex);
    if (!raw.ok() || !raw->has_value()) continue;
    auto entry = EntryFromJson(**raw);
    const std::string label = entry.ok() ? entry->label : hex;
    absl::Status s = (*token)->DestroyStoredKey(Bytes(absl::HexStringToBytes(hex)));
    if (s.ok()) {
      LogInfo("transit: destroyed the token object \"%s\" with its mount", label);
    } else if (absl::IsNotFound(s) && entry.ok() && entry->holder != SelfNode()) {
      LogWarn(
          "transit: the token object \"%s\" stays in the PKCS#11 token of %s after its mount was "
          "disabled; destroy it there with a PKCS#11 tool (CKA_ID %s)",
          label, HolderText(entry->holder), hex);
    } else if (!absl::IsNotFound(s)) {
      LogError("transit: could not destroy the token object \"%s\": %s", label, s.message());
    }
  }
}

bool KeyStore::RsaOaepSha256(const std::string& spki) {
  const int known = rsa_oaep_sha256_.load();
  if (known != kUnknown) return known == kYes;
  auto token = Token();
  if (!token.ok()) return false;
  const uint8_t probe[1] = {0};
  auto ct = (*token)->RsaOaepEncrypt(spki, CKM_SHA256, probe);
  if (ct.ok()) {
    NoteRsaOaepSha256(true);
    return true;
  }
  if (absl::IsUnimplemented(ct.status())) NoteRsaOaepSha256(false);
  return false;
}

void KeyStore::NoteRsaOaepSha256(bool available) { rsa_oaep_sha256_.store(available ? kYes : kNo); }

}  // namespace strongroom::engines::transit
