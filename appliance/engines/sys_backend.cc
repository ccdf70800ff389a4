#include "appliance/engines/sys_backend.h"

#include <unistd.h>

#include <deque>
#include <mutex>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "appliance/core/core.h"
#include "appliance/core/mount_entry.h"
#include "appliance/core/token_store.h"
#include "appliance/engines/raft_snapshot.h"
#include "appliance/engines/sys_info.h"
#include "appliance/engines/sys_metrics.h"
#include "base/log.h"
#include "base/status_macros.h"

namespace strongroom::engines {
namespace {

using core::IsWrite;
using core::Operation;
using core::Request;
using core::Response;
using core::json::array;
using core::json::object;

// "secret", "/secret/", "secret/" -> "secret/"
absl::StatusOr<std::string> NormalizeMountPath(absl::string_view p) {
  p = absl::StripPrefix(p, "/");
  while (absl::ConsumeSuffix(&p, "/")) {
  }
  if (p.empty()) return absl::InvalidArgumentError("missing mount path");
  if (absl::StrContains(p, "//") || absl::StrContains(p, "..")) {
    return absl::InvalidArgumentError("invalid mount path");
  }
  return absl::StrCat(p, "/");
}

object MountInfo(const core::MountEntry& e) {
  object o;
  o["accessor"] = e.accessor;
  object cfg;
  cfg["default_lease_ttl"] = e.config.default_lease_ttl;
  cfg["max_lease_ttl"] = e.config.max_lease_ttl;
  cfg["force_no_cache"] = e.config.force_no_cache;
  if (!e.config.listing_visibility.empty()) cfg["listing_visibility"] = e.config.listing_visibility;
  o["config"] = std::move(cfg);
  o["description"] = e.description;
  o["external_entropy_access"] = e.external_entropy_access;
  o["local"] = e.local;
  o["options"] = core::MountOptionsToJson(e.options);
  o["plugin_version"] = "";
  o["running_plugin_version"] = "v0.1.0+builtin.strongroom";
  o["running_sha256"] = "";
  o["seal_wrap"] = e.seal_wrap;
  o["type"] = e.type;
  o["uuid"] = e.uuid;
  o["deprecation_status"] = "supported";
  return o;
}

Response Injected(object data) {
  Response r = Response::Data(std::move(data));
  r.inject_data = true;
  return r;
}

class SystemBackend final : public core::Backend {
 public:
  explicit SystemBackend(core::Core* core) : core_(core) {}

  // Policy names are case-insensitive (stored lower case, as in Vault), so the ACL must see the
  // name a policy write or delete really reaches.
  std::string NormalizePath(const std::string& p) const override {
    if (absl::StartsWith(p, "policy/")) return core::LowerSegmentAfter(p, "policy/");
    return core::LowerSegmentAfter(p, "policies/acl/");
  }

  std::span<const core::Route> Routes() const override { return SystemRoutes(); }

  // Reached without a token: the OpenAPI document (its content depends on the token, when one
  // is given) and sys/wrapping/lookup (Vault: it tells only a wrapping token's creation path,
  // time and TTL, to whoever holds it). The others are answered by the core before any routing
  // (core.cc); they are named here for the OpenAPI document's x-vault-unauthenticated.
  bool IsUnauthenticatedPath(const std::string& p) const override {
    static constexpr std::string_view kUnauthenticated[] = {"internal/specs/openapi",
                                                            "wrapping/lookup",
                                                            "init",
                                                            "seal-status",
                                                            "unseal",
                                                            "health",
                                                            "leader",
                                                            "storage/raft/join",
                                                            "internal/ui/mounts"};
    for (auto u : kUnauthenticated) {
      if (p == u) return true;
    }
    return absl::StartsWith(p, "internal/ui/mounts/");
  }

