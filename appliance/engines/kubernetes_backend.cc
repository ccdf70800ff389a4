#include "appliance/engines/kubernetes_backend.h"

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "appliance/core/core.h"
#include "appliance/core/token_store.h"
#include "appliance/engines/jwt.h"
#include "appliance/engines/routes.h"
#include "appliance/engines/token_params.h"
#include "appliance/engines/token_review.h"
#include "base/log.h"
#include "base/status_macros.h"

namespace strongroom::engines {
namespace {

using core::Bad;
using core::Operation;
using core::Request;
using core::Response;
using core::ToArray;
using core::json::array;
using core::json::object;
using core::json::value;

constexpr char kConfigKey[] = "config";
constexpr char kRolePrefix[] = "role/";
constexpr char kDefaultIssuer[] = "kubernetes/serviceaccount";
constexpr char kPodCaFile[] = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
constexpr char kPodTokenFile[] = "/var/run/secrets/kubernetes.io/serviceaccount/token";
constexpr char kUnauthorized401[] =
    "lookup failed: service account unauthorized; this could mean it has been deleted or "
    "recreated with a new token";

std::vector<std::string> StoredList(const object& o, std::string_view key) {
  return core::GetStringList(o, key).value_or(std::nullopt).value_or(std::vector<std::string>{});
}

// `*` matches any run of characters (Vault's glob for bound names and namespaces).
bool GlobMatch(absl::string_view pattern, absl::string_view s) {
  const size_t star = pattern.find('*');
  if (star == absl::string_view::npos) return pattern == s;
  if (!absl::StartsWith(s, pattern.substr(0, star))) return false;
  absl::string_view rest_pattern = pattern.substr(star + 1);
  absl::string_view rest = s.substr(star);
  for (size_t i = 0; i <= rest.size(); ++i) {
    if (GlobMatch(rest_pattern, rest.substr(i))) return true;
  }
  return false;
}

bool AnyGlobMatch(const std::vector<std::string>& patterns, const std::string& s) {
  for (const auto& p : patterns) {
    if (GlobMatch(p, s)) return true;
  }
  return false;
}

// A whole small file, or "" when it cannot be read (the pod files are optional).
std::string ReadSmallFile(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream out;
  out << in.rdbuf();
  std::string s = out.str();
  return s.size() > (1 << 20) ? "" : s;
}

// How many certificates a PEM text holds.
int CountCertificates(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  int n = 0;
  while (true) {
    X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (cert == nullptr) break;
    X509_free(cert);
    ++n;
  }
  return n;
}

struct Config {
  std::string kubernetes_host;
  std::string kubernetes_ca_cert;
  std::string token_reviewer_jwt;
  std::vector<std::string> pem_keys;
  std::string issuer;
  bool disable_iss_validation = true;
  // disable_iss_validation=true was written, not defaulted: in local-only mode the one way to
  // accept tokens of any issuer.
  bool iss_validation_disabled_explicitly = false;
  bool disable_local_ca_jwt = false;

