// secrets, auth, policy, audit: the `vault` CLI's mount, policy and audit device commands, on
// sys/mounts, sys/auth, sys/policies/acl and sys/audit; `audit verify` runs the offline verifier
// (audit/, linked in: it needs no server).
#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/strings.h"
#include "cli/vault/command.h"
#include "cli/vault/paths.h"
#include "cli/vault/policy_format.h"

namespace strongroom::vault {
namespace {

using Args = std::vector<std::string>;

constexpr size_t kMaxPolicyBytes = 1 << 20;

std::string EnsureTrailingSlash(std::string p) {
  if (!p.empty() && p.back() != '/') p.push_back('/');
  return p;
}

int64_t Int(const json::object& o, std::string_view k) {
  auto it = o.find(k);
  if (it == o.end()) return 0;
  if (it->value().is_int64()) return it->value().as_int64();
  if (it->value().is_uint64())
    return static_cast<int64_t>(
        std::min<uint64_t>(it->value().as_uint64(), static_cast<uint64_t>(INT64_MAX)));
  return 0;
}

// The mount table of sys/mounts, sys/auth or sys/audit: `data` (Vault's newer answers) or the
// top-level copy, without the response's own fields.
json::object MountTable(const client::Secret& s) {
  if (s.data.is_object()) return s.data.as_object();
  json::object out;
  for (const auto& kv : s.raw) {
    if (kv.value().is_object()) out[kv.key()] = kv.value();
  }
  return out;
}

std::vector<std::string> SortedKeys(const json::object& o) {
  std::vector<std::string> keys;
  for (const auto& kv : o) keys.emplace_back(kv.key());
  std::sort(keys.begin(), keys.end());
  return keys;
}

// Go's %v of a map[string]string ("map[k:v]"), empty maps as "map[]".
std::string OptionsCell(const json::object& m, std::string_view key) {
  auto it = m.find(key);
  if (it == m.end() || !it->value().is_object()) return "map[]";
  return GoValue(it->value());
}

int PrintTable(Context& ctx, const std::vector<std::string>& rows) {
  std::string table = Table(rows, kDelim);
  if (!table.empty()) table.pop_back();
  ctx.Out(table);
  return kOk;
}

// Mount config (-default-lease-ttl, -max-lease-ttl, -force-no-cache, ...) shared by the enable
// and tune commands.
struct MountFlags {
  std::string description, listing_visibility;
  int64_t default_lease_ttl = 0, max_lease_ttl = 0, version = 0;
  bool force_no_cache = false, local = false, seal_wrap = false, external_entropy = false;
  std::map<std::string, std::string> options;
  std::vector<std::string> audit_non_hmac_request_keys, audit_non_hmac_response_keys,
      passthrough_request_headers, allowed_response_headers;

  void Add(FlagSet* f, bool enable) {
    f->String("description", &description);
    f->Duration("default-lease-ttl", &default_lease_ttl);
    f->Duration("max-lease-ttl", &max_lease_ttl);
    f->Map("options", &options);
    f->Int("version", &version);
    f->String("listing-visibility", &listing_visibility);
    f->Strings("audit-non-hmac-request-keys", &audit_non_hmac_request_keys, false);
    f->Strings("audit-non-hmac-response-keys", &audit_non_hmac_response_keys, false);
    f->Strings("passthrough-request-headers", &passthrough_request_headers, false);
    f->Strings("allowed-response-headers", &allowed_response_headers, false);
    if (enable) {
      f->Bool("force-no-cache", &force_no_cache);
      f->Bool("local", &local);
      f->Bool("seal-wrap", &seal_wrap);
      f->Bool("external-entropy-access", &external_entropy);
    }
  }

