#include "appliance/core/mount_entry.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace strongroom::core {

json::object MountConfigToJson(const MountConfig& c) {
  json::object o;
  o["default_lease_ttl"] = c.default_lease_ttl;
  o["max_lease_ttl"] = c.max_lease_ttl;
  o["force_no_cache"] = c.force_no_cache;
  if (!c.audit_non_hmac_request_keys.empty()) {
    o["audit_non_hmac_request_keys"] = ToArray(c.audit_non_hmac_request_keys);
  }
  if (!c.audit_non_hmac_response_keys.empty()) {
    o["audit_non_hmac_response_keys"] = ToArray(c.audit_non_hmac_response_keys);
  }
  if (!c.listing_visibility.empty()) o["listing_visibility"] = c.listing_visibility;
  if (!c.passthrough_request_headers.empty()) {
    o["passthrough_request_headers"] = ToArray(c.passthrough_request_headers);
  }
  if (!c.allowed_response_headers.empty()) {
    o["allowed_response_headers"] = ToArray(c.allowed_response_headers);
  }
  return o;
}

absl::StatusOr<MountConfig> MountConfigFromJson(const json::object& o, MountConfig base) {
  ASSIGN_OR_RETURN(auto dl, GetDurationSeconds(o, "default_lease_ttl"));
  if (dl) base.default_lease_ttl = *dl;
  ASSIGN_OR_RETURN(auto ml, GetDurationSeconds(o, "max_lease_ttl"));
  if (ml) base.max_lease_ttl = *ml;
  ASSIGN_OR_RETURN(auto fnc, GetBool(o, "force_no_cache"));
  if (fnc) base.force_no_cache = *fnc;
  ASSIGN_OR_RETURN(auto rq, GetStringList(o, "audit_non_hmac_request_keys"));
  if (rq) base.audit_non_hmac_request_keys = *rq;
  ASSIGN_OR_RETURN(auto rs, GetStringList(o, "audit_non_hmac_response_keys"));
  if (rs) base.audit_non_hmac_response_keys = *rs;
  ASSIGN_OR_RETURN(auto lv, GetString(o, "listing_visibility"));
  if (lv) {
    if (!lv->empty() && *lv != "unauth" && *lv != "hidden") {
      return absl::InvalidArgumentError("listing_visibility must be \"unauth\" or \"hidden\"");
    }
    base.listing_visibility = *lv;
  }
  ASSIGN_OR_RETURN(auto ph, GetStringList(o, "passthrough_request_headers"));
  if (ph) base.passthrough_request_headers = *ph;
  ASSIGN_OR_RETURN(auto ah, GetStringList(o, "allowed_response_headers"));
  if (ah) base.allowed_response_headers = *ah;
  return base;
}

json::value MountOptionsToJson(const std::map<std::string, std::string>& options) {
  if (options.empty()) return nullptr;
  json::object opts;
  for (const auto& [k, v] : options) opts[k] = v;
  return opts;
}

json::object MountEntryToJson(const MountEntry& e) {
  json::object o;
  o["path"] = e.path;
  o["type"] = e.type;
  o["description"] = e.description;
  o["uuid"] = e.uuid;
  o["accessor"] = e.accessor;
  o["local"] = e.local;
  o["seal_wrap"] = e.seal_wrap;
  o["external_entropy_access"] = e.external_entropy_access;
  o["options"] = MountOptionsToJson(e.options);
  o["config"] = MountConfigToJson(e.config);
  o["created_unix"] = e.created_unix;
  return o;
}

absl::StatusOr<MountEntry> MountEntryFromJson(const json::object& o) {
  MountEntry e;
  ASSIGN_OR_RETURN(auto path, GetString(o, "path"));
  ASSIGN_OR_RETURN(auto type, GetString(o, "type"));
  if (!path || !type) return absl::DataLossError("mount entry without path or type");
  e.path = *path;
  e.type = *type;
  ASSIGN_OR_RETURN(auto desc, GetString(o, "description"));
  e.description = desc.value_or("");
  ASSIGN_OR_RETURN(auto uuid, GetString(o, "uuid"));
  e.uuid = uuid.value_or("");
  ASSIGN_OR_RETURN(auto acc, GetString(o, "accessor"));
  e.accessor = acc.value_or("");
  ASSIGN_OR_RETURN(auto local, GetBool(o, "local"));
  e.local = local.value_or(false);
  ASSIGN_OR_RETURN(auto sw, GetBool(o, "seal_wrap"));
  e.seal_wrap = sw.value_or(false);
  ASSIGN_OR_RETURN(auto eea, GetBool(o, "external_entropy_access"));
  e.external_entropy_access = eea.value_or(false);
  if (auto it = o.find("options"); it != o.end() && it->value().is_object()) {
    for (const auto& [k, v] : it->value().as_object()) {
      if (!v.is_string()) return absl::InvalidArgumentError("options values must be strings");
      e.options[std::string(k)] = std::string(v.as_string());
    }
  }
  if (auto it = o.find("config"); it != o.end() && it->value().is_object()) {
    ASSIGN_OR_RETURN(e.config, MountConfigFromJson(it->value().as_object(), {}));
  }
  ASSIGN_OR_RETURN(auto created, GetInt(o, "created_unix"));
  e.created_unix = created.value_or(0);
  return e;
}

}  // namespace strongroom::core
