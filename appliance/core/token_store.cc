#include "appliance/core/token_store.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <memory>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "base/strings.h"

namespace strongroom::core {
namespace {

constexpr char kSaltKey[] = "sys/token/salt";
constexpr char kIdPrefix[] = "sys/token/id/";
constexpr char kAccessorPrefix[] = "sys/token/accessor/";
constexpr char kParentPrefix[] = "sys/token/parent/";
constexpr char kCubbyholePrefix[] = "sys/token/cubbyhole/";
constexpr int kMaxParentDepth = 64;
constexpr std::string_view kBatchPrefix = "hvb.";
// Batch tokens are sealed under a key derived for this purpose alone (Barrier::SealDerived).
constexpr std::string_view kBatchPurpose = "strongroom batch token v1";

// Only the unpadded URL-safe alphabet: one spelling per token, so its audit digest is its only
// one (the decoder would also take padding, spaces and other trailing bits).
bool CanonicalBase64Url(std::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  }
  return true;
}

// A cubbyhole key as one storage name: '/' and '%' escaped, so one List finds every key.
std::string EscapeCubbyholeKey(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c == '%') {
      out += "%25";
    } else if (c == '/') {
      out += "%2F";
    } else {
      out += c;
    }
  }
  return out;
}

std::string UnescapeCubbyholeKey(std::string_view name) {
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    if (name[i] == '%' && name.substr(i, 3) == "%2F") {
      out += '/';
      i += 2;
    } else if (name[i] == '%' && name.substr(i, 3) == "%25") {
      out += '%';
      i += 2;
    } else {
      out += name[i];
    }
  }
  return out;
}

// The field `k` of `o` into `*out` when present (a wrong type is an error).
absl::Status ReadField(const json::object& o, std::string_view k, std::string* out) {
  ASSIGN_OR_RETURN(auto v, GetString(o, k));
  if (v) *out = *v;
  return absl::OkStatus();
}
absl::Status ReadField(const json::object& o, std::string_view k, int64_t* out) {
  ASSIGN_OR_RETURN(auto v, GetInt(o, k));
  if (v) *out = *v;
  return absl::OkStatus();
}

// Vault's refusal of a cubbyhole to a batch token.
absl::Status HasCubbyhole(const TokenEntry& e) {
  if (!e.IsBatch()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      "cubbyhole operations are only supported by \"service\" type tokens");
}

// What a batch token carries: its entry, in short keys (the token is a header value).
json::object BatchJson(const TokenEntry& e) {
  json::object o;
  json::array pol;
  for (const auto& p : e.policies) pol.emplace_back(p);
  o["p"] = std::move(pol);
  o["d"] = e.display_name;
  o["pa"] = e.path;
  if (!e.parent_hash.empty()) o["ph"] = e.parent_hash;
  o["c"] = e.creation_unix;
  o["t"] = e.creation_ttl;
  o["e"] = e.expire_unix;
  if (!e.mount_accessor.empty()) o["ma"] = e.mount_accessor;
  if (!e.entity_id.empty()) o["en"] = e.entity_id;
  if (!e.role.empty()) o["r"] = e.role;
  if (!e.meta.empty()) o["m"] = e.meta;
  return o;
}

absl::StatusOr<TokenEntry> FromBatchJson(const json::object& o) {
  TokenEntry e;
  e.type = "batch";
  const auto str = [&](std::string_view k, std::string* out) { return ReadField(o, k, out); };
  const auto num = [&](std::string_view k, int64_t* out) { return ReadField(o, k, out); };
  ASSIGN_OR_RETURN(auto pol, GetStringList(o, "p"));
  if (pol) e.policies = *pol;
  RETURN_IF_ERROR(str("d", &e.display_name));
  RETURN_IF_ERROR(str("pa", &e.path));
  RETURN_IF_ERROR(str("ph", &e.parent_hash));
  RETURN_IF_ERROR(num("c", &e.creation_unix));
  RETURN_IF_ERROR(num("t", &e.creation_ttl));
  RETURN_IF_ERROR(num("e", &e.expire_unix));
  RETURN_IF_ERROR(str("ma", &e.mount_accessor));
  RETURN_IF_ERROR(str("en", &e.entity_id));
  RETURN_IF_ERROR(str("r", &e.role));
  if (auto it = o.find("m"); it != o.end() && it->value().is_object()) {
    e.meta = it->value().as_object();
  }
  e.ttl = e.creation_ttl;
  e.max_expire_unix = e.expire_unix;
  e.orphan = e.parent_hash.empty();
  return e;
}

}  // namespace

absl::Status CheckLoginPolicies(const std::vector<std::string>& policies) {
  if (std::find(policies.begin(), policies.end(), "root") != policies.end()) {
    return absl::InvalidArgumentError("auth methods cannot create root tokens");
  }
  if (std::find(policies.begin(), policies.end(), "response-wrapping") != policies.end()) {
    return absl::InvalidArgumentError("cannot assign policy \"response-wrapping\"");
  }
  return absl::OkStatus();
}

