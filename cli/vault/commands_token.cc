// login and token create|lookup|renew|revoke|capabilities.
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/strings.h"
#include "cli/vault/command.h"
#include "cli/vault/paths.h"

namespace strongroom::vault {
namespace {

using Args = std::vector<std::string>;

constexpr char kServiceAccountToken[] = "/var/run/secrets/kubernetes.io/serviceaccount/token";

// A token argument: "-" reads it from stdin (keeps it out of argv and shell history).
absl::StatusOr<std::string> TokenArg(const std::string& arg) {
  if (arg != "-") return arg;
  return ReadSecret("Token (will be hidden): ");
}

// ---- login -----------------------------------------------------------------------------------

// The token method: looks the token up, and shows it as a login would (Vault's token login).
absl::StatusOr<client::Secret> TokenLogin(client::Client* c, const std::string& token) {
  c->SetToken(token);
  auto s = c->LookupSelf();
  if (!s.ok()) return s.status();
  if (s->wrap_info) return s;  // -wrap-ttl: the caller shows the wrapping token
  const json::object empty;
  const json::object& d = s->data.is_object() ? s->data.as_object() : empty;
  json::object auth;
  auth["client_token"] = Str(d, "id");
  auth["accessor"] = Str(d, "accessor");
  json::value policies = d.contains("policies") ? d.at("policies") : json::array();
  auth["policies"] = policies;
  auth["token_policies"] = policies;
  auth["identity_policies"] =
      d.contains("identity_policies") ? d.at("identity_policies") : json::value();
  auth["metadata"] = d.contains("meta") ? d.at("meta") : json::value();
  auth["orphan"] = d.contains("orphan") ? d.at("orphan") : json::value(false);
  auth["entity_id"] = Str(d, "entity_id");
  auth["lease_duration"] = d.contains("ttl") ? d.at("ttl") : json::value(0);
  auth["renewable"] = d.contains("renewable") ? d.at("renewable") : json::value(false);
  client::Secret out;
  out.request_id = s->request_id;
  out.raw = s->raw;
  out.raw["auth"] = auth;
  out.raw["data"] = nullptr;
  out.auth = client::Auth{};
  out.auth->client_token = Str(d, "id");
  out.auth->lease_duration =
      auth["lease_duration"].is_int64() ? auth["lease_duration"].as_int64() : 0;
  out.auth->renewable = auth["renewable"].is_bool() && auth["renewable"].as_bool();
  return out;
}

int Login(Context& ctx, const Args& argv) {
  FlagSet flags;
  std::string method = "token", path;
  bool no_store = false, token_only = false, no_print = false;
  flags.String("method", &method);
  flags.String("path", &path);
  flags.Bool("no-store", &no_store);
  flags.Bool("token-only", &token_only);
  flags.Bool("no-print", &no_print);
  ctx.AddFlags(&flags);
  if (auto rc = ctx.Parse(&flags, argv,
                          "Usage: strongroom login [options] [AUTH K=V...]\n\n"
                          "  -method=token|approle|kubernetes|userpass (default token)\n"
                          "  token: the token is read without echo from the terminal or stdin\n"
                          "  approle: role_id=ID secret_id=@FILE (or secret_id=- for stdin)\n"
                          "  kubernetes: role=NAME [jwt=@FILE] (default: the pod's service "
                          "account token)\n"
                          "  userpass: username=NAME (the password is prompted for)")) {
    return *rc;
  }
  // As vault: -token-only is -no-store with the token printed alone (raw, as -field=token).
  if (token_only) no_store = true;
  if (no_store && no_print && !token_only) {
    return ctx.Local("-no-store and -no-print cannot be used together");
  }
  Args args = flags.args();
  if (path.empty()) path = method;
  client::Client* c = ctx.Client(/*with_token=*/false);
  if (c == nullptr) return kLocalError;

  absl::StatusOr<client::Secret> result;
  if (method == "token") {
    if (auto rc = ctx.ExpectArgs(args, 0, 1)) return *rc;
    std::string token;
    if (args.empty() || args[0] == "-") {
      auto t = ReadSecret("Token (will be hidden): ");
      if (!t.ok()) return ctx.Local("Error reading the token: no token given");
      token = *t;
    } else if (absl::StartsWith(args[0], "token=")) {
      token = args[0].substr(6);
    } else {
      token = args[0];
    }
    result = TokenLogin(c, token);
  } else {
    auto data = ctx.ParseArgsData(args);
    if (!data.ok())
      return ctx.Local(absl::StrCat("Error parsing configuration: ", data.status().message()));
    std::string login_path = absl::StrCat("auth/", SanitizePath(path), "/login");
    if (method == "kubernetes" && !data->contains("jwt")) {
      auto jwt = ReadInput(kServiceAccountToken, 64 << 10);
      if (!jwt.ok())
        return ctx.Local(
            absl::StrCat("Error reading the service account token: ", jwt.status().message()));
      (*data)["jwt"] = *jwt;
    } else if (method == "userpass") {
      std::string user = Str(*data, "username");
      if (user.empty()) return ctx.Local("username=NAME is required");
      data->erase("username");
      if (!data->contains("password")) {
        auto pw = ReadSecret("Password (will be hidden): ");
        if (!pw.ok()) return ctx.Local("Error reading the password");
        (*data)["password"] = *pw;
      }
      absl::StrAppend(&login_path, "/", user);
    } else if (method != "approle" && method != "kubernetes" && method != "userpass") {
      return ctx.Local(absl::StrCat("Unknown auth method: ", method,
                                    ". Use \"strongroom auth list\" to see the enabled methods."));
    }
    result = c->Request("PUT", login_path, &*data);
  }
  if (!result.ok()) return ctx.Remote("Error authenticating", result.status());
  // -wrap-ttl: the login answer is in a wrapping token; shown, never stored (as vault).
  if (auto rc = ctx.OutputIfWrapped(*result)) return *rc;
  std::string token;
  if (auto it = result->raw.find("auth"); it != result->raw.end() && it->value().is_object()) {
    token = Str(it->value().as_object(), "client_token");
  }
  if (token.empty()) return ctx.Local("Error authenticating: no token was returned");
  if (!no_store) {
    if (absl::Status s = ctx.StoreToken(token); !s.ok()) {
      return ctx.Local(absl::StrCat("Error storing token: ", s.message()));
    }
  }
  if (no_print) return kOk;
  if (token_only) {
    std::fwrite(token.data(), 1, token.size(), ctx.out());
    if (isatty(fileno(ctx.out()))) std::fputc('\n', ctx.out());
    std::fflush(ctx.out());
    return kOk;
  }
  if (ctx.format() == Format::kTable && ctx.field().empty()) {
    ctx.Out(no_store ? "Success! You are now authenticated. The token information displayed below\n"
                       "is not stored in the token helper: use it in VAULT_TOKEN or a later\n"
                       "\"strongroom login\".\n"
                     : "Success! You are now authenticated. The token information displayed below\n"
                       "is already stored in the token helper. You do NOT need to run \"strongroom "
                       "login\"\nagain. Future requests will automatically use this token.\n");
  }
  return ctx.OutputSecret(*result);
}

// ---- token ... -------------------------------------------------------------------------------

int TokenCreate(Context& ctx, const Args& argv) {
  FlagSet flags;
  std::vector<std::string> policies;
  std::string display_name, role, type, id, entity_alias;
  int64_t ttl = 0, explicit_max_ttl = 0, period = 0, use_limit = 0;
  bool renewable = true, orphan = false, no_default_policy = false;
  std::map<std::string, std::string> metadata;
  flags.Strings("policy", &policies, /*split_commas=*/false);
  flags.Duration("ttl", &ttl);
  flags.Duration("explicit-max-ttl", &explicit_max_ttl);
  flags.Duration("period", &period);
  flags.Int("use-limit", &use_limit);
  flags.Bool("renewable", &renewable);
  flags.Bool("orphan", &orphan);
  flags.Bool("no-default-policy", &no_default_policy);
  flags.String("display-name", &display_name);
  flags.String("role", &role);
  flags.String("type", &type);
  flags.String("id", &id);
  flags.String("entity-alias", &entity_alias);
  flags.Map("metadata", &metadata);
  ctx.AddFlags(&flags);
  if (auto rc = ctx.Parse(&flags, argv, "Usage: strongroom token create [options]")) return *rc;
  if (auto rc = ctx.ExpectArgs(flags.args(), 0, 0)) return *rc;
  json::object body;
  if (!policies.empty()) {
    json::array p;
    for (const std::string& x : policies) p.emplace_back(x);
    body["policies"] = std::move(p);
  }
  if (ttl > 0) body["ttl"] = absl::StrCat(ttl, "s");
  if (explicit_max_ttl > 0) body["explicit_max_ttl"] = absl::StrCat(explicit_max_ttl, "s");
  if (period > 0) body["period"] = absl::StrCat(period, "s");
  if (use_limit > 0) body["num_uses"] = use_limit;
  body["renewable"] = renewable;
  if (no_default_policy) body["no_default_policy"] = true;
  if (!display_name.empty()) body["display_name"] = display_name;
  if (!type.empty()) body["type"] = type;
  if (!id.empty()) body["id"] = id;
  if (!entity_alias.empty()) body["entity_alias"] = entity_alias;
  if (!metadata.empty()) {
    json::object meta;
    for (const auto& [k, v] : metadata) meta[k] = v;
    body["meta"] = std::move(meta);
  }
  std::string path = !role.empty() ? absl::StrCat("auth/token/create/", role)
                     : orphan      ? "auth/token/create-orphan"
                                   : "auth/token/create";
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  auto s = c->Request("POST", path, &body);
  if (!s.ok()) return ctx.Remote("Error creating token", s.status());
  return ctx.OutputSecret(*s);
}

int TokenLookup(Context& ctx, const Args& argv) {
  FlagSet flags;
  bool accessor = false;
  flags.Bool("accessor", &accessor);
  ctx.AddFlags(&flags);
  if (auto rc = ctx.Parse(&flags, argv,
                          "Usage: strongroom token lookup [options] [TOKEN | ACCESSOR | -]")) {
    return *rc;
  }
  const Args& args = flags.args();
  if (auto rc = ctx.ExpectArgs(args, accessor ? 1 : 0, 1)) return *rc;
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  absl::StatusOr<client::Secret> s;
  if (args.empty()) {
    s = c->LookupSelf();
  } else if (accessor) {
    json::object body{{"accessor", args[0]}};
    s = c->Request("POST", "auth/token/lookup-accessor", &body);
  } else {
    auto token = TokenArg(args[0]);
    if (!token.ok()) return ctx.Local("Error reading the token");
    json::object body{{"token", *token}};
    s = c->Request("POST", "auth/token/lookup", &body);
  }
  if (!s.ok()) return ctx.Remote("Error looking up token", s.status());
  return ctx.OutputSecret(*s);
}

int TokenRenew(Context& ctx, const Args& argv) {
  FlagSet flags;
  int64_t increment = 0;
  bool accessor = false;
  flags.Duration("increment", &increment);
  flags.Duration("i", &increment);
  flags.Bool("accessor", &accessor);
  ctx.AddFlags(&flags);
  if (auto rc = ctx.Parse(&flags, argv, "Usage: strongroom token renew [options] [TOKEN | -]"))
    return *rc;
  const Args& args = flags.args();
  if (auto rc = ctx.ExpectArgs(args, 0, 1)) return *rc;
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  json::object body;
  if (increment > 0) body["increment"] = absl::StrCat(increment, "s");
  std::string path = "auth/token/renew-self";
  if (!args.empty()) {
    if (accessor) {
      body["accessor"] = args[0];
      path = "auth/token/renew-accessor";
    } else {
      auto token = TokenArg(args[0]);
      if (!token.ok()) return ctx.Local("Error reading the token");
      body["token"] = *token;
      path = "auth/token/renew";
    }
  }
  auto s = c->Request("PUT", path, &body);
  if (!s.ok()) return ctx.Remote("Error renewing token", s.status());
  return ctx.OutputSecret(*s);
}

int TokenRevoke(Context& ctx, const Args& argv) {
  FlagSet flags;
  bool self = false, accessor = false;
  std::string mode;
  flags.Bool("self", &self);
  flags.Bool("accessor", &accessor);
  flags.String("mode", &mode);
  ctx.AddFlags(&flags, /*output=*/false);
  if (auto rc = ctx.Parse(&flags, argv,
                          "Usage: strongroom token revoke [options] [TOKEN | ACCESSOR | -]")) {
    return *rc;
  }
  const Args& args = flags.args();
  if (self && !args.empty()) return ctx.Local("Too many arguments (expected 0, got 1)");
  if (!self && args.size() != 1) {
    return ctx.Local(absl::StrCat(args.empty() ? "Not enough" : "Too many",
                                  " arguments (expected 1, got ", args.size(), ")"));
  }
  if (!mode.empty() && mode != "orphan") {
    return ctx.Local(absl::StrCat("Invalid mode: ", mode, " (supported: orphan)"));
  }
  if (accessor && mode == "orphan") return ctx.Local("Cannot use -accessor with -mode=orphan");
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  absl::StatusOr<client::Secret> s;
  if (self) {
    s = c->Request("PUT", "auth/token/revoke-self");
  } else if (accessor) {
    json::object body{{"accessor", args[0]}};
    s = c->Request("PUT", "auth/token/revoke-accessor", &body);
  } else {
    auto token = TokenArg(args[0]);
    if (!token.ok()) return ctx.Local("Error reading the token");
    json::object body{{"token", *token}};
    s = c->Request("PUT", mode == "orphan" ? "auth/token/revoke-orphan" : "auth/token/revoke",
                   &body);
  }
  if (!s.ok()) return ctx.Remote("Error revoking token", s.status());
  ctx.Out("Success! Revoked token (if it existed)");
  return kOk;
}

int TokenCapabilities(Context& ctx, const Args& argv) {
  FlagSet flags;
  bool accessor = false;
  flags.Bool("accessor", &accessor);
  ctx.AddFlags(&flags);
  if (auto rc =
          ctx.Parse(&flags, argv, "Usage: strongroom token capabilities [options] [TOKEN] PATH")) {
    return *rc;
  }
  const Args& args = flags.args();
  if (auto rc = ctx.ExpectArgs(args, 1, 2)) return *rc;
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  const std::string path = SanitizePath(args.back());
  json::object body{{"paths", json::array{json::value(path)}}};
  std::string endpoint = "sys/capabilities-self";
  if (args.size() == 2) {
    if (accessor) {
      body["accessor"] = args[0];
      endpoint = "sys/capabilities-accessor";
    } else {
      auto token = TokenArg(args[0]);
      if (!token.ok()) return ctx.Local("Error reading the token");
      body["token"] = *token;
      endpoint = "sys/capabilities";
    }
  }
  auto s = c->Request("POST", endpoint, &body);
  if (!s.ok()) return ctx.Remote("Error listing capabilities", s.status());
  std::vector<std::string> caps;
  json::value list;
  if (s->data.is_object()) {
    const json::object& d = s->data.as_object();
    if (auto it = d.find(path); it != d.end())
      list = it->value();
    else if (auto it2 = d.find("capabilities"); it2 != d.end())
      list = it2->value();
  }
  if (list.is_array()) {
    for (const json::value& v : list.as_array()) {
      if (v.is_string()) caps.emplace_back(v.as_string());
    }
  }
  std::sort(caps.begin(), caps.end());
  if (ctx.format() == Format::kTable) {
    ctx.Out(absl::StrJoin(caps, ", "));
    return kOk;
  }
  json::array out;
  for (const std::string& cap : caps) out.emplace_back(cap);
  return ctx.OutputData(out);
}

}  // namespace

const std::vector<Command>& TokenCommands() {
  static const std::vector<Command> commands = {
      {{"login"}, Login, "Authenticate locally"},
      {{"token", "create"}, TokenCreate, "Create a new token"},
      {{"token", "lookup"}, TokenLookup, "Display information about a token"},
      {{"token", "renew"}, TokenRenew, "Renew a token lease"},
      {{"token", "revoke"}, TokenRevoke, "Revoke a token and its children"},
      {{"token", "capabilities"}, TokenCapabilities, "Print capabilities of a token on a path"},
  };
  return commands;
}

}  // namespace strongroom::vault
