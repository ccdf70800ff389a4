#include "appliance/core/identity_store.h"

#include <algorithm>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status_macros.h"

namespace strongroom::core {
namespace {

constexpr char kEntityPrefix[] = "identity/entity/";
constexpr char kNamePrefix[] = "identity/entity-name/";
constexpr char kAliasPrefix[] = "identity/alias/";
constexpr char kAliasKeyPrefix[] = "identity/alias-key/";

std::string AliasKey(const std::string& accessor, const std::string& name) {
  return absl::StrCat(kAliasKeyPrefix, accessor, "/", absl::BytesToHexString(name));
}

json::value MapToJson(const policy::StringMap& m, bool null_when_empty) {
  if (m.empty() && null_when_empty) return nullptr;
  json::object o;
  for (const auto& [k, v] : m) o[k] = v;
  return o;
}

absl::StatusOr<policy::StringMap> MapFromJson(const json::object& o, std::string_view key) {
  policy::StringMap out;
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return out;
  if (!it->value().is_object()) return absl::DataLossError("identity record corrupt");
  for (const auto& [k, v] : it->value().as_object()) {
    if (!v.is_string()) return absl::DataLossError("identity record corrupt");
    out[std::string(k)] = std::string(v.as_string());
  }
  return out;
}

std::string Str(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_string() ? std::string(it->value().as_string()) : "";
}

int64_t Int(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_int64() ? it->value().as_int64() : 0;
}

std::string Time(int64_t unix) { return FormatRfc3339Nano(absl::FromUnixSeconds(unix)); }

// Storage form (also the API form, plus internal seconds).
json::object AliasRecord(const EntityAlias& a) {
  json::object o = a.ToJson();
  o["creation_unix"] = a.creation_unix;
  o["update_unix"] = a.update_unix;
  return o;
}

absl::StatusOr<Entity> EntityFromRecord(const json::object& o) {
  Entity e;
  e.id = Str(o, "id");
  e.name = Str(o, "name");
  ASSIGN_OR_RETURN(e.metadata, MapFromJson(o, "metadata"));
  if (auto it = o.find("policies"); it != o.end() && it->value().is_array()) {
    for (const auto& p : it->value().as_array()) {
      if (p.is_string()) e.policies.emplace_back(p.as_string());
    }
  }
  if (auto it = o.find("disabled"); it != o.end() && it->value().is_bool()) {
    e.disabled = it->value().as_bool();
  }
  e.creation_unix = Int(o, "creation_unix");
  e.update_unix = Int(o, "update_unix");
  if (auto it = o.find("aliases"); it != o.end() && it->value().is_array()) {
    for (const auto& v : it->value().as_array()) {
      if (!v.is_object()) return absl::DataLossError("identity record corrupt");
      const json::object& ao = v.as_object();
      EntityAlias a;
      a.id = Str(ao, "id");
      a.canonical_id = e.id;
      a.mount_accessor = Str(ao, "mount_accessor");
      a.mount_path = Str(ao, "mount_path");
      a.mount_type = Str(ao, "mount_type");
      a.name = Str(ao, "name");
      ASSIGN_OR_RETURN(a.metadata, MapFromJson(ao, "metadata"));
      ASSIGN_OR_RETURN(a.custom_metadata, MapFromJson(ao, "custom_metadata"));
      a.creation_unix = Int(ao, "creation_unix");
      a.update_unix = Int(ao, "update_unix");
      e.aliases.push_back(std::move(a));
    }
  }
  if (e.id.empty() || e.name.empty()) return absl::DataLossError("identity record corrupt");
  return e;
}

json::object EntityRecord(const Entity& e) {
  json::object o = e.ToJson();
  o["creation_unix"] = e.creation_unix;
  o["update_unix"] = e.update_unix;
  json::array aliases;
  for (const auto& a : e.aliases) aliases.push_back(AliasRecord(a));
  o["aliases"] = std::move(aliases);
  return o;
}

}  // namespace

json::object EntityAlias::ToJson() const {
  json::object o;
  o["id"] = id;
  o["canonical_id"] = canonical_id;
  o["mount_accessor"] = mount_accessor;
  o["mount_path"] = mount_path;
  o["mount_type"] = mount_type;
  o["name"] = name;
  o["metadata"] = MapToJson(metadata, true);
  o["custom_metadata"] = MapToJson(custom_metadata, false);
  o["local"] = false;
  o["merged_from_canonical_ids"] = nullptr;
  o["creation_time"] = Time(creation_unix);
  o["last_update_time"] = Time(update_unix);
  return o;
}

json::object Entity::ToJson() const {
  json::object o;
  o["id"] = id;
  o["name"] = name;
  o["metadata"] = MapToJson(metadata, true);
  json::array pol;
  for (const auto& p : policies) pol.emplace_back(p);
  o["policies"] = std::move(pol);
  o["disabled"] = disabled;
  o["namespace_id"] = "root";
  o["creation_time"] = Time(creation_unix);
  o["last_update_time"] = Time(update_unix);
  o["merged_entity_ids"] = nullptr;
  o["direct_group_ids"] = json::array();
  o["group_ids"] = json::array();
  o["inherited_group_ids"] = json::array();
  json::array alias_list;
  for (const auto& a : aliases) alias_list.push_back(a.ToJson());
  o["aliases"] = std::move(alias_list);
  return o;
}

policy::IdentityContext Entity::Context() const {
  policy::IdentityContext c;
  c.entity_id = id;
  c.entity_name = name;
  c.entity_metadata = metadata;
  for (const auto& a : aliases) {
    c.aliases[a.mount_accessor] =
        policy::IdentityAlias{a.id, a.name, a.metadata, a.custom_metadata};
  }
  return c;
}

void IdentityStore::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  cache_.clear();
}