bool TokenEntry::IsRoot() const {
  for (const auto& p : policies) {
    if (p == "root") return true;
  }
  return false;
}

json::object TokenAuthResponse(const TokenEntry& e, const std::string& token,
                               int64_t lease_duration,
                               const std::vector<std::string>& identity_policies) {
  auto to_array = [](const std::vector<std::string>& v) {
    json::array a;
    for (const auto& p : v) a.emplace_back(p);
    return a;
  };
  std::vector<std::string> all = e.policies;
  all.insert(all.end(), identity_policies.begin(), identity_policies.end());
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  json::object a;
  a["client_token"] = token;
  a["accessor"] = e.accessor;
  a["policies"] = to_array(all);
  a["token_policies"] = to_array(e.policies);
  if (!identity_policies.empty()) a["identity_policies"] = to_array(identity_policies);
  a["metadata"] = e.meta.empty() ? json::value(nullptr) : json::value(e.meta);
  a["lease_duration"] = lease_duration;
  a["renewable"] = e.renewable;
  a["entity_id"] = e.entity_id;
  a["token_type"] = e.type;
  a["orphan"] = e.orphan;
  a["mfa_requirement"] = nullptr;
  a["num_uses"] = e.num_uses;
  return a;
}

json::object TokenEntry::ToJson() const {
  json::object o;
  o["id_hash"] = id_hash;
  o["accessor"] = accessor;
  json::array pol;
  for (const auto& p : policies) pol.emplace_back(p);
  o["policies"] = std::move(pol);
  o["display_name"] = display_name;
  o["path"] = path;
  o["parent_hash"] = parent_hash;
  o["creation_unix"] = creation_unix;
  o["ttl"] = ttl;
  o["expire_unix"] = expire_unix;
  o["num_uses"] = num_uses;
  o["renewable"] = renewable;
  o["orphan"] = orphan;
  o["type"] = type;
  o["entity_id"] = entity_id;
  o["role"] = role;
  o["explicit_max_ttl"] = explicit_max_ttl;
  o["period"] = period;
  o["creation_ttl"] = creation_ttl;
  o["last_renewal_unix"] = last_renewal_unix;
  o["max_expire_unix"] = max_expire_unix;
  if (wrapping) o["wrapping"] = true;
  o["meta"] = meta;
  return o;
}

absl::StatusOr<TokenEntry> TokenEntry::FromJson(const json::object& o) {
  TokenEntry e;
  const auto str = [&](std::string_view k, std::string* out) { return ReadField(o, k, out); };
  const auto num = [&](std::string_view k, int64_t* out) { return ReadField(o, k, out); };
  RETURN_IF_ERROR(str("id_hash", &e.id_hash));
  RETURN_IF_ERROR(str("accessor", &e.accessor));
  RETURN_IF_ERROR(str("display_name", &e.display_name));
  RETURN_IF_ERROR(str("path", &e.path));
  RETURN_IF_ERROR(str("parent_hash", &e.parent_hash));
  RETURN_IF_ERROR(str("type", &e.type));
  RETURN_IF_ERROR(str("entity_id", &e.entity_id));
  RETURN_IF_ERROR(str("role", &e.role));
  RETURN_IF_ERROR(num("explicit_max_ttl", &e.explicit_max_ttl));
  RETURN_IF_ERROR(num("period", &e.period));
  RETURN_IF_ERROR(num("creation_ttl", &e.creation_ttl));
  RETURN_IF_ERROR(num("last_renewal_unix", &e.last_renewal_unix));
  RETURN_IF_ERROR(num("max_expire_unix", &e.max_expire_unix));
  RETURN_IF_ERROR(num("creation_unix", &e.creation_unix));
  RETURN_IF_ERROR(num("ttl", &e.ttl));
  RETURN_IF_ERROR(num("expire_unix", &e.expire_unix));
  RETURN_IF_ERROR(num("num_uses", &e.num_uses));
  ASSIGN_OR_RETURN(auto pol, GetStringList(o, "policies"));
  if (pol) e.policies = *pol;
  ASSIGN_OR_RETURN(auto ren, GetBool(o, "renewable"));
  e.renewable = ren.value_or(false);
  ASSIGN_OR_RETURN(auto orph, GetBool(o, "orphan"));
  e.orphan = orph.value_or(false);
  ASSIGN_OR_RETURN(auto wrapping, GetBool(o, "wrapping"));
  e.wrapping = wrapping.value_or(false);
  if (auto it = o.find("meta"); it != o.end() && it->value().is_object())
    e.meta = it->value().as_object();
  return e;
}

TokenStore::~TokenStore() { ResetHmac(); }

void TokenStore::ResetHmac() {
  std::unique_lock lock(hmac_mu_);
  EVP_MD_CTX_free(hmac_inner_);  // cleanses the state
  EVP_MD_CTX_free(hmac_outer_);
  hmac_inner_ = hmac_outer_ = nullptr;
}

