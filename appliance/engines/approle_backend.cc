#include "appliance/engines/approle_backend.h"

#include <arpa/inet.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <mutex>
#include <optional>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "appliance/core/core.h"
#include "appliance/core/token_store.h"
#include "appliance/engines/routes.h"
#include "appliance/engines/token_params.h"
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

constexpr char kSaltKey[] = "salt";
constexpr char kRolePrefix[] = "role/";
constexpr char kRoleIdPrefix[] = "role_id/";
constexpr char kSecretPrefix[] = "secret_id/";   // secret_id/<role>/<hmac(secret id)>
constexpr char kAccessorPrefix[] = "accessor/";  // accessor/<role>/<accessor> -> hmac
constexpr char kInvalidCredentials[] = "invalid role or secret ID";

// A CIDR block ("10.0.0.0/8", "::1/128") or a bare address (all bits).
struct Cidr {
  bool v6 = false;
  uint8_t net[16] = {};
  int bits = 0;
};

std::optional<Cidr> ParseCidr(const std::string& text) {
  std::vector<std::string> parts = absl::StrSplit(text, '/');
  Cidr c;
  c.v6 = parts[0].find(':') != std::string::npos;
  const int max_bits = c.v6 ? 128 : 32;
  c.bits = max_bits;
  if (parts.size() > 2 || inet_pton(c.v6 ? AF_INET6 : AF_INET, parts[0].c_str(), c.net) != 1 ||
      (parts.size() == 2 &&
       (!absl::SimpleAtoi(parts[1], &c.bits) || c.bits < 0 || c.bits > max_bits))) {
    return std::nullopt;
  }
  return c;
}

// An address inside one of `cidrs`. Empty list: no restriction.
bool AddressAllowed(const std::string& address, const std::vector<std::string>& cidrs) {
  if (cidrs.empty()) return true;
  const std::optional<Cidr> addr = ParseCidr(address);
  if (!addr || addr->bits != (addr->v6 ? 128 : 32)) return false;
  for (const auto& text : cidrs) {
    const std::optional<Cidr> c = ParseCidr(text);
    if (!c || c->v6 != addr->v6) continue;
    bool match = true;
    for (int i = 0; i < c->bits && match; ++i) {
      const uint8_t mask = static_cast<uint8_t>(0x80 >> (i % 8));
      match = (addr->net[i / 8] & mask) == (c->net[i / 8] & mask);
    }
    if (match) return true;
  }
  return false;
}

absl::Status CheckCidrs(const std::vector<std::string>& cidrs) {
  for (const auto& c : cidrs) {
    if (!ParseCidr(c)) return Bad(absl::StrCat("invalid CIDR block \"", c, "\""));
  }
  return absl::OkStatus();
}

struct Role {
  std::string name;
  std::string role_id;
  bool bind_secret_id = true;
  std::vector<std::string> secret_id_bound_cidrs;
  int64_t secret_id_num_uses = 0;
  int64_t secret_id_ttl = 0;
  TokenParams token;

  object ToJson(bool with_id) const {
    object o;
    if (with_id) {
      o["name"] = name;
      o["role_id"] = role_id;
    }
    o["bind_secret_id"] = bind_secret_id;
    o["secret_id_bound_cidrs"] = ToArray(secret_id_bound_cidrs);
    o["secret_id_num_uses"] = secret_id_num_uses;
    o["secret_id_ttl"] = secret_id_ttl;
    token.AddTo(o);
    o["local_secret_ids"] = false;
    return o;
  }
};

absl::StatusOr<Role> RoleFromJson(const object& o) {
  Role r;
  auto str = [&](const char* k) {
    return core::GetString(o, k).value_or(std::nullopt).value_or("");
  };
  auto num = [&](const char* k) { return core::GetInt(o, k).value_or(std::nullopt).value_or(0); };
  auto list = [&](const char* k) {
    return core::GetStringList(o, k).value_or(std::nullopt).value_or(std::vector<std::string>{});
  };
  r.name = str("name");
  r.role_id = str("role_id");
  r.bind_secret_id = core::GetBool(o, "bind_secret_id").value_or(std::nullopt).value_or(true);
  r.secret_id_bound_cidrs = list("secret_id_bound_cidrs");
  r.secret_id_num_uses = num("secret_id_num_uses");
  r.secret_id_ttl = num("secret_id_ttl");
  r.token = TokenParams::FromStored(o);
  if (r.name.empty() || r.role_id.empty()) return absl::DataLossError("approle role corrupt");
  return r;
}