  object Stored() const {
    object o = Public();
    o["token_reviewer_jwt"] = token_reviewer_jwt;
    o["iss_validation_disabled_explicitly"] = iss_validation_disabled_explicitly;
    return o;
  }
  object Public() const {
    object o;
    o["kubernetes_host"] = kubernetes_host;
    o["kubernetes_ca_cert"] = kubernetes_ca_cert;
    o["pem_keys"] = ToArray(pem_keys);
    o["issuer"] = issuer;
    o["disable_iss_validation"] = disable_iss_validation;
    o["disable_local_ca_jwt"] = disable_local_ca_jwt;
    o["token_reviewer_jwt_set"] = !token_reviewer_jwt.empty();
    o["use_annotations_as_alias_metadata"] = false;
    return o;
  }
  static Config FromStored(const object& o) {
    Config c;
    auto str = [&](const char* k) {
      return core::GetString(o, k).value_or(std::nullopt).value_or("");
    };
    c.kubernetes_host = str("kubernetes_host");
    c.kubernetes_ca_cert = str("kubernetes_ca_cert");
    c.token_reviewer_jwt = str("token_reviewer_jwt");
    c.pem_keys = StoredList(o, "pem_keys");
    c.issuer = str("issuer");
    c.disable_iss_validation =
        core::GetBool(o, "disable_iss_validation").value_or(std::nullopt).value_or(true);
    c.iss_validation_disabled_explicitly = core::GetBool(o, "iss_validation_disabled_explicitly")
                                               .value_or(std::nullopt)
                                               .value_or(false);
    c.disable_local_ca_jwt =
        core::GetBool(o, "disable_local_ca_jwt").value_or(std::nullopt).value_or(false);
    return c;
  }
  // Without an API server to ask, every check is made here from the token alone.
  bool local_only() const { return kubernetes_host.empty(); }
  // Local-only mode checks the issuer unless the operator opted out explicitly; a configuration
  // that does neither (written before this rule) is refused at login.
  bool local_issuer_settled() const {
    return !issuer.empty() || (disable_iss_validation && iss_validation_disabled_explicitly);
  }
};

struct Role {
  std::vector<std::string> names;       // bound_service_account_names
  std::vector<std::string> namespaces;  // bound_service_account_namespaces
  std::string audience;
  std::string alias_name_source = "serviceaccount_uid";
  TokenParams token;

  object ToJson() const {
    object o;
    o["bound_service_account_names"] = ToArray(names);
    o["bound_service_account_namespaces"] = ToArray(namespaces);
    o["audience"] = audience;
    o["alias_name_source"] = alias_name_source;
    token.AddTo(o);
    return o;
  }
  static Role FromStored(const object& o) {
    Role r;
    r.names = StoredList(o, "bound_service_account_names");
    r.namespaces = StoredList(o, "bound_service_account_namespaces");
    r.audience = core::GetString(o, "audience").value_or(std::nullopt).value_or("");
    r.alias_name_source = core::GetString(o, "alias_name_source")
                              .value_or(std::nullopt)
                              .value_or("serviceaccount_uid");
    r.token = TokenParams::FromStored(o);
    return r;
  }
};

absl::Status CheckBoundList(const std::vector<std::string>& list, const char* field) {
  if (list.empty()) return Bad(absl::StrCat("\"", field, "\" can not be empty"));
  if (list.size() > 1 && std::find(list.begin(), list.end(), "*") != list.end()) {
    return Bad(absl::StrCat("can not mix \"*\" with values in \"", field, "\""));
  }
  return absl::OkStatus();
}

class KubernetesBackend final : public core::Backend {
 public:
  KubernetesBackend(const core::MountEntry& entry, core::Core* core) : mount_(entry), core_(core) {}

  std::span<const core::Route> Routes() const override { return KubernetesRoutes(); }

  bool IsUnauthenticatedPath(const std::string& rel) const override { return rel == "login"; }

  // Role names are case-insensitive, as in Vault: role/<name> is canonically lower case.
  std::string NormalizePath(const std::string& rel) const override {
    return core::LowerSegmentAfter(rel, kRolePrefix);
  }

  // rel_path is canonical (NormalizePath): the key here is the one RolePath writes.
  absl::StatusOr<bool> Exists(const Request& req) override {
    if (absl::StartsWith(req.rel_path, kRolePrefix)) {
      ASSIGN_OR_RETURN(auto raw, req.storage->Get(req.rel_path));
      return raw.has_value();
    }
    if (req.rel_path == "config") {
      ASSIGN_OR_RETURN(auto raw, req.storage->Get(kConfigKey));
      return raw.has_value();
    }
    return true;
  }