TokenStore::CacheShard& TokenStore::ShardFor(std::string_view id_hash) {
  return cache_[std::hash<std::string_view>{}(id_hash) % kCacheShards];
}

void TokenStore::Forget(const std::string& id_hash) {
  CacheShard& shard = ShardFor(id_hash);
  std::lock_guard lock(shard.mu);
  shard.entries.erase(id_hash);
}

void TokenStore::ForgetAll() {
  for (CacheShard& shard : cache_) {
    std::lock_guard lock(shard.mu);
    shard.entries.clear();
  }
}

size_t TokenStore::CachedEntries() const {
  size_t n = 0;
  for (const CacheShard& shard : cache_) {
    std::lock_guard lock(shard.mu);
    n += shard.entries.size();
  }
  return n;
}

absl::Status TokenStore::Load() {
  ASSIGN_OR_RETURN(auto salt, storage_->Get(kSaltKey));
  if (!salt) {
    SecureBytes fresh(32);
    if (RAND_priv_bytes(fresh.data(), 32) != 1)
      return absl::InternalError("random generator failed");
    RETURN_IF_ERROR(storage_->Put(
        kSaltKey, std::string_view(reinterpret_cast<const char*>(fresh.data()), fresh.size())));
    salt_ = std::move(fresh);
  } else {
    // A standby reads its tables again (Core::ReloadTables) while a request that began when it
    // was the active node may still hash tokens with the salt: the same salt stays where it is
    // (it never changes, but for a restored snapshot of another cluster).
    const std::span<const uint8_t> stored(reinterpret_cast<const uint8_t*>(salt->data()),
                                          salt->size());
    if (salt_.size() != stored.size() || !salt_.Equals(stored)) {
      salt_ = SecureBytes(stored.data(), stored.size());
    }
    SecureZero(salt->data(), salt->size());
  }
  ForgetAll();
  // HMAC (RFC 2104) with the salt as key, SHA-256: the states after hashing key^ipad and
  // key^opad (a salt longer than a block is hashed first, as HMAC does).
  SecureBytes key(64);
  if (salt_.size() > 64) {
    unsigned int n = 0;
    if (EVP_Digest(salt_.data(), salt_.size(), key.data(), &n, EVP_sha256(), nullptr) != 1) {
      return absl::InternalError("SHA-256 failed");
    }
  } else {
    std::copy(salt_.data(), salt_.data() + salt_.size(), key.data());
  }
  SecureBytes pad(64);
  EVP_MD_CTX* inner = EVP_MD_CTX_new();
  EVP_MD_CTX* outer = EVP_MD_CTX_new();
  bool ok = inner != nullptr && outer != nullptr;
  for (auto [ctx, byte] : {std::pair{inner, uint8_t{0x36}}, std::pair{outer, uint8_t{0x5c}}}) {
    for (size_t i = 0; i < 64; ++i) pad.data()[i] = static_cast<uint8_t>(key.data()[i] ^ byte);
    ok = ok && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1 &&
         EVP_DigestUpdate(ctx, pad.data(), 64) == 1;
  }
  if (!ok) {
    EVP_MD_CTX_free(inner);
    EVP_MD_CTX_free(outer);
    return absl::InternalError("HMAC set-up failed");
  }
  std::unique_lock lock(hmac_mu_);
  EVP_MD_CTX_free(hmac_inner_);
  EVP_MD_CTX_free(hmac_outer_);
  hmac_inner_ = inner;
  hmac_outer_ = outer;
  return absl::OkStatus();
}

void TokenStore::Unload() {
  ResetHmac();
  salt_.Wipe();
  ForgetAll();
}

namespace {

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

std::string Hex(const unsigned char* p, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(2 * n, '\0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[p[i] >> 4];
    out[2 * i + 1] = kDigits[p[i] & 0xf];
  }
  return out;
}

}  // namespace

std::string TokenStore::Hash(std::string_view token) const {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  {
    std::shared_lock lock(hmac_mu_);
    if (hmac_inner_ != nullptr) {
      // One scratch context per thread: copying a prepared state into it allocates nothing.
      thread_local std::unique_ptr<EVP_MD_CTX, MdCtxFree> scratch(EVP_MD_CTX_new());
      unsigned char inner[EVP_MAX_MD_SIZE];
      unsigned int inner_len = 0;
      EVP_MD_CTX* c = scratch.get();
      if (c != nullptr && EVP_MD_CTX_copy_ex(c, hmac_inner_) == 1 &&
          EVP_DigestUpdate(c, token.data(), token.size()) == 1 &&
          EVP_DigestFinal_ex(c, inner, &inner_len) == 1 &&
          EVP_MD_CTX_copy_ex(c, hmac_outer_) == 1 && EVP_DigestUpdate(c, inner, inner_len) == 1 &&
          EVP_DigestFinal_ex(c, mac, &len) == 1) {
        return Hex(mac, len);
      }
    }
  }
  // Not loaded (sealed), or the prepared state failed: the one-shot HMAC.
  len = 0;
  HMAC(EVP_sha256(), salt_.data(), static_cast<int>(salt_.size()),
       reinterpret_cast<const unsigned char*>(token.data()), token.size(), mac, &len);
  return Hex(mac, len);
}

