// Audit devices (sys/audit): Vault's file audit device — one JSON object per line, a "request"
// record before the operation runs and a "response" record after it, secrets replaced by
// "hmac-sha256:" digests keyed by a per-device salt — with every line hash-chained to the one
// before (seq, prev_hash, hash) and checkpoints signed by the audit key in the PKCS#11 token.
// The line and checkpoint formats are audit/chain.h's, which the offline verifier checks.
//
// Fail closed: with at least one device enabled, a request runs only if some device recorded its
// request record (LogRequest returns an error otherwise, and the core refuses the request).
//
// Chain state survives restarts: at every checkpoint the device's chain state (last seq and
// hash, the Merkle frontier) is saved in barrier storage; at load the lines written after that
// checkpoint are read back from the file and folded in. Rotation: SIGHUP (Reopen) ends the old
// file with a checkpoint and continues the chain in the new one.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "appliance/core/json.h"
#include "appliance/core/request.h"
#include "appliance/storage/storage.h"

namespace strongroom::core {

class Seal;
struct TokenEntry;

struct AuditDeviceEntry {
  std::string path;  // "file/"
  std::string type = "file";
  std::string description;
  std::map<std::string, std::string> options;
  bool local = false;
  std::string uuid;

  json::object ToJson() const;
  static absl::StatusOr<AuditDeviceEntry> FromJson(const json::object& o);
};

struct AuditSettings {
  std::string node_id = "node";  // the origin's second component
  // Checkpoint defaults; a device's options "checkpoint_entries"/"checkpoint_interval" override.
  uint64_t checkpoint_entries = 1000;
  absl::Duration checkpoint_interval = absl::Seconds(60);
  // Raft: every node writes its own files, so each keeps its own chain state in the replicated
  // storage (sys/audit/<uuid>/state-<node_id>); a node without one starts a new chain in an
  // empty file, with an audit key it makes in its token if it has none. The daemon names a
  // Raft node "<node_id>.<incarnation>" (broker::ClusterNode::incarnation), so a node re-added
  // under an old node_id with a new data directory has no state yet and starts a new chain.
  bool per_node_state = false;
};

// A change the node carries out on its own authority, not as the answer to an API call: in a
// cluster, the leader's side of a join (the KEKs wrapped for the joining node's token, the node
// added as a voter), a refused join, a removed peer. Written as Vault-shaped "request" and
// "response" records (no auth) whose request.data and response.data are in clear: the caller
// puts only non-secret facts there (node ids, addresses, fingerprints), never key material.
struct AuditSystemEvent {
  std::string request_id;  // the same in the request and the response record
  std::string path;        // "sys/storage/raft/join"
  json::object data;       // request.data
  bool is_response = false;
  json::object response_data;  // response.data (response records; left out when empty)
  std::string error;           // "" when none
};

// What one audit record describes. Pointers are borrowed for the call.
struct AuditEvent {
  const Request* request = nullptr;
  const TokenEntry* token = nullptr;   // null when the token was missing or invalid
  std::string error;                   // "" when none
  const Response* response = nullptr;  // response records only (null when the request failed)
  // A request refused before any token was accepted (none, or an invalid one): its body is left
  // out of the record. Whoever sent it proved nothing, and hashing each of its strings would let
  // an anonymous client make the broker do many times the work of the body it sent.
  bool unauthenticated_refusal = false;
};

class AuditBroker {
 public:
  AuditBroker(storage::Storage* barrier, Seal* seal, std::function<absl::Time()> clock);
  ~AuditBroker();

  void set_settings(AuditSettings settings);

  // After unseal: reads the device table, opens each device, recovers its chain. A device that
  // cannot be opened is logged and left out (requests then fail closed if it was the only one).
  // Until it returns, and after Unload, every Log* call fails (Unavailable).
  absl::Status Load();
  // Before seal and at shutdown: checkpoints and closes every device (clean shutdown leaves a
  // signed log).
  void Unload();

  bool HasDevices() const;
  std::vector<AuditDeviceEntry> List() const;
  // Opens the file, writes a first checkpoint (the test write) and only then records the device.
  absl::Status Enable(AuditDeviceEntry entry);
  absl::Status Disable(const std::string& path);
  // sys/audit-hash: the digest `input` gets in `path`'s records.
  absl::StatusOr<std::string> Hash(const std::string& path, std::string_view input) const;

  // OK when at least one device recorded the line; Internal otherwise.
  absl::Status LogRequest(const AuditEvent& event);
  absl::Status LogResponse(const AuditEvent& event);
  // The same for a system event (OK as well when no device is enabled).
  absl::Status LogSystemEvent(const AuditSystemEvent& event);

  // SIGHUP: ends each file with a checkpoint, reopens it by name (after logrotate moved it).
  void Reopen();
  // Time-based checkpoints; call about once a second.
  void Tick();
  // A checkpoint over everything `path` has logged so far, signed now, and its signed note.
  absl::StatusOr<std::string> Checkpoint(const std::string& path);
  // The audit public key (PEM SubjectPublicKeyInfo); creates the key pair in the token if absent.
  absl::StatusOr<std::string> PublicKeyPem();

  // Device path syntax: one segment of [A-Za-z0-9._-] (it becomes part of the checkpoint origin).
  static absl::StatusOr<std::string> NormalizePath(std::string_view raw);

 private:
  class Device;

  absl::Status LogEvent(const AuditEvent& event, bool is_response);
  absl::Status PersistTable();
  absl::StatusOr<std::unique_ptr<Device>> OpenDevice(const AuditDeviceEntry& entry, bool fresh);

  storage::Storage* barrier_;
  Seal* seal_;
  std::function<absl::Time()> clock_;
  AuditSettings settings_;

  std::string StateKey(const std::string& uuid) const;
  mutable std::mutex mu_;  // the device table; devices lock themselves for writes
  std::map<std::string, std::shared_ptr<Device>> devices_;
  // Between Load and Unload. Outside, an empty table means "not known", not "audit disabled":
  // records are refused (fail closed), so that nothing runs unaudited while a node unseals or
  // reloads as the active node.
  bool loaded_ = false;
  std::mutex table_mu_;  // serialises Enable/Disable
};

}  // namespace strongroom::core
