#include "appliance/engines/userpass_backend.h"

#include <algorithm>
#include <mutex>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "appliance/core/core.h"
#include "appliance/core/token_store.h"
#include "appliance/engines/password_hash.h"
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
using core::json::object;

constexpr char kUserPrefix[] = "user/";
constexpr char kInvalidCredentials[] = "invalid username or password";
constexpr size_t kMaxUsernameBytes = 256;

// Vault's GenericNameRegex: word characters, with '-', '.' and '@' inside.
bool ValidUsername(std::string_view n) {
  if (n.empty() || n.size() > kMaxUsernameBytes) return false;
  auto word = [](char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  if (!word(n.front()) || !word(n.back())) return false;
  return std::all_of(n.begin(), n.end(),
                     [&](char c) { return word(c) || c == '-' || c == '.' || c == '@'; });
}

struct User {
  std::string name;
  object password_hash;  // password_hash.h's stored form; never in a response
  TokenParams token;

  object Stored() const {
    object o;
    o["name"] = name;
    o["password_hash"] = password_hash;
    token.AddTo(o);
    return o;
  }
  // What a read shows: the token parameters (Vault's userpass read).
  object Public() const {
    object o;
    token.AddTo(o);
    return o;
  }
  static absl::StatusOr<User> FromStored(const object& o) {
    User u;
    u.name = core::GetString(o, "name").value_or(std::nullopt).value_or("");
    const auto* h = o.if_contains("password_hash");
    if (u.name.empty() || h == nullptr || !h->is_object()) {
      return absl::DataLossError("userpass user record is corrupt");
    }
    u.password_hash = h->as_object();
    u.token = TokenParams::FromStored(o);
    return u;
  }
};

class UserpassBackend final : public core::Backend {
 public:
  UserpassBackend(const core::MountEntry& entry, core::Core* core) : mount_(entry), core_(core) {}

  std::span<const core::Route> Routes() const override { return UserpassRoutes(); }

  bool IsUnauthenticatedPath(const std::string& rel) const override {
    return absl::StartsWith(rel, "login/");
  }

  // Usernames are case-insensitive, as in Vault (stored lower case): the ACL, Exists and the
  // handler see one spelling.
  std::string NormalizePath(const std::string& rel) const override {
    return core::LowerSegmentAfter(core::LowerSegmentAfter(rel, "users/"), "login/");
  }

  absl::StatusOr<bool> Exists(const Request& req) override {
    std::vector<std::string> parts = absl::StrSplit(req.rel_path, '/');
    if (parts.size() == 2 && parts[0] == "users") {
      ASSIGN_OR_RETURN(auto raw, req.storage->Get(kUserPrefix + parts[1]));
      return raw.has_value();
    }
    return true;
  }

  absl::StatusOr<Response> Handle(Request& req) override {
    // The route table (routes.cc) has let through only its paths and operations.
    std::vector<std::string> parts = absl::StrSplit(absl::StripSuffix(req.rel_path, "/"), '/');
    if (parts[0] == "login") return Login(req, parts[1]);
    if (parts.size() == 1) return List(req);
    const std::string& name = parts[1];
    if (!ValidUsername(name)) return Bad(absl::StrCat("invalid username \"", name, "\""));
    if (parts.size() == 2) return OneUser(req, name);
    if (parts[2] == "password") return UpdatePassword(req, name);
    return UpdatePolicies(req, name);
  }

 private:
  absl::StatusOr<std::optional<User>> Load(storage::Storage& s, const std::string& name) {
    ASSIGN_OR_RETURN(auto raw, s.Get(kUserPrefix + name));
    if (!raw) return std::optional<User>();
    ASSIGN_OR_RETURN(auto o, core::ParseObject(*raw));
    ASSIGN_OR_RETURN(User u, User::FromStored(o));
    return std::optional<User>(std::move(u));
  }

  absl::Status Store(storage::Storage& s, const User& u) {
    return s.Put(kUserPrefix + u.name, core::Serialize(u.Stored()));
  }

  // The "password" field: a non-empty string of at most kMaxPasswordBytes.
  static absl::StatusOr<std::optional<std::string>> PasswordField(const object& data) {
    ASSIGN_OR_RETURN(auto pw, core::GetString(data, "password"));
    if (!pw) return pw;
    if (pw->empty()) return Bad("missing password");
    if (pw->size() > kMaxPasswordBytes) {
      return Bad(absl::StrCat("password is longer than ", kMaxPasswordBytes, " bytes"));
    }
    return pw;
  }

  absl::StatusOr<Response> List(const Request& req) {
    ASSIGN_OR_RETURN(auto names, req.storage->List(kUserPrefix));
    if (names.empty()) return absl::NotFoundError("");
    object d;
    d["keys"] = core::ToArray(names);
    return Response::Data(std::move(d));
  }

  absl::StatusOr<Response> OneUser(Request& req, const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(auto existing, Load(*req.storage, name));
    switch (req.operation) {
      case Operation::kRead:
      case Operation::kHead:
        if (!existing) return absl::NotFoundError("");
        return Response::Data(existing->Public());
      case Operation::kDelete:
        RETURN_IF_ERROR(req.storage->Delete(kUserPrefix + name));
        return Response::Empty();
      default:
        break;
    }
    User u = existing.value_or(User{});
    u.name = name;
    ASSIGN_OR_RETURN(auto password, PasswordField(req.data));
    if (!existing && !password) return Bad("missing password");
    RETURN_IF_ERROR(u.token.Update(req.data));
    if (password) {
      ASSIGN_OR_RETURN(u.password_hash, HashPassword(*password));
    }
    RETURN_IF_ERROR(Store(*req.storage, u));
    return Response::Empty();
  }

  absl::StatusOr<Response> UpdatePassword(Request& req, const std::string& name) {
    ASSIGN_OR_RETURN(auto password, PasswordField(req.data));
    if (!password) return Bad("missing password");
    ASSIGN_OR_RETURN(object hash, HashPassword(*password));  // outside the lock: it is slow
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(auto u, Load(*req.storage, name));
    if (!u) return Bad("username does not exist");
    u->password_hash = std::move(hash);
    RETURN_IF_ERROR(Store(*req.storage, *u));
    return Response::Empty();
  }

  absl::StatusOr<Response> UpdatePolicies(Request& req, const std::string& name) {
    object only;  // the policy fields alone go through the token parameters' checks
    for (const char* k : {"token_policies", "policies"}) {
      if (const auto* v = req.data.if_contains(k)) only[k] = *v;
    }
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(auto u, Load(*req.storage, name));
    if (!u) return Bad("username does not exist");
    RETURN_IF_ERROR(u->token.Update(only));
    RETURN_IF_ERROR(Store(*req.storage, *u));
    return Response::Empty();
  }

  // Unknown user and wrong password get the same answer after the same work (an Argon2id
  // computation with the default parameters either way).
  absl::StatusOr<Response> Login(Request& req, const std::string& name) {
    ASSIGN_OR_RETURN(auto password, core::GetString(req.data, "password"));
    if (!password || password->empty()) return Bad("missing password");
    if (password->size() > kMaxPasswordBytes) return Bad(kInvalidCredentials);
    std::optional<User> user;
    if (ValidUsername(name)) {
      ASSIGN_OR_RETURN(user, Load(*req.storage, name));
    }
    if (!user) {
      VerifyAgainstDummy(*password);
      LogInfo("userpass login at %s refused (%s): unknown user", mount_.path, req.remote_address);
      return Bad(kInvalidCredentials);
    }
    auto ok = VerifyPassword(*password, user->password_hash);
    if (!ok.ok()) {
      LogError("userpass login at %s for %s: %s", mount_.path, name, ok.status().message());
      return absl::InternalError("internal error");
    }
    if (!*ok) {
      LogInfo("userpass login at %s refused for %s (%s): wrong password", mount_.path, name,
              req.remote_address);
      return Bad(kInvalidCredentials);
    }
    core::TokenEntry e;
    const int64_t ttl = user->token.Apply(e, core_->options(), absl::ToUnixSeconds(core_->Now()));
    std::string prefix(absl::StripSuffix(absl::StripPrefix(mount_.path, "auth/"), "/"));
    std::replace(prefix.begin(), prefix.end(), '/', '-');
    e.display_name = absl::StrCat(prefix, "-", name);
    e.path = absl::StrCat(mount_.path, "login/", name);
    e.meta["username"] = name;
    core::LoginAlias alias{mount_.accessor, mount_.path, mount_.type, name, {}};
    ASSIGN_OR_RETURN(Response resp, core_->CompleteLogin(std::move(e), alias, ttl));
    LogInfo("userpass login at %s for %s from %s", mount_.path, name, req.remote_address);
    return resp;
  }

  core::MountEntry mount_;  // path "auth/userpass/", accessor, type
  core::Core* core_;
  std::mutex mu_;  // serialises read-modify-write of users
};

}  // namespace

absl::StatusOr<std::unique_ptr<core::Backend>> MakeUserpassBackend(const core::MountEntry& entry,
                                                                   core::Core* core) {
  return std::unique_ptr<core::Backend>(std::make_unique<UserpassBackend>(entry, core));
}

}  // namespace strongroom::engines