absl::Status TokenStore::Store(const TokenEntry& e) {
  return storage_->Apply({storage::BatchOp::Put(kIdPrefix + e.id_hash, Serialize(e.ToJson())),
                          storage::BatchOp::Put(kAccessorPrefix + Hash(e.accessor), e.id_hash)});
}

absl::StatusOr<std::string> TokenStore::CreateRoot(std::string_view id, std::string_view path) {
  if (salt_.empty()) return absl::FailedPreconditionError("token store not loaded");
  std::string token = id.empty() ? absl::StrCat("hvs.", RandomBase62(24)) : std::string(id);
  TokenEntry e;
  e.id_hash = Hash(token);
  e.accessor = RandomBase62(24);
  e.policies = {"root"};
  e.display_name = "root";
  e.path = std::string(path);
  e.creation_unix = absl::ToUnixSeconds(clock_());
  e.orphan = true;
  RETURN_IF_ERROR(Store(e));
  return token;
}

absl::StatusOr<std::string> TokenStore::Create(TokenEntry& e, std::string_view id) {
  if (salt_.empty()) return absl::FailedPreconditionError("token store not loaded");
  std::string token = id.empty() ? absl::StrCat("hvs.", RandomBase62(24)) : std::string(id);
  e.id_hash = Hash(token);
  ASSIGN_OR_RETURN(auto existing, storage_->Get(kIdPrefix + e.id_hash));
  if (existing) return absl::InvalidArgumentError("cannot create a token with a duplicate ID");
  e.accessor = RandomBase62(24);
  e.creation_unix = absl::ToUnixSeconds(clock_());
  std::vector<storage::BatchOp> ops = {
      storage::BatchOp::Put(kIdPrefix + e.id_hash, Serialize(e.ToJson())),
      storage::BatchOp::Put(kAccessorPrefix + Hash(e.accessor), e.id_hash)};
  if (e.parent_hash.empty()) {
    RETURN_IF_ERROR(storage_->Apply(ops));
    return token;
  }
  // The child is indexed under its parent while the parent's lock is held and the parent is
  // seen alive: a revocation of the parent either ran before (no child) or lists this child.
  ops.push_back(
      storage::BatchOp::Put(absl::StrCat(kParentPrefix, e.parent_hash, "/", e.id_hash), ""));
  std::lock_guard lock(LockFor(e.parent_hash));
  ASSIGN_OR_RETURN(auto parent, LoadByHash(e.parent_hash));
  if (!parent || parent->num_uses < 0 || Expired(*parent)) {
    return absl::PermissionDeniedError("parent token lookup failed: no parent found");
  }
  RETURN_IF_ERROR(storage_->Apply(ops));
  return token;
}

size_t TokenStore::StripeOf(std::string_view id_hash) {
  return std::hash<std::string_view>{}(id_hash) % kStripes;
}

std::mutex& TokenStore::LockFor(std::string_view id_hash) { return stripes_[StripeOf(id_hash)]; }

absl::StatusOr<std::optional<TokenEntry>> TokenStore::LoadByHash(const std::string& id_hash) {
  const std::string key = kIdPrefix + id_hash;
  if (sealer_ == nullptr || static_cast<storage::Storage*>(sealer_) != storage_) {
    ASSIGN_OR_RETURN(auto raw, storage_->Get(key));
    if (!raw) return std::optional<TokenEntry>();
    ASSIGN_OR_RETURN(auto obj, ParseObject(*raw));
    ASSIGN_OR_RETURN(auto entry, TokenEntry::FromJson(obj));
    return std::optional<TokenEntry>(std::move(entry));
  }
  // The stored bytes are read every time; only what they decrypt to is kept (see the class).
  ASSIGN_OR_RETURN(Barrier::Stored stored, sealer_->GetStored(key));
  if (!stored.bytes) {
    Forget(id_hash);
    return std::optional<TokenEntry>();
  }
  CacheShard& shard = ShardFor(id_hash);
  {
    std::lock_guard lock(shard.mu);
    auto it = shard.entries.find(id_hash);
    if (it != shard.entries.end() && it->second.generation == stored.generation &&
        it->second.stored == *stored.bytes) {
      return std::optional<TokenEntry>(it->second.entry);
    }
  }
  uint64_t generation = 0;
  ASSIGN_OR_RETURN(std::string plain, sealer_->Decrypt(key, *stored.bytes, &generation));
  ASSIGN_OR_RETURN(auto obj, ParseObject(plain));
  ASSIGN_OR_RETURN(auto entry, TokenEntry::FromJson(obj));
  {
    std::lock_guard lock(shard.mu);
    if (shard.entries.size() >= kCachePerShard && !shard.entries.contains(id_hash)) {
      shard.entries.erase(shard.entries.begin());  // any one: the bound is what matters
    }
    shard.entries[id_hash] = Cached{std::move(*stored.bytes), generation, entry};
  }
  return std::optional<TokenEntry>(std::move(entry));
}

