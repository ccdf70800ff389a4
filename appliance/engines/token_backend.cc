#include "appliance/engines/token_backend.h"

#include <fnmatch.h>

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "appliance/core/core.h"
#include "appliance/engines/routes.h"
#include "appliance/engines/token_params.h"
#include "base/status_macros.h"
#include "base/strings.h"

namespace strongroom::engines {
namespace {

using core::IsWrite;
using core::Operation;
using core::Request;
using core::Response;
using core::ToArray;
using core::TokenEntry;
using core::json::array;
using core::json::object;
using core::json::value;

bool GlobAny(const std::vector<std::string>& globs, const std::string& name) {
  for (const auto& g : globs) {
    if (fnmatch(g.c_str(), name.c_str(), 0) == 0) return true;
  }
  return false;
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

absl::Status BatchCannotHave(std::string_view field) {
  return absl::InvalidArgumentError(
      absl::StrCat("batch tokens cannot have \"", Av(field), "\" set"));
}

// A token role (auth/token/roles/:name): constraints and defaults applied by create/:role.
struct Role {
  std::string name;
  std::vector<std::string> allowed_policies, disallowed_policies;
  std::vector<std::string> allowed_policies_glob, disallowed_policies_glob;
  bool orphan = false;
  bool renewable = true;
  std::string path_suffix;
  int64_t token_period = 0;
  int64_t token_explicit_max_ttl = 0;
  bool token_no_default_policy = false;
  int64_t token_num_uses = 0;
  std::string token_type = "default-service";

  object ToJson() const {
    object o;
    o["name"] = name;
    o["allowed_policies"] = ToArray(allowed_policies);
    o["disallowed_policies"] = ToArray(disallowed_policies);
    o["allowed_policies_glob"] = ToArray(allowed_policies_glob);
    o["disallowed_policies_glob"] = ToArray(disallowed_policies_glob);
    o["orphan"] = orphan;
    o["renewable"] = renewable;
    o["path_suffix"] = path_suffix;
    o["token_period"] = token_period;
    o["token_explicit_max_ttl"] = token_explicit_max_ttl;
    o["token_no_default_policy"] = token_no_default_policy;
    o["token_num_uses"] = token_num_uses;
    o["token_type"] = token_type;
    o["allowed_entity_aliases"] = nullptr;
    o["token_bound_cidrs"] = array();
    return o;
  }

  // Reads Vault's fields over the current values (only fields present change); legacy names
  // `period` and `explicit_max_ttl` are accepted too.
  absl::Status Update(const object& d) {
    auto list = [&](std::string_view key, std::vector<std::string>* out) -> absl::Status {
      ASSIGN_OR_RETURN(auto v, core::GetStringList(d, key));
      if (v) {
        out->clear();
        for (auto& p : *v) {
          if (p.empty()) continue;
          ASSIGN_OR_RETURN(std::string n, core::PolicyStore::NormalizeName(p));
          out->push_back(n);
        }
      }
      return absl::OkStatus();
    };
    RETURN_IF_ERROR(list("allowed_policies", &allowed_policies));
    RETURN_IF_ERROR(list("disallowed_policies", &disallowed_policies));
    // Globs match lower-cased policy names, so they are lower-cased too (as in Vault): a
    // disallowed "Admin*" must still catch "admin-x".
    auto globs = [&](std::string_view key, std::vector<std::string>* out) -> absl::Status {
      ASSIGN_OR_RETURN(auto v, core::GetStringList(d, key));
      if (v) {
        out->clear();
        for (const auto& g : *v) {
          std::string n = absl::AsciiStrToLower(absl::StripAsciiWhitespace(g));
          if (!n.empty()) out->push_back(std::move(n));
        }
      }
      return absl::OkStatus();
    };
    RETURN_IF_ERROR(globs("allowed_policies_glob", &allowed_policies_glob));
    RETURN_IF_ERROR(globs("disallowed_policies_glob", &disallowed_policies_glob));
    ASSIGN_OR_RETURN(auto o, core::GetBool(d, "orphan"));
    if (o) orphan = *o;
    ASSIGN_OR_RETURN(auto r, core::GetBool(d, "renewable"));
    if (r) renewable = *r;
    ASSIGN_OR_RETURN(auto ps, core::GetString(d, "path_suffix"));
    if (ps) {
      if (ps->find("..") != std::string::npos) {
        return absl::InvalidArgumentError("path_suffix cannot contain '..'");
      }
      path_suffix = *ps;
    }
    for (std::string_view k : {"token_period", "period"}) {
      ASSIGN_OR_RETURN(auto v, core::GetDurationSeconds(d, k));
      if (v) token_period = *v;
    }
    for (std::string_view k : {"token_explicit_max_ttl", "explicit_max_ttl"}) {
      ASSIGN_OR_RETURN(auto v, core::GetDurationSeconds(d, k));
      if (v) token_explicit_max_ttl = *v;
    }
    ASSIGN_OR_RETURN(auto nd, core::GetBool(d, "token_no_default_policy"));
    if (nd) token_no_default_policy = *nd;
    ASSIGN_OR_RETURN(auto nu, core::GetInt(d, "token_num_uses"));
    if (nu) {
      if (*nu < 0) return absl::InvalidArgumentError("token_num_uses cannot be negative");
      token_num_uses = *nu;
    }
    ASSIGN_OR_RETURN(auto tt, core::GetString(d, "token_type"));
    if (tt) {
      ASSIGN_OR_RETURN(token_type, NormalizeTokenType(*tt));
    }
    if (token_type == "batch") {
      // Vault's rule for roles that always give batch tokens.
      if (token_period != 0) return BatchCannotHave("token_period");
      if (token_num_uses != 0) return BatchCannotHave("token_num_uses");
      if (token_explicit_max_ttl != 0) return BatchCannotHave("token_explicit_max_ttl");
    }
    return absl::OkStatus();
  }
};

// Vault's policyutil.SanitizePolicies over names already normalised: unique and sorted, "root"
// alone when present, "default" added when `add_default` (never beside root).
std::vector<std::string> Sanitize(const std::vector<std::string>& names, bool add_default) {
  if (Contains(names, "root")) return {"root"};
  std::set<std::string> out(names.begin(), names.end());
  if (add_default) out.insert("default");
  return {out.begin(), out.end()};
}

std::string Quoted(const std::vector<std::string>& v) {
  std::string out = "[";
  for (const auto& s : v) absl::StrAppend(&out, out.size() > 1 ? " " : "", "\"", s, "\"");
  return out + "]";
}

// The policies of a token made by auth/token/create[/:role], by Vault's rules: a role that lists
// allowed or disallowed policies (names or globs) decides alone; otherwise the child gets the
// parent's policies when it asks for none, and may ask only for a subset of them unless the
// caller has sudo on the path (or is root).
absl::StatusOr<std::vector<std::string>> ChildPolicies(const std::vector<std::string>& requested,
                                                       bool no_default, const Role* role,
                                                       const TokenEntry& parent, bool sudo) {
  if (role != nullptr && role->token_no_default_policy) no_default = true;
  std::vector<std::string> policies;
  bool add_default = false;
  if (role != nullptr &&
      (!role->allowed_policies.empty() || !role->disallowed_policies.empty() ||
       !role->allowed_policies_glob.empty() || !role->disallowed_policies_glob.empty())) {
    const bool role_default = !no_default && !Contains(role->disallowed_policies, "default") &&
                              !GlobAny(role->disallowed_policies_glob, "default");
    if (!requested.empty()) policies = Sanitize(requested, role_default);
    if (!role->allowed_policies.empty() || !role->allowed_policies_glob.empty()) {
      const std::vector<std::string> allowed = Sanitize(role->allowed_policies, role_default);
      if (policies.empty()) {
        policies = allowed;
      } else {
        for (const auto& p : policies) {
          if (!Contains(allowed, p) && !GlobAny(role->allowed_policies_glob, p)) {
            return absl::InvalidArgumentError(absl::StrCat(
                "token policies (", Quoted(policies), ") must be subset of the role's allowed ",
                "policies (", Quoted(allowed), ") or glob policies (",
                Quoted(role->allowed_policies_glob), ")"));
          }
        }
      }
    } else if (policies.empty()) {
      policies = Sanitize(parent.policies, role_default);
    }
    for (const auto& p : policies) {
      if (Contains(role->disallowed_policies, p) || GlobAny(role->disallowed_policies_glob, p)) {
        return absl::InvalidArgumentError(
            absl::StrCat("token policy \"", p, "\" is disallowed by this role"));
      }
    }
  } else if (requested.empty()) {
    policies = Sanitize(parent.policies, false);  // "default" only if the parent has it
  } else if (!sudo) {
    policies = Sanitize(requested, false);
    const std::vector<std::string> from_parent = Sanitize(parent.policies, false);
    for (const auto& p : policies) {
      if (!Contains(from_parent, p)) {
        return absl::InvalidArgumentError("child policies must be subset of parent");
      }
    }
    add_default = !no_default && Contains(parent.policies, "default");
  } else {
    policies = requested;
    add_default = !no_default;
  }
  policies = Sanitize(policies, add_default);
  if (no_default) std::erase(policies, "default");
  return policies;
}

class TokenBackend final : public core::Backend {
 public:
  explicit TokenBackend(core::Core* core) : core_(core) {}

  std::span<const core::Route> Routes() const override { return TokenRoutes(); }

  bool IsRootPath(const std::string& p) const override {
    return absl::StartsWith(p, "revoke-orphan") || absl::StartsWith(p, "accessors");
  }

  // Token role names are case-insensitive (stored lower-cased): the ACL, Exists and the handler
  // all see the lower-cased name, so no spelling gets around a rule on create/<role> or
  // roles/<role>.
  std::string NormalizePath(const std::string& rel) const override {
    return core::LowerSegmentAfter(core::LowerSegmentAfter(rel, "roles/"), "create/");
  }

  absl::StatusOr<Response> Handle(Request& req) override {
    const std::string& p = req.rel_path;
    if (p == "create" || p == "create-orphan") {
      if (!IsWrite(req)) return core::UnsupportedOperation();
      // A role is named in the path only (create/<role>), where the ACL sees it; a `role_name`
      // in the body is ignored, as Vault ignores it, so path rules on roles cannot be bypassed.
      return Create(req, p == "create-orphan", nullptr);
    }
    if (absl::StartsWith(p, "create/")) {
      if (!IsWrite(req)) return core::UnsupportedOperation();
      return CreateWithRole(req, p.substr(7));
    }
    if (p == "roles" || p == "roles/") {
      if (req.operation != Operation::kList) return core::UnsupportedOperation();
      ASSIGN_OR_RETURN(auto names, req.storage->List("roles/"));
      if (names.empty()) return absl::NotFoundError("");
      object d;
      d["keys"] = ToArray(names);
      return Response::Data(std::move(d));
    }
    if (absl::StartsWith(p, "roles/")) return RoleEndpoint(req, p.substr(6));
    if (p == "lookup-self") {
      if (req.operation != Operation::kRead && !IsWrite(req)) return core::UnsupportedOperation();
      return LookupResponse(*req.token, req.client_token);
    }
    // Tokens and accessors travel in the body only: a path would put them in the audit log and
    // in proxies' logs in clear (Vault removed the path forms for that reason).
    if (p == "lookup") {
      if (req.operation != Operation::kRead && !IsWrite(req)) return core::UnsupportedOperation();
      ASSIGN_OR_RETURN(auto t, core::GetString(req.data, "token"));
      const std::string token = t.value_or("");
      if (token.empty()) return absl::InvalidArgumentError("missing token to look up");
      ASSIGN_OR_RETURN(auto e, Tokens().Lookup(token));
      if (!e) return absl::PermissionDeniedError("bad token");
      return LookupResponse(*e, token);
    }
    if (p == "lookup-accessor") {
      if (!IsWrite(req)) return core::UnsupportedOperation();
      ASSIGN_OR_RETURN(auto e, ByAccessor(req));
      return LookupResponse(e, "");
    }
    if (p == "renew-self") {
      if (!IsWrite(req)) return core::UnsupportedOperation();
      TokenEntry e = *req.token;
      return Renew(req, e, req.client_token);
    }
    if (p == "renew") {
      if (!IsWrite(req)) return core::UnsupportedOperation();
      ASSIGN_OR_RETURN(auto t, core::GetString(req.data, "token"));
      const std::string token = t.value_or("");
      ASSIGN_OR_RETURN(auto e, Tokens().Lookup(token));
      if (!e) return absl::InvalidArgumentError("token not found");
      return Renew(req, *e, token);
    }
    if (p == "renew-accessor") {
      if (!IsWrite(req)) return core::UnsupportedOperation();
      ASSIGN_OR_RETURN(auto e, ByAccessor(req));
      return Renew(req, e, "");
    }
    if (p == "revoke-self") {
      if (!IsWrite(req)) return core::UnsupportedOperation();
      RETURN_IF_ERROR(Tokens().RevokeTree(*req.token));
      return Response::Empty();
    }
    if (p == "revoke" || p == "revoke-orphan") {
      if (!IsWrite(req)) return core::UnsupportedOperation();
      ASSIGN_OR_RETURN(auto t, core::GetString(req.data, "token"));
      if (!t || t->empty()) return absl::InvalidArgumentError("missing token to revoke");
      ASSIGN_OR_RETURN(auto e, Tokens().Lookup(*t));
      if (!e) return Response::Empty();  // Vault: revoking an unknown token is not an error
      RETURN_IF_ERROR(p == "revoke" ? Tokens().RevokeTree(*e) : Tokens().RevokeOrphan(*e));
      return Response::Empty();
    }
    if (p == "revoke-accessor") {
      if (!IsWrite(req)) return core::UnsupportedOperation();
      ASSIGN_OR_RETURN(auto e, ByAccessor(req));
      RETURN_IF_ERROR(Tokens().RevokeTree(e));
      return Response::Empty();
    }
    if (p == "accessors/" || p == "accessors") {
      if (req.operation != Operation::kList) return core::UnsupportedOperation();
      ASSIGN_OR_RETURN(auto accessors, core_->ListTokenAccessors());
      if (accessors.empty()) return absl::NotFoundError("");
      object d;
      d["keys"] = ToArray(accessors);
      return Response::Data(std::move(d));
    }
    return absl::NotFoundError("unsupported path");
  }

 private:
  core::TokenStore& Tokens() { return core_->tokens(); }

  absl::StatusOr<TokenEntry> ByAccessor(const Request& req) {
    ASSIGN_OR_RETURN(auto a, core::GetString(req.data, "accessor"));
    const std::string accessor = a.value_or("");
    if (accessor.empty()) return absl::InvalidArgumentError("missing accessor");
    ASSIGN_OR_RETURN(auto e, Tokens().LookupByAccessor(accessor));
    if (!e) return absl::InvalidArgumentError("invalid accessor");
    return *e;
  }

  int64_t Now() const { return absl::ToUnixSeconds(core_->Now()); }

  // The token mount's default and max TTL: its tuned values, else the system's (Vault's system
  // view). Read from a copy of the mount table, not through req.mount, which a tune may rewrite.
  struct Ttls {
    int64_t default_ttl, max_ttl;
  };
  Ttls MountTtls(const Request& req) const {
    Ttls t{core_->options().default_lease_ttl, core_->options().max_lease_ttl};
    for (const auto& m : core_->Mounts()) {
      if (m.path != req.mount_path) continue;
      if (m.config.default_lease_ttl > 0) t.default_ttl = m.config.default_lease_ttl;
      if (m.config.max_lease_ttl > 0) t.max_ttl = m.config.max_lease_ttl;
    }
    if (t.max_ttl > 0 && t.default_ttl > t.max_ttl) t.default_ttl = t.max_ttl;
    return t;
  }

  int64_t Remaining(const TokenEntry& e) const {
    if (e.expire_unix == 0) return 0;
    return std::max<int64_t>(0, e.expire_unix - Now());
  }

  Response LookupResponse(const TokenEntry& e, const std::string& token) const {
    object d;
    d["accessor"] = e.accessor;
    d["creation_time"] = e.creation_unix;
    d["creation_ttl"] = e.creation_ttl;
    d["display_name"] = e.display_name;
    d["entity_id"] = e.entity_id;
    d["expire_time"] = e.expire_unix == 0
                           ? value(nullptr)
                           : value(core::FormatRfc3339Nano(absl::FromUnixSeconds(e.expire_unix)));
    d["explicit_max_ttl"] = e.explicit_max_ttl;
    d["id"] = token;
    d["issue_time"] = core::FormatRfc3339Nano(absl::FromUnixSeconds(e.creation_unix));
    if (e.last_renewal_unix != 0) {
      d["last_renewal_time"] = e.last_renewal_unix;
      d["last_renewal"] = core::FormatRfc3339Nano(absl::FromUnixSeconds(e.last_renewal_unix));
    }
    d["meta"] = e.meta.empty() ? value(nullptr) : value(e.meta);
    d["num_uses"] = e.num_uses;
    d["orphan"] = e.orphan;
    d["path"] = e.path;
    d["policies"] = ToArray(e.policies);
    d["renewable"] = e.renewable;
    d["ttl"] = Remaining(e);
    d["type"] = e.type;
    if (e.period != 0) d["period"] = e.period;
    if (!e.role.empty()) d["role"] = e.role;
    if (!e.entity_id.empty()) {
      auto identity = core_->IdentityPolicies(e);
      if (identity.ok() && !identity->empty()) d["identity_policies"] = ToArray(*identity);
    }
    d["external_namespace_policies"] = object();
    return Response::Data(std::move(d));
  }

  absl::StatusOr<std::optional<Role>> LoadRole(storage::Storage& s, const std::string& name) {
    ASSIGN_OR_RETURN(auto raw, s.Get("roles/" + name));
    if (!raw) return std::optional<Role>();
    ASSIGN_OR_RETURN(auto o, core::ParseObject(*raw));
    Role role;
    role.name = name;
    RETURN_IF_ERROR(role.Update(o));
    return std::optional<Role>(std::move(role));
  }

  absl::StatusOr<Response> RoleEndpoint(Request& req, const std::string& raw_name) {
    ASSIGN_OR_RETURN(std::string name, core::PolicyStore::NormalizeName(raw_name));
    ASSIGN_OR_RETURN(auto role, LoadRole(*req.storage, name));
    switch (req.operation) {
      case Operation::kRead:
        if (!role) return absl::NotFoundError("");
        return Response::Data(role->ToJson());
      case Operation::kCreate:
      case Operation::kUpdate: {
        Role r = role.value_or(Role{});
        r.name = name;
        RETURN_IF_ERROR(r.Update(req.data));
        RETURN_IF_ERROR(req.storage->Put("roles/" + name, core::Serialize(r.ToJson())));
        return Response::Empty();
      }
      case Operation::kDelete:
        RETURN_IF_ERROR(req.storage->Delete("roles/" + name));
        return Response::Empty();
      default:
        return core::UnsupportedOperation();
    }
  }

  absl::StatusOr<Response> CreateWithRole(Request& req, const std::string& raw_name) {
    ASSIGN_OR_RETURN(std::string name, core::PolicyStore::NormalizeName(raw_name));
    ASSIGN_OR_RETURN(auto role, LoadRole(*req.storage, name));
    if (!role) return absl::InvalidArgumentError(absl::StrCat("unknown role ", name));
    return Create(req, false, &*role);
  }

  // The type of token create[/:role] makes, by Vault's rules: the request's `type` unless the
  // role fixes it ("service", "batch") or gives its default ("default-*"). A batch token cannot
  // have a use limit, a period or an explicit max TTL.
  static absl::StatusOr<bool> WantsBatch(const Request& req, const Role* role) {
    ASSIGN_OR_RETURN(auto requested, core::GetString(req.data, "type"));
    std::string type = requested.value_or("");
    if (role != nullptr) {
      if (role->token_type == "service" || role->token_type == "batch") {
        type = role->token_type;
      } else if (type.empty()) {
        type = role->token_type == "default-batch" ? "batch" : "service";
      }
    }
    if (type.empty() || type == "service") return false;
    if (type != "batch") return absl::InvalidArgumentError("invalid 'token_type' value");
    for (const char* field : {"explicit_max_ttl", "period"}) {
      ASSIGN_OR_RETURN(auto v, core::GetDurationSeconds(req.data, field));
      if (v.value_or(0) != 0) return BatchCannotHave(field);
    }
    ASSIGN_OR_RETURN(auto uses, core::GetInt(req.data, "num_uses"));
    if (uses.value_or(0) != 0) return BatchCannotHave("num_uses");
    // A role's use limit must not be shed by asking for a batch token (Vault drops it).
    if (role != nullptr && role->token_num_uses != 0) return BatchCannotHave("num_uses");
    return true;
  }

  absl::StatusOr<Response> Create(Request& req, bool orphan_endpoint, const Role* role) {
    const TokenEntry& parent = *req.token;
    const bool privileged = req.token_is_root || req.token_has_sudo;
    if (parent.IsBatch())
      return absl::InvalidArgumentError("batch tokens cannot create more tokens");
    if (parent.num_uses != 0) {  // a child would escape the parent's use count
      return absl::InvalidArgumentError("restricted use token cannot generate child tokens");
    }
    Response r = Response::Data(object());
    r.data.reset();

    ASSIGN_OR_RETURN(const bool batch, WantsBatch(req, role));
    ASSIGN_OR_RETURN(auto id, core::GetString(req.data, "id"));
    if (batch && id && !id->empty()) {
      return absl::InvalidArgumentError("batch tokens cannot have a custom ID");
    }
    if (id && !id->empty()) {
      if (!privileged)
        return absl::InvalidArgumentError("root or sudo privileges required to specify token id");
      if (absl::StartsWith(*id, "hvs.") || absl::StartsWith(*id, "s.") ||
          absl::StrContains(*id, ".")) {
        return absl::InvalidArgumentError(
            "custom token ID cannot have the 'hvs.' or 's.' prefix or contain a '.'");
      }
    }
    ASSIGN_OR_RETURN(auto no_parent, core::GetBool(req.data, "no_parent"));
    // With a role, the role alone decides; no_parent needs sudo; create-orphan is ACL'd itself.
    const bool orphan =
        role != nullptr ? role->orphan : orphan_endpoint || no_parent.value_or(false);
    if (role == nullptr && no_parent.value_or(false) && !orphan_endpoint && !privileged) {
      return absl::InvalidArgumentError("root or sudo privileges required to create orphan token");
    }
    ASSIGN_OR_RETURN(auto period, core::GetDurationSeconds(req.data, "period"));
    // The role grants it (not to batch tokens, which have none: Vault ignores the role's).
    if (role && role->token_period > 0 && !batch) period = role->token_period;
    if (period && *period > 0 && !privileged && !(role && role->token_period > 0)) {
      return absl::InvalidArgumentError(
          "root or sudo privileges required to create periodic token");
    }

    ASSIGN_OR_RETURN(auto policies_in, core::GetStringList(req.data, "policies"));
    ASSIGN_OR_RETURN(auto no_default, core::GetBool(req.data, "no_default_policy"));
    std::vector<std::string> requested;
    for (const auto& p : policies_in.value_or(std::vector<std::string>{})) {
      const std::string trimmed(absl::StripAsciiWhitespace(p));
      if (trimmed.empty()) continue;
      ASSIGN_OR_RETURN(std::string n, core::PolicyStore::NormalizeName(trimmed));
      requested.push_back(std::move(n));
    }
    ASSIGN_OR_RETURN(
        std::vector<std::string> policies,
        ChildPolicies(requested, no_default.value_or(false), role, parent, privileged));
    if (std::find(policies.begin(), policies.end(), "root") != policies.end() && !parent.IsRoot()) {
      // Not even sudo on auth/token/create makes root (Vault's rule, against escalation).
      return absl::InvalidArgumentError(
          "root tokens may not be created without parent token being root");
    }
    if (std::find(policies.begin(), policies.end(), "response-wrapping") != policies.end()) {
      // Only Core::Wrap makes wrapping tokens.
      return absl::InvalidArgumentError("cannot assign policy \"response-wrapping\"");
    }
    TokenEntry e;
    e.policies = std::move(policies);
    for (const auto& p : e.policies) {
      ASSIGN_OR_RETURN(bool exists, core_->policies().Exists(p));
      if (!exists) r.warnings.push_back(absl::StrCat("Policy \"", p, "\" does not exist"));
    }
    ASSIGN_OR_RETURN(auto display, core::GetString(req.data, "display_name"));
    e.display_name = display && !display->empty() ? absl::StrCat("token-", *display) : "token";
    e.path = orphan_endpoint ? "auth/token/create-orphan" : "auth/token/create";
    if (role) {
      e.role = role->name;
      e.path = absl::StrCat("auth/token/create/", role->name);
      if (!role->path_suffix.empty()) absl::StrAppend(&e.path, "/", role->path_suffix);
    }
    e.parent_hash = orphan ? "" : parent.id_hash;
    e.orphan = orphan;
    ASSIGN_OR_RETURN(auto renewable, core::GetBool(req.data, "renewable"));
    e.renewable = !batch && renewable.value_or(true) && (role == nullptr || role->renewable);
    ASSIGN_OR_RETURN(auto num_uses, core::GetInt(req.data, "num_uses"));
    if (num_uses && *num_uses < 0)
      return absl::InvalidArgumentError("number of uses cannot be negative");
    // A role's use limit holds unless the caller asks for fewer uses (0 means unlimited).
    e.num_uses = num_uses.value_or(0);
    if (role != nullptr && !batch && role->token_num_uses > 0 &&
        (e.num_uses == 0 || role->token_num_uses < e.num_uses)) {
      e.num_uses = role->token_num_uses;
    }
    if (auto it = req.data.find("meta"); it != req.data.end() && !it->value().is_null()) {
      if (!it->value().is_object())
        return absl::InvalidArgumentError("meta must be a map of strings");
      for (const auto& [k, v] : it->value().as_object()) {
        if (!v.is_string()) return absl::InvalidArgumentError("meta must be a map of strings");
      }
      e.meta = it->value().as_object();
    }
    // TTLs: explicit_max_ttl is a hard cap; periodic tokens live by their period; otherwise the
    // requested TTL (or the mount's default), never past the mount's maximum. A period, too,
    // is capped at that maximum (Vault's CalculateTTL). Durations are at most ~292 years
    // (GetDurationSeconds) and every expiry is a checked sum.
    ASSIGN_OR_RETURN(auto ttl, core::GetDurationSeconds(req.data, "ttl"));
    ASSIGN_OR_RETURN(auto explicit_max, core::GetDurationSeconds(req.data, "explicit_max_ttl"));
    const Ttls limits = MountTtls(req);
    const int64_t now = Now();
    e.explicit_max_ttl = explicit_max.value_or(0);
    // A batch token too is capped by the role's hard limit (as its lifetime, not a field).
    if (role && role->token_explicit_max_ttl > 0) {
      e.explicit_max_ttl = e.explicit_max_ttl == 0
                               ? role->token_explicit_max_ttl
                               : std::min(e.explicit_max_ttl, role->token_explicit_max_ttl);
    }
    e.period = std::min(period.value_or(0), limits.max_ttl);
    int64_t lease = 0;
    if (e.period > 0) {
      lease = e.period;
    } else if (ttl && *ttl > 0) {
      lease = *ttl;
    } else if (!e.IsRoot()) {
      lease = limits.default_ttl;  // a root-policy child without a TTL never expires
    }
    if (e.period == 0 && lease > limits.max_ttl) lease = limits.max_ttl;
    if (e.explicit_max_ttl > 0)
      lease = lease == 0 ? e.explicit_max_ttl : std::min(lease, e.explicit_max_ttl);
    e.creation_ttl = lease;
    e.expire_unix = 0;
    if (lease > 0) RETURN_IF_ERROR(core::AddSeconds(now, lease, &e.expire_unix));
    if (e.explicit_max_ttl > 0) {
      const int64_t hard =
          e.period > 0 ? e.explicit_max_ttl : std::min(e.explicit_max_ttl, limits.max_ttl);
      RETURN_IF_ERROR(core::AddSeconds(now, hard, &e.max_expire_unix));
    } else if (e.period == 0 && lease > 0) {
      RETURN_IF_ERROR(core::AddSeconds(now, limits.max_ttl, &e.max_expire_unix));
    }
    std::string token;
    if (batch) {
      e.mount_accessor = req.mount != nullptr ? req.mount->accessor : "";
      ASSIGN_OR_RETURN(token, Tokens().CreateBatch(e));
    } else {
      ASSIGN_OR_RETURN(token, Tokens().Create(e, id.value_or("")));
    }
    // The TTL just granted (not recomputed from the clock, which may have ticked meanwhile).
    r.auth = core::TokenAuthResponse(e, token, e.creation_ttl);
    return r;
  }

  absl::StatusOr<Response> Renew(Request& req, TokenEntry& e, const std::string& token) {
    if (e.IsBatch()) return absl::InvalidArgumentError("batch tokens cannot be renewed");
    if (e.expire_unix == 0) {  // tokens without a TTL have nothing to renew
      Response r;
      r.auth = core::TokenAuthResponse(e, token, 0);
      return r;
    }
    if (!e.renewable) return absl::InvalidArgumentError("lease is not renewable");
    ASSIGN_OR_RETURN(auto increment, core::GetDurationSeconds(req.data, "increment"));
    const int64_t now = Now();
    int64_t ttl = e.period > 0 ? std::min(e.period, MountTtls(req).max_ttl)
                               : (increment && *increment > 0 ? *increment : e.creation_ttl);
    int64_t until = 0;
    RETURN_IF_ERROR(core::AddSeconds(now, ttl, &until));
    Response r;
    if (e.max_expire_unix != 0 && until > e.max_expire_unix) {
      const int64_t capped = std::max<int64_t>(0, e.max_expire_unix - now);
      r.warnings.push_back(absl::StrCat(
          "TTL of \"", core::FormatGoDuration(ttl), "\" exceeded the effective max_ttl of \"",
          core::FormatGoDuration(capped), "\"; TTL value is capped accordingly"));
      ttl = capped;
    }
    int64_t expire_unix = 0;
    RETURN_IF_ERROR(core::AddSeconds(now, ttl, &expire_unix));
    // Only the renewal's own fields change, on the entry as stored now: a revocation or a use
    // that ran meanwhile is never undone (NotFound: the token is gone).
    absl::Status updated = Tokens().Modify(e.id_hash, [&](TokenEntry& fresh) {
      fresh.expire_unix = expire_unix;
      fresh.last_renewal_unix = now;
      e = fresh;
      return absl::OkStatus();
    });
    if (absl::IsNotFound(updated)) return absl::InvalidArgumentError("token not found");
    RETURN_IF_ERROR(updated);
    r.auth = core::TokenAuthResponse(e, token, ttl);
    return r;
  }

  core::Core* core_;
};

}  // namespace

std::unique_ptr<core::Backend> MakeTokenBackend(core::Core* core) {
  return std::make_unique<TokenBackend>(core);
}

}  // namespace strongroom::engines