  // Vault's root-protected sys paths: sudo (or root) is required on top of the capability.
  bool IsRootPath(const std::string& p) const override {
    // Reading the audit public key or the latest checkpoint needs the capability, not sudo:
    // auditors get exactly these two.
    if (p == "audit/public-key" || absl::StartsWith(p, "audit/checkpoint/")) return false;
    static constexpr std::string_view kExact[] = {"host-info",
                                                  "seal",
                                                  "step-down",
                                                  "audit",
                                                  "remount",
                                                  "config/cors",
                                                  "storage/raft/configuration",
                                                  "storage/raft/autopilot/state",
                                                  "storage/raft/remove-peer",
                                                  "storage/raft/join-token",
                                                  "storage/raft/snapshot",
                                                  "storage/raft/snapshot-force"};
    static constexpr std::string_view kPrefix[] = {"auth/",
                                                   "audit/",
                                                   "raw",
                                                   "rotate",
                                                   "config/auditing/",
                                                   "plugins/catalog/",
                                                   "revoke-prefix/",
                                                   "revoke-force/",
                                                   "leases/revoke-prefix/",
                                                   "leases/revoke-force/",
                                                   "leases/lookup/"};
    for (auto e : kExact) {
      if (p == e) return true;
    }
    for (auto pre : kPrefix) {
      if (std::string_view(p).starts_with(pre)) return true;
    }
    return false;
  }

  absl::StatusOr<Response> Handle(Request& req) override {
    const std::string& p = req.rel_path;
    if (IsInfoPath(p)) return HandleInfo(core_, req);  // sys_info.cc
    if (p == "mounts" || p == "mounts/") return ListMounts(req);
    if (absl::StartsWith(p, "mounts/")) {
      absl::string_view rest = absl::string_view(p).substr(7);
      if (absl::ConsumeSuffix(&rest, "/tune")) return Tune(req, rest);
      return OneMount(req, rest);
    }
    if (absl::StartsWith(p, "wrapping/")) return core_->WrappingEndpoint(req, p.substr(9));
    if (p == "remount") return Remount(req);
    if (absl::StartsWith(p, "remount/status/")) return RemountStatus(req, p.substr(15));
    if (p == "metrics") {
      // With the listener's unauthenticated_metrics_access the core answers it before this
      // (no token); here it needs read on sys/metrics.
      if (req.operation != Operation::kRead) return core::UnsupportedOperation();
      return MetricsResponse(core_->options().telemetry, req.data);
    }
    if (p == "rotate" || p == "rotate/keyring") {
      if (!IsWrite(req)) return core::UnsupportedOperation();
      RETURN_IF_ERROR(core_->RotateKeyring());
      return Response::Empty();
    }
    if (p == "storage/raft/join-token") return MintJoinToken(req);
    if (IsSnapshotPath(p)) return HandleSnapshot(core_, req);
    if (p == "storage/raft/configuration" || p == "storage/raft/remove-peer") {
      core::Cluster* cluster = core_->cluster();
      if (cluster == nullptr) return core::Bad("raft storage is not in use on this node");
      if (p == "storage/raft/configuration") {
        if (req.operation != Operation::kRead) return core::UnsupportedOperation();
        ASSIGN_OR_RETURN(object config, cluster->Configuration());
        object o;
        o["config"] = std::move(config);
        return Response::Data(std::move(o));
      }
      if (!IsWrite(req)) return core::UnsupportedOperation();
      ASSIGN_OR_RETURN(auto id, core::GetString(req.data, "server_id"));
      if (!id || id->empty()) return core::Bad("no server id provided");
      RETURN_IF_ERROR(cluster->RemovePeer(*id));
      return Response::Empty();
    }
    if (p == "key-status" || p == "rotate/keyring/status") {
      if (req.operation != Operation::kRead) return core::UnsupportedOperation();
      ASSIGN_OR_RETURN(auto ks, core_->KeyStatus());
      object o;
      o["term"] = ks.term;
      o["install_time"] = core::FormatRfc3339Nano(absl::FromUnixNanos(ks.install_unix_ns));
      o["encryptions"] = ks.encryptions;
      return Injected(std::move(o));
    }
    if (p == "policy" || p == "policy/" || p == "policies/acl" || p == "policies/acl/") {
      return ListPolicies(req, p.starts_with("policy"));
    }
    if (absl::StartsWith(p, "policy/")) return OnePolicy(req, p.substr(7), /*legacy=*/true);
    if (absl::StartsWith(p, "policies/acl/")) return OnePolicy(req, p.substr(13), /*legacy=*/false);
    if (p == "auth" || p == "auth/") return ListAuth(req);
    if (absl::StartsWith(p, "auth/")) {
      absl::string_view rest = absl::string_view(p).substr(5);
      if (absl::ConsumeSuffix(&rest, "/tune")) return Tune(req, absl::StrCat("auth/", rest));
      return OneAuth(req, p.substr(5));
    }
    if (p == "capabilities" || p == "capabilities-self" || p == "capabilities-accessor") {
      return Capabilities(req, p);
    }
    if (p == "audit" || p == "audit/") return ListAudit(req);
    // Other operations on these two fall through to OneAudit, which refuses the reserved names.
    if (p == "audit/public-key" && req.operation == Operation::kRead) {
      ASSIGN_OR_RETURN(std::string pem, core_->audit().PublicKeyPem());
      object d;
      d["public_key"] = pem;
      d["algorithm"] = "ecdsa-p256";
      return Response::Data(std::move(d));
    }
    if (absl::StartsWith(p, "audit/checkpoint/") && req.operation == Operation::kRead) {
      ASSIGN_OR_RETURN(std::string note, core_->audit().Checkpoint(p.substr(17)));
      object d;
      d["checkpoint"] = note;
      return Response::Data(std::move(d));
    }
    if (absl::StartsWith(p, "audit/")) return OneAudit(req, p.substr(6));
    if (absl::StartsWith(p, "audit-hash/")) {
      if (!IsWrite(req)) return core::UnsupportedOperation();
      ASSIGN_OR_RETURN(auto input, core::GetString(req.data, "input"));
      if (!input || input->empty()) {
        return absl::InvalidArgumentError("the \"input\" parameter is empty");
      }
      ASSIGN_OR_RETURN(std::string hash, core_->audit().Hash(p.substr(11), *input));
      object d;
      d["hash"] = hash;
      return Injected(std::move(d));
    }
    if (p == "seal") {
      if (!IsWrite(req)) return core::UnsupportedOperation();
      RETURN_IF_ERROR(core_->SealByRequest());
      if (core::Cluster* cluster = core_->cluster(); cluster != nullptr) {
        // The keyring is wiped first (and the audit logs closed while this node can still
        // write their state); then the Raft leadership goes to a node that can serve, so the
        // standbys stop forwarding to a sealed one. Without a taker the node stays sealed and
        // the broker keeps trying (core.h, SealByRequest).
        if (absl::Status s = cluster->HandOverLeadership(); !s.ok()) {
          LogWarn("sys/seal: sealed, but the Raft leadership stays here for now: %s", s.message());
        }
      }
      return Response::Empty();
    }
    if (p == "step-down") {
      // Vault's sys/step-down: the active node gives up its role; the core asks the cluster for
      // it once the response is recorded (Core::Handle). A no-op without Raft (Vault: without
      // HA). Standbys forward it to the active node (broker/cluster.h).
      if (!IsWrite(req)) return core::UnsupportedOperation();
      return Response::Empty();
    }
    if (p == "storage/raft/autopilot/state" || p == "ha-status") return RaftOps(req);
    return absl::NotFoundError("unsupported path");
  }