bool TokenStore::Expired(const TokenEntry& e) const {
  const int64_t now = absl::ToUnixSeconds(clock_());
  return (e.expire_unix != 0 && now >= e.expire_unix) ||
         (e.max_expire_unix != 0 && now >= e.max_expire_unix);
}

absl::StatusOr<std::optional<TokenEntry>> TokenStore::LookupByAccessor(std::string_view accessor) {
  if (salt_.empty()) return absl::UnavailableError("Vault is sealed");
  if (accessor.empty() || accessor.size() > 128) return std::optional<TokenEntry>();
  ASSIGN_OR_RETURN(auto h, storage_->Get(kAccessorPrefix + Hash(accessor)));
  if (!h) return std::optional<TokenEntry>();
  ASSIGN_OR_RETURN(auto e, LoadByHash(*h));
  if (!e || Expired(*e)) return std::optional<TokenEntry>();
  return e;
}

absl::Status TokenStore::AppendCubbyholeDeletes(const std::string& id_hash,
                                                std::vector<storage::BatchOp>* ops) {
  const std::string prefix = absl::StrCat(kCubbyholePrefix, id_hash, "/");
  ASSIGN_OR_RETURN(auto names, storage_->List(prefix));
  for (const auto& n : names) ops->push_back(storage::BatchOp::Delete(prefix + n));
  return absl::OkStatus();
}

absl::Status TokenStore::DeleteOne(const TokenEntry& e) {
  std::vector<storage::BatchOp> ops = {
      storage::BatchOp::Delete(kIdPrefix + e.id_hash),
      storage::BatchOp::Delete(kAccessorPrefix + Hash(e.accessor))};
  if (!e.parent_hash.empty()) {
    ops.push_back(
        storage::BatchOp::Delete(absl::StrCat(kParentPrefix, e.parent_hash, "/", e.id_hash)));
  }
  RETURN_IF_ERROR(AppendCubbyholeDeletes(e.id_hash, &ops));
  RETURN_IF_ERROR(storage_->Apply(ops));
  Forget(e.id_hash);  // (a lookup would find the key gone anyway; this frees the memory)
  return absl::OkStatus();
}

absl::Status TokenStore::RevokeTree(const TokenEntry& e) {
  if (e.IsBatch()) return absl::InvalidArgumentError("batch tokens cannot be revoked");
  {
    // The token first: from here on it authenticates nothing and can have no new children.
    std::lock_guard lock(LockFor(e.id_hash));
    ASSIGN_OR_RETURN(auto fresh, LoadByHash(e.id_hash));
    RETURN_IF_ERROR(DeleteOne(fresh.value_or(e)));
  }
  // Then the descendants, parent before child. `pending` holds the tokens whose children are
  // still to be revoked: no recursion, so a chain of any depth costs one entry at a time.
  // Children go in chunks: the chunk's stripes are locked in ascending order (every other path
  // holds one stripe at most, so this cannot deadlock), the children are read and deleted in one
  // batch, and only then unlocked, so no concurrent renewal, use or child creation can write a
  // revoked token back. A crash midway leaves live-looking descendants of a deleted token;
  // Lookup refuses them (their parent chain is broken) and Tidy deletes them.
  constexpr size_t kChunk = 128;
  std::vector<std::string> pending = {e.id_hash};
  while (!pending.empty()) {
    const std::string parent_hash = std::move(pending.back());
    pending.pop_back();
    ASSIGN_OR_RETURN(auto children, storage_->List(absl::StrCat(kParentPrefix, parent_hash, "/")));
    for (size_t first = 0; first < children.size(); first += kChunk) {
      const size_t last = std::min(children.size(), first + kChunk);
      std::set<size_t> stripes;
      for (size_t i = first; i < last; ++i) stripes.insert(StripeOf(children[i]));
      std::vector<std::unique_lock<std::mutex>> locks;
      for (size_t stripe : stripes) locks.emplace_back(stripes_[stripe]);
      std::vector<storage::BatchOp> batch;
      for (size_t i = first; i < last; ++i) {
        ASSIGN_OR_RETURN(auto child, LoadByHash(children[i]));
        if (child) {
          batch.push_back(storage::BatchOp::Delete(kIdPrefix + child->id_hash));
          batch.push_back(storage::BatchOp::Delete(kAccessorPrefix + Hash(child->accessor)));
        }
        RETURN_IF_ERROR(AppendCubbyholeDeletes(children[i], &batch));
        batch.push_back(
            storage::BatchOp::Delete(absl::StrCat(kParentPrefix, parent_hash, "/", children[i])));
        pending.push_back(children[i]);
      }
      RETURN_IF_ERROR(storage_->Apply(batch));
      for (size_t i = first; i < last; ++i) Forget(children[i]);
    }
  }
  return absl::OkStatus();
}

