#include "appliance/engines/identity_backend.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "appliance/core/core.h"
#include "appliance/core/identity_store.h"
#include "appliance/engines/routes.h"
#include "base/status_macros.h"
#include "policy/builtin_policies.h"

namespace strongroom::engines {
namespace {

using core::Entity;
using core::IsWrite;
using core::Operation;
using core::Request;
using core::Response;
using core::json::array;
using core::json::object;
using core::json::value;

// A string map given as an object or as ["key=value", ...] (Vault's CLI form).
absl::StatusOr<std::optional<policy::StringMap>> GetStringMap(const object& o,
                                                              std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return std::optional<policy::StringMap>();
  policy::StringMap out;
  const value& v = it->value();
  const std::string name(key);
  if (v.is_object()) {
    for (const auto& [k, val] : v.as_object()) {
      if (!val.is_string()) {
        return absl::InvalidArgumentError(absl::StrCat(name, " values must be strings"));
      }
      out[std::string(k)] = std::string(val.as_string());
    }
  } else if (v.is_array()) {
    for (const auto& item : v.as_array()) {
      if (!item.is_string()) {
        return absl::InvalidArgumentError(absl::StrCat(name, " must be a map of strings"));
      }
      const std::string_view s(item.as_string().data(), item.as_string().size());
      const size_t eq = s.find('=');
      if (eq == std::string_view::npos || eq == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, " must be key=value pairs; got \"", std::string(s), "\""));
      }
      out[std::string(s.substr(0, eq))] = std::string(s.substr(eq + 1));
    }
  } else {
    return absl::InvalidArgumentError(absl::StrCat(name, " must be a map of strings"));
  }
  for (const auto& [k, val] : out) {
    if (k.empty() || k.size() > 128 || val.size() > 512) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": keys must be 1-128 bytes and values at most 512 bytes"));
    }
  }
  if (out.size() > 64) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": at most 64 pairs"));
  }
  return std::optional<policy::StringMap>(std::move(out));
}

class IdentityBackend final : public core::Backend {
 public:
  explicit IdentityBackend(core::Core* core) : core_(core) {}

  std::span<const core::Route> Routes() const override { return IdentityRoutes(); }

  absl::StatusOr<bool> Exists(const Request& req) override {
    const std::string& p = req.rel_path;
    if (p == "entity" || p == "entity-alias") {
      ASSIGN_OR_RETURN(auto id, core::GetString(req.data, "id"));
      return id.has_value() && !id->empty();
    }
    if (absl::StartsWith(p, "entity/name/")) {
      ASSIGN_OR_RETURN(auto e, Store().GetByName(p.substr(12)));
      return e != nullptr;
    }
    return true;
  }

  absl::StatusOr<Response> Handle(Request& req) override {
    const std::string& p = req.rel_path;
    if (p == "entity") {
      if (!IsWrite(req)) return core::UnsupportedOperation();
      ASSIGN_OR_RETURN(auto id, core::GetString(req.data, "id"));
      return WriteEntity(req, id.value_or(""), std::nullopt);
    }
    if (p == "entity/id" || p == "entity/id/" || p == "entity/name" || p == "entity/name/") {
      if (req.operation != Operation::kList) return core::UnsupportedOperation();
      return ListEntities(absl::StartsWith(p, "entity/name"));
    }
    if (absl::StartsWith(p, "entity/id/")) return OneEntity(req, p.substr(10), /*by_name=*/false);
    if (absl::StartsWith(p, "entity/name/")) return OneEntity(req, p.substr(12), true);
    if (p == "entity/batch-delete") {
      if (!IsWrite(req)) return core::UnsupportedOperation();
      ASSIGN_OR_RETURN(auto ids, core::GetStringList(req.data, "entity_ids"));
      if (!ids) return absl::InvalidArgumentError("missing entity_ids");
      for (const auto& id : *ids) RETURN_IF_ERROR(Store().Delete(id));
      return Response::Empty();
    }
    if (p == "entity-alias") {
      if (!IsWrite(req)) return core::UnsupportedOperation();
      ASSIGN_OR_RETURN(auto id, core::GetString(req.data, "id"));
      return WriteAlias(req, id.value_or(""));
    }
    if (p == "entity-alias/id" || p == "entity-alias/id/") {
      if (req.operation != Operation::kList) return core::UnsupportedOperation();
      return ListAliases();
    }
    if (absl::StartsWith(p, "entity-alias/id/")) return OneAlias(req, p.substr(16));
    if (p == "lookup/entity") {
      if (!IsWrite(req)) return core::UnsupportedOperation();
      return LookupEntity(req);
    }
    return absl::NotFoundError("");
  }

