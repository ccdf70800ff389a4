// The broker's core: seal state, the mount table and router, the token check and the fixed
// request pipeline (sealed? -> token -> ACL -> route -> backend), after OpenBao's
// request_handling.go. Thread-safe: many IPC threads call Handle() at once.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "appliance/core/audit.h"
#include "appliance/core/backend.h"
#include "appliance/core/barrier.h"
#include "appliance/core/cluster.h"
#include "appliance/core/identity_store.h"
#include "appliance/core/policy_store.h"
#include "appliance/core/seal.h"
#include "appliance/core/token_store.h"
#include "base/metrics.h"
#include "base/metrics_text.h"

namespace strongroom::core {

// The telemetry stanzas' settings (broker/config.h), as sys/metrics and the core's collector
// use them.
struct TelemetryOptions {
  // The listener's unauthenticated_metrics_access: sys/metrics answers without a token, before
  // the seal check and unaudited (and a standby answers with its own metrics).
  bool unauthenticated_metrics_access = false;
  bool prometheus_enabled = true;  // prometheus_retention_time > 0
  // How often token.count is refreshed (a scan of the token store); zero: never reported.
  absl::Duration usage_gauge_period = absl::Minutes(10);
  metrics::RenderOptions render;
};

struct CoreOptions {
  std::string version = "1.19.0+strongroom";
  std::string build_date;
  std::string storage_type = "rocksdb";
  std::string api_addr;
  std::string cluster_addr;
  std::vector<EngineType> engines;  // the engine table
  std::function<absl::Time()> clock = [] { return absl::Now(); };
  int64_t default_lease_ttl = 768 * 3600;
  int64_t max_lease_ttl = 768 * 3600;
  AuditSettings audit;
  // The workers' state for sys/health ("strongroom_workers"), from the broker's supervisor.
  std::function<json::object()> worker_status;
  // sys/config/state/sanitized: the server configuration in Vault's key names, without secrets
  // (broker/config.h SanitizedConfig). Unset: the endpoint answers with what the core knows.
  std::function<json::object()> sanitized_config;
  // Transit: encryptions allowed per key version (random 96-bit nonces: 2^32 keeps the collision
  // risk negligible); the version is rotated before it is reached.
  uint64_t transit_max_encryptions = 1ull << 32;
  // Smallest auto_rotate_period accepted (Vault: one hour; lowered only by tests).
  int64_t transit_min_auto_rotate_period = 3600;
  // Raft replication (storage "raft"); nullptr for single-node storage. Not owned.
  Cluster* cluster = nullptr;
  TelemetryOptions telemetry;
};

struct InitRequest {
  int recovery_shares = 5;
  int recovery_threshold = 3;
  std::string root_token_id;  // dev mode only
};

struct InitResult {
  std::vector<std::vector<uint8_t>> recovery_keys;
  std::string root_token;
};

// A response-wrapping token: a service token whose only policy is "response-wrapping".
bool IsWrappingToken(const TokenEntry& e);
// A response X-Vault-Wrap-TTL wraps: a logical one with data or auth (a 204 stays a 204).
bool Wrappable(const Response& r);

class Core {
 public:
  Core(CoreOptions options, storage::Storage* physical, std::unique_ptr<Seal> seal);
  ~Core();

  // Start-up: log in to the token, find and check the KEK, unwrap the keyring and unseal when
  // initialised. Any failure leaves the node sealed; the reason is logged and kept.
  void Start();
  // Raft: in place of Start() for a node with Raft state that has not caught up with its
  // cluster since it started. Its state machine may be empty or behind, so whether the cluster
  // is initialised is not known here yet: the node stays sealed and answers as sealed and
  // initialised (it belongs to a cluster; only an initialised cluster takes members), sys/init
  // and sys/unseal are refused (503), until Start() runs once it has caught up.
  void WaitForCluster();
  bool awaiting_cluster() const { return awaiting_cluster_.load(); }
  // Raft standby (broker/cluster.h: one that answers reads itself keeps its tables as new as its
  // store): reads the tables the core keeps in memory again from the store, without sealing:
  // the barrier keyring, the token salt, the mount table and the audit devices; drops the
  // policy and identity caches. The caller keeps its own answers from running meanwhile. An
  // error (sealed, the token failing) may leave some tables read again and others not.
  absl::Status ReloadTables();

  absl::StatusOr<InitResult> Initialize(const InitRequest& req);
  // Wipes the keyring from memory. `why` goes to the log and to the seal reason.
  absl::Status SealNow(std::string_view why = "sealed by request (sys/seal)");
  // sys/seal: SealNow, and the node stays sealed until sys/unseal (or a restart). The broker
  // does not reload such a node as the active one when it becomes the Raft leader: it hands the
  // leadership on (Cluster::HandOverLeadership).
  absl::Status SealByRequest();
  bool sealed_by_request() const { return sealed_by_request_.load(); }