absl::Status TokenStore::RevokeOrphan(const TokenEntry& e) {
  if (e.IsBatch()) return absl::InvalidArgumentError("batch tokens cannot be revoked");
  ASSIGN_OR_RETURN(auto children, storage_->List(absl::StrCat(kParentPrefix, e.id_hash, "/")));
  for (const auto& child_hash : children) {
    std::lock_guard lock(LockFor(child_hash));
    ASSIGN_OR_RETURN(auto child, LoadByHash(child_hash));
    std::vector<storage::BatchOp> ops = {
        storage::BatchOp::Delete(absl::StrCat(kParentPrefix, e.id_hash, "/", child_hash))};
    if (child) {
      child->parent_hash.clear();
      child->orphan = true;
      ops.push_back(storage::BatchOp::Put(kIdPrefix + child->id_hash, Serialize(child->ToJson())));
    }
    RETURN_IF_ERROR(storage_->Apply(ops));
  }
  return RevokeTree(e);  // a child created meanwhile goes with it
}

absl::StatusOr<bool> TokenStore::Use(TokenEntry& e, bool* revoke_after) {
  *revoke_after = false;
  if (e.num_uses == 0) return true;  // unlimited (num_uses never changes from 0)
  std::lock_guard lock(LockFor(e.id_hash));
  ASSIGN_OR_RETURN(auto fresh, LoadByHash(e.id_hash));
  if (!fresh || fresh->num_uses < 0) return false;  // revoked, or another request took the last use
  if (fresh->num_uses == 1) {
    fresh->num_uses = -1;  // this request is the last one it may make (Vault's "pending")
    *revoke_after = true;
  } else {
    fresh->num_uses -= 1;
  }
  RETURN_IF_ERROR(Store(*fresh));
  e = std::move(*fresh);
  return true;
}

absl::Status TokenStore::Modify(const std::string& id_hash,
                                const std::function<absl::Status(TokenEntry&)>& change) {
  std::lock_guard lock(LockFor(id_hash));
  ASSIGN_OR_RETURN(auto fresh, LoadByHash(id_hash));
  if (!fresh || fresh->num_uses < 0 || Expired(*fresh)) {
    return absl::NotFoundError("token not found");
  }
  RETURN_IF_ERROR(change(*fresh));
  return Store(*fresh);
}

absl::StatusOr<std::vector<std::string>> TokenStore::ListAccessors() {
  ASSIGN_OR_RETURN(auto hashes, storage_->List(kIdPrefix));
  std::vector<std::string> out;
  for (const auto& h : hashes) {
    ASSIGN_OR_RETURN(auto e, LoadByHash(h));
    if (e && !Expired(*e)) out.push_back(e->accessor);
  }
  std::sort(out.begin(), out.end());
  return out;
}

absl::StatusOr<size_t> TokenStore::RevokeWhere(
    const std::function<bool(const TokenEntry&)>& predicate) {
  if (salt_.empty()) return 0;
  ASSIGN_OR_RETURN(auto hashes, storage_->List(kIdPrefix));
  size_t removed = 0;
  for (const auto& h : hashes) {
    ASSIGN_OR_RETURN(auto e, LoadByHash(h));  // gone already if an earlier tree held it
    if (e && predicate(*e)) {
      RETURN_IF_ERROR(RevokeTree(*e));
      ++removed;
    }
  }
  return removed;
}

absl::StatusOr<size_t> TokenStore::Tidy() {
  return RevokeWhere([this](const TokenEntry& e) {
    if (Expired(e) || e.num_uses < 0) return true;
    if (e.parent_hash.empty()) return false;
    auto parent = storage_->Get(kIdPrefix + e.parent_hash);
    return parent.ok() && !parent->has_value();
  });
}

absl::StatusOr<bool> TokenStore::ParentChainAlive(const TokenEntry& e, bool revoke_self) {
  // A token lives only while its whole parent chain lives (an expired parent takes its
  // children with it even before the tidy pass reaches them).
  std::string parent = e.parent_hash;
  for (int depth = 0; !parent.empty() && depth < kMaxParentDepth; ++depth) {
    ASSIGN_OR_RETURN(auto p, LoadByHash(parent));
    if (!p || Expired(*p)) {
      if (p) {
        RETURN_IF_ERROR(RevokeTree(*p));
      } else if (revoke_self) {
        RETURN_IF_ERROR(RevokeTree(e));
      }
      return false;
    }
    parent = p->parent_hash;
  }
  return true;
}

