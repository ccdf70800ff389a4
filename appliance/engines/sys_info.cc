#include "appliance/engines/sys_info.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "appliance/core/core.h"
#include "appliance/core/version_history.h"
#include "appliance/engines/host_info.h"
#include "appliance/engines/openapi.h"
#include "base/log.h"
#include "base/status_macros.h"

namespace strongroom::engines {
namespace {

using core::Operation;
using core::Request;
using core::Response;
using core::json::array;
using core::json::object;

constexpr char kInvalidToken[] = "2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n";

absl::StatusOr<Response> HostInfo(core::Core* core) {
  std::vector<std::string> warnings;
  object data = CollectHostInfo(HostInfoSources{}, core->Now(), &warnings);
  Response r = Response::Data(std::move(data));
  r.warnings = std::move(warnings);
  return r;
}

object Counter(const char* name, size_t total) {
  object count;
  count["total"] = static_cast<int64_t>(total);
  object counters;
  counters[name] = std::move(count);
  object d;
  d["counters"] = std::move(counters);
  return d;
}

// An optional RFC 3339 time field (Vault's TypeTime also takes Unix seconds).
absl::StatusOr<std::optional<absl::Time>> TimeField(const object& data, const char* name) {
  const auto* v = data.if_contains(name);
  if (v == nullptr || v->is_null()) return std::optional<absl::Time>();
  if (v->is_int64()) return std::optional<absl::Time>(absl::FromUnixSeconds(v->as_int64()));
  if (!v->is_string()) return core::Bad(absl::StrCat("invalid ", name));
  const std::string s(v->as_string());
  if (s.empty()) return std::optional<absl::Time>();
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, s, &t, &err)) {
    int64_t secs = 0;
    if (!absl::SimpleAtoi(s, &secs)) {
      return core::Bad(absl::StrCat("error parsing ", name, ": ", s, " is not an RFC 3339 time"));
    }
    t = absl::FromUnixSeconds(secs);
  }
  return std::optional<absl::Time>(t);
}

// sys/internal/counters/activity{,/monthly} and counters/config. strongroom keeps no activity log
// (no per-client usage records): it answers as Vault does with client counting disabled and no
// data for the period, 204 No Content, after checking the query as Vault checks it.
absl::StatusOr<Response> Activity(core::Core* core, const Request& req) {
  const std::string& p = req.rel_path;
  if (p == "internal/counters/config") {
    if (req.operation == Operation::kRead) {
      object d;
      d["default_report_months"] = 12;
      d["retention_months"] = 48;
      d["enabled"] = "disable";
      d["queries_available"] = false;
      d["reporting_enabled"] = false;
      d["billing_start_timestamp"] = core::FormatRfc3339Nano(absl::UnixEpoch());
      d["minimum_retention_months"] = 48;
      return Response::Data(std::move(d));
    }
    ASSIGN_OR_RETURN(auto enabled, core::GetString(req.data, "enabled"));
    if (enabled && *enabled != "default" && *enabled != "enable" && *enabled != "disable") {
      return core::Bad("enabled must be one of \"default\", \"enable\", \"disable\"");
    }
    if (enabled && *enabled == "enable") {
      return core::Bad(
          "client counting cannot be enabled: strongroom keeps no activity log (the audit log "
          "records every request)");
    }
    return Response::Empty();
  }
  if (p == "internal/counters/activity") {
    ASSIGN_OR_RETURN(auto start, TimeField(req.data, "start_time"));
    ASSIGN_OR_RETURN(auto end, TimeField(req.data, "end_time"));
    ASSIGN_OR_RETURN(auto current, core::GetBool(req.data, "current_billing_period"));
    (void)current;
    const absl::Time end_time = end.value_or(core->Now());
    if (start && *start > end_time) return core::Bad("start_time is later than end_time");
  }
  return Response::Empty();  // no activity recorded for the period
}