 private:
  core::IdentityStore& Store() { return core_->identity(); }

  absl::StatusOr<Response> WriteEntity(const Request& req, const std::string& id,
                                       std::optional<std::string> path_name) {
    core::EntityUpdate u;
    ASSIGN_OR_RETURN(u.name, core::GetString(req.data, "name"));
    if (path_name) u.name = path_name;
    ASSIGN_OR_RETURN(u.metadata, GetStringMap(req.data, "metadata"));
    ASSIGN_OR_RETURN(u.policies, core::GetStringList(req.data, "policies"));
    ASSIGN_OR_RETURN(u.disabled, core::GetBool(req.data, "disabled"));
    if (u.name && u.name->find('/') != std::string::npos) {
      return absl::InvalidArgumentError("entity names cannot contain '/'");
    }
    if (u.policies) {
      for (auto& pol : *u.policies) {
        ASSIGN_OR_RETURN(pol, core::PolicyStore::NormalizeName(pol));
        if (pol == policy::kRootPolicyName) {
          return absl::InvalidArgumentError("the root policy cannot be assigned to an entity");
        }
      }
    }
    ASSIGN_OR_RETURN(Entity e, Store().Write(id, u));
    if (!id.empty()) return Response::Empty();
    object d;
    d["id"] = e.id;
    d["name"] = e.name;
    d["aliases"] = nullptr;
    return Response::Data(std::move(d));
  }

  absl::StatusOr<Response> OneEntity(const Request& req, const std::string& key, bool by_name) {
    ASSIGN_OR_RETURN(auto e, by_name ? Store().GetByName(key) : Store().Get(key));
    switch (req.operation) {
      case Operation::kRead:
        if (!e) return absl::NotFoundError("");
        return Response::Data(e->ToJson());
      case Operation::kCreate:
      case Operation::kUpdate:
        if (by_name) {  // create-or-update by name
          return WriteEntity(req, e ? e->id : "", key);
        }
        if (!e) return absl::NotFoundError("entity not found");
        return WriteEntity(req, e->id, std::nullopt);
      case Operation::kDelete:
        if (e) RETURN_IF_ERROR(Store().Delete(e->id));
        return Response::Empty();
      default:
        return core::UnsupportedOperation();
    }
  }

  absl::StatusOr<Response> ListEntities(bool by_name) {
    ASSIGN_OR_RETURN(auto all, Store().List());
    if (all.empty()) return absl::NotFoundError("");
    array keys;
    object info;
    for (const auto& e : all) {
      object i;
      i["name"] = e->name;
      i["id"] = e->id;
      array aliases;
      for (const auto& a : e->aliases) {
        object ao;
        ao["id"] = a.id;
        ao["mount_accessor"] = a.mount_accessor;
        ao["mount_path"] = a.mount_path;
        ao["mount_type"] = a.mount_type;
        ao["name"] = a.name;
        aliases.push_back(std::move(ao));
      }
      i["aliases"] = std::move(aliases);
      const std::string key = by_name ? e->name : e->id;
      keys.emplace_back(key);
      info[key] = std::move(i);
    }
    object d;
    d["keys"] = std::move(keys);
    if (!by_name) d["key_info"] = std::move(info);
    return Response::Data(std::move(d));
  }

  // The auth mount an alias belongs to.
  absl::StatusOr<core::LoginAlias> MountOf(const std::string& accessor) {
    for (const auto& m : core_->Mounts()) {
      if (m.accessor == accessor && absl::StartsWith(m.path, "auth/")) {
        core::LoginAlias a;
        a.mount_accessor = m.accessor;
        a.mount_path = m.path;
        a.mount_type = m.type;
        return a;
      }
    }
    return absl::InvalidArgumentError(absl::StrCat("invalid mount accessor \"", accessor, "\""));
  }