  absl::StatusOr<Response> Handle(Request& req) override {
    const std::string& p = req.rel_path;
    const bool write = core::IsWrite(req);
    if (p == "login") {
      if (!write) return core::UnsupportedOperation();
      return Login(req);
    }
    if (p == "config") return ConfigPath(req);
    if (p == "role" || p == "role/") {
      if (req.operation != Operation::kList) return core::UnsupportedOperation();
      ASSIGN_OR_RETURN(auto names, req.storage->List(kRolePrefix));
      if (names.empty()) return absl::NotFoundError("");
      object d;
      d["keys"] = ToArray(names);
      return Response::Data(std::move(d));
    }
    if (absl::StartsWith(p, kRolePrefix)) {
      const std::string name = p.substr(5);
      if (name.empty() || name.find('/') != std::string::npos) return absl::NotFoundError("");
      return RolePath(req, name);
    }
    return absl::NotFoundError("");
  }

 private:
  absl::StatusOr<std::optional<Config>> LoadConfig(storage::Storage& s) {
    ASSIGN_OR_RETURN(auto raw, s.Get(kConfigKey));
    if (!raw) return std::optional<Config>();
    ASSIGN_OR_RETURN(auto o, core::ParseObject(*raw));
    return std::optional<Config>(Config::FromStored(o));
  }

  absl::StatusOr<Response> ConfigPath(Request& req) {
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(auto existing, LoadConfig(*req.storage));
    if (req.operation == Operation::kRead) {
      if (!existing) return absl::NotFoundError("");
      return Response::Data(existing->Public());
    }
    if (req.operation == Operation::kDelete) {
      RETURN_IF_ERROR(req.storage->Delete(kConfigKey));
      return Response::Empty();
    }
    if (req.operation != Operation::kUpdate && req.operation != Operation::kCreate) {
      return core::UnsupportedOperation();
    }
    // A write replaces the whole configuration, as in Vault: fields left out get their defaults.
    Config c;
    const object& d = req.data;
    ASSIGN_OR_RETURN(auto host, core::GetString(d, "kubernetes_host"));
    if (host) c.kubernetes_host = std::string(absl::StripAsciiWhitespace(*host));
    ASSIGN_OR_RETURN(auto ca, core::GetString(d, "kubernetes_ca_cert"));
    if (ca) c.kubernetes_ca_cert = *ca;
    ASSIGN_OR_RETURN(auto reviewer, core::GetString(d, "token_reviewer_jwt"));
    if (reviewer) c.token_reviewer_jwt = *reviewer;
    ASSIGN_OR_RETURN(auto pems, core::GetStringList(d, "pem_keys"));
    if (pems) c.pem_keys = *pems;
    ASSIGN_OR_RETURN(auto issuer, core::GetString(d, "issuer"));
    if (issuer) c.issuer = *issuer;
    ASSIGN_OR_RETURN(auto no_iss, core::GetBool(d, "disable_iss_validation"));
    if (no_iss) c.disable_iss_validation = *no_iss;
    c.iss_validation_disabled_explicitly = no_iss.has_value() && *no_iss;
    ASSIGN_OR_RETURN(auto no_local, core::GetBool(d, "disable_local_ca_jwt"));
    if (no_local) c.disable_local_ca_jwt = *no_local;

    if (c.kubernetes_host.empty() && c.pem_keys.empty()) {
      return Bad(
          "no host provided: set kubernetes_host (TokenReview), or pem_keys for local-only "
          "validation");
    }
    if (!c.kubernetes_host.empty() && !absl::StartsWith(c.kubernetes_host, "https://")) {
      return Bad("kubernetes_host must be an https:// URL");
    }
    if (!c.kubernetes_ca_cert.empty() && CountCertificates(c.kubernetes_ca_cert) == 0) {
      return Bad("kubernetes_ca_cert: no PEM certificate found");
    }
    if (!c.pem_keys.empty()) {
      auto keys = jwt::KeySet::FromPem(c.pem_keys);
      if (!keys.ok()) return Bad(absl::StrCat("pem_keys: ", keys.status().message()));
    }
    if (c.local_only() && !c.local_issuer_settled()) {
      // No TokenReview: the issuer is all that tells this cluster's tokens from another's that
      // shares a signing key.
      return Bad(
          "local-only validation (no kubernetes_host) needs issuer, the iss claim of this "
          "cluster's service account tokens; set disable_iss_validation=true explicitly to accept "
          "any issuer");
    }
    RETURN_IF_ERROR(req.storage->Put(kConfigKey, core::Serialize(c.Stored())));
    return Response::Empty();
  }