 private:
  // sys/remount: Vault answers with a migration id and moves in the background; here the move is
  // one write of the mount table, done before the answer, and its outcome is kept (the last 64)
  // for sys/remount/status/<id>.
  absl::StatusOr<Response> Remount(Request& req) {
    if (!IsWrite(req)) return core::UnsupportedOperation();
    ASSIGN_OR_RETURN(auto from_raw, core::GetString(req.data, "from"));
    ASSIGN_OR_RETURN(auto to_raw, core::GetString(req.data, "to"));
    if (!from_raw || !to_raw || from_raw->empty() || to_raw->empty()) {
      return core::Bad("both 'from' and 'to' path must be specified as a string");
    }
    ASSIGN_OR_RETURN(std::string from, NormalizeMountPath(*from_raw));
    ASSIGN_OR_RETURN(std::string to, NormalizeMountPath(*to_raw));
    RETURN_IF_ERROR(core_->Remount(from, to));
    object info;
    info["source_mount"] = from;
    info["target_mount"] = to;
    info["status"] = "success";
    const std::string id = core::NewUuid();
    {
      std::lock_guard lock(migrations_mu_);
      migrations_.emplace_back(id, std::move(info));
      while (migrations_.size() > 64) migrations_.pop_front();
    }
    object d;
    d["migration_id"] = id;
    return Injected(std::move(d));  // sys/remount's data is also at the top level (Vault)
  }