absl::StatusOr<std::shared_ptr<const Entity>> IdentityStore::LoadLocked(const std::string& id) {
  if (auto it = cache_.find(id); it != cache_.end()) return it->second;
  if (id.empty() || id.find('/') != std::string::npos) return std::shared_ptr<const Entity>();
  ASSIGN_OR_RETURN(auto raw, storage_->Get(kEntityPrefix + id));
  if (!raw) return std::shared_ptr<const Entity>();
  ASSIGN_OR_RETURN(auto o, ParseObject(*raw));
  ASSIGN_OR_RETURN(Entity e, EntityFromRecord(o));
  auto shared = std::make_shared<const Entity>(std::move(e));
  cache_[id] = shared;
  return shared;
}

absl::StatusOr<std::shared_ptr<const Entity>> IdentityStore::Get(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  return LoadLocked(id);
}

absl::StatusOr<std::shared_ptr<const Entity>> IdentityStore::GetByName(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(auto id, storage_->Get(kNamePrefix + absl::BytesToHexString(name)));
  if (!id) return std::shared_ptr<const Entity>();
  return LoadLocked(*id);
}

absl::StatusOr<std::optional<std::string>> IdentityStore::AliasIdLocked(const std::string& accessor,
                                                                        const std::string& name) {
  return storage_->Get(AliasKey(accessor, name));
}

absl::StatusOr<std::shared_ptr<const Entity>> IdentityStore::GetByAlias(
    const std::string& mount_accessor, const std::string& alias_name) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(auto alias_id, AliasIdLocked(mount_accessor, alias_name));
  if (!alias_id) return std::shared_ptr<const Entity>();
  ASSIGN_OR_RETURN(auto entity_id, storage_->Get(kAliasPrefix + *alias_id));
  if (!entity_id) return std::shared_ptr<const Entity>();
  return LoadLocked(*entity_id);
}

absl::StatusOr<std::shared_ptr<const Entity>> IdentityStore::GetByAliasId(
    const std::string& alias_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (alias_id.empty() || alias_id.find('/') != std::string::npos) {
    return std::shared_ptr<const Entity>();
  }
  ASSIGN_OR_RETURN(auto entity_id, storage_->Get(kAliasPrefix + alias_id));
  if (!entity_id) return std::shared_ptr<const Entity>();
  return LoadLocked(*entity_id);
}

absl::Status IdentityStore::StoreLocked(const Entity& e, std::vector<storage::BatchOp> extra) {
  extra.push_back(storage::BatchOp::Put(kEntityPrefix + e.id, Serialize(EntityRecord(e))));
  RETURN_IF_ERROR(storage_->Apply(extra));
  cache_[e.id] = std::make_shared<const Entity>(e);
  return absl::OkStatus();
}