absl::StatusOr<std::optional<TokenEntry>> TokenStore::Lookup(std::string_view token) {
  if (salt_.empty()) return absl::UnavailableError("Vault is sealed");
  if (token.starts_with(kBatchPrefix)) return LookupBatch(token);
  if (token.empty() || token.size() > 512) return std::optional<TokenEntry>();
  ASSIGN_OR_RETURN(auto entry, LoadByHash(Hash(token)));
  if (!entry) return entry;
  if (entry->num_uses < 0) return std::optional<TokenEntry>();  // its last use is under way
  if (Expired(*entry)) {
    RETURN_IF_ERROR(RevokeTree(*entry));
    return std::optional<TokenEntry>();
  }
  ASSIGN_OR_RETURN(bool alive, ParentChainAlive(*entry, /*revoke_self=*/true));
  if (!alive) return std::optional<TokenEntry>();
  return entry;
}

absl::StatusOr<std::string> TokenStore::CreateWithCubbyhole(
    TokenEntry& e, const std::vector<std::pair<std::string, std::string>>& cubbyhole) {
  if (salt_.empty()) return absl::FailedPreconditionError("token store not loaded");
  if (!e.parent_hash.empty() || e.IsBatch()) {
    return absl::InternalError("a token with a cubbyhole at creation is an orphan service token");
  }
  std::string token = absl::StrCat("hvs.", RandomBase62(24));
  e.id_hash = Hash(token);
  e.accessor = RandomBase62(24);
  e.creation_unix = absl::ToUnixSeconds(clock_());
  std::vector<storage::BatchOp> ops = {
      storage::BatchOp::Put(kIdPrefix + e.id_hash, Serialize(e.ToJson())),
      storage::BatchOp::Put(kAccessorPrefix + Hash(e.accessor), e.id_hash)};
  for (const auto& [key, value] : cubbyhole) {
    ASSIGN_OR_RETURN(std::string k, CubbyholeKey(e, key));
    if (value.size() > kMaxWrappedResponse) {
      return absl::InvalidArgumentError("the response is too large to wrap");
    }
    ops.push_back(storage::BatchOp::Put(std::move(k), value));
  }
  RETURN_IF_ERROR(storage_->Apply(ops));
  return token;
}

absl::StatusOr<std::string> TokenStore::CreateBatch(TokenEntry& e) {
  if (salt_.empty()) return absl::FailedPreconditionError("token store not loaded");
  if (sealer_ == nullptr) return absl::FailedPreconditionError("batch tokens are not available");
  if (e.IsRoot()) return absl::InvalidArgumentError("batch tokens cannot be root tokens");
  e.type = "batch";
  e.accessor.clear();
  e.renewable = false;
  e.num_uses = 0;
  e.period = 0;
  e.explicit_max_ttl = 0;
  e.creation_unix = absl::ToUnixSeconds(clock_());
  e.max_expire_unix = e.expire_unix;
  e.orphan = e.parent_hash.empty();
  if (e.expire_unix == 0) return absl::InternalError("a batch token needs a TTL");
  if (!e.parent_hash.empty()) {
    ASSIGN_OR_RETURN(auto parent, LoadByHash(e.parent_hash));
    if (!parent || parent->num_uses < 0 || Expired(*parent)) {
      return absl::PermissionDeniedError("parent token lookup failed: no parent found");
    }
  }
  ASSIGN_OR_RETURN(std::string sealed,
                   sealer_->SealDerived(kBatchPurpose, Serialize(BatchJson(e))));
  std::string token = absl::StrCat(Av(kBatchPrefix), absl::WebSafeBase64Escape(sealed));
  if (token.size() > kMaxTokenSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the batch token would be longer than ", kMaxTokenSize,
        " characters: give it fewer policies or less metadata, or use a service token"));
  }
  e.id_hash = Hash(token);
  return token;
}

absl::StatusOr<std::optional<TokenEntry>> TokenStore::LookupBatch(std::string_view token) {
  const std::optional<TokenEntry> none;
  if (sealer_ == nullptr || token.size() > kMaxTokenSize) return none;
  const std::string_view encoded = token.substr(kBatchPrefix.size());
  std::string sealed;
  if (!CanonicalBase64Url(encoded) || !absl::WebSafeBase64Unescape(Av(encoded), &sealed) ||
      absl::WebSafeBase64Escape(sealed) != encoded) {
    return none;
  }
  // Forged, altered or from another cluster: not a token (the reason stays unsaid).
  auto plain = sealer_->OpenDerived(kBatchPurpose, sealed);
  if (!plain.ok()) return none;
  auto obj = ParseObject(*plain);
  if (!obj.ok()) return none;
  auto entry = FromBatchJson(*obj);
  if (!entry.ok()) return none;
  entry->id_hash = Hash(token);
  if (Expired(*entry)) return none;
  if (!entry->mount_accessor.empty() && issuer_alive_ && !issuer_alive_(entry->mount_accessor)) {
    return none;  // its auth method was disabled
  }
  ASSIGN_OR_RETURN(bool alive, ParentChainAlive(*entry, /*revoke_self=*/false));
  if (!alive) return none;
  return std::optional<TokenEntry>(std::move(*entry));
}

