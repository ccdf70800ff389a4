// status, read, write, list, delete, patch, unwrap, print token.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/strings.h"
#include "cli/vault/command.h"
#include "cli/vault/paths.h"

namespace strongroom::vault {
namespace {

using Args = std::vector<std::string>;

// Vault's argument count checks.
// ---- status ---------------------------------------------------------------------------------

int Status(Context& ctx, const Args& argv) {
  FlagSet flags;
  ctx.AddFlags(&flags);
  if (auto rc = ctx.Parse(&flags, argv, "Usage: strongroom status [options]")) return *rc;
  if (auto rc = ctx.ExpectArgs(flags.args(), 0, 0)) return *rc;
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  auto seal = c->Read("sys/seal-status");
  if (!seal.ok()) {
    if (client::Client::IsCurlPrinted(seal.status())) return ctx.Remote("", seal.status());
    ctx.Err(absl::StrCat("Error checking seal status: ", seal.status().message()));
    return kLocalError;
  }
  const json::object& st = seal->raw;
  auto get = [](const json::object& o, std::string_view k) {
    auto it = o.find(k);
    return it == o.end() ? json::value() : it->value();
  };
  auto str = [&](const json::object& o, std::string_view k) {
    json::value v = get(o, k);
    return v.is_null() ? std::string() : GoValue(v);
  };
  const bool sealed = get(st, "sealed").is_bool() && get(st, "sealed").as_bool();
  json::object leader;
  if (!sealed) {
    auto l = c->Read("sys/leader");
    if (!l.ok()) {
      ctx.Err(absl::StrCat("Error checking leader status: ", l.status().message()));
      return kLocalError;
    }
    leader = l->raw;
  } else {
    leader["ha_enabled"] = true;  // as Vault: a sealed node's leader status is unknown
  }
  const bool ha = get(leader, "ha_enabled").is_bool() && get(leader, "ha_enabled").as_bool();
  const bool is_self = get(leader, "is_self").is_bool() && get(leader, "is_self").as_bool();

  if (ctx.format() != Format::kTable) {
    json::object out;  // a Go struct: printed in this order
    for (std::string_view k :
         {"type", "initialized", "sealed", "t", "n", "progress", "nonce", "version", "build_date",
          "migration", "cluster_name", "cluster_id", "recovery_seal", "storage_type"}) {
      if (auto it = st.find(k); it != st.end()) out[k] = it->value();
    }
    out["ha_enabled"] = ha;
    for (std::string_view k : {"is_self", "active_time", "leader_address", "leader_cluster_address",
                               "raft_committed_index", "raft_applied_index"}) {
      if (auto it = leader.find(k); it != leader.end()) out[k] = it->value();
    }
    ctx.OutputData(out, JsonOrder{true, {}});
    return sealed ? kRemoteError : kOk;
  }
  std::vector<std::string> rows{"Key | Value"};
  auto row = [&](std::string_view k, std::string_view v) {
    rows.push_back(absl::StrCat(Av(k), " | ", Av(v)));
  };
  row("Seal Type", str(st, "type"));
  row("Initialized", str(st, "initialized"));
  row("Sealed", str(st, "sealed"));
  row("Total Shares", str(st, "n"));
  row("Threshold", str(st, "t"));
  if (sealed) {
    row("Unseal Progress", absl::StrCat(str(st, "progress"), "/", str(st, "t")));
    row("Unseal Nonce", str(st, "nonce"));
  }
  row("Version", str(st, "version"));
  row("Build Date", str(st, "build_date"));
  row("Storage Type", str(st, "storage_type"));
  if (!str(st, "cluster_name").empty() && !str(st, "cluster_id").empty()) {
    row("Cluster Name", str(st, "cluster_name"));
    row("Cluster ID", str(st, "cluster_id"));
  }
  row("HA Enabled", ha ? "true" : "false");
  if (ha && !sealed) {
    row("HA Cluster", str(leader, "leader_cluster_address"));
    row("HA Mode", is_self ? "active" : "standby");
    std::string since = str(leader, "active_time");
    if (is_self && !since.empty() && !absl::StartsWith(since, "0001-01-01")) {
      row("Active Since", since);
    }
    if (!is_self) {
      std::string addr = str(leader, "leader_address");
      row("Active Node Address", addr.empty() ? "<none>" : addr);
    }
  }
  for (auto [key, label] : {std::pair<std::string_view, std::string_view>{"raft_committed_index",
                                                                          "Raft Committed Index"},
                            {"raft_applied_index", "Raft Applied Index"}}) {
    json::value v = get(leader, key);
    if ((v.is_int64() && v.as_int64() > 0) || (v.is_uint64() && v.as_uint64() > 0)) {
      row(label, GoValue(v));
    }
  }
  std::string table = Table(rows, "|");
  table.pop_back();
  ctx.Out(table);
  return sealed ? kRemoteError : kOk;
}

// ---- read, write, list, delete, patch --------------------------------------------------------

// K=V arguments as a query string (read and delete send them so).
absl::StatusOr<std::string> QueryFrom(Context& ctx, const Args& args) {
  auto data = ctx.ParseArgsData(args);
  if (!data.ok()) return data.status();
  std::vector<std::string> parts;
  for (const auto& kv : *data) {
    auto add = [&](const json::value& v) {
      parts.push_back(
          absl::StrCat(QueryEscape(kv.key()), "=",
                       QueryEscape(v.is_string() ? std::string(v.as_string()) : GoValue(v))));
    };
    if (kv.value().is_array()) {
      for (const json::value& v : kv.value().as_array()) add(v);
    } else {
      add(kv.value());
    }
  }
  return absl::StrJoin(parts, "&");
}

int Read(Context& ctx, const Args& argv) {
  FlagSet flags;
  ctx.AddFlags(&flags);
  if (auto rc = ctx.Parse(&flags, argv, "Usage: strongroom read [options] PATH [K=V...]"))
    return *rc;
  const Args& args = flags.args();
  if (auto rc = ctx.ExpectArgs(args, 1, SIZE_MAX)) return *rc;
  auto path = SanitizePath(args[0]);
  auto query = QueryFrom(ctx, Args(args.begin() + 1, args.end()));
  if (!query.ok()) return ctx.Local(Sv(query.status().message()));
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  auto s = c->Request("GET", path, nullptr, *query);
  if (!s.ok() && client::HttpStatusOf(s.status()) == 404) {
    ctx.Err(absl::StrCat("No value found at ", path));
    return kRemoteError;
  }
  if (!s.ok()) return ctx.Remote(absl::StrCat("Error reading ", path), s.status());
  return ctx.OutputSecret(*s);
}

// write (PUT) and patch (PATCH, a JSON merge patch): the same arguments and output.
int WriteWith(Context& ctx, const Args& argv, std::string_view method) {
  const bool put = method == "PUT";
  FlagSet flags;
  bool force = false;
  if (put) {
    flags.Bool("force", &force);
    flags.Bool("f", &force);
  }
  ctx.AddFlags(&flags);
  if (auto rc = ctx.Parse(&flags, argv,
                          absl::StrCat("Usage: strongroom ", put ? "write" : "patch",
                                       " [options] PATH [DATA K=V...]"))) {
    return *rc;
  }
  const Args& args = flags.args();
  if (auto rc = ctx.ExpectArgs(args, put ? 1 : 2, SIZE_MAX)) return *rc;
  if (args.size() == 1 && !force) return ctx.Local("Must supply data or use -force");
  auto path = SanitizePath(args[0]);
  auto data = ctx.ParseArgsData(Args(args.begin() + 1, args.end()));
  if (!data.ok())
    return ctx.Local(absl::StrCat("Failed to parse K=V data: ", data.status().message()));
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  auto s = c->Request(method, path, &*data);
  if (!s.ok()) return ctx.Remote(absl::StrCat("Error writing data to ", path), s.status());
  if (s->raw.empty()) {
    if (ctx.format() == Format::kTable) ctx.Out(absl::StrCat("Success! Data written to: ", path));
    return kOk;
  }
  return ctx.OutputSecret(*s);
}
int Write(Context& ctx, const Args& argv) { return WriteWith(ctx, argv, "PUT"); }
int Patch(Context& ctx, const Args& argv) { return WriteWith(ctx, argv, "PATCH"); }

int List(Context& ctx, const Args& argv) {
  FlagSet flags;
  ctx.AddFlags(&flags);
  if (auto rc = ctx.Parse(&flags, argv, "Usage: strongroom list [options] PATH")) return *rc;
  const Args& args = flags.args();
  if (auto rc = ctx.ExpectArgs(args, 1, 1)) return *rc;
  auto path = SanitizePath(args[0]);
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  auto s = c->Request("GET", path, nullptr, "list=true");
  if (!s.ok() && client::HttpStatusOf(s.status()) == 404) {
    ctx.Err(absl::StrCat("No value found at ", path));
    return kRemoteError;
  }
  if (!s.ok()) return ctx.Remote(absl::StrCat("Error listing ", path), s.status());
  if (auto rc = ctx.OutputIfWrapped(*s)) return *rc;
  if (!s->data.is_object() || !s->data.as_object().contains("keys")) {
    ctx.Err(absl::StrCat("No entries found at ", path));
    return kRemoteError;
  }
  return ctx.OutputList(*s);
}

int Delete(Context& ctx, const Args& argv) {
  FlagSet flags;
  ctx.AddFlags(&flags, /*output=*/false);
  if (auto rc = ctx.Parse(&flags, argv, "Usage: strongroom delete [options] PATH [K=V...]"))
    return *rc;
  const Args& args = flags.args();
  if (auto rc = ctx.ExpectArgs(args, 1, SIZE_MAX)) return *rc;
  auto path = SanitizePath(args[0]);
  auto query = QueryFrom(ctx, Args(args.begin() + 1, args.end()));
  if (!query.ok()) return ctx.Local(Sv(query.status().message()));
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  auto s = c->Request("DELETE", path, nullptr, *query);
  if (!s.ok()) return ctx.Remote(absl::StrCat("Error deleting ", path), s.status());
  ctx.Out(absl::StrCat("Success! Data deleted (if it existed) at: ", path));
  return kOk;
}

// ---- unwrap ----------------------------------------------------------------------------------

// Vault's `unwrap [TOKEN]`: no argument unwraps the CLI's own token (VAULT_TOKEN, the token
// helper), which is then the wrapping token; an argument is sent in the body (or as the token
// when the CLI has none). The answer prints as `read` prints it, a list as `list`.
int Unwrap(Context& ctx, const Args& argv) {
  FlagSet flags;
  ctx.AddFlags(&flags);
  if (auto rc = ctx.Parse(&flags, argv, "Usage: strongroom unwrap [options] [TOKEN | -]")) {
    return *rc;
  }
  const Args& args = flags.args();
  if (args.size() > 1) {
    return ctx.Local(absl::StrCat("Too many arguments (expected 0-1, got ", args.size(), ")"));
  }
  std::string token;
  if (!args.empty()) {
    if (args[0] == "-") {
      auto in = ReadSecret("Wrapping token (will be hidden): ");
      if (!in.ok()) return ctx.Local("Error reading the wrapping token");
      token = *in;
    } else {
      token = args[0];
    }
  }
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  auto s = c->Unwrap(token);
  if (!s.ok()) return ctx.Remote("Error unwrapping", s.status());
  if (s->raw.empty()) {
    ctx.Err("Could not find wrapped response");
    return kRemoteError;
  }
  if (!ctx.field().empty()) {
    static const json::object kEmpty;
    return ctx.PrintField(*s, s->data.is_object() ? s->data.as_object() : kEmpty);
  }
  if (s->data.is_object() && s->data.as_object().contains("keys") &&
      s->data.as_object().at("keys").is_array() && !s->auth && !s->wrap_info) {
    return ctx.OutputList(*s);
  }
  return ctx.OutputSecret(*s);
}

// ---- print token -----------------------------------------------------------------------------

int PrintToken(Context& ctx, const Args& argv) {
  FlagSet flags;
  if (auto rc = ctx.Parse(&flags, argv, "Usage: strongroom print token")) return *rc;
  if (auto rc = ctx.ExpectArgs(flags.args(), 0, 0)) return *rc;
  ctx.Out(ctx.Token());
  return kOk;
}

}  // namespace

const std::vector<Command>& BasicCommands() {
  static const std::vector<Command> commands = {
      {{"status"}, Status, "Print seal and HA status (exit 2 when sealed)"},
      {{"read"}, Read, "Read data and retrieves secrets"},
      {{"write"}, Write, "Write data, configuration, and secrets"},
      {{"list"}, List, "List data or secrets"},
      {{"delete"}, Delete, "Delete secrets and configuration"},
      {{"patch"}, Patch, "Patch data, configuration, and secrets (JSON merge patch)"},
      {{"unwrap"}, Unwrap, "Unwrap a wrapped secret"},
      {{"print", "token"}, PrintToken, "Print the token the CLI would use"},
  };
  return commands;
}

}  // namespace strongroom::vault