  // The config object: only what was given (a tune changes only the fields it names).
  json::object Config(const FlagSet& f) const {
    json::object c;
    auto list = [](const std::vector<std::string>& v) {
      json::array a;
      for (const std::string& s : v) a.emplace_back(s);
      return a;
    };
    if (f.Given("default-lease-ttl")) c["default_lease_ttl"] = absl::StrCat(default_lease_ttl, "s");
    if (f.Given("max-lease-ttl")) c["max_lease_ttl"] = absl::StrCat(max_lease_ttl, "s");
    if (f.Given("force-no-cache")) c["force_no_cache"] = force_no_cache;
    if (f.Given("listing-visibility")) c["listing_visibility"] = listing_visibility;
    if (f.Given("audit-non-hmac-request-keys"))
      c["audit_non_hmac_request_keys"] = list(audit_non_hmac_request_keys);
    if (f.Given("audit-non-hmac-response-keys"))
      c["audit_non_hmac_response_keys"] = list(audit_non_hmac_response_keys);
    if (f.Given("passthrough-request-headers"))
      c["passthrough_request_headers"] = list(passthrough_request_headers);
    if (f.Given("allowed-response-headers"))
      c["allowed_response_headers"] = list(allowed_response_headers);
    return c;
  }

  // -options, with -version as options.version (Vault's flag).
  std::optional<json::object> Options() const {
    std::map<std::string, std::string> all = options;
    if (version > 0) all["version"] = absl::StrCat(version);
    if (all.empty()) return std::nullopt;
    json::object o;
    for (const auto& [k, v] : all) o[k] = v;
    return o;
  }
};

// ---- secrets ---------------------------------------------------------------------------------

int SecretsEnable(Context& ctx, const Args& argv) {
  FlagSet flags;
  std::string path;
  MountFlags mf;
  flags.String("path", &path);
  mf.Add(&flags, /*enable=*/true);
  ctx.AddFlags(&flags, /*output=*/false);
  if (auto rc = ctx.Parse(&flags, argv, "Usage: strongroom secrets enable [options] TYPE")) {
    return *rc;
  }
  if (auto rc = ctx.ExpectArgs(flags.args(), 1, 1)) return *rc;
  if (mf.version < 0) return ctx.Local("-version must not be negative");
  std::string type(absl::StripAsciiWhitespace(flags.args()[0]));
  if (type == "kv-v2") {  // Vault's alias
    type = "kv";
    mf.version = 2;
  }
  std::string mount = EnsureTrailingSlash(SanitizePath(path.empty() ? type : path));
  if (mount.empty() || mount == "/") return ctx.Local("Invalid mount path");
  json::object body;
  body["type"] = type;
  body["description"] = mf.description;
  body["local"] = mf.local;
  body["seal_wrap"] = mf.seal_wrap;
  body["external_entropy_access"] = mf.external_entropy;
  if (json::object c = mf.Config(flags); !c.empty()) body["config"] = std::move(c);
  if (auto o = mf.Options()) body["options"] = std::move(*o);
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  auto s =
      c->Request("POST", absl::StrCat("sys/mounts/", mount.substr(0, mount.size() - 1)), &body);
  if (!s.ok()) return ctx.Remote("Error enabling", s.status());
  ctx.Out(absl::StrCat("Success! Enabled the ", type, " secrets engine at: ", mount));
  return kOk;
}

// secrets disable and auth disable: DELETE sys/mounts/<path> or sys/auth/<path>.
int Disable(Context& ctx, const Args& argv, bool auth) {
  const std::string_view what = auth ? "auth method" : "secrets engine";
  FlagSet flags;
  ctx.AddFlags(&flags, /*output=*/false);
  if (auto rc = ctx.Parse(&flags, argv,
                          absl::StrCat("Usage: strongroom ", auth ? "auth" : "secrets",
                                       " disable [options] PATH"))) {
    return *rc;
  }
  if (auto rc = ctx.ExpectArgs(flags.args(), 1, 1)) return *rc;
  std::string mount = EnsureTrailingSlash(SanitizePath(flags.args()[0]));
  if (mount.empty()) return ctx.Local("Invalid mount path");
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  auto s = c->Request("DELETE", absl::StrCat(auth ? "sys/auth/" : "sys/mounts/",
                                             mount.substr(0, mount.size() - 1)));
  if (!s.ok()) {
    return ctx.Remote(absl::StrCat("Error disabling ", Av(what), " at ", mount), s.status());
  }
  ctx.Out(absl::StrCat("Success! Disabled the ", Av(what), " (if it existed) at: ", mount));
  return kOk;
}
int SecretsDisable(Context& ctx, const Args& argv) { return Disable(ctx, argv, false); }

// `secrets list` and `auth list`: Vault's tables (the detailed one with TTLs in seconds,
// "system" for the default).
int ListMounts(Context& ctx, const Args& argv, bool auth) {
  FlagSet flags;
  bool detailed = false;
  flags.Bool("detailed", &detailed);
  ctx.AddFlags(&flags);
  if (auto rc = ctx.Parse(&flags, argv,
                          auth ? "Usage: strongroom auth list [options]"
                               : "Usage: strongroom secrets list [options]")) {
    return *rc;
  }
  if (auto rc = ctx.ExpectArgs(flags.args(), 0, 0)) return *rc;
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  auto s = c->Read(auth ? "sys/auth" : "sys/mounts");
  if (!s.ok()) {
    return ctx.Remote(
        auth ? "Error listing enabled authentications" : "Error listing secrets engines",
        s.status());
  }
  json::object mounts = MountTable(*s);
  if (ctx.format() != Format::kTable) return ctx.OutputData(mounts);
  const std::string d(kDelim);
  std::vector<std::string> rows;
  if (!detailed) {
    rows.push_back(absl::StrJoin({"Path", "Type", "Accessor", "Description"}, d));
  } else if (auth) {
    rows.push_back(absl::StrJoin({"Path", "Type", "Accessor", "Plugin", "Default TTL", "Max TTL",
                                  "Replication", "Seal Wrap", "Options", "Description"},
                                 d));
  } else {
    rows.push_back(
        absl::StrJoin({"Path", "Plugin", "Accessor", "Default TTL", "Max TTL", "Force No Cache",
                       "Replication", "Seal Wrap", "Options", "Description"},
                      d));
  }
  for (const std::string& path : SortedKeys(mounts)) {
    const json::object& m = ObjectOr(mounts.at(path));
    const json::object& config = Member(m, "config");
    const std::string type = Str(m, "type");
    if (!detailed) {
      rows.push_back(absl::StrJoin({path, type, Str(m, "accessor"), Str(m, "description")}, d));
      continue;
    }
    auto ttl = [&](std::string_view key) -> std::string {
      if (type == "system" || type == "cubbyhole") return "";
      const int64_t v = Int(config, key);
      return v != 0 ? absl::StrCat(v) : "system";
    };
    const std::string replication = Bool(m, "local") ? "local" : "replicated";
    const std::string seal_wrap = Bool(m, "seal_wrap") ? "true" : "false";
    if (auth) {
      rows.push_back(absl::StrJoin({path, type, Str(m, "accessor"), Str(config, "plugin_name"),
                                    ttl("default_lease_ttl"), ttl("max_lease_ttl"), replication,
                                    seal_wrap, OptionsCell(m, "options"), Str(m, "description")},
                                   d));
    } else {
      rows.push_back(absl::StrJoin(
          {path, type, Str(m, "accessor"), ttl("default_lease_ttl"), ttl("max_lease_ttl"),
           std::string(Bool(config, "force_no_cache") ? "true" : "false"), replication, seal_wrap,
           OptionsCell(m, "options"), Str(m, "description")},
          d));
    }
  }
  return PrintTable(ctx, rows);
}

int SecretsList(Context& ctx, const Args& argv) { return ListMounts(ctx, argv, false); }
int AuthList(Context& ctx, const Args& argv) { return ListMounts(ctx, argv, true); }

// `secrets tune` and `auth tune`: only the given settings are sent.
int Tune(Context& ctx, const Args& argv, bool auth) {
  FlagSet flags;
  MountFlags mf;
  mf.Add(&flags, /*enable=*/false);
  ctx.AddFlags(&flags, /*output=*/false);
  if (auto rc = ctx.Parse(&flags, argv,
                          auth ? "Usage: strongroom auth tune [options] PATH"
                               : "Usage: strongroom secrets tune [options] PATH")) {
    return *rc;
  }
  if (auto rc = ctx.ExpectArgs(flags.args(), 1, 1)) return *rc;
  if (mf.version < 0) return ctx.Local("-version must not be negative");
  std::string mount = EnsureTrailingSlash(SanitizePath(flags.args()[0]));
  if (mount.empty()) return ctx.Local("Invalid mount path");
  json::object body = mf.Config(flags);
  if (flags.Given("description")) body["description"] = mf.description;
  if (auto o = mf.Options()) body["options"] = std::move(*o);
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  const std::string bare = mount.substr(0, mount.size() - 1);
  auto s =
      c->Request("POST", absl::StrCat(auth ? "sys/auth/" : "sys/mounts/", bare, "/tune"), &body);
  if (!s.ok()) {
    return ctx.Remote(
        absl::StrCat(auth ? "Error tuning auth method " : "Error tuning secrets engine ", mount),
        s.status());
  }
  ctx.Out(
      absl::StrCat("Success! Tuned the ", auth ? "auth method" : "secrets engine", " at: ", mount));
  return kOk;
}

int SecretsTune(Context& ctx, const Args& argv) { return Tune(ctx, argv, false); }
int AuthTune(Context& ctx, const Args& argv) { return Tune(ctx, argv, true); }

// sys/remount: Vault 1.10+ answers with a migration id and moves the mount in the background;
// the status is polled (sys/remount/status/ID) until it is done, at most ten minutes.
int SecretsMove(Context& ctx, const Args& argv) {
  FlagSet flags;
  ctx.AddFlags(&flags, /*output=*/false);
  if (auto rc =
          ctx.Parse(&flags, argv, "Usage: strongroom secrets move [options] SOURCE DESTINATION")) {
    return *rc;
  }
  if (auto rc = ctx.ExpectArgs(flags.args(), 2, 2)) return *rc;
  const std::string from = EnsureTrailingSlash(SanitizePath(flags.args()[0]));
  const std::string to = EnsureTrailingSlash(SanitizePath(flags.args()[1]));
  if (from.empty() || to.empty()) return ctx.Local("Invalid mount path");
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  json::object body{{"from", from}, {"to", to}};
  auto s = c->Request("POST", "sys/remount", &body);
  const std::string what = absl::StrCat("Error moving secrets engine ", from, " to ", to);
  if (!s.ok()) return ctx.Remote(what, s.status());
  std::string id = Str(ObjectOr(s->data), "migration_id");
  if (id.empty()) id = Str(s->raw, "migration_id");
  if (id.empty()) {
    ctx.Out(absl::StrCat("Success! Finished moving secrets engine ", from, " to ", to));
    return kOk;
  }
  ctx.Out(
      absl::StrCat("Started moving secrets engine ", from, " to ", to, ", with migration ID ", id));
  const absl::Time deadline = absl::Now() + absl::Minutes(10);
  while (absl::Now() < deadline) {
    auto st = c->Read(absl::StrCat("sys/remount/status/", QueryEscape(id)));
    if (!st.ok()) return ctx.Remote(what, st.status());
    const json::object& info = Member(ObjectOr(st->data), "migration_info");
    const std::string status = Str(info, "status");
    if (status == "success") {
      ctx.Out(absl::StrCat("Success! Finished moving secrets engine ", from, " to ", to,
                           ", with migration ID ", id));
      return kOk;
    }
    if (status == "failure") {
      ctx.Err(absl::StrCat("Failure! Error encountered moving secrets engine ", from, " to ", to,
                           ", with migration ID ", id));
      return kRemoteError;
    }
    absl::SleepFor(absl::Seconds(1));
  }
  ctx.Err(absl::StrCat("Timed out waiting for the move of ", from, " to ", to, " (migration ID ",
                       id, ")"));
  return kRemoteError;
}

// ---- auth ------------------------------------------------------------------------------------

int AuthEnable(Context& ctx, const Args& argv) {
  FlagSet flags;
  std::string path;
  MountFlags mf;
  flags.String("path", &path);
  mf.Add(&flags, /*enable=*/true);
  ctx.AddFlags(&flags, /*output=*/false);
  if (auto rc = ctx.Parse(&flags, argv, "Usage: strongroom auth enable [options] TYPE")) return *rc;
  if (auto rc = ctx.ExpectArgs(flags.args(), 1, 1)) return *rc;
  if (mf.version < 0) return ctx.Local("-version must not be negative");
  const std::string type(absl::StripAsciiWhitespace(flags.args()[0]));
  std::string mount = EnsureTrailingSlash(SanitizePath(path.empty() ? type : path));
  if (mount.empty()) return ctx.Local("Invalid mount path");
  json::object body;
  body["type"] = type;
  body["description"] = mf.description;
  body["local"] = mf.local;
  body["seal_wrap"] = mf.seal_wrap;
  if (json::object c = mf.Config(flags); !c.empty()) body["config"] = std::move(c);
  if (auto o = mf.Options()) body["options"] = std::move(*o);
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  auto s = c->Request("POST", absl::StrCat("sys/auth/", mount.substr(0, mount.size() - 1)), &body);
  if (!s.ok()) return ctx.Remote(absl::StrCat("Error enabling ", type, " auth"), s.status());
  ctx.Out(absl::StrCat("Success! Enabled ", type, " auth method at: ", mount));
  return kOk;
}

int AuthDisable(Context& ctx, const Args& argv) { return Disable(ctx, argv, true); }

// ---- policy ----------------------------------------------------------------------------------

int PolicyList(Context& ctx, const Args& argv) {
  FlagSet flags;
  ctx.AddFlags(&flags);
  if (auto rc = ctx.Parse(&flags, argv, "Usage: strongroom policy list [options]")) return *rc;
  if (auto rc = ctx.ExpectArgs(flags.args(), 0, 0)) return *rc;
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  auto s = c->Request("GET", "sys/policies/acl", nullptr, "list=true");
  if (!s.ok()) return ctx.Remote("Error listing policies", s.status());
  json::array names;
  if (auto it = ObjectOr(s->data).find("keys");
      it != ObjectOr(s->data).end() && it->value().is_array()) {
    names = it->value().as_array();
  }
  if (ctx.format() != Format::kTable) return ctx.OutputData(names);
  for (const json::value& n : names) ctx.Out(GoValue(n));
  return kOk;
}

int PolicyRead(Context& ctx, const Args& argv) {
  FlagSet flags;
  ctx.AddFlags(&flags);
  if (auto rc = ctx.Parse(&flags, argv, "Usage: strongroom policy read [options] NAME")) return *rc;
  if (auto rc = ctx.ExpectArgs(flags.args(), 1, 1)) return *rc;
  const std::string name(absl::StripAsciiWhitespace(flags.args()[0]));
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  auto s = c->Read(absl::StrCat("sys/policies/acl/", name));
  if (!s.ok() && client::HttpStatusOf(s.status()) == 404) {
    ctx.Err(absl::StrCat("No policy named: ", name));
    return kRemoteError;
  }
  if (!s.ok()) return ctx.Remote(absl::StrCat("Error reading policy named ", name), s.status());
  const std::string rules = Str(ObjectOr(s->data), "policy");
  if (ctx.format() != Format::kTable) {
    json::object o{{"policy", rules}};
    return ctx.OutputData(o);
  }
  ctx.Out(Sv(absl::StripAsciiWhitespace(rules)));
  return kOk;
}

int PolicyWrite(Context& ctx, const Args& argv) {
  FlagSet flags;
  ctx.AddFlags(&flags, /*output=*/false);
  if (auto rc = ctx.Parse(&flags, argv, "Usage: strongroom policy write [options] NAME PATH|-")) {
    return *rc;
  }
  if (auto rc = ctx.ExpectArgs(flags.args(), 2, 2)) return *rc;
  const std::string name(absl::StripAsciiWhitespace(flags.args()[0]));
  const std::string& file = flags.args()[1];
  auto text = ReadInput(file, kMaxPolicyBytes);
  if (!text.ok())
    return ctx.Local(absl::StrCat("Error opening policy file: ", text.status().message()));
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  json::object body{{"policy", *text}};
  auto s = c->Request("PUT", absl::StrCat("sys/policies/acl/", name), &body);
  if (!s.ok()) return ctx.Remote("Error uploading policy", s.status());
  ctx.Out(absl::StrCat("Success! Uploaded policy: ", name));
  return kOk;
}

int PolicyDelete(Context& ctx, const Args& argv) {
  FlagSet flags;
  ctx.AddFlags(&flags, /*output=*/false);
  if (auto rc = ctx.Parse(&flags, argv, "Usage: strongroom policy delete [options] NAME")) {
    return *rc;
  }
  if (auto rc = ctx.ExpectArgs(flags.args(), 1, 1)) return *rc;
  const std::string name(absl::StripAsciiWhitespace(flags.args()[0]));
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  auto s = c->Request("DELETE", absl::StrCat("sys/policies/acl/", name));
  if (!s.ok()) return ctx.Remote(absl::StrCat("Error deleting ", name), s.status());
  ctx.Out(absl::StrCat("Success! Deleted policy: ", name));
  return kOk;
}

int PolicyFmt(Context& ctx, const Args& argv) {
  FlagSet flags;
  if (auto rc = ctx.Parse(&flags, argv,
                          "Usage: strongroom policy fmt [options] PATH\n\n"
                          "  Formats an HCL policy file in place (canonical layout: two-space\n"
                          "  indentation, aligned '=', one blank line between blocks). Files with\n"
                          "  comments or in JSON are refused and left unchanged.")) {
    return *rc;
  }
  if (auto rc = ctx.ExpectArgs(flags.args(), 1, 1)) return *rc;
  const std::string& path = flags.args()[0];
  if (path == "-") return ctx.Local("policy fmt rewrites a file: give its path, not -");
  auto text = ReadInput(path, kMaxPolicyBytes);
  if (!text.ok())
    return ctx.Local(absl::StrCat("Error opening policy file: ", text.status().message()));
  auto formatted = FormatPolicy(*text);
  if (!formatted.ok()) {
    return ctx.Local(Sv(formatted.status().message()));
  }
  if (*formatted != *text) {
    if (absl::Status st = ReplaceFile(path, *formatted); !st.ok()) {
      return ctx.Local(absl::StrCat("Error writing policy file: ", st.message()));
    }
  }
  ctx.Out(absl::StrCat("Success! Formatted policy: ", path));
  return kOk;
}

// ---- audit -----------------------------------------------------------------------------------

int AuditEnable(Context& ctx, const Args& argv) {
  FlagSet flags;
  std::string path, description;
  bool local = false;
  flags.String("path", &path);
  flags.String("description", &description);
  flags.Bool("local", &local);
  ctx.AddFlags(&flags, /*output=*/false);
  if (auto rc = ctx.Parse(&flags, argv,
                          "Usage: strongroom audit enable [options] TYPE [CONFIG K=V...]")) {
    return *rc;
  }
  const Args& args = flags.args();
  if (auto rc = ctx.ExpectArgs(args, 1, SIZE_MAX)) return *rc;
  const std::string type(absl::StripAsciiWhitespace(args[0]));
  auto options = ctx.ParseArgsData(Args(args.begin() + 1, args.end()));
  if (!options.ok()) {
    return ctx.Local(absl::StrCat("Failed to parse K=V data: ", options.status().message()));
  }
  std::string mount = EnsureTrailingSlash(SanitizePath(path.empty() ? type : path));
  if (mount.empty()) return ctx.Local("Invalid path");
  json::object body;
  body["type"] = type;
  body["description"] = description;
  body["local"] = local;
  body["options"] = std::move(*options);
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  auto s = c->Request("PUT", absl::StrCat("sys/audit/", mount.substr(0, mount.size() - 1)), &body);
  if (!s.ok()) return ctx.Remote("Error enabling audit device", s.status());
  ctx.Out(absl::StrCat("Success! Enabled the ", type, " audit device at: ", mount));
  return kOk;
}

int AuditDisable(Context& ctx, const Args& argv) {
  FlagSet flags;
  ctx.AddFlags(&flags, /*output=*/false);
  if (auto rc = ctx.Parse(&flags, argv, "Usage: strongroom audit disable [options] PATH")) {
    return *rc;
  }
  if (auto rc = ctx.ExpectArgs(flags.args(), 1, 1)) return *rc;
  std::string mount = EnsureTrailingSlash(SanitizePath(flags.args()[0]));
  if (mount.empty()) return ctx.Local("Invalid path");
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  auto s = c->Request("DELETE", absl::StrCat("sys/audit/", mount.substr(0, mount.size() - 1)));
  if (!s.ok()) return ctx.Remote("Error disabling audit device", s.status());
  ctx.Out(absl::StrCat("Success! Disabled audit device (if it was enabled) at: ", mount));
  return kOk;
}

int AuditList(Context& ctx, const Args& argv) {
  FlagSet flags;
  bool detailed = false;
  flags.Bool("detailed", &detailed);
  ctx.AddFlags(&flags);
  if (auto rc = ctx.Parse(&flags, argv, "Usage: strongroom audit list [options]")) return *rc;
  if (auto rc = ctx.ExpectArgs(flags.args(), 0, 0)) return *rc;
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  auto s = c->Read("sys/audit");
  if (!s.ok()) return ctx.Remote("Error listing audits", s.status());
  json::object devices = MountTable(*s);
  if (devices.empty()) {
    ctx.Out("No audit devices are enabled.");
    return kOk;
  }
  if (ctx.format() != Format::kTable) return ctx.OutputData(devices);
  const std::string d(kDelim);
  std::vector<std::string> rows;
  rows.push_back(detailed
                     ? absl::StrJoin({"Path", "Type", "Description", "Replication", "Options"}, d)
                     : absl::StrJoin({"Path", "Type", "Description"}, d));
  for (const std::string& path : SortedKeys(devices)) {
    const json::object& a = ObjectOr(devices.at(path));
    if (!detailed) {
      rows.push_back(absl::StrJoin({path, Str(a, "type"), Str(a, "description")}, d));
      continue;
    }
    std::vector<std::string> opts;
    const json::object& o = Member(a, "options");
    for (const std::string& k : SortedKeys(o)) opts.push_back(absl::StrCat(k, "=", Str(o, k)));
    rows.push_back(absl::StrJoin(
        {path, Str(a, "type"), Str(a, "description"),
         std::string(Bool(a, "local") ? "local" : "replicated"), absl::StrJoin(opts, " ")},
        d));
  }
  return PrintTable(ctx, rows);
}

}  // namespace

// In audit_verify.cc.
int AuditVerify(Context& ctx, const std::vector<std::string>& argv);

const std::vector<Command>& AdminCommands() {
  static const std::vector<Command> commands = {
      {{"secrets", "enable"}, SecretsEnable, "Enable a secrets engine"},
      {{"secrets", "disable"}, SecretsDisable, "Disable a secrets engine"},
      {{"secrets", "list"}, SecretsList, "List enabled secrets engines"},
      {{"secrets", "tune"}, SecretsTune, "Tune a secrets engine configuration"},
      {{"secrets", "move"}, SecretsMove, "Move a secrets engine to a new path"},
      {{"auth", "enable"}, AuthEnable, "Enable an auth method"},
      {{"auth", "disable"}, AuthDisable, "Disable an auth method"},
      {{"auth", "list"}, AuthList, "List enabled auth methods"},
      {{"auth", "tune"}, AuthTune, "Tune an auth method configuration"},
      {{"policy", "list"}, PolicyList, "List the installed policies"},
      {{"policy", "read"}, PolicyRead, "Print the contents of a policy"},
      {{"policy", "write"}, PolicyWrite, "Upload a named policy from a file or stdin"},
      {{"policy", "delete"}, PolicyDelete, "Delete a policy by name"},
      {{"policy", "fmt"}, PolicyFmt, "Format an HCL policy file in place"},
      {{"audit", "enable"}, AuditEnable, "Enable an audit device"},
      {{"audit", "disable"}, AuditDisable, "Disable an audit device"},
      {{"audit", "list"}, AuditList, "List the enabled audit devices"},
      {{"audit", "verify"}, AuditVerify, "Verify an audit log offline (hash chain, checkpoints)"},
  };
  return commands;
}

}  // namespace strongroom::vault