  bool initialized() const { return initialized_.load(); }
  bool sealed() const { return barrier_.sealed(); }
  std::string seal_reason() const;

  // The whole pipeline for one request. Errors are absl codes (see request.h).
  absl::StatusOr<Response> Handle(Request& req);
  // `path` as the pipeline checks it: names the owning mount treats case-insensitively in their
  // canonical spelling (Backend::NormalizePath); unchanged when no mount owns the path.
  absl::StatusOr<std::string> CanonicalPath(const std::string& path) const;

  // Used by the system backend.
  std::vector<MountEntry> Mounts() const;
  // Each mount with its running backend (sorted by path): the OpenAPI document reads their
  // route tables.
  struct MountBackend {
    MountEntry entry;
    std::shared_ptr<Backend> backend;
  };
  std::vector<MountBackend> MountBackends() const;
  absl::Status Mount(MountEntry entry);
  absl::Status Unmount(const std::string& path);
  // sys/remount: a secrets engine and its data to another path (both with a trailing slash).
  absl::Status Remount(const std::string& from, const std::string& to);
  absl::Status TuneMount(const std::string& path, const MountConfig& config,
                         std::optional<std::string> description,
                         const std::map<std::string, std::string>& options);
  absl::Status RotateKeyring();
  absl::StatusOr<Barrier::KeyStatus> KeyStatus() const { return barrier_.Status(); }
  const CoreOptions& options() const { return options_; }
  TokenStore& tokens() { return tokens_; }
  PolicyStore& policies() { return policies_; }
  IdentityStore& identity() { return identity_; }
  // The ACL of a token: its policies plus its entity's, templates rendered against the entity.
  // A token whose entity is disabled gets PermissionDenied. CompiledAclFor is the same ACL
  // shared from the policy store's memo (PolicyStore::CompiledAcl), without a copy.
  absl::StatusOr<policy::Acl> AclFor(const TokenEntry& token);
  absl::StatusOr<std::shared_ptr<const policy::Acl>> CompiledAclFor(const TokenEntry& token);
  // The policies a token holds through its entity (sorted; empty without an entity).
  absl::StatusOr<std::vector<std::string>> IdentityPolicies(const TokenEntry& token);
  // Finishes an auth method's login: links `alias` to an entity (creating it on first login;
  // refused when the entity is disabled), stores `entry` as an orphan service token and answers
  // with Vault's auth block (policies = token policies + identity policies). `lease_duration`
  // is the TTL the method granted.
  absl::StatusOr<Response> CompleteLogin(TokenEntry entry, const LoginAlias& alias,
                                         int64_t lease_duration);
  absl::StatusOr<std::vector<std::string>> ListTokenAccessors() { return tokens_.ListAccessors(); }
  AuditBroker& audit() { return audit_; }
  // sys/wrapping/{wrap,lookup,unwrap,rewrap} (core/wrapping.cc), Vault's shapes and errors.
  absl::StatusOr<Response> WrappingEndpoint(Request& req, std::string_view op);
  // The barrier (ciphertext below, plaintext above): for the cluster's own replicated records
  // (broker/join_tokens.h). Sealed: every call fails.
  storage::Storage* barrier() { return &barrier_; }
  Seal* seal() { return seal_.get(); }
  Cluster* cluster() { return options_.cluster; }
  // False on a Raft standby: it forwards requests and runs no background writes.
  bool active() { return options_.cluster == nullptr || options_.cluster->Active(); }
  // Backends' background work (Transit auto-rotation); the broker calls it about once a second.
  void Periodic();
  // Periodic housekeeping (expired tokens); called by the broker's main loop.
  void Tick();
  absl::Time Now() const { return options_.clock(); }
  // The core's metrics at a scrape (core_metrics.cc): seal and active state, the mount table,
  // and the token count (refreshed once per telemetry usage_gauge_period).
  void CollectMetrics(metrics::Collection& c);
  std::string cluster_name() const;
  std::string cluster_id() const;

 private:
  struct MountRuntime {
    MountEntry entry;
    // Shared: a moved mount (sys/remount) keeps its view and its backend, whose in-memory state
    // (Transit's key cache, KV's write locks) requests in flight on the old path still use.
    std::shared_ptr<storage::View> view;
    std::shared_ptr<Backend> backend;
  };