absl::StatusOr<Entity> IdentityStore::Write(const std::string& id, const EntityUpdate& update) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = absl::ToUnixSeconds(clock_());
  Entity e;
  std::vector<storage::BatchOp> ops;
  if (id.empty()) {
    e.id = NewUuid();
    e.name = absl::StrCat("entity_", RandomHex(4));
    e.creation_unix = now;
  } else {
    ASSIGN_OR_RETURN(auto existing, LoadLocked(id));
    if (!existing) return absl::NotFoundError("entity not found");
    e = *existing;
  }
  if (update.name && !update.name->empty() && *update.name != e.name) {
    const std::string key = kNamePrefix + absl::BytesToHexString(*update.name);
    ASSIGN_OR_RETURN(auto taken, storage_->Get(key));
    if (taken && *taken != e.id) {
      return absl::InvalidArgumentError(
          absl::StrCat("entity name \"", *update.name, "\" is already in use"));
    }
    if (!id.empty())
      ops.push_back(storage::BatchOp::Delete(kNamePrefix + absl::BytesToHexString(e.name)));
    e.name = *update.name;
  }
  if (update.metadata) e.metadata = *update.metadata;
  if (update.policies) {
    std::set<std::string> uniq(update.policies->begin(), update.policies->end());
    uniq.erase("");
    e.policies.assign(uniq.begin(), uniq.end());
  }
  if (update.disabled) e.disabled = *update.disabled;
  e.update_unix = now;
  ops.push_back(storage::BatchOp::Put(kNamePrefix + absl::BytesToHexString(e.name), e.id));
  RETURN_IF_ERROR(StoreLocked(e, std::move(ops)));
  return e;
}

absl::Status IdentityStore::Delete(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(auto e, LoadLocked(id));
  if (!e) return absl::OkStatus();
  std::vector<storage::BatchOp> ops;
  for (const auto& a : e->aliases) {
    ops.push_back(storage::BatchOp::Delete(kAliasPrefix + a.id));
    ops.push_back(storage::BatchOp::Delete(AliasKey(a.mount_accessor, a.name)));
  }
  ops.push_back(storage::BatchOp::Delete(kNamePrefix + absl::BytesToHexString(e->name)));
  ops.push_back(storage::BatchOp::Delete(kEntityPrefix + e->id));
  RETURN_IF_ERROR(storage_->Apply(ops));
  cache_.erase(id);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::shared_ptr<const Entity>>> IdentityStore::List() {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(auto ids, storage_->List(kEntityPrefix));
  std::vector<std::shared_ptr<const Entity>> out;
  for (const auto& id : ids) {
    ASSIGN_OR_RETURN(auto e, LoadLocked(id));
    if (e) out.push_back(std::move(e));
  }
  return out;
}

absl::StatusOr<EntityAlias> IdentityStore::WriteAlias(const std::string& alias_id,
                                                      const AliasUpdate& update) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = absl::ToUnixSeconds(clock_());
  EntityAlias a;
  std::shared_ptr<const Entity> from;  // the entity holding the alias now
  if (!alias_id.empty()) {
    ASSIGN_OR_RETURN(auto eid, storage_->Get(kAliasPrefix + alias_id));
    if (!eid) return absl::NotFoundError("entity alias not found");
    ASSIGN_OR_RETURN(from, LoadLocked(*eid));
    if (!from) return absl::DataLossError("entity alias points to a missing entity");
    auto it = std::find_if(from->aliases.begin(), from->aliases.end(),
                           [&](const EntityAlias& x) { return x.id == alias_id; });
    if (it == from->aliases.end()) return absl::DataLossError("entity alias index corrupt");
    a = *it;
  } else {
    a.id = NewUuid();
    a.creation_unix = now;
  }
  const std::string old_key = a.mount_accessor.empty() ? "" : AliasKey(a.mount_accessor, a.name);
  if (update.name) a.name = *update.name;
  if (update.mount) {
    a.mount_accessor = update.mount->mount_accessor;
    a.mount_path = update.mount->mount_path;
    a.mount_type = update.mount->mount_type;
  }
  if (update.custom_metadata) a.custom_metadata = *update.custom_metadata;
  if (update.canonical_id) a.canonical_id = *update.canonical_id;
  if (a.name.empty()) return absl::InvalidArgumentError("missing alias name");
  if (a.mount_accessor.empty()) return absl::InvalidArgumentError("missing mount_accessor");
  if (a.canonical_id.empty()) return absl::InvalidArgumentError("missing canonical_id");
  a.update_unix = now;

  const std::string new_key = AliasKey(a.mount_accessor, a.name);
  ASSIGN_OR_RETURN(auto taken, storage_->Get(new_key));
  if (taken && *taken != a.id) {
    return absl::InvalidArgumentError(
        "alias with combination of mount accessor and name already exists");
  }
  ASSIGN_OR_RETURN(auto to, LoadLocked(a.canonical_id));
  if (!to) return absl::InvalidArgumentError("invalid canonical ID");
  Entity target = *to;
  for (const auto& other : target.aliases) {
    if (other.id != a.id && other.mount_accessor == a.mount_accessor) {
      return absl::InvalidArgumentError(
          "entity already has an alias for this mount accessor; one alias per mount is allowed");
    }
  }
  std::vector<storage::BatchOp> ops;
  if (!old_key.empty() && old_key != new_key) ops.push_back(storage::BatchOp::Delete(old_key));
  ops.push_back(storage::BatchOp::Put(new_key, a.id));
  ops.push_back(storage::BatchOp::Put(kAliasPrefix + a.id, a.canonical_id));
  if (from && from->id != target.id) {  // moved to another entity
    Entity source = *from;
    std::erase_if(source.aliases, [&](const EntityAlias& x) { return x.id == a.id; });
    source.update_unix = now;
    ops.push_back(
        storage::BatchOp::Put(kEntityPrefix + source.id, Serialize(EntityRecord(source))));
    cache_[source.id] = std::make_shared<const Entity>(std::move(source));
  }
  auto it = std::find_if(target.aliases.begin(), target.aliases.end(),
                         [&](const EntityAlias& x) { return x.id == a.id; });
  if (it != target.aliases.end()) {
    *it = a;
  } else {
    target.aliases.push_back(a);
  }
  target.update_unix = now;
  RETURN_IF_ERROR(StoreLocked(target, std::move(ops)));
  return a;
}