  absl::StatusOr<Response> RemountStatus(Request& req, const std::string& id) {
    if (req.operation != Operation::kRead) return core::UnsupportedOperation();
    std::lock_guard lock(migrations_mu_);
    for (const auto& [known, info] : migrations_) {
      if (known != id) continue;
      object d;
      d["migration_id"] = id;
      d["migration_info"] = info;
      return Response::Data(std::move(d));
    }
    return core::Bad(absl::StrCat("no migration with ID \"", id, "\""));
  }

  // sys/storage/raft/autopilot/state (sudo) and sys/ha-status, in Vault's shapes
  // (broker/raft_ops.h). Without Raft: autopilot is refused as Vault refuses it without raft
  // storage; ha-status lists this node alone.
  absl::StatusOr<Response> RaftOps(const Request& req) {
    if (req.operation != Operation::kRead) return core::UnsupportedOperation();
    core::Cluster* cluster = core_->cluster();
    const std::string& version = core_->options().version;
    if (req.rel_path == "ha-status") {
      if (cluster != nullptr) {
        ASSIGN_OR_RETURN(object status, cluster->HaStatus(version));
        return Injected(std::move(status));
      }
      object self;
      self["active_node"] = true;
      self["api_address"] = core_->options().api_addr;
      self["clock_skew_ms"] = 0;
      self["cluster_address"] = core_->options().cluster_addr;
      self["echo_duration_ms"] = 0;
      char host[256] = {};
      if (gethostname(host, sizeof host - 1) != 0) host[0] = 0;
      self["hostname"] = std::string(host);
      self["last_echo"] = nullptr;
      self["replication_primary_canary_age_ms"] = 0;
      self["version"] = version;
      array nodes;
      nodes.emplace_back(std::move(self));
      object status;
      status["nodes"] = std::move(nodes);
      return Injected(std::move(status));
    }
    if (cluster == nullptr) return core::Bad("raft storage is not in use");
    ASSIGN_OR_RETURN(object state, cluster->AutopilotState(version));
    return Response::Data(std::move(state));
  }

  absl::StatusOr<Response> ListMounts(const Request& req) {
    if (req.operation != Operation::kRead) return core::UnsupportedOperation();
    object data;
    for (const auto& m : core_->Mounts()) {
      if (!absl::StartsWith(m.path, "auth/"))
        data[m.path] = MountInfo(m);  // auth methods: sys/auth
    }
    return Injected(std::move(data));
  }

  // sys/auth: the auth method table (keys without the "auth/" prefix, as Vault lists them).
  absl::StatusOr<Response> ListAuth(const Request& req) {
    if (req.operation != Operation::kRead) return core::UnsupportedOperation();
    object data;
    for (const auto& m : core_->Mounts()) {
      if (absl::StartsWith(m.path, "auth/")) data[m.path.substr(5)] = MountInfo(m);
    }
    return Injected(std::move(data));
  }

  // sys/auth/:path: enable (POST) or disable (DELETE) an auth method under auth/<path>.
  absl::StatusOr<Response> OneAuth(Request& req, const std::string& raw_path) {
    ASSIGN_OR_RETURN(std::string path, NormalizeMountPath(raw_path));
    switch (req.operation) {
      case Operation::kCreate:
      case Operation::kUpdate: {
        ASSIGN_OR_RETURN(auto type, core::GetString(req.data, "type"));
        if (!type || type->empty()) return absl::InvalidArgumentError("missing type");
        if (*type == "token") {
          return absl::InvalidArgumentError("token credential backend cannot be instantiated");
        }
        core::MountEntry e;
        e.path = absl::StrCat("auth/", path);
        e.type = *type;
        ASSIGN_OR_RETURN(auto desc, core::GetString(req.data, "description"));
        e.description = desc.value_or("");
        ASSIGN_OR_RETURN(auto local, core::GetBool(req.data, "local"));
        e.local = local.value_or(false);
        RETURN_IF_ERROR(core_->Mount(std::move(e)));
        return Response::Empty();
      }
      case Operation::kDelete:
        if (path == "token/") {
          return absl::InvalidArgumentError("token credential backend cannot be disabled");
        }
        {
          // As Vault: the tokens the method issued die with it.
          const std::string prefix = absl::StrCat("auth/", path);
          ASSIGN_OR_RETURN(size_t revoked,
                           core_->tokens().RevokeWhere([&](const core::TokenEntry& e) {
                             return absl::StartsWith(e.path, prefix);
                           }));
          if (revoked > 0)
            LogInfo("revoked %d tokens issued by %s", static_cast<int>(revoked), prefix);
        }
        RETURN_IF_ERROR(core_->Unmount(absl::StrCat("auth/", path)));
        return Response::Empty();
      default:
        return core::UnsupportedOperation();
    }
  }