  // What the audited part of the pipeline leaves behind for the audit records.
  struct AuditTrail {
    std::optional<TokenEntry> token;
    bool request_logged = false;  // the request record is written (the backend may run)
    bool audit_failed = false;    // no device took the request record
    // The mount the request was routed to, kept until its response is recorded: req.mount points
    // into it, and a reload meanwhile (a snapshot restore, a leadership change) replaces the
    // mount table.
    std::shared_ptr<MountRuntime> mount;
  };
  absl::StatusOr<Response> Dispatch(Request& req, AuditTrail& trail);
  // Response wrapping (core/wrapping.cc). Wrap stores `stored` in a new wrapping token's
  // cubbyhole and answers with its wrap_info; WrapResponse does that for a response.
  absl::StatusOr<Response> Wrap(const json::object& stored, const std::string& creation_path,
                                int64_t ttl, const std::string& wrapped_accessor);
  absl::StatusOr<Response> WrapResponse(const Request& req, const Response& r);
  static std::string WrappedAccessor(const json::object& stored);
  // Spends the wrapping token's one use and takes its response, atomically (TokenStore::
  // TakeCubbyhole), after `before_delete` (may be null) succeeds; a second caller, or an
  // unknown, expired or ordinary token, gets Vault's "not valid or does not exist".
  absl::StatusOr<json::object> TakeWrapped(
      std::string_view token,
      const std::function<absl::Status(const TokenEntry&, const json::object&)>& before_delete);
  // sys/wrapping/unwrap with the wrapping token itself as X-Vault-Token: the pipeline leaves
  // its one use to TakeWrapped.
  static bool UnwrapsItself(const Request& req, const TokenEntry& token);
  static Response UnwrappedResponse(const json::object& stored);
  // The mount owning `path`: the longest mount path that prefixes it; nullptr when none does.
  std::shared_ptr<MountRuntime> Route(std::string_view path) const;
  absl::StatusOr<Response> HandleSysRaw(Request& req, bool* handled);
  absl::StatusOr<Response> SealStatus();
  absl::StatusOr<Response> Health(const Request& req);
  absl::StatusOr<Response> Leader();
  absl::StatusOr<Response> UiMounts(Request& req);
  // The listing (`rest` empty or "/") or one path's mount, for `token` (nullptr: anonymous).
  absl::StatusOr<Response> UiMountsFor(std::string_view rest, const TokenEntry* token);
  absl::StatusOr<Response> InitEndpoint(Request& req);
  absl::StatusOr<Response> UnsealEndpoint(Request& req);
  absl::StatusOr<Response> RaftJoinEndpoint(Request& req);

  absl::Status UnsealWithKeyring(Keyring keyring);
  absl::Status LoadAfterUnseal();
  absl::Status LoadMounts();
  absl::Status PersistMounts();
  absl::StatusOr<std::shared_ptr<MountRuntime>> BuildMount(const MountEntry& entry);
  const EngineType* FindEngine(std::string_view type) const;
  void SetSealReason(std::string reason);
  // What sys/health, sys/seal-status and sys/init say: initialised, or waiting for the cluster.
  bool ReportsInitialized() const { return initialized_.load() || awaiting_cluster_.load(); }

  CoreOptions options_;
  storage::Storage* physical_;
  std::unique_ptr<Seal> seal_;
  Barrier barrier_;
  TokenStore tokens_;
  PolicyStore policies_;
  IdentityStore identity_;
  AuditBroker audit_;
  std::atomic<bool> initialized_{false};
  std::atomic<bool> awaiting_cluster_{false};   // WaitForCluster() until Start() read storage
  std::atomic<bool> sealed_by_request_{false};  // set by SealByRequest, cleared by an unseal

  mutable std::mutex state_mu_;  // seal lifecycle: init, unseal, seal, rotate
  std::string seal_reason_;
  std::string cluster_name_;
  std::string cluster_id_;
  int recovery_shares_ = 0;
  int recovery_threshold_ = 0;
  std::vector<std::vector<uint8_t>> unseal_progress_;
  std::string unseal_nonce_;

  mutable std::shared_mutex mounts_mu_;
  // Held across each change of the mount table and its write (and undo): two changes cannot
  // write their tables out of order, nor an undo overwrite a later change.
  std::mutex mounts_write_mu_;
  std::map<std::string, std::shared_ptr<MountRuntime>, std::greater<>> mounts_;

  // token.count as last counted, and when (scrapes run one at a time: metrics.h).
  int64_t token_count_ = -1;
  absl::Time token_count_at_ = absl::InfinitePast();
  metrics::CollectorHandle metrics_;  // last: unregistered before anything it reads goes
};

}  // namespace strongroom::core
