// kv get|put|patch|delete|undelete|destroy|list and kv metadata get|put|delete: KV version 1
// and 2 behind one set of commands, the version found by a preflight request to
// sys/internal/ui/mounts/<path> (as `vault kv`).
#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/strings.h"
#include "cli/vault/command.h"
#include "cli/vault/paths.h"

namespace strongroom::vault {
namespace {

using Args = std::vector<std::string>;

// Where a kv command's path lives: the mount, the path inside it, and the engine version.
struct KvPath {
  std::string mount;    // "secret/" (with its slash)
  std::string partial;  // "foo/bar"
  bool v2 = false;
  // <mount>/<prefix>/<partial> for v2 ("secret/data/foo"), <mount>/<partial> for v1.
  std::string Api(std::string_view prefix) const {
    std::string m = mount;
    while (!m.empty() && m.back() == '/') m.pop_back();
    if (!v2) return partial.empty() ? m : absl::StrCat(m, "/", partial);
    return partial.empty() ? absl::StrCat(m, "/", Av(prefix))
                           : absl::StrCat(m, "/", Av(prefix), "/", partial);
  }
};

// The preflight: `mount_flag` (-mount) names the mount; else the path holds it.
std::optional<int> Resolve(Context& ctx, client::Client* c, const std::string& mount_flag,
                           const std::string& arg, KvPath* out) {
  const std::string path = SanitizePath(arg);
  const std::string probe = mount_flag.empty() ? path : SanitizePath(mount_flag);
  if (probe.empty()) return ctx.Local("a path is required");
  // The preflight is always sent, also under -output-curl-string (as vault).
  std::string* curl = c->curl_sink();
  c->SetCurlSink(nullptr);
  // Never wrapped (as vault's preflight): the CLI needs the answer itself.
  client::RequestOptions unwrapped;
  unwrapped.wrap_ttl = "";
  auto s =
      c->Request("GET", absl::StrCat("sys/internal/ui/mounts/", probe), nullptr, "", unwrapped);
  c->SetCurlSink(curl);
  if (!s.ok()) {
    if (client::HttpStatusOf(s.status()) == 404) {
      out->mount = mount_flag.empty() ? "" : absl::StrCat(probe, "/");
      out->partial = path;
      out->v2 = false;
      return std::nullopt;
    }
    return ctx.Remote("Error determining the KV version", s.status());
  }
  const json::object empty;
  const json::object& d = s->data.is_object() ? s->data.as_object() : empty;
  std::string mount;
  if (auto it = d.find("path"); it != d.end() && it->value().is_string()) {
    mount = std::string(it->value().as_string());
  }
  if (auto it = d.find("options"); it != d.end() && it->value().is_object()) {
    auto v = it->value().as_object().find("version");
    out->v2 = v != it->value().as_object().end() && v->value().is_string() &&
              v->value().as_string() == "2";
  }
  out->mount = mount;
  if (!mount_flag.empty()) {
    out->partial = path;
  } else {
    std::string m = mount;
    while (!m.empty() && m.back() == '/') m.pop_back();
    out->partial = path == m                       ? ""
                   : absl::StartsWith(path, mount) ? path.substr(mount.size())
                                                   : path;
  }
  return std::nullopt;
}

void PrintPath(Context& ctx, std::string_view path, std::string_view title) {
  ctx.Out(PadEqualSigns(title, path.size()));
  ctx.Out(path);
  ctx.Out("");
}

// The table printed after a v2 write: the path and the new version's metadata.
int OutputWritten(Context& ctx, const client::Secret& s, const std::string& full) {
  if (auto rc = ctx.OutputIfWrapped(s)) return *rc;
  if (!ctx.field().empty() || ctx.format() != Format::kTable) return ctx.OutputSecret(s);
  PrintPath(ctx, full, "Secret Path");
  const json::object meta = s.data.is_object() ? s.data.as_object() : json::object();
  ctx.Out(HeaderForMap("Metadata", meta));
  return ctx.OutputData(meta);
}

json::array VersionList(const std::vector<std::string>& versions, absl::Status* error) {
  json::array out;
  for (const std::string& v : versions) {
    int64_t n = 0;
    if (!absl::SimpleAtoi(v, &n) || n <= 0) {
      *error = absl::InvalidArgumentError(absl::StrCat("invalid version \"", v, "\""));
      return out;
    }
    out.emplace_back(n);
  }
  return out;
}

// ---- kv get ----------------------------------------------------------------------------------

int KvGet(Context& ctx, const Args& argv) {
  FlagSet flags;
  std::string mount;
  int64_t version = 0;
  flags.String("mount", &mount);
  flags.Int("version", &version);
  ctx.AddFlags(&flags);
  if (auto rc = ctx.Parse(&flags, argv, "Usage: strongroom kv get [options] KEY")) return *rc;
  if (auto rc = ctx.ExpectArgs(flags.args(), 1, 1)) return *rc;
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  KvPath kv;
  if (auto rc = Resolve(ctx, c, mount, flags.args()[0], &kv)) return *rc;
  const std::string full = kv.Api("data");
  std::string query = version > 0 && kv.v2 ? absl::StrCat("version=", version) : "";
  auto s = c->Request("GET", full, nullptr, query);
  if (!s.ok() && client::HttpStatusOf(s.status()) == 404) {
    ctx.Err(absl::StrCat("No value found at ", full));
    return kRemoteError;
  }
  if (!s.ok()) return ctx.Remote(absl::StrCat("Error reading ", full), s.status());
  if (auto rc = ctx.OutputIfWrapped(*s)) return *rc;
  if (!ctx.field().empty()) {
    const json::object& body = ObjectOr(s->data);
    if (kv.v2) {
      // A deleted or destroyed version has no data (vault: "No data found", exit 2).
      auto it = body.find("data");
      if (it == body.end() || !it->value().is_object()) {
        ctx.Err(absl::StrCat("No data found at ", full));
        return kRemoteError;
      }
      const json::object& data = it->value().as_object();
      // A literal "data" field: the value if the secret has one, else the data block itself.
      return ctx.PrintField(*s, ctx.field() == "data" && !data.contains("data") ? body : data);
    }
    return ctx.PrintField(*s, body);
  }
  if (ctx.format() != Format::kTable) return ctx.OutputSecret(*s);
  if (std::string w = WarningsText(s->warnings); !w.empty()) {
    std::fwrite(w.data(), 1, w.size(), ctx.err());
  }
  if (kv.v2) PrintPath(ctx, full, "Secret Path");
  if (kv.v2) {
    json::object meta = Member(ObjectOr(s->data), "metadata");
    ctx.Out(HeaderForMap("Metadata", meta));
    ctx.OutputData(meta);
    ctx.Out("");
    if (s->data.is_object() && s->data.as_object().contains("data") &&
        s->data.as_object().at("data").is_object()) {
      json::object data = s->data.as_object().at("data").as_object();
      ctx.Out(HeaderForMap("Data", data));
      ctx.OutputData(data);
    }
    return kOk;
  }
  if (s->data.is_object()) {
    ctx.Out(HeaderForMap("Data", s->data.as_object()));
    ctx.OutputData(s->data);
  }
  return kOk;
}

// ---- kv put / patch --------------------------------------------------------------------------

int KvPut(Context& ctx, const Args& argv) {
  FlagSet flags;
  std::string mount;
  int64_t cas = -1;
  flags.String("mount", &mount);
  flags.Int("cas", &cas);
  ctx.AddFlags(&flags);
  if (auto rc = ctx.Parse(&flags, argv, "Usage: strongroom kv put [options] KEY [DATA]"))
    return *rc;
  const Args& args = flags.args();
  if (args.empty()) return ctx.Local("Not enough arguments (expected >1, got 0)");
  if (args.size() == 1) return ctx.Local("Must supply data");
  auto data = ctx.ParseArgsData(Args(args.begin() + 1, args.end()));
  if (!data.ok()) {
    return ctx.Local(absl::StrCat("Failed to parse K=V data: ", data.status().message()));
  }
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  KvPath kv;
  if (auto rc = Resolve(ctx, c, mount, args[0], &kv)) return *rc;
  const std::string full = kv.Api("data");
  json::object body;
  if (kv.v2) {
    body["data"] = std::move(*data);
    json::object options;
    if (cas > -1) options["cas"] = cas;
    body["options"] = std::move(options);
  } else {
    body = std::move(*data);
  }
  auto s = c->Request("PUT", full, &body);
  if (!s.ok()) return ctx.Remote(absl::StrCat("Error writing data to ", full), s.status());
  if (s->raw.empty()) {
    if (ctx.format() == Format::kTable) ctx.Out(absl::StrCat("Success! Data written to: ", full));
    return kOk;
  }
  return OutputWritten(ctx, *s, full);
}

int KvPatch(Context& ctx, const Args& argv) {
  FlagSet flags;
  std::string mount, method;
  int64_t cas = -1;
  std::vector<std::string> remove;
  flags.String("mount", &mount);
  flags.Int("cas", &cas);
  flags.String("method", &method);
  flags.Strings("remove-data", &remove, /*split_commas=*/false);
  ctx.AddFlags(&flags);
  if (auto rc = ctx.Parse(&flags, argv, "Usage: strongroom kv patch [options] KEY [DATA]"))
    return *rc;
  const Args& args = flags.args();
  if (args.empty()) return ctx.Local("Not enough arguments (expected >1, got 0)");
  if (args.size() == 1 && remove.empty()) return ctx.Local("Must supply data");
  if (!method.empty() && method != "patch" && method != "rw") {
    return ctx.Local(absl::StrCat("Unsupported method provided to -method flag: ", method));
  }
  auto data = ctx.ParseArgsData(Args(args.begin() + 1, args.end()));
  if (!data.ok()) {
    return ctx.Local(absl::StrCat("Failed to parse K=V data: ", data.status().message()));
  }
  for (const std::string& key : remove) (*data)[key] = nullptr;
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  KvPath kv;
  if (auto rc = Resolve(ctx, c, mount, args[0], &kv)) return *rc;
  if (!kv.v2) return ctx.Local("K/V engine mount must be version 2 for patch support");
  const std::string full = kv.Api("data");

  absl::StatusOr<client::Secret> s = absl::UnknownError("");
  if (method != "rw") {
    json::object body{{"data", *data}, {"options", json::object()}};
    if (cas > -1) body["options"].as_object()["cas"] = cas;
    s = c->Request("PATCH", full, &body);
    // As vault: without -method, a patch the policy refuses falls back to read-then-write.
    const int status = s.ok() ? 0 : client::HttpStatusOf(s.status());
    if (!s.ok() && !(method.empty() && (status == 403 || status == 405))) {
      return ctx.Remote(absl::StrCat("Error writing data to ", full), s.status());
    }
  }
  if (method == "rw" || !s.ok()) {
    auto current = c->Request("GET", full);
    if (!current.ok() && client::HttpStatusOf(current.status()) == 404) {
      ctx.Err(absl::StrCat("No value found at ", full));
      return kRemoteError;
    }
    if (!current.ok())
      return ctx.Remote(absl::StrCat("Error doing pre-read at ", full), current.status());
    json::object merged = Member(ObjectOr(current->data), "data");
    for (const auto& kvp : *data) {
      if (kvp.value().is_null()) {
        merged.erase(kvp.key());
      } else {
        merged[kvp.key()] = kvp.value();
      }
    }
    json::object meta = Member(ObjectOr(current->data), "metadata");
    json::object body{{"data", merged}, {"options", json::object()}};
    body["options"].as_object()["cas"] =
        cas > -1 ? json::value(cas)
                 : (meta.contains("version") ? meta.at("version") : json::value(0));
    s = c->Request("PUT", full, &body);
    if (!s.ok()) return ctx.Remote(absl::StrCat("Error writing data to ", full), s.status());
  }
  if (s->raw.empty()) return kOk;
  return OutputWritten(ctx, *s, full);
}

// ---- kv delete / undelete / destroy ----------------------------------------------------------

int KvDelete(Context& ctx, const Args& argv) {
  FlagSet flags;
  std::string mount;
  std::vector<std::string> versions;
  flags.String("mount", &mount);
  flags.Strings("versions", &versions);
  ctx.AddFlags(&flags, /*output=*/false);
  if (auto rc = ctx.Parse(&flags, argv, "Usage: strongroom kv delete [options] PATH")) return *rc;
  if (auto rc = ctx.ExpectArgs(flags.args(), 1, 1)) return *rc;
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  KvPath kv;
  if (auto rc = Resolve(ctx, c, mount, flags.args()[0], &kv)) return *rc;
  absl::StatusOr<client::Secret> s;
  std::string full;
  if (kv.v2 && !versions.empty()) {
    absl::Status bad;
    json::array list = VersionList(versions, &bad);
    if (!bad.ok()) return ctx.Local(Sv(bad.message()));
    full = kv.Api("delete");
    json::object body{{"versions", list}};
    s = c->Request("PUT", full, &body);
  } else {
    full = kv.Api("data");
    s = c->Request("DELETE", full);
  }
  if (!s.ok()) return ctx.Remote(absl::StrCat("Error deleting ", full), s.status());
  ctx.Out(absl::StrCat("Success! Data deleted (if it existed) at: ", full));
  return kOk;
}

int KvVersions(Context& ctx, const Args& argv, std::string_view op) {
  FlagSet flags;
  std::string mount;
  std::vector<std::string> versions;
  flags.String("mount", &mount);
  flags.Strings("versions", &versions);
  ctx.AddFlags(&flags, /*output=*/false);
  if (auto rc = ctx.Parse(&flags, argv,
                          absl::StrCat("Usage: strongroom kv ", Av(op), " -versions=N[,N] PATH"))) {
    return *rc;
  }
  if (auto rc = ctx.ExpectArgs(flags.args(), 1, 1)) return *rc;
  if (versions.empty()) return ctx.Local("No versions provided, use the \"-versions\" flag");
  absl::Status bad;
  json::array list = VersionList(versions, &bad);
  if (!bad.ok()) return ctx.Local(Sv(bad.message()));
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  KvPath kv;
  if (auto rc = Resolve(ctx, c, mount, flags.args()[0], &kv)) return *rc;
  if (!kv.v2) {
    return ctx.Local(absl::StrCat(Av(op), " is not supported on a KV version 1 mount"));
  }
  const std::string full = kv.Api(op);
  json::object body{{"versions", list}};
  auto s = c->Request("PUT", full, &body);
  if (!s.ok()) return ctx.Remote(absl::StrCat("Error writing data to ", full), s.status());
  ctx.Out(absl::StrCat("Success! Data written to: ", full));
  return kOk;
}
int KvUndelete(Context& ctx, const Args& argv) { return KvVersions(ctx, argv, "undelete"); }
int KvDestroy(Context& ctx, const Args& argv) { return KvVersions(ctx, argv, "destroy"); }

// ---- kv list ---------------------------------------------------------------------------------

int KvList(Context& ctx, const Args& argv) {
  FlagSet flags;
  std::string mount;
  flags.String("mount", &mount);
  ctx.AddFlags(&flags);
  if (auto rc = ctx.Parse(&flags, argv, "Usage: strongroom kv list [options] PATH")) return *rc;
  if (auto rc = ctx.ExpectArgs(flags.args(), mount.empty() ? 1 : 0, 1)) return *rc;
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  KvPath kv;
  if (auto rc = Resolve(ctx, c, mount, flags.args().empty() ? "" : flags.args()[0], &kv))
    return *rc;
  const std::string full = kv.Api("metadata");
  auto s = c->Request("GET", full, nullptr, "list=true");
  if (!s.ok() && client::HttpStatusOf(s.status()) == 404) {
    ctx.Err(absl::StrCat("No value found at ", full));
    return kRemoteError;
  }
  if (!s.ok()) return ctx.Remote(absl::StrCat("Error listing ", full), s.status());
  if (auto rc = ctx.OutputIfWrapped(*s)) return *rc;
  return ctx.OutputList(*s);
}

// ---- kv metadata get / put / delete ----------------------------------------------------------

int KvMetadataGet(Context& ctx, const Args& argv) {
  FlagSet flags;
  std::string mount;
  flags.String("mount", &mount);
  ctx.AddFlags(&flags);
  if (auto rc = ctx.Parse(&flags, argv, "Usage: strongroom kv metadata get [options] KEY"))
    return *rc;
  if (auto rc = ctx.ExpectArgs(flags.args(), 1, 1)) return *rc;
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  KvPath kv;
  if (auto rc = Resolve(ctx, c, mount, flags.args()[0], &kv)) return *rc;
  if (!kv.v2) return ctx.Local("Metadata not supported on KV Version 1");
  const std::string full = kv.Api("metadata");
  auto s = c->Request("GET", full);
  if (!s.ok() && client::HttpStatusOf(s.status()) == 404) {
    ctx.Err(absl::StrCat("No value found at ", full));
    return kRemoteError;
  }
  if (!s.ok()) return ctx.Remote(absl::StrCat("Error reading ", full), s.status());
  if (!ctx.field().empty() || ctx.format() != Format::kTable || s->wrap_info) {
    return ctx.OutputSecret(*s);
  }
  json::object meta = s->data.is_object() ? s->data.as_object() : json::object();
  json::object versions = Member(ObjectOr(s->data), "versions");
  meta.erase("versions");
  PrintPath(ctx, full, "Metadata Path");
  ctx.Out(HeaderForMap("Metadata", meta));
  ctx.OutputData(meta);
  std::vector<std::pair<int64_t, std::string>> order;
  for (const auto& v : versions) {
    int64_t n = 0;
    if (absl::SimpleAtoi(Av(v.key()), &n)) order.emplace_back(n, std::string(v.key()));
  }
  std::sort(order.begin(), order.end());
  for (const auto& [n, key] : order) {
    ctx.Out("");
    json::object entry =
        versions.at(key).is_object() ? versions.at(key).as_object() : json::object();
    ctx.Out(HeaderForMap(absl::StrCat("Version ", n), entry));
    ctx.OutputData(entry);
  }
  return kOk;
}

int KvMetadataPut(Context& ctx, const Args& argv) {
  FlagSet flags;
  std::string mount;
  int64_t max_versions = -1, delete_after = -1;
  bool cas_required = false;
  std::map<std::string, std::string> custom;
  flags.String("mount", &mount);
  flags.Int("max-versions", &max_versions);
  flags.Bool("cas-required", &cas_required);
  flags.Duration("delete-version-after", &delete_after);
  flags.Map("custom-metadata", &custom);
  ctx.AddFlags(&flags, /*output=*/false);
  if (auto rc = ctx.Parse(&flags, argv, "Usage: strongroom kv metadata put [options] KEY"))
    return *rc;
  if (auto rc = ctx.ExpectArgs(flags.args(), 1, 1)) return *rc;
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  KvPath kv;
  if (auto rc = Resolve(ctx, c, mount, flags.args()[0], &kv)) return *rc;
  if (!kv.v2) return ctx.Local("Metadata not supported on KV Version 1");
  const std::string full = kv.Api("metadata");
  json::object body;
  if (max_versions >= 0) body["max_versions"] = max_versions;
  if (flags.Given("cas-required")) body["cas_required"] = cas_required;
  if (delete_after >= 0) body["delete_version_after"] = absl::StrCat(delete_after, "s");
  if (!custom.empty()) {
    json::object m;
    for (const auto& [k, v] : custom) m[k] = v;
    body["custom_metadata"] = std::move(m);
  }
  auto s = c->Request("PUT", full, &body);
  if (!s.ok()) return ctx.Remote(absl::StrCat("Error writing data to ", full), s.status());
  ctx.Out(absl::StrCat("Success! Data written to: ", full));
  return kOk;
}

int KvMetadataDelete(Context& ctx, const Args& argv) {
  FlagSet flags;
  std::string mount;
  flags.String("mount", &mount);
  ctx.AddFlags(&flags, /*output=*/false);
  if (auto rc = ctx.Parse(&flags, argv, "Usage: strongroom kv metadata delete [options] PATH")) {
    return *rc;
  }
  if (auto rc = ctx.ExpectArgs(flags.args(), 1, 1)) return *rc;
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  KvPath kv;
  if (auto rc = Resolve(ctx, c, mount, flags.args()[0], &kv)) return *rc;
  if (!kv.v2) return ctx.Local("Metadata not supported on KV Version 1");
  const std::string full = kv.Api("metadata");
  auto s = c->Request("DELETE", full);
  if (!s.ok()) return ctx.Remote(absl::StrCat("Error deleting ", full), s.status());
  ctx.Out(absl::StrCat("Success! Data deleted (if it existed) at: ", full));
  return kOk;
}

}  // namespace

const std::vector<Command>& KvCommands() {
  static const std::vector<Command> commands = {
      {{"kv", "get"}, KvGet, "Retrieve data"},
      {{"kv", "put"}, KvPut, "Set or update data in the KV store"},
      {{"kv", "patch"}, KvPatch, "Set or update data in the KV store without overwriting"},
      {{"kv", "delete"}, KvDelete, "Delete versions of secrets stored in K/V"},
      {{"kv", "undelete"}, KvUndelete, "Undelete versions of secrets stored in K/V"},
      {{"kv", "destroy"}, KvDestroy, "Permanently remove one or more versions of secrets in K/V"},
      {{"kv", "list"}, KvList, "List data or secrets"},
      {{"kv", "metadata", "get"}, KvMetadataGet, "Retrieve key metadata from the KV store"},
      {{"kv", "metadata", "put"}, KvMetadataPut, "Set or update key metadata in the KV store"},
      {{"kv", "metadata", "delete"},
       KvMetadataDelete,
       "Delete all versions and metadata for a key"},
  };
  return commands;
}

}  // namespace strongroom::vault