absl::Status IdentityStore::DeleteAlias(const std::string& alias_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (alias_id.empty() || alias_id.find('/') != std::string::npos) return absl::OkStatus();
  ASSIGN_OR_RETURN(auto eid, storage_->Get(kAliasPrefix + alias_id));
  if (!eid) return absl::OkStatus();
  ASSIGN_OR_RETURN(auto from, LoadLocked(*eid));
  std::vector<storage::BatchOp> ops{storage::BatchOp::Delete(kAliasPrefix + alias_id)};
  if (!from) return storage_->Apply(ops);
  Entity e = *from;
  for (const auto& a : e.aliases) {
    if (a.id == alias_id)
      ops.push_back(storage::BatchOp::Delete(AliasKey(a.mount_accessor, a.name)));
  }
  std::erase_if(e.aliases, [&](const EntityAlias& x) { return x.id == alias_id; });
  e.update_unix = absl::ToUnixSeconds(clock_());
  return StoreLocked(e, std::move(ops));
}

absl::StatusOr<std::shared_ptr<const Entity>> IdentityStore::Login(const LoginAlias& alias,
                                                                   bool* created) {
  *created = false;
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = absl::ToUnixSeconds(clock_());
  ASSIGN_OR_RETURN(auto alias_id, AliasIdLocked(alias.mount_accessor, alias.name));
  if (alias_id) {
    ASSIGN_OR_RETURN(auto eid, storage_->Get(kAliasPrefix + *alias_id));
    if (!eid) return absl::DataLossError("entity alias index corrupt");
    ASSIGN_OR_RETURN(auto existing, LoadLocked(*eid));
    if (!existing) return absl::DataLossError("entity alias points to a missing entity");
    auto it = std::find_if(existing->aliases.begin(), existing->aliases.end(),
                           [&](const EntityAlias& x) { return x.id == *alias_id; });
    if (it == existing->aliases.end()) return absl::DataLossError("entity alias index corrupt");
    if (it->metadata == alias.metadata) return existing;
    Entity e = *existing;  // the auth method's view of the alias changed: refresh it
    for (auto& a : e.aliases) {
      if (a.id == *alias_id) {
        a.metadata = alias.metadata;
        a.update_unix = now;
      }
    }
    RETURN_IF_ERROR(StoreLocked(e));
    return cache_[e.id];
  }
  Entity e;
  e.id = NewUuid();
  e.name = absl::StrCat("entity_", RandomHex(4));
  e.creation_unix = e.update_unix = now;
  EntityAlias a;
  a.id = NewUuid();
  a.canonical_id = e.id;
  a.mount_accessor = alias.mount_accessor;
  a.mount_path = alias.mount_path;
  a.mount_type = alias.mount_type;
  a.name = alias.name;
  a.metadata = alias.metadata;
  a.creation_unix = a.update_unix = now;
  e.aliases.push_back(a);
  RETURN_IF_ERROR(
      StoreLocked(e, {storage::BatchOp::Put(AliasKey(a.mount_accessor, a.name), a.id),
                      storage::BatchOp::Put(kAliasPrefix + a.id, e.id),
                      storage::BatchOp::Put(kNamePrefix + absl::BytesToHexString(e.name), e.id)}));
  *created = true;
  LogInfo("identity: created entity %s for a login through %s", e.id, alias.mount_path);
  return cache_[e.id];
}

}  // namespace strongroom::core