  // sys/capabilities{,-self,-accessor}: what a token may do on each path, as Vault answers it
  // (top-level copy; a single path also gets "capabilities").
  absl::StatusOr<Response> Capabilities(const Request& req, const std::string& which) {
    if (!IsWrite(req)) return core::UnsupportedOperation();
    ASSIGN_OR_RETURN(auto paths, core::GetStringList(req.data, "paths"));
    if (!paths || paths->empty()) {
      ASSIGN_OR_RETURN(auto path, core::GetString(req.data, "path"));  // older clients
      if (path && !path->empty()) paths = std::vector<std::string>{*path};
    }
    if (!paths || paths->empty()) return absl::InvalidArgumentError("missing paths");
    std::optional<core::TokenEntry> subject;
    if (which == "capabilities-self") {
      if (req.token == nullptr) return absl::PermissionDeniedError("permission denied");
      subject = *req.token;
    } else if (which == "capabilities") {
      ASSIGN_OR_RETURN(auto token, core::GetString(req.data, "token"));
      if (!token || token->empty()) return absl::InvalidArgumentError("missing token");
      ASSIGN_OR_RETURN(subject, core_->tokens().Lookup(*token));
      if (!subject) return absl::InvalidArgumentError("invalid token");
    } else {
      ASSIGN_OR_RETURN(auto accessor, core::GetString(req.data, "accessor"));
      if (!accessor || accessor->empty()) return absl::InvalidArgumentError("missing accessor");
      ASSIGN_OR_RETURN(subject, core_->tokens().LookupByAccessor(*accessor));
      if (!subject) return absl::InvalidArgumentError("invalid accessor");
    }
    ASSIGN_OR_RETURN(auto acl, core_->AclFor(*subject));
    object d;
    array last;
    for (const auto& raw : *paths) {
      const std::string path(absl::StripPrefix(raw, "/"));
      // Answered for the spelling a request to `path` would be checked on.
      ASSIGN_OR_RETURN(const std::string checked, core_->CanonicalPath(path));
      array caps;
      for (const auto& c : acl.Capabilities(checked)) caps.emplace_back(c);
      last = caps;
      d[path] = std::move(caps);
    }
    if (paths->size() == 1) d["capabilities"] = std::move(last);
    return Injected(std::move(d));
  }

  absl::StatusOr<Response> ListAudit(const Request& req) {
    if (req.operation != Operation::kRead) return core::UnsupportedOperation();
    object data;
    for (const auto& e : core_->audit().List()) {
      object o = e.ToJson();
      o.erase("uuid");  // internal
      data[e.path] = std::move(o);
    }
    return Injected(std::move(data));
  }

  absl::StatusOr<Response> OneAudit(Request& req, const std::string& path) {
    switch (req.operation) {
      case Operation::kCreate:
      case Operation::kUpdate: {
        core::AuditDeviceEntry e;
        e.path = path;
        ASSIGN_OR_RETURN(auto type, core::GetString(req.data, "type"));
        if (!type || type->empty()) return absl::InvalidArgumentError("type is required");
        e.type = *type;
        ASSIGN_OR_RETURN(auto description, core::GetString(req.data, "description"));
        e.description = description.value_or("");
        ASSIGN_OR_RETURN(auto local, core::GetBool(req.data, "local"));
        e.local = local.value_or(false);
        if (const auto* o = req.data.if_contains("options"); o != nullptr && !o->is_null()) {
          if (!o->is_object()) return absl::InvalidArgumentError("options must be an object");
          for (const auto& [k, v] : o->as_object()) {
            // Vault's options are strings; numbers and booleans are taken as their text.
            if (v.is_string()) {
              e.options[std::string(k)] = std::string(v.as_string());
            } else if (v.is_bool() || v.is_number()) {
              e.options[std::string(k)] = core::Serialize(v);
            } else {
              return absl::InvalidArgumentError(
                  absl::StrCat("option \"", std::string(k), "\" must be a string"));
            }
          }
        }
        RETURN_IF_ERROR(core_->audit().Enable(std::move(e)));
        return Response::Empty();
      }
      case Operation::kDelete:
        RETURN_IF_ERROR(core_->audit().Disable(path));
        return Response::Empty();
      default:
        return core::UnsupportedOperation();
    }
  }