  absl::StatusOr<std::optional<Role>> LoadRole(storage::Storage& s, const std::string& name) {
    ASSIGN_OR_RETURN(auto raw, s.Get(kRolePrefix + name));
    if (!raw) return std::optional<Role>();
    ASSIGN_OR_RETURN(auto o, core::ParseObject(*raw));
    return std::optional<Role>(Role::FromStored(o));
  }

  absl::StatusOr<Response> RolePath(Request& req, const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(auto existing, LoadRole(*req.storage, name));
    switch (req.operation) {
      case Operation::kRead:
        if (!existing) return absl::NotFoundError("");
        return Response::Data(existing->ToJson());
      case Operation::kDelete:
        RETURN_IF_ERROR(req.storage->Delete(kRolePrefix + name));
        return Response::Empty();
      case Operation::kCreate:
      case Operation::kUpdate:
        break;
      default:
        return core::UnsupportedOperation();
    }
    Role r = existing.value_or(Role{});
    const object& d = req.data;
    ASSIGN_OR_RETURN(auto names, core::GetStringList(d, "bound_service_account_names"));
    if (names) r.names = *names;
    ASSIGN_OR_RETURN(auto namespaces, core::GetStringList(d, "bound_service_account_namespaces"));
    if (namespaces) r.namespaces = *namespaces;
    ASSIGN_OR_RETURN(auto selector, core::GetString(d, "bound_service_account_namespace_selector"));
    if (selector && !selector->empty()) {
      return Bad(
          "bound_service_account_namespace_selector is not supported: list the namespaces in "
          "bound_service_account_namespaces");
    }
    ASSIGN_OR_RETURN(auto audience, core::GetString(d, "audience"));
    if (audience) r.audience = *audience;
    ASSIGN_OR_RETURN(auto source, core::GetString(d, "alias_name_source"));
    if (source) {
      if (*source != "serviceaccount_uid" && *source != "serviceaccount_name") {
        return Bad(absl::StrCat("invalid alias_name_source \"", *source,
                                "\": use serviceaccount_uid or serviceaccount_name"));
      }
      r.alias_name_source = *source;
    }
    RETURN_IF_ERROR(CheckBoundList(r.names, "bound_service_account_names"));
    RETURN_IF_ERROR(CheckBoundList(r.namespaces, "bound_service_account_namespaces"));
    RETURN_IF_ERROR(r.token.Update(d));
    RETURN_IF_ERROR(req.storage->Put(kRolePrefix + name, core::Serialize(r.ToJson())));
    return Response::Empty();
  }

  // A refused login: logged with the reason (never the JWT), answered with `status`.
  absl::Status Refuse(const Request& req, const std::string& role, absl::Status status,
                      absl::string_view detail = {}) {
    LogInfo("kubernetes login refused at %s for role %s from %s: %s%s%s", mount_.path, role,
            req.remote_address, std::string(status.message()), detail.empty() ? "" : ": ",
            std::string(detail));
    return status;
  }

  absl::StatusOr<Response> Login(Request& req) {
    ASSIGN_OR_RETURN(auto role_name, core::GetString(req.data, "role"));
    if (!role_name || role_name->empty()) return Refuse(req, "-", Bad("missing role"));
    ASSIGN_OR_RETURN(auto token, core::GetString(req.data, "jwt"));
    if (!token || token->empty()) return Refuse(req, *role_name, Bad("missing jwt"));
    const std::string name = absl::AsciiStrToLower(*role_name);  // from the body: no NormalizePath
    std::optional<Role> role;
    std::optional<Config> config;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ASSIGN_OR_RETURN(role, LoadRole(*req.storage, name));
      ASSIGN_OR_RETURN(config, LoadConfig(*req.storage));
    }
    if (!role) {
      return Refuse(req, name, Bad(absl::StrCat("invalid role name \"", *role_name, "\"")));
    }
    if (!config) return Refuse(req, name, Bad("kubernetes auth is not configured"));
    if (config->local_only()) {
      // Nothing but this check stands between the role and a token the key signed for any other
      // audience (another service's projected token) or by another issuer.
      if (!config->local_issuer_settled()) {
        return Refuse(req, name, absl::PermissionDeniedError("permission denied"),
                      "local-only validation without issuer: rewrite the configuration with "
                      "issuer (or disable_iss_validation=true explicitly)");
      }
      if (role->audience.empty()) {
        return Refuse(req, name, absl::PermissionDeniedError("permission denied"),
                      absl::StrCat("role ", name,
                                   " has no audience, which local-only validation (no "
                                   "kubernetes_host) requires"));
      }
    }

