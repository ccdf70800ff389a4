// operator init|seal|step-down|members and operator raft list-peers|join|remove-peer|snapshot
// save|snapshot restore, as the `vault` CLI's, on strongroom's sys/ endpoints. strongroom seals
// with a PKCS#11 token (auto-unseal): sys/init makes recovery keys, never unseal keys.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/strings.h"
#include "cli/vault/command.h"
#include "cli/vault/paths.h"

namespace strongroom::vault {
namespace {

using Args = std::vector<std::string>;

// The appliance's own limit (storage/snapshot_archive.h), with room for a larger future one.
constexpr size_t kMaxSnapshotBytes = 64u << 20;
constexpr size_t kMaxJoinTokenBytes = 4096;

// A response's data: `data`, else the top-level object (sys/ha-status, sys/init answer so).
json::object DataOf(const client::Secret& s) {
  if (s.data.is_object()) return s.data.as_object();
  return s.raw;
}

int PrintTable(Context& ctx, const std::vector<std::string>& rows) {
  std::string table = Table(rows, kDelim);
  if (!table.empty()) table.pop_back();
  ctx.Out(table);
  return kOk;
}

// ---- operator init ---------------------------------------------------------------------------

int Init(Context& ctx, const Args& argv) {
  FlagSet flags;
  int64_t recovery_shares = 5, recovery_threshold = 3, key_shares = 0, key_threshold = 0;
  bool status = false;
  flags.Int("recovery-shares", &recovery_shares);
  flags.Int("recovery-threshold", &recovery_threshold);
  flags.Int("key-shares", &key_shares);
  flags.Int("key-threshold", &key_threshold);
  flags.Int("n", &key_shares);
  flags.Int("t", &key_threshold);
  flags.Bool("status", &status);
  ctx.AddFlags(&flags);
  if (auto rc =
          ctx.Parse(&flags, argv,
                    "Usage: strongroom operator init [options]\n\n"
                    "  Initialises the server: recovery keys (-recovery-shares, default 5;\n"
                    "  -recovery-threshold, default 3) and the initial root token.\n"
                    "  strongroom seals with its PKCS#11 token, so there are no unseal keys:\n"
                    "  -key-shares and -key-threshold are refused by the server.\n"
                    "  -status: exit 0 if initialised, 2 if not.")) {
    return *rc;
  }
  if (auto rc = ctx.ExpectArgs(flags.args(), 0, 0)) return *rc;
  if (recovery_shares < 0 || recovery_shares > 255 || recovery_threshold < 0 ||
      recovery_threshold > recovery_shares) {
    return ctx.Local(
        "-recovery-shares must be 0 to 255 and -recovery-threshold at most -recovery-shares");
  }
  client::Client* c = ctx.Client(/*with_token=*/false);
  if (c == nullptr) return kLocalError;
  if (status) {
    auto s = c->Read("sys/init");
    if (!s.ok()) return ctx.Remote("Error checking init status", s.status());
    if (Bool(s->raw, "initialized")) {
      ctx.Out("Vault is initialized");
      return kOk;
    }
    ctx.Out("Vault is not initialized");
    return kRemoteError;
  }
  json::object body;
  body["recovery_shares"] = recovery_shares;
  body["recovery_threshold"] = recovery_threshold;
  if (flags.Given("key-shares") || flags.Given("n")) body["secret_shares"] = key_shares;
  if (flags.Given("key-threshold") || flags.Given("t")) body["secret_threshold"] = key_threshold;
  auto s = c->Request("PUT", "sys/init", &body);
  if (!s.ok()) return ctx.Remote("Error initializing", s.status());
  const json::object& r = s->raw;
  auto list = [&](std::string_view k) {
    auto it = r.find(k);
    return it != r.end() && it->value().is_array() ? it->value() : json::value(json::array());
  };
  if (ctx.format() != Format::kTable) {
    json::object out;  // a Go struct: printed in this order
    out["unseal_keys_b64"] = json::array();
    out["unseal_keys_hex"] = json::array();
    out["unseal_shares"] = 0;
    out["unseal_threshold"] = 0;
    out["recovery_keys_b64"] = list("recovery_keys_base64");
    out["recovery_keys_hex"] = list("recovery_keys");
    out["recovery_keys_shares"] = recovery_shares;
    out["recovery_keys_threshold"] = recovery_threshold;
    out["root_token"] = Str(r, "root_token");
    return ctx.OutputData(out, JsonOrder{true, {}});
  }
  std::string text;
  int i = 0;
  const json::value keys = list("recovery_keys_base64");
  for (const json::value& k : keys.as_array()) {
    absl::StrAppend(&text, "Recovery Key ", ++i, ": ", GoValue(k), "\n");
  }
  if (i > 0) text.push_back('\n');
  absl::StrAppend(&text, "Initial Root Token: ", Str(r, "root_token"), "\n\n",
                  "Success! Vault is initialized\n");
  if (i > 0) {
    absl::StrAppend(&text, "\nRecovery key initialized with ", recovery_shares,
                    " key shares and a key threshold of ", recovery_threshold,
                    ". Please\nsecurely distribute the key shares printed above.\n");
  }
  text.pop_back();
  ctx.Out(text);
  return kOk;
}

// ---- operator seal, step-down, members -------------------------------------------------------

int Seal(Context& ctx, const Args& argv) {
  FlagSet flags;
  ctx.AddFlags(&flags, /*output=*/false);
  if (auto rc = ctx.Parse(&flags, argv, "Usage: strongroom operator seal [options]")) return *rc;
  if (auto rc = ctx.ExpectArgs(flags.args(), 0, 0)) return *rc;
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  auto s = c->Request("PUT", "sys/seal");
  if (!s.ok()) return ctx.Remote("Error sealing", s.status());
  ctx.Out("Success! Vault is sealed.");
  return kOk;
}

int StepDown(Context& ctx, const Args& argv) {
  FlagSet flags;
  ctx.AddFlags(&flags, /*output=*/false);
  if (auto rc = ctx.Parse(&flags, argv, "Usage: strongroom operator step-down [options]")) {
    return *rc;
  }
  if (auto rc = ctx.ExpectArgs(flags.args(), 0, 0)) return *rc;
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  auto s = c->Request("PUT", "sys/step-down");
  if (!s.ok()) return ctx.Remote("Error stepping down", s.status());
  ctx.Out(absl::StrCat("Success! Stepped down: ", c->config().address));
  return kOk;
}

int Members(Context& ctx, const Args& argv) {
  FlagSet flags;
  ctx.AddFlags(&flags);
  if (auto rc = ctx.Parse(&flags, argv, "Usage: strongroom operator members [options]")) {
    return *rc;
  }
  if (auto rc = ctx.ExpectArgs(flags.args(), 0, 0)) return *rc;
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  auto s = c->Read("sys/ha-status");
  if (!s.ok()) return ctx.Remote("Error reading the HA status", s.status());
  json::object data = DataOf(*s);
  if (ctx.format() != Format::kTable) {
    json::object out;
    out["nodes"] = data.contains("nodes") ? data.at("nodes") : json::value(json::array());
    return ctx.OutputData(out);
  }
  const std::string d(kDelim);
  std::vector<std::string> rows{
      absl::StrJoin({"Host Name", "API Address", "Cluster Address", "Active Node", "Version",
                     "Upgrade Version", "Redundancy Zone", "Last Echo"},
                    d)};
  if (auto it = data.find("nodes"); it != data.end() && it->value().is_array()) {
    for (const json::value& v : it->value().as_array()) {
      const json::object& n = ObjectOr(v);
      rows.push_back(
          absl::StrJoin({Str(n, "hostname"), Str(n, "api_address"), Str(n, "cluster_address"),
                         std::string(Bool(n, "active_node") ? "true" : "false"), Str(n, "version"),
                         Str(n, "upgrade_version"), Str(n, "redundancy_zone"), Str(n, "last_echo")},
                        d));
    }
  }
  return PrintTable(ctx, rows);
}

// ---- operator raft ... -----------------------------------------------------------------------

int RaftListPeers(Context& ctx, const Args& argv) {
  FlagSet flags;
  ctx.AddFlags(&flags);
  if (auto rc = ctx.Parse(&flags, argv, "Usage: strongroom operator raft list-peers [options]")) {
    return *rc;
  }
  if (auto rc = ctx.ExpectArgs(flags.args(), 0, 0)) return *rc;
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  auto s = c->Read("sys/storage/raft/configuration");
  if (!s.ok()) return ctx.Remote("Error reading the raft cluster configuration", s.status());
  if (!s->data.is_object()) {
    ctx.Err("No raft cluster configuration found");
    return kRemoteError;
  }
  if (ctx.format() != Format::kTable) return ctx.OutputSecret(*s);
  const json::object& config = Member(s->data.as_object(), "config");
  const std::string d(kDelim);
  std::vector<std::string> rows{absl::StrJoin({"Node", "Address", "State", "Voter"}, d)};
  if (auto it = config.find("servers"); it != config.end() && it->value().is_array()) {
    for (const json::value& v : it->value().as_array()) {
      const json::object& p = ObjectOr(v);
      rows.push_back(absl::StrJoin({Str(p, "node_id"), Str(p, "address"),
                                    std::string(Bool(p, "leader") ? "leader" : "follower"),
                                    std::string(Bool(p, "voter") ? "true" : "false")},
                                   d));
    }
  }
  return PrintTable(ctx, rows);
}

int RaftJoin(Context& ctx, const Args& argv) {
  FlagSet flags;
  std::string join_token_file;
  bool non_voter = false;
  flags.String("join-token-file", &join_token_file);
  flags.Bool("non-voter", &non_voter);
  ctx.AddFlags(&flags);
  if (auto rc = ctx.Parse(&flags, argv,
                          "Usage: strongroom operator raft join [options] LEADER_API_ADDR\n\n"
                          "  -join-token-file=FILE  the one-time join token (minted on the\n"
                          "                         leader at sys/storage/raft/join-token), from\n"
                          "                         a file or - for stdin; never on the command\n"
                          "                         line.\n"
                          "  -non-voter             refused by strongroom: every node votes.")) {
    return *rc;
  }
  if (auto rc = ctx.ExpectArgs(flags.args(), 1, 1)) return *rc;
  json::object body;
  body["leader_api_addr"] = std::string(absl::StripAsciiWhitespace(flags.args()[0]));
  if (!join_token_file.empty()) {
    auto token = ReadInput(join_token_file, kMaxJoinTokenBytes);
    if (!token.ok()) {
      return ctx.Local(absl::StrCat("Failed to read the join token: ", token.status().message()));
    }
    body["join_token"] = std::string(absl::StripAsciiWhitespace(*token));
  }
  if (non_voter) body["non_voter"] = true;
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  auto s = c->Request("PUT", "sys/storage/raft/join", &body);
  if (!s.ok()) return ctx.Remote("Error joining the node to the Raft cluster", s.status());
  const bool joined = Bool(s->raw, "joined");
  if (ctx.format() != Format::kTable) {
    json::object out{{"joined", joined}};
    return ctx.OutputData(out);
  }
  const std::string d(kDelim);
  return PrintTable(
      ctx, {absl::StrCat("Key", d, "Value"), absl::StrCat("Joined", d, joined ? "true" : "false")});
}

int RaftRemovePeer(Context& ctx, const Args& argv) {
  FlagSet flags;
  ctx.AddFlags(&flags, /*output=*/false);
  if (auto rc = ctx.Parse(&flags, argv,
                          "Usage: strongroom operator raft remove-peer [options] SERVER_ID")) {
    return *rc;
  }
  if (auto rc = ctx.ExpectArgs(flags.args(), 1, 1)) return *rc;
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  json::object body{{"server_id", std::string(absl::StripAsciiWhitespace(flags.args()[0]))}};
  auto s = c->Request("PUT", "sys/storage/raft/remove-peer", &body);
  if (!s.ok()) return ctx.Remote("Error removing the peer from raft cluster", s.status());
  ctx.Out("Peer removed successfully!");
  return kOk;
}

// Writes `bytes` to `path` (0600, a temporary file beside it renamed into place), or to stdout
// for "-".
absl::Status WriteSnapshot(Context& ctx, const std::string& path, const std::string& bytes) {
  if (path == "-") {
    if (std::fwrite(bytes.data(), 1, bytes.size(), ctx.out()) != bytes.size() ||
        std::fflush(ctx.out()) != 0) {
      return absl::InternalError("error writing to stdout");
    }
    return absl::OkStatus();
  }
  return WriteFileAtomic(path, bytes, 0600);
}

int SnapshotSave(Context& ctx, const Args& argv) {
  FlagSet flags;
  ctx.AddFlags(&flags, /*output=*/false);
  if (auto rc =
          ctx.Parse(&flags, argv, "Usage: strongroom operator raft snapshot save [options] FILE")) {
    return *rc;
  }
  if (auto rc = ctx.ExpectArgs(flags.args(), 1, 1)) return *rc;
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  auto bytes = c->RequestRaw("GET", "sys/storage/raft/snapshot");
  if (!bytes.ok()) return ctx.Remote("Error taking the snapshot", bytes.status());
  if (absl::Status s = WriteSnapshot(ctx, flags.args()[0], *bytes); !s.ok()) {
    return ctx.Local(absl::StrCat("Error writing the snapshot: ", s.message()));
  }
  return kOk;
}

int SnapshotRestore(Context& ctx, const Args& argv) {
  FlagSet flags;
  bool force = false;
  flags.Bool("force", &force);
  ctx.AddFlags(&flags, /*output=*/false);
  if (auto rc = ctx.Parse(&flags, argv,
                          "Usage: strongroom operator raft snapshot restore [options] FILE\n\n"
                          "  -force  restore a snapshot taken by another cluster (its KEK must\n"
                          "          be in this node's token)")) {
    return *rc;
  }
  if (auto rc = ctx.ExpectArgs(flags.args(), 1, 1)) return *rc;
  auto bytes = ReadInput(flags.args()[0], kMaxSnapshotBytes);
  if (!bytes.ok()) {
    return ctx.Local(absl::StrCat("Error opening the snapshot file: ", bytes.status().message()));
  }
  client::Client* c = ctx.Client();
  if (c == nullptr) return kLocalError;
  auto s = c->RequestRaw(
      "POST", force ? "sys/storage/raft/snapshot-force" : "sys/storage/raft/snapshot", &*bytes);
  if (!s.ok()) return ctx.Remote("Error installing the snapshot", s.status());
  return kOk;
}

}  // namespace

const std::vector<Command>& OperatorCommands() {
  static const std::vector<Command> commands = {
      {{"operator", "init"}, Init, "Initialize a server (recovery keys, root token)"},
      {{"operator", "seal"}, Seal, "Seal the server"},
      {{"operator", "step-down"}, StepDown, "Force the active node to give up its role"},
      {{"operator", "members"}, Members, "List the HA cluster's nodes (sys/ha-status)"},
      {{"operator", "raft", "list-peers"}, RaftListPeers, "List the Raft peers"},
      {{"operator", "raft", "join"}, RaftJoin, "Join this node to a Raft cluster"},
      {{"operator", "raft", "remove-peer"}, RaftRemovePeer, "Remove a node from the Raft cluster"},
      {{"operator", "raft", "snapshot", "save"}, SnapshotSave, "Save a snapshot of the data"},
      {{"operator", "raft", "snapshot", "restore"}, SnapshotRestore, "Install a snapshot"},
  };
  return commands;
}

}  // namespace strongroom::vault