  // sys/policy (legacy, top-level copy of data) and sys/policies/acl (LIST only).
  absl::StatusOr<Response> ListPolicies(const Request& req, bool legacy) {
    if (legacy ? req.operation != Operation::kRead && req.operation != Operation::kList
               : req.operation != Operation::kList) {
      return core::UnsupportedOperation();
    }
    ASSIGN_OR_RETURN(auto names, core_->policies().List());
    array keys;
    for (const auto& n : names) keys.emplace_back(n);
    object d;
    d["keys"] = keys;
    if (!legacy) return Response::Data(std::move(d));
    d["policies"] = std::move(keys);
    return Injected(std::move(d));
  }

  absl::StatusOr<Response> OnePolicy(Request& req, const std::string& raw_name, bool legacy) {
    ASSIGN_OR_RETURN(std::string name, core::PolicyStore::NormalizeName(raw_name));
    switch (req.operation) {
      case Operation::kRead: {
        if (name == "root" && !legacy) {
          return absl::InvalidArgumentError("cannot read \"root\" policy");
        }
        ASSIGN_OR_RETURN(auto text, core_->policies().GetText(name));
        if (!text) return absl::NotFoundError("");
        object d;
        d["name"] = name;
        d[legacy ? "rules" : "policy"] = *text;
        return legacy ? Injected(std::move(d)) : Response::Data(std::move(d));
      }
      case Operation::kCreate:
      case Operation::kUpdate: {
        ASSIGN_OR_RETURN(auto text, core::GetString(req.data, "policy"));
        if (!text) {
          ASSIGN_OR_RETURN(text, core::GetString(req.data, "rules"));  // legacy field name
        }
        if (!text || text->empty())
          return absl::InvalidArgumentError("'policy' parameter not supplied or empty");
        std::string decoded;
        // Vault accepts base64-encoded HCL too.
        if (absl::Base64Unescape(*text, &decoded) && !decoded.empty() &&
            std::all_of(decoded.begin(), decoded.end(), [](char c) {
              return c == '\n' || c == '\t' || c == '\r' || (c >= 0x20 && c < 0x7f);
            })) {
          text = decoded;
        }
        RETURN_IF_ERROR(core_->policies().Put(name, *text));
        return Response::Empty();
      }
      case Operation::kDelete:
        RETURN_IF_ERROR(core_->policies().Delete(name));
        return Response::Empty();
      default:
        return core::UnsupportedOperation();
    }
  }

  // sys/storage/raft/join-token (strongroom; sudo): a one-time credential for one node id to
  // join with (broker/join_tokens.h). node_id required; ttl default 15m, at most 24h.
  absl::StatusOr<Response> MintJoinToken(Request& req) {
    if (!IsWrite(req)) return core::UnsupportedOperation();
    core::Cluster* cluster = core_->cluster();
    if (cluster == nullptr) return core::Bad("raft storage is not in use on this node");
    ASSIGN_OR_RETURN(auto id, core::GetString(req.data, "node_id"));
    if (!id || id->empty()) return core::Bad("node_id is required");
    ASSIGN_OR_RETURN(auto ttl, core::GetDurationSeconds(req.data, "ttl"));
    const int64_t seconds = ttl.value_or(15 * 60);
    if (seconds < 1 || seconds > 24 * 3600) return core::Bad("ttl must be between 1s and 24h");
    ASSIGN_OR_RETURN(core::MintedJoinToken m, cluster->MintJoinToken(*id, seconds));
    object d;
    d["join_token"] = m.token;
    d["join_token_id"] = m.id;
    d["node_id"] = *id;
    d["ttl"] = m.ttl_seconds;
    d["expiration_time"] = core::FormatRfc3339Nano(absl::FromUnixSeconds(m.expires_unix));
    return Response::Data(std::move(d));
  }