    // 1. The token itself: well formed (else 400), an accepted algorithm, signed by a
    //    configured key, in its validity window, right issuer and audience (else 403).
    // Trailing white space as read from a file is not part of the token.
    const std::string compact(absl::StripAsciiWhitespace(*token));
    auto parsed = jwt::Parse(compact);
    if (!parsed.ok()) return Refuse(req, name, parsed.status());
    const jwt::Jwt& j = *parsed;
    const auto denied = [&](absl::string_view why) {
      return Refuse(req, name, absl::PermissionDeniedError("permission denied"), why);
    };
    if (!config->pem_keys.empty()) {
      ASSIGN_OR_RETURN(auto keys, jwt::KeySet::FromPem(config->pem_keys));
      absl::Status verified = keys.Verify(j);
      if (!verified.ok()) return denied(verified.message());
    } else if (!absl::StartsWith(j.alg, "RS") && !absl::StartsWith(j.alg, "ES")) {
      return denied(
          absl::StrCat("JWT algorithm ", j.alg.empty() ? "(none)" : j.alg, " is not accepted"));
    }
    jwt::ClaimRules rules;
    rules.now_unix = absl::ToUnixSeconds(core_->Now());
    if (!config->disable_iss_validation || (config->local_only() && !config->issuer.empty())) {
      rules.issuer = config->issuer.empty() ? kDefaultIssuer : config->issuer;
    }
    if (!role->audience.empty()) rules.audiences = {role->audience};
    absl::Status claims_ok = jwt::ValidateClaims(j, rules);
    if (!claims_ok.ok()) return denied(claims_ok.message());
    if (config->local_only() && !j.claims.contains("exp")) {
      return denied("JWT has no expiry; local validation accepts only expiring (projected) tokens");
    }
    auto sa = jwt::ServiceAccountFromClaims(j.claims);
    if (!sa.ok()) return denied(sa.status().message());

    // 2. The role's bindings.
    if (!AnyGlobMatch(role->names, sa->name)) {
      return Refuse(req, name, absl::PermissionDeniedError("service account name not authorized"),
                    absl::StrCat(sa->namespace_, "/", sa->name));
    }
    if (!AnyGlobMatch(role->namespaces, sa->namespace_)) {
      return Refuse(req, name, absl::PermissionDeniedError("namespace not authorized"),
                    absl::StrCat(sa->namespace_, "/", sa->name));
    }

    // 3. The API server's word (TokenReview), unless configured for local validation only.
    if (!config->local_only()) {
      TokenReviewRequest review;
      review.host = config->kubernetes_host;
      review.ca_pem = config->kubernetes_ca_cert;
      review.bearer = config->token_reviewer_jwt;
      if (!config->disable_local_ca_jwt) {
        if (review.ca_pem.empty()) review.ca_pem = ReadSmallFile(kPodCaFile);
        if (review.bearer.empty()) {
          review.bearer = std::string(absl::StripAsciiWhitespace(ReadSmallFile(kPodTokenFile)));
        }
      }
      if (review.bearer.empty()) review.bearer = compact;  // the JWT reviews itself
      review.token = compact;
      if (!role->audience.empty()) {
        review.audiences = {role->audience};
      } else {
        review.audiences = JwtAudiences(j);
      }
      auto result = ReviewToken(review);
      if (!result.ok()) {
        if (result.status().message() == kUnauthorized401) {
          return Refuse(req, name, absl::PermissionDeniedError(kUnauthorized401));
        }
        return denied(absl::StrCat("TokenReview: ", result.status().message()));
      }
      absl::Status agrees = ReviewAgrees(*result, *sa, review.audiences);
      if (!agrees.ok()) return denied(absl::StrCat("TokenReview: ", agrees.message()));
    }