absl::StatusOr<std::optional<std::string>> TokenStore::TakeCubbyhole(
    std::string_view token, std::string_view key,
    const std::function<absl::Status(const TokenEntry&, const std::string&)>& before_delete) {
  if (salt_.empty()) return absl::UnavailableError("Vault is sealed");
  const std::optional<std::string> none;
  if (token.empty() || token.size() > 512 || token.starts_with(kBatchPrefix)) return none;
  const std::string id_hash = Hash(token);
  std::lock_guard lock(LockFor(id_hash));
  ASSIGN_OR_RETURN(auto e, LoadByHash(id_hash));
  if (!e || e->num_uses != 1 || Expired(*e) || !e->parent_hash.empty()) return none;
  ASSIGN_OR_RETURN(std::string k, CubbyholeKey(*e, key));
  ASSIGN_OR_RETURN(auto value, storage_->Get(k));
  if (!value) return none;
  RETURN_IF_ERROR(before_delete(*e, *value));
  RETURN_IF_ERROR(DeleteOne(*e));  // an orphan with one use: it cannot have children
  return value;
}

absl::StatusOr<std::string> TokenStore::CubbyholeKey(const TokenEntry& e,
                                                     std::string_view key) const {
  RETURN_IF_ERROR(HasCubbyhole(e));
  if (key.empty() || key.size() > 512 || key.front() == '/' || key.back() == '/' ||
      key.find("//") != std::string_view::npos) {
    return absl::InvalidArgumentError("invalid cubbyhole key");
  }
  return absl::StrCat(kCubbyholePrefix, e.id_hash, "/", EscapeCubbyholeKey(key));
}

absl::StatusOr<std::optional<std::string>> TokenStore::CubbyholeGet(const TokenEntry& e,
                                                                    std::string_view key) {
  ASSIGN_OR_RETURN(std::string k, CubbyholeKey(e, key));
  std::lock_guard lock(LockFor(e.id_hash));
  ASSIGN_OR_RETURN(auto fresh, LoadByHash(e.id_hash));
  if (!fresh) return std::optional<std::string>();
  return storage_->Get(k);
}

absl::Status TokenStore::CubbyholePut(const TokenEntry& e, std::string_view key,
                                      std::string_view value) {
  ASSIGN_OR_RETURN(std::string k, CubbyholeKey(e, key));
  if (value.size() > kMaxCubbyholeValue) {
    return absl::InvalidArgumentError(
        absl::StrCat("a cubbyhole value is at most ", kMaxCubbyholeValue, " bytes"));
  }
  std::lock_guard lock(LockFor(e.id_hash));
  ASSIGN_OR_RETURN(auto fresh, LoadByHash(e.id_hash));
  if (!fresh) return absl::PermissionDeniedError("permission denied");  // revoked meanwhile
  ASSIGN_OR_RETURN(auto existing, storage_->Get(k));
  if (!existing) {
    ASSIGN_OR_RETURN(auto names, storage_->List(absl::StrCat(kCubbyholePrefix, e.id_hash, "/")));
    if (names.size() >= kMaxCubbyholeKeys) {
      return absl::InvalidArgumentError(
          absl::StrCat("a cubbyhole holds at most ", kMaxCubbyholeKeys, " keys"));
    }
  }
  return storage_->Put(k, value);
}

absl::Status TokenStore::CubbyholeDelete(const TokenEntry& e, std::string_view key) {
  ASSIGN_OR_RETURN(std::string k, CubbyholeKey(e, key));
  std::lock_guard lock(LockFor(e.id_hash));
  return storage_->Delete(k);
}

absl::StatusOr<std::vector<std::string>> TokenStore::CubbyholeList(const TokenEntry& e,
                                                                   std::string_view prefix) {
  RETURN_IF_ERROR(HasCubbyhole(e));
  std::lock_guard lock(LockFor(e.id_hash));
  ASSIGN_OR_RETURN(auto fresh, LoadByHash(e.id_hash));
  if (!fresh) return std::vector<std::string>();
  ASSIGN_OR_RETURN(auto names, storage_->List(absl::StrCat(kCubbyholePrefix, e.id_hash, "/")));
  std::set<std::string> out;
  for (const auto& n : names) {
    const std::string key = UnescapeCubbyholeKey(n);
    if (!key.starts_with(prefix)) continue;
    const std::string rest = key.substr(prefix.size());
    const size_t slash = rest.find('/');
    out.insert(slash == std::string::npos ? rest : rest.substr(0, slash + 1));
  }
  return std::vector<std::string>(out.begin(), out.end());
}

}  // namespace strongroom::core