  absl::StatusOr<Response> WriteAlias(const Request& req, const std::string& id) {
    core::AliasUpdate u;
    ASSIGN_OR_RETURN(u.name, core::GetString(req.data, "name"));
    ASSIGN_OR_RETURN(u.canonical_id, core::GetString(req.data, "canonical_id"));
    ASSIGN_OR_RETURN(u.custom_metadata, GetStringMap(req.data, "custom_metadata"));
    ASSIGN_OR_RETURN(auto accessor, core::GetString(req.data, "mount_accessor"));
    if (accessor) {
      ASSIGN_OR_RETURN(u.mount, MountOf(*accessor));
    }
    if (id.empty()) {
      if (!u.name || u.name->empty()) return absl::InvalidArgumentError("missing alias name");
      if (!u.mount) return absl::InvalidArgumentError("missing mount_accessor");
      if (!u.canonical_id || u.canonical_id->empty()) {
        return absl::InvalidArgumentError("missing canonical_id");
      }
    }
    ASSIGN_OR_RETURN(core::EntityAlias a, Store().WriteAlias(id, u));
    object d;
    d["id"] = a.id;
    d["canonical_id"] = a.canonical_id;
    return Response::Data(std::move(d));
  }

  absl::StatusOr<Response> OneAlias(const Request& req, const std::string& id) {
    switch (req.operation) {
      case Operation::kRead: {
        ASSIGN_OR_RETURN(auto e, Store().GetByAliasId(id));
        if (!e) return absl::NotFoundError("");
        for (const auto& a : e->aliases) {
          if (a.id == id) return Response::Data(a.ToJson());
        }
        return absl::NotFoundError("");
      }
      case Operation::kCreate:
      case Operation::kUpdate:
        return WriteAlias(req, id);
      case Operation::kDelete:
        RETURN_IF_ERROR(Store().DeleteAlias(id));
        return Response::Empty();
      default:
        return core::UnsupportedOperation();
    }
  }

  absl::StatusOr<Response> ListAliases() {
    ASSIGN_OR_RETURN(auto all, Store().List());
    array keys;
    object info;
    for (const auto& e : all) {
      for (const auto& a : e->aliases) {
        object i = a.ToJson();
        i.erase("id");
        keys.emplace_back(a.id);
        info[a.id] = std::move(i);
      }
    }
    if (keys.empty()) return absl::NotFoundError("");
    object d;
    d["keys"] = std::move(keys);
    d["key_info"] = std::move(info);
    return Response::Data(std::move(d));
  }

  // identity/lookup/entity: exactly one criterion; 204 when nothing matches (as Vault).
  absl::StatusOr<Response> LookupEntity(const Request& req) {
    ASSIGN_OR_RETURN(auto name, core::GetString(req.data, "name"));
    ASSIGN_OR_RETURN(auto id, core::GetString(req.data, "id"));
    ASSIGN_OR_RETURN(auto alias_id, core::GetString(req.data, "alias_id"));
    ASSIGN_OR_RETURN(auto alias_name, core::GetString(req.data, "alias_name"));
    ASSIGN_OR_RETURN(auto alias_accessor, core::GetString(req.data, "alias_mount_accessor"));
    const int given = (name ? 1 : 0) + (id ? 1 : 0) + (alias_id ? 1 : 0) + (alias_name ? 1 : 0);
    if (given == 0) return absl::InvalidArgumentError("missing request parameters");
    if (given > 1) return absl::InvalidArgumentError("query parameters are mutually exclusive");
    std::shared_ptr<const Entity> e;
    if (name) {
      ASSIGN_OR_RETURN(e, Store().GetByName(*name));
    } else if (id) {
      ASSIGN_OR_RETURN(e, Store().Get(*id));
    } else if (alias_id) {
      ASSIGN_OR_RETURN(e, Store().GetByAliasId(*alias_id));
    } else {
      if (!alias_accessor || alias_accessor->empty()) {
        return absl::InvalidArgumentError("missing 'alias_mount_accessor' query parameter");
      }
      ASSIGN_OR_RETURN(e, Store().GetByAlias(*alias_accessor, *alias_name));
    }
    if (!e) return Response::Empty();
    return Response::Data(e->ToJson());
  }

  core::Core* core_;
};

}  // namespace

std::unique_ptr<core::Backend> MakeIdentityBackend(core::Core* core) {
  return std::make_unique<IdentityBackend>(core);
}

}  // namespace strongroom::engines