    // 4. The token: the role's policies and TTLs, the entity whose alias is this service account.
    core::TokenEntry e;
    const int64_t ttl = role->token.Apply(e, core_->options(), rules.now_unix);
    std::string prefix(absl::StripSuffix(absl::StripPrefix(mount_.path, "auth/"), "/"));
    std::replace(prefix.begin(), prefix.end(), '/', '-');
    e.display_name = absl::StrCat(prefix, "-", sa->namespace_, "-", sa->name);
    e.path = absl::StrCat(mount_.path, "login");
    e.role = name;
    core::LoginAlias alias{mount_.accessor,
                           mount_.path,
                           mount_.type,
                           role->alias_name_source == "serviceaccount_name"
                               ? absl::StrCat(sa->namespace_, "/", sa->name)
                               : sa->uid,
                           {}};
    alias.metadata = {{"service_account_name", sa->name},
                      {"service_account_namespace", sa->namespace_},
                      {"service_account_secret_name", sa->secret_name},
                      {"service_account_uid", sa->uid}};
    e.meta["role"] = name;
    for (const auto& [k, v] : alias.metadata) e.meta[k] = v;
    auto resp = core_->CompleteLogin(std::move(e), alias, ttl);
    if (!resp.ok()) return Refuse(req, name, resp.status());
    LogInfo("kubernetes login at %s for role %s: service account %s/%s from %s", mount_.path, name,
            sa->namespace_, sa->name, req.remote_address);
    return resp;
  }

  static std::vector<std::string> JwtAudiences(const jwt::Jwt& j) {
    std::vector<std::string> out;
    auto it = j.claims.find("aud");
    if (it == j.claims.end()) return out;
    if (it->value().is_string()) out.emplace_back(it->value().as_string());
    if (it->value().is_array()) {
      for (const auto& a : it->value().as_array()) {
        if (a.is_string()) out.emplace_back(a.as_string());
      }
    }
    return out;
  }

  // The API server's answer must name the same service account the token's claims name.
  static absl::Status ReviewAgrees(const TokenReviewResult& r, const jwt::ServiceAccount& sa,
                                   const std::vector<std::string>& wanted) {
    if (!r.error.empty()) return absl::PermissionDeniedError(r.error);
    if (!r.authenticated) return absl::PermissionDeniedError("not authenticated");
    std::vector<std::string> parts = absl::StrSplit(r.username, ':');
    if (parts.size() != 4 || parts[0] != "system" || parts[1] != "serviceaccount") {
      return absl::PermissionDeniedError("the user is not a service account");
    }
    if (parts[2] != sa.namespace_ || parts[3] != sa.name || r.uid != sa.uid) {
      return absl::PermissionDeniedError("the reviewed service account differs from the JWT's");
    }
    if (!wanted.empty()) {
      bool any = false;
      for (const auto& a : r.audiences) {
        any = any || std::find(wanted.begin(), wanted.end(), a) != wanted.end();
      }
      if (!any) return absl::PermissionDeniedError("audience mismatch");
    }
    return absl::OkStatus();
  }

  core::MountEntry mount_;
  core::Core* core_;
  std::mutex mu_;  // serialises read-modify-write of config and roles
};

}  // namespace

absl::StatusOr<std::unique_ptr<core::Backend>> MakeKubernetesBackend(const core::MountEntry& entry,
                                                                     core::Core* core) {
  return std::unique_ptr<core::Backend>(std::make_unique<KubernetesBackend>(entry, core));
}

}  // namespace strongroom::engines