class AppRoleBackend final : public core::Backend {
 public:
  AppRoleBackend(const core::MountEntry& entry, core::Core* core) : mount_(entry), core_(core) {}

  std::span<const core::Route> Routes() const override { return AppRoleRoutes(); }

  bool IsUnauthenticatedPath(const std::string& rel) const override { return rel == "login"; }

  // Role names are case-insensitive, as in Vault: role/<name>[/...] is canonically lower case.
  std::string NormalizePath(const std::string& rel) const override {
    return core::LowerSegmentAfter(rel, kRolePrefix);
  }

  absl::Status Initialize(storage::Storage& view) override {
    return view.Put(kSaltKey, core::RandomHex(32));
  }

  // rel_path is canonical (NormalizePath): the name here is the one Handle writes.
  absl::StatusOr<bool> Exists(const Request& req) override {
    if (absl::StartsWith(req.rel_path, "role/")) {
      std::vector<std::string> parts = absl::StrSplit(req.rel_path.substr(5), '/');
      if (parts.size() == 1) {
        ASSIGN_OR_RETURN(auto raw, req.storage->Get(kRolePrefix + parts[0]));
        return raw.has_value();
      }
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
    if (p == "role" || p == "role/") {
      if (req.operation != Operation::kList) return core::UnsupportedOperation();
      ASSIGN_OR_RETURN(auto names, req.storage->List(kRolePrefix));
      if (names.empty()) return absl::NotFoundError("");
      object d;
      d["keys"] = ToArray(names);
      return Response::Data(std::move(d));
    }
    if (!absl::StartsWith(p, "role/")) return absl::NotFoundError("");
    std::vector<std::string> parts = absl::StrSplit(p.substr(5), absl::MaxSplits('/', 1));
    const std::string& name = parts[0];  // lower case already (NormalizePath)
    if (name.empty()) return absl::NotFoundError("");
    if (parts.size() == 1) return OneRole(req, name);
    const std::string& sub = parts[1];
    if (sub == "role-id") return RoleId(req, name);
    if (sub == "secret-id" || sub == "secret-id/") {
      if (req.operation == Operation::kList) return ListSecretIds(req, name);
      if (!write) return core::UnsupportedOperation();
      return GenerateSecretId(req, name);
    }
    if (!write) return core::UnsupportedOperation();
    if (sub == "secret-id/lookup") return LookupSecretId(req, name, /*by_accessor=*/false, false);
    if (sub == "secret-id/destroy") return LookupSecretId(req, name, false, /*destroy=*/true);
    if (sub == "secret-id-accessor/lookup") return LookupSecretId(req, name, true, false);
    if (sub == "secret-id-accessor/destroy") return LookupSecretId(req, name, true, true);
    return absl::NotFoundError("");
  }

 private:
  absl::StatusOr<std::string> HashOf(storage::Storage& s, std::string_view secret) {
    ASSIGN_OR_RETURN(auto salt, s.Get(kSaltKey));
    if (!salt) return absl::DataLossError("approle salt missing");
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), salt->data(), static_cast<int>(salt->size()),
         reinterpret_cast<const unsigned char*>(secret.data()), secret.size(), mac, &len);
    return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(mac), len));
  }

  absl::StatusOr<std::optional<Role>> LoadRole(storage::Storage& s, const std::string& name) {
    ASSIGN_OR_RETURN(auto raw, s.Get(kRolePrefix + name));
    if (!raw) return std::optional<Role>();
    ASSIGN_OR_RETURN(auto o, core::ParseObject(*raw));
    ASSIGN_OR_RETURN(auto r, RoleFromJson(o));
    return std::optional<Role>(std::move(r));
  }

  absl::StatusOr<Role> MustRole(storage::Storage& s, const std::string& name) {
    ASSIGN_OR_RETURN(auto r, LoadRole(s, name));
    if (!r) return Bad(absl::StrCat("role \"", name, "\" does not exist"));
    return *r;
  }

  absl::StatusOr<Response> OneRole(Request& req, const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    switch (req.operation) {
      case Operation::kRead: {
        ASSIGN_OR_RETURN(auto r, LoadRole(*req.storage, name));
        if (!r) return absl::NotFoundError("");
        return Response::Data(r->ToJson(false));
      }
      case Operation::kCreate:
      case Operation::kUpdate: {
        ASSIGN_OR_RETURN(auto existing, LoadRole(*req.storage, name));
        Role r = existing ? *existing : Role{};
        r.name = name;
        const object& d = req.data;
        ASSIGN_OR_RETURN(auto bind, core::GetBool(d, "bind_secret_id"));
        if (bind) r.bind_secret_id = *bind;
        ASSIGN_OR_RETURN(auto cidrs, core::GetStringList(d, "secret_id_bound_cidrs"));
        if (!cidrs) {
          ASSIGN_OR_RETURN(cidrs, core::GetStringList(d, "bound_cidr_list"));
        }
        if (cidrs) {
          RETURN_IF_ERROR(CheckCidrs(*cidrs));
          r.secret_id_bound_cidrs = *cidrs;
        }
        ASSIGN_OR_RETURN(auto uses, core::GetInt(d, "secret_id_num_uses"));
        if (uses) {
          if (*uses < 0) return Bad("secret_id_num_uses cannot be negative");
          r.secret_id_num_uses = *uses;
        }
        ASSIGN_OR_RETURN(auto sttl, core::GetDurationSeconds(d, "secret_id_ttl"));
        if (sttl) r.secret_id_ttl = *sttl;
        RETURN_IF_ERROR(r.token.Update(d));
        if (!r.bind_secret_id && r.secret_id_bound_cidrs.empty()) {
          return Bad("at least one constraint should be enabled on the role");
        }
        std::vector<storage::BatchOp> ops;
        if (r.role_id.empty()) {
          ASSIGN_OR_RETURN(auto rid, core::GetString(d, "role_id"));
          r.role_id = rid && !rid->empty() ? *rid : core::NewUuid();
          ASSIGN_OR_RETURN(std::string h, HashOf(*req.storage, r.role_id));
          ASSIGN_OR_RETURN(auto taken, req.storage->Get(kRoleIdPrefix + h));
          if (taken) return Bad("role_id already in use");
          ops.push_back(storage::BatchOp::Put(kRoleIdPrefix + h, name));
        }
        ops.push_back(storage::BatchOp::Put(kRolePrefix + name, core::Serialize(r.ToJson(true))));
        RETURN_IF_ERROR(req.storage->Apply(ops));
        return Response::Empty();
      }
      case Operation::kDelete: {
        ASSIGN_OR_RETURN(auto r, LoadRole(*req.storage, name));
        if (!r) return Response::Empty();
        ASSIGN_OR_RETURN(std::string h, HashOf(*req.storage, r->role_id));
        RETURN_IF_ERROR(
            storage::DeletePrefix(*req.storage, absl::StrCat(kSecretPrefix, name, "/")));
        RETURN_IF_ERROR(
            storage::DeletePrefix(*req.storage, absl::StrCat(kAccessorPrefix, name, "/")));
        RETURN_IF_ERROR(req.storage->Apply({storage::BatchOp::Delete(kRoleIdPrefix + h),
                                            storage::BatchOp::Delete(kRolePrefix + name)}));
        return Response::Empty();
      }
      default:
        return core::UnsupportedOperation();
    }
  }

  absl::StatusOr<Response> RoleId(Request& req, const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(Role r, MustRole(*req.storage, name));
    if (req.operation == Operation::kRead) {
      object d;
      d["role_id"] = r.role_id;
      return Response::Data(std::move(d));
    }
    if (req.operation != Operation::kUpdate && req.operation != Operation::kCreate) {
      return core::UnsupportedOperation();
    }
    ASSIGN_OR_RETURN(auto rid, core::GetString(req.data, "role_id"));
    if (!rid || rid->empty()) return Bad("missing role_id");
    ASSIGN_OR_RETURN(std::string old_h, HashOf(*req.storage, r.role_id));
    ASSIGN_OR_RETURN(std::string new_h, HashOf(*req.storage, *rid));
    ASSIGN_OR_RETURN(auto taken, req.storage->Get(kRoleIdPrefix + new_h));
    if (taken && *taken != name) return Bad("role_id already in use");
    r.role_id = *rid;
    RETURN_IF_ERROR(req.storage->Apply(
        {storage::BatchOp::Delete(kRoleIdPrefix + old_h),
         storage::BatchOp::Put(kRoleIdPrefix + new_h, name),
         storage::BatchOp::Put(kRolePrefix + name, core::Serialize(r.ToJson(true)))}));
    return Response::Empty();
  }

  absl::StatusOr<Response> GenerateSecretId(Request& req, const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(Role r, MustRole(*req.storage, name));
    ASSIGN_OR_RETURN(auto cidrs, core::GetStringList(req.data, "cidr_list"));
    std::vector<std::string> cidr_list = cidrs.value_or(std::vector<std::string>{});
    RETURN_IF_ERROR(CheckCidrs(cidr_list));
    ASSIGN_OR_RETURN(auto uses, core::GetInt(req.data, "num_uses"));
    int64_t num_uses = uses.value_or(r.secret_id_num_uses);
    if (num_uses < 0) return Bad("num_uses cannot be negative");
    if (r.secret_id_num_uses > 0 && (num_uses == 0 || num_uses > r.secret_id_num_uses)) {
      num_uses = r.secret_id_num_uses;  // the role's limit is the ceiling
    }
    ASSIGN_OR_RETURN(auto ttl_in, core::GetDurationSeconds(req.data, "ttl"));
    int64_t ttl = ttl_in.value_or(r.secret_id_ttl);
    if (r.secret_id_ttl > 0 && (ttl == 0 || ttl > r.secret_id_ttl)) ttl = r.secret_id_ttl;
    object metadata;
    ASSIGN_OR_RETURN(auto meta, core::GetString(req.data, "metadata"));
    if (meta && !meta->empty()) {
      auto parsed = core::ParseObject(*meta);
      if (!parsed.ok()) return Bad("failed to parse metadata: it must be a JSON object of strings");
      for (const auto& [k, v] : *parsed) {
        if (!v.is_string()) return Bad("metadata values must be strings");
        metadata[k] = v;
      }
    }
    const std::string secret_id = core::NewUuid();
    const std::string accessor = core::NewUuid();
    const int64_t now = absl::ToUnixSeconds(core_->Now());
    object s;
    s["secret_id_accessor"] = accessor;
    s["secret_id_num_uses"] = num_uses;
    s["secret_id_ttl"] = ttl;
    s["creation_unix"] = now;
    int64_t expires = 0;
    if (ttl > 0) RETURN_IF_ERROR(core::AddSeconds(now, ttl, &expires));
    s["expiration_unix"] = expires;
    s["cidr_list"] = ToArray(cidr_list);
    s["metadata"] = metadata;
    ASSIGN_OR_RETURN(std::string h, HashOf(*req.storage, secret_id));
    RETURN_IF_ERROR(req.storage->Apply(
        {storage::BatchOp::Put(absl::StrCat(kSecretPrefix, name, "/", h), core::Serialize(s)),
         storage::BatchOp::Put(absl::StrCat(kAccessorPrefix, name, "/", accessor), h)}));
    object d;
    d["secret_id"] = secret_id;
    d["secret_id_accessor"] = accessor;
    d["secret_id_ttl"] = ttl;
    d["secret_id_num_uses"] = num_uses;
    return Response::Data(std::move(d));
  }

  absl::StatusOr<Response> ListSecretIds(Request& req, const std::string& name) {
    RETURN_IF_ERROR(MustRole(*req.storage, name).status());
    ASSIGN_OR_RETURN(auto accessors, req.storage->List(absl::StrCat(kAccessorPrefix, name, "/")));
    if (accessors.empty()) return absl::NotFoundError("");
    object d;
    d["keys"] = ToArray(accessors);
    return Response::Data(std::move(d));
  }

  static object SecretIdInfo(const object& s) {
    object d;
    d["secret_id_accessor"] = s.at("secret_id_accessor");
    d["secret_id_num_uses"] = s.at("secret_id_num_uses");
    d["secret_id_ttl"] = s.at("secret_id_ttl");
    const int64_t created = s.at("creation_unix").to_number<int64_t>();
    const int64_t expires = s.at("expiration_unix").to_number<int64_t>();
    d["creation_time"] = core::FormatRfc3339Nano(absl::FromUnixSeconds(created));
    d["last_updated_time"] = d["creation_time"];
    d["expiration_time"] = expires == 0 ? core::FormatRfc3339Nano(absl::UnixEpoch())
                                        : core::FormatRfc3339Nano(absl::FromUnixSeconds(expires));
    d["cidr_list"] = s.at("cidr_list");
    d["token_bound_cidrs"] = array();
    d["metadata"] = s.at("metadata");
    return d;
  }

  absl::StatusOr<Response> LookupSecretId(Request& req, const std::string& name, bool by_accessor,
                                          bool destroy) {
    std::lock_guard<std::mutex> lock(mu_);
    RETURN_IF_ERROR(MustRole(*req.storage, name).status());
    std::string h;
    if (by_accessor) {
      ASSIGN_OR_RETURN(auto acc, core::GetString(req.data, "secret_id_accessor"));
      if (!acc || acc->empty()) return Bad("missing secret_id_accessor");
      ASSIGN_OR_RETURN(auto found,
                       req.storage->Get(absl::StrCat(kAccessorPrefix, name, "/", *acc)));
      if (!found) {
        if (destroy) return Response::Empty();
        return Bad(
            absl::StrCat("failed to find accessor entry for secret_id_accessor: \"", *acc, "\""));
      }
      h = *found;
    } else {
      ASSIGN_OR_RETURN(auto sid, core::GetString(req.data, "secret_id"));
      if (!sid || sid->empty()) return Bad("missing secret_id");
      ASSIGN_OR_RETURN(h, HashOf(*req.storage, *sid));
    }
    const std::string key = absl::StrCat(kSecretPrefix, name, "/", h);
    ASSIGN_OR_RETURN(auto raw, req.storage->Get(key));
    if (!raw) {
      if (destroy) return Response::Empty();
      return absl::NotFoundError("");
    }
    ASSIGN_OR_RETURN(auto s, core::ParseObject(*raw));
    if (destroy) {
      const std::string acc(s.at("secret_id_accessor").as_string());
      RETURN_IF_ERROR(req.storage->Apply(
          {storage::BatchOp::Delete(key),
           storage::BatchOp::Delete(absl::StrCat(kAccessorPrefix, name, "/", acc))}));
      return Response::Empty();
    }
    return Response::Data(SecretIdInfo(s));
  }

  absl::StatusOr<Response> Login(Request& req) {
    ASSIGN_OR_RETURN(auto role_id, core::GetString(req.data, "role_id"));
    if (!role_id || role_id->empty()) return Bad("missing role_id");
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(std::string rh, HashOf(*req.storage, *role_id));
    ASSIGN_OR_RETURN(auto name, req.storage->Get(kRoleIdPrefix + rh));
    if (!name) {
      LogInfo("approle login refused (%s): unknown role_id", req.remote_address);
      return Bad(kInvalidCredentials);
    }
    ASSIGN_OR_RETURN(Role r, MustRole(*req.storage, *name));
    object metadata;
    if (r.bind_secret_id) {
      ASSIGN_OR_RETURN(auto sid, core::GetString(req.data, "secret_id"));
      if (!sid || sid->empty()) return Bad("missing secret_id");
      ASSIGN_OR_RETURN(std::string h, HashOf(*req.storage, *sid));
      const std::string key = absl::StrCat(kSecretPrefix, r.name, "/", h);
      ASSIGN_OR_RETURN(auto raw, req.storage->Get(key));
      if (!raw) {
        LogInfo("approle login refused for role %s (%s): unknown secret_id", r.name,
                req.remote_address);
        return Bad(kInvalidCredentials);
      }
      ASSIGN_OR_RETURN(auto s, core::ParseObject(*raw));
      const std::string acc(s.at("secret_id_accessor").as_string());
      const std::string acc_key = absl::StrCat(kAccessorPrefix, r.name, "/", acc);
      const int64_t now = absl::ToUnixSeconds(core_->Now());
      const int64_t expires = s.at("expiration_unix").to_number<int64_t>();
      if (expires != 0 && now >= expires) {
        RETURN_IF_ERROR(
            req.storage->Apply({storage::BatchOp::Delete(key), storage::BatchOp::Delete(acc_key)}));
        LogInfo("approle login refused for role %s (%s): secret_id expired", r.name,
                req.remote_address);
        return Bad(kInvalidCredentials);
      }
      std::vector<std::string> cidrs;
      for (const auto& c : s.at("cidr_list").as_array()) cidrs.emplace_back(c.as_string());
      if (!AddressAllowed(req.remote_address, cidrs) ||
          !AddressAllowed(req.remote_address, r.secret_id_bound_cidrs)) {
        LogInfo("approle login refused for role %s: source address %s outside the CIDR binding",
                r.name, req.remote_address);
        return Bad(absl::StrCat("source address \"", req.remote_address,
                                "\" unauthorized through CIDR restrictions on the secret ID"));
      }
      const int64_t uses = s.at("secret_id_num_uses").to_number<int64_t>();
      if (uses == 1) {  // its last use
        RETURN_IF_ERROR(
            req.storage->Apply({storage::BatchOp::Delete(key), storage::BatchOp::Delete(acc_key)}));
      } else if (uses > 1) {
        s["secret_id_num_uses"] = uses - 1;
        RETURN_IF_ERROR(req.storage->Put(key, core::Serialize(s)));
      }
      metadata = s.at("metadata").as_object();
    } else if (!AddressAllowed(req.remote_address, r.secret_id_bound_cidrs)) {
      return Bad(absl::StrCat("source address \"", req.remote_address,
                              "\" unauthorized through CIDR restrictions on the role"));
    }

    // An orphan service token with the role's policies and TTLs, tied to the entity whose
    // alias on this mount is the role ID (as in Vault).
    core::TokenEntry e;
    const int64_t ttl = r.token.Apply(e, core_->options(), absl::ToUnixSeconds(core_->Now()));
    e.display_name = "approle";
    e.path = absl::StrCat(mount_.path, "login");
    e.role = r.name;
    metadata["role_name"] = r.name;
    e.meta = metadata;
    // The alias is shared by every login of the role (its name is the role ID), so it holds the
    // role name only, as in Vault: a secret ID's metadata belongs to the token it logs in and
    // must not reach what templated policies read for every token of the role.
    core::LoginAlias alias{
        mount_.accessor, mount_.path, mount_.type, r.role_id, {{"role_name", r.name}}};
    ASSIGN_OR_RETURN(Response resp, core_->CompleteLogin(std::move(e), alias, ttl));
    LogInfo("approle login for role %s from %s", r.name, req.remote_address);
    return resp;
  }

  core::MountEntry mount_;  // path "auth/approle/", accessor, type
  core::Core* core_;
  std::mutex mu_;  // serialises read-modify-write of roles and secret IDs
};

}  // namespace

absl::StatusOr<std::unique_ptr<core::Backend>> MakeAppRoleBackend(const core::MountEntry& entry,
                                                                  core::Core* core) {
  return std::unique_ptr<core::Backend>(std::make_unique<AppRoleBackend>(entry, core));
}

}  // namespace strongroom::engines