  absl::StatusOr<Response> OneMount(Request& req, absl::string_view raw_path) {
    ASSIGN_OR_RETURN(std::string path, NormalizeMountPath(raw_path));
    switch (req.operation) {
      case Operation::kRead: {
        for (const auto& m : core_->Mounts()) {
          if (m.path == path) return Injected(MountInfo(m));
        }
        return absl::InvalidArgumentError(absl::StrCat("No secret engine mount at ", path));
      }
      case Operation::kCreate:
      case Operation::kUpdate: {
        core::MountEntry e;
        e.path = path;
        ASSIGN_OR_RETURN(auto type, core::GetString(req.data, "type"));
        if (!type || type->empty()) return absl::InvalidArgumentError("no type provided");
        e.type = *type;
        ASSIGN_OR_RETURN(auto desc, core::GetString(req.data, "description"));
        e.description = desc.value_or("");
        ASSIGN_OR_RETURN(auto local, core::GetBool(req.data, "local"));
        e.local = local.value_or(false);
        ASSIGN_OR_RETURN(auto sw, core::GetBool(req.data, "seal_wrap"));
        e.seal_wrap = sw.value_or(false);
        ASSIGN_OR_RETURN(auto eea, core::GetBool(req.data, "external_entropy_access"));
        e.external_entropy_access = eea.value_or(false);
        if (auto it = req.data.find("config"); it != req.data.end() && !it->value().is_null()) {
          if (!it->value().is_object())
            return absl::InvalidArgumentError("config must be an object");
          ASSIGN_OR_RETURN(e.config, core::MountConfigFromJson(it->value().as_object(), {}));
        }
        RETURN_IF_ERROR(ReadOptions(req.data, &e.options));
        RETURN_IF_ERROR(core_->Mount(std::move(e)));
        return Response::Empty();
      }
      case Operation::kDelete:
        RETURN_IF_ERROR(core_->Unmount(path));
        return Response::Empty();
      default:
        return core::UnsupportedOperation();
    }
  }

  static absl::Status ReadOptions(const object& data, std::map<std::string, std::string>* out) {
    auto it = data.find("options");
    if (it == data.end() || it->value().is_null()) return absl::OkStatus();
    if (!it->value().is_object()) return absl::InvalidArgumentError("options must be an object");
    for (const auto& [k, v] : it->value().as_object()) {
      if (v.is_string()) {
        (*out)[std::string(k)] = std::string(v.as_string());
      } else if (v.is_int64()) {
        (*out)[std::string(k)] = std::to_string(v.as_int64());
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("option \"", std::string(k), "\" must be a string"));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<Response> Tune(Request& req, absl::string_view raw_path) {
    ASSIGN_OR_RETURN(std::string path, NormalizeMountPath(raw_path));
    std::optional<core::MountEntry> found;
    for (const auto& m : core_->Mounts()) {
      if (m.path == path) found = m;
    }
    if (!found)
      return absl::InvalidArgumentError(absl::StrCat("cannot fetch mount entry at \"", path, "\""));
    if (req.operation == Operation::kRead) {
      object o;
      const auto& opts = core_->options();
      o["default_lease_ttl"] = found->config.default_lease_ttl ? found->config.default_lease_ttl
                                                               : opts.default_lease_ttl;
      o["max_lease_ttl"] =
          found->config.max_lease_ttl ? found->config.max_lease_ttl : opts.max_lease_ttl;
      o["force_no_cache"] = found->config.force_no_cache;
      o["description"] = found->description;
      if (!found->options.empty()) o["options"] = core::MountOptionsToJson(found->options);
      return Injected(std::move(o));
    }
    if (!IsWrite(req)) return core::UnsupportedOperation();
    ASSIGN_OR_RETURN(auto config, core::MountConfigFromJson(req.data, found->config));
    if (config.max_lease_ttl != 0 && config.default_lease_ttl > config.max_lease_ttl) {
      return absl::InvalidArgumentError("default_lease_ttl must not exceed max_lease_ttl");
    }
    ASSIGN_OR_RETURN(auto desc, core::GetString(req.data, "description"));
    std::map<std::string, std::string> options;
    RETURN_IF_ERROR(ReadOptions(req.data, &options));
    RETURN_IF_ERROR(core_->TuneMount(path, config, desc, options));
    return Response::Empty();
  }

  core::Core* core_;
  std::mutex migrations_mu_;
  std::deque<std::pair<std::string, object>> migrations_;
};

}  // namespace

std::unique_ptr<core::Backend> MakeSystemBackend(core::Core* core) {
  return std::make_unique<SystemBackend>(core);
}

}  // namespace strongroom::engines