// The mounts the caller may see (Vault limits the document to what sys/internal/ui/mounts would
// list): with a token, every mount under which its ACL grants something; without one, the mounts
// tuned listing_visibility="unauth". A limited-use token spends a use, as on any other path.
absl::StatusOr<std::vector<core::Core::MountBackend>> VisibleMounts(core::Core* core,
                                                                    const Request& req) {
  std::optional<policy::Acl> acl;
  if (!req.client_token.empty()) {
    ASSIGN_OR_RETURN(auto token, core->tokens().Lookup(req.client_token));
    if (!token) return absl::PermissionDeniedError(kInvalidToken);
    bool revoke_after = false;
    ASSIGN_OR_RETURN(bool usable, core->tokens().Use(*token, &revoke_after));
    if (!usable) return absl::PermissionDeniedError(kInvalidToken);
    auto built = core->AclFor(*token);
    if (revoke_after) RETURN_IF_ERROR(core->tokens().RevokeTree(*token));
    if (!built.ok()) return built.status();
    acl.emplace(std::move(*built));
  }
  std::vector<core::Core::MountBackend> out;
  for (auto& m : core->MountBackends()) {
    const bool visible =
        m.entry.config.listing_visibility == "unauth" || (acl && acl->AnyGrantUnder(m.entry.path));
    if (visible) out.push_back(std::move(m));
  }
  return out;
}

absl::StatusOr<Response> OpenApi(core::Core* core, const Request& req) {
  ASSIGN_OR_RETURN(auto generic, core::GetBool(req.data, "generic_mount_paths"));
  ASSIGN_OR_RETURN(auto mounts, VisibleMounts(core, req));
  OpenApiOptions options;
  options.version = core->options().version;
  options.generic_mount_paths = generic.value_or(false);
  return Response::Raw(OpenApiDocument(mounts, options));
}

absl::StatusOr<Response> ConfigState(core::Core* core) {
  const auto& o = core->options();
  if (o.sanitized_config) return Response::Data(o.sanitized_config());
  object d;
  d["api_addr"] = o.api_addr;
  d["cluster_addr"] = o.cluster_addr;
  d["default_lease_ttl"] = o.default_lease_ttl;
  d["max_lease_ttl"] = o.max_lease_ttl;
  d["storage"] = object{{"type", o.storage_type}};
  return Response::Data(std::move(d));
}

absl::StatusOr<Response> VersionHistory(core::Core* core) {
  ASSIGN_OR_RETURN(auto versions, core::InstalledVersions(*core->barrier()));
  array keys;
  object info;
  std::optional<std::string> previous;
  for (const auto& v : versions) {
    keys.emplace_back(v.version);
    object e;
    e["build_date"] =
        v.build_date.empty() ? core::json::value(nullptr) : core::json::value(v.build_date);
    e["previous_version"] = previous ? core::json::value(*previous) : core::json::value(nullptr);
    e["timestamp_installed"] = core::FormatRfc3339Nano(v.installed);
    info[v.version] = std::move(e);
    previous = v.version;
  }
  object d;
  d["keys"] = std::move(keys);
  d["key_info"] = std::move(info);
  return Response::Data(std::move(d));
}

}  // namespace

bool IsInfoPath(std::string_view p) {
  return p == "host-info" || p.starts_with("internal/counters/") || p == "internal/specs/openapi" ||
         p == "config/state/sanitized" || p == "version-history" || p == "version-history/";
}

absl::StatusOr<Response> HandleInfo(core::Core* core, Request& req) {
  const std::string& p = req.rel_path;
  // The route table (sys_routes.cc) has let through only the operations each path takes.
  if (p == "host-info") return HostInfo(core);
  if (p == "internal/counters/tokens") {
    ASSIGN_OR_RETURN(auto accessors, core->ListTokenAccessors());
    return Response::Data(Counter("service_tokens", accessors.size()));
  }
  if (p == "internal/counters/entities") {
    ASSIGN_OR_RETURN(auto entities, core->identity().List());
    return Response::Data(Counter("entities", entities.size()));
  }
  if (absl::StartsWith(p, "internal/counters/")) return Activity(core, req);
  if (p == "internal/specs/openapi") return OpenApi(core, req);
  if (p == "config/state/sanitized") return ConfigState(core);
  return VersionHistory(core);
}

}  // namespace strongroom::engines
