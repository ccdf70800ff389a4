#include "appliance/core/token_store.h"

#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"

namespace strongroom::core {
namespace {

constexpr char kSaltKey[] = "sys/token/salt";
constexpr char kIdPrefix[] = "sys/token/id/";
constexpr char kAccessorPrefix[] = "sys/token/accessor/";

}  // namespace

bool TokenEntry::IsRoot() const {
  for (const auto& p : policies) {
    if (p == "root") return true;
  }
  return false;
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
  o["meta"] = meta;
  return o;
}

absl::StatusOr<TokenEntry> TokenEntry::FromJson(const json::object& o) {
  TokenEntry e;
  auto str = [&](std::string_view k, std::string* out) -> absl::Status {
    ASSIGN_OR_RETURN(auto v, GetString(o, k));
    if (v) *out = *v;
    return absl::OkStatus();
  };
  auto num = [&](std::string_view k, int64_t* out) -> absl::Status {
    ASSIGN_OR_RETURN(auto v, GetInt(o, k));
    if (v) *out = *v;
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(str("id_hash", &e.id_hash));
  RETURN_IF_ERROR(str("accessor", &e.accessor));
  RETURN_IF_ERROR(str("display_name", &e.display_name));
  RETURN_IF_ERROR(str("path", &e.path));
  RETURN_IF_ERROR(str("parent_hash", &e.parent_hash));
  RETURN_IF_ERROR(str("type", &e.type));
  RETURN_IF_ERROR(str("entity_id", &e.entity_id));
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
  if (auto it = o.find("meta"); it != o.end() && it->value().is_object()) e.meta = it->value().as_object();
  return e;
}

absl::Status TokenStore::Load() {
  ASSIGN_OR_RETURN(auto salt, storage_->Get(kSaltKey));
  if (!salt) {
    SecureBytes fresh(32);
    if (RAND_priv_bytes(fresh.data(), 32) != 1) return absl::InternalError("random generator failed");
    RETURN_IF_ERROR(storage_->Put(
        kSaltKey, std::string_view(reinterpret_cast<const char*>(fresh.data()), fresh.size())));
    salt_ = std::move(fresh);
  } else {
    salt_ = SecureBytes(reinterpret_cast<const uint8_t*>(salt->data()), salt->size());
    SecureZero(salt->data(), salt->size());
  }
  return absl::OkStatus();
}

void TokenStore::Unload() { salt_.Wipe(); }

std::string TokenStore::Hash(std::string_view token) const {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), salt_.data(), static_cast<int>(salt_.size()),
       reinterpret_cast<const unsigned char*>(token.data()), token.size(), mac, &len);
  std::string out;
  for (unsigned int i = 0; i < len; ++i) absl::StrAppendFormat(&out, "%02x", mac[i]);
  return out;
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

absl::StatusOr<std::optional<TokenEntry>> TokenStore::Lookup(std::string_view token) {
  if (salt_.empty()) return absl::UnavailableError("Vault is sealed");
  if (token.empty() || token.size() > 512) return std::optional<TokenEntry>();
  const std::string h = Hash(token);
  ASSIGN_OR_RETURN(auto raw, storage_->Get(kIdPrefix + h));
  if (!raw) return std::optional<TokenEntry>();
  ASSIGN_OR_RETURN(auto obj, ParseObject(*raw));
  ASSIGN_OR_RETURN(auto entry, TokenEntry::FromJson(obj));
  if (entry.expire_unix != 0 && absl::ToUnixSeconds(clock_()) >= entry.expire_unix) {
    RETURN_IF_ERROR(storage_->Apply({storage::BatchOp::Delete(kIdPrefix + h),
                                     storage::BatchOp::Delete(kAccessorPrefix + Hash(entry.accessor))}));
    return std::optional<TokenEntry>();
  }
  return std::optional<TokenEntry>(std::move(entry));
}

}  // namespace strongroom::core
