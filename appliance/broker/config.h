// Server configuration, HCL like Vault's (`listener "tcp"`, `storage`, `seal "pkcs11"`,
// `api_addr`, ...). Unknown keys and blocks are errors with their line and column.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "appliance/core/json.h"
#include "appliance/core/json_limits.h"

namespace strongroom::broker {

struct ListenerConfig {
  std::string address = "127.0.0.1:8200";
  bool tls_disable = false;
  std::string tls_cert_file;
  // The key: exactly one of these when TLS is on.
  //   tls_key_file:  a PEM key file, read by the broker and sent to every worker, so the key is
  //                  in worker memory (for tests and development);
  //   tls_key_label: an ECDSA P-256 pair in the seal's PKCS#11 token (strongroomd
  //                  -tls-generate-key makes it); the workers have every handshake signed by the
  //                  broker and never hold the key.
  std::string tls_key_file;
  std::string tls_key_label;
  std::string tls_min_version = "tls12";
  uint64_t max_request_size = 32ull << 20;  // Vault's default, 413 above it
  uint32_t max_header_bytes = 16 * 1024;
  int64_t http_idle_timeout_s = 60;
  int64_t http_read_timeout_s = 30;
  // Vault's: a request's header must arrive within it; on a new connection it runs from the
  // accept (TLS handshake included), so a connection that never sends a request ends after it.
  int64_t http_read_header_timeout_s = 10;
  uint32_t max_connections_per_worker = 1024;
  // Connections one client address (an IPv6 /64) may hold, over all workers together: each
  // worker takes max(1, this / workers) of them (connections are spread over the workers by the
  // kernel, so an address may be refused a little before it reaches this).
  uint32_t max_connections_per_address = 256;
  // Limits on a JSON body, checked by the worker before it parses the body and again by the
  // broker (appliance/core/json_limits.h): Vault's (CVE-2025-6203; depth, one string's length,
  // one object's entries, one array's elements; 500 above them) and OpenBao's (estimated memory
  // of the parsed body, number of strings; 400 above them). Vault's depth default is 500; 64 has
  // been strongroom's. OpenBao's strings default is 1000; 100000 lets a Transit batch of 10,000
  // items through.
  uint32_t max_json_depth = core::JsonLimits{}.max_depth;
  uint64_t max_json_string_value_length = core::JsonLimits{}.max_string_length;
  uint64_t max_json_object_entry_count = core::JsonLimits{}.max_object_entries;
  uint64_t max_json_array_element_count = core::JsonLimits{}.max_array_elements;
  uint64_t max_request_json_memory = core::JsonLimits{}.max_memory;
  uint64_t max_request_json_strings = core::JsonLimits{}.max_strings;
  // The listener's `telemetry { unauthenticated_metrics_access = true }`: sys/metrics answers
  // without a token (not audited, and on a standby with its own metrics, as Vault). Default:
  // a token with read on sys/metrics is needed.
  bool unauthenticated_metrics_access = false;
};

// The top-level `telemetry` stanza: what sys/metrics reports (strongroom serves metrics only
// there, for Prometheus to pull; Vault's push sinks — statsite, statsd, dogstatsd, circonus,
// stackdriver — are refused).
struct TelemetryConfig {
  // 0: the Prometheus format is off (sys/metrics?format=prometheus answers 400, as Vault's).
  // Any other value only turns it on: the series are cumulative and kept for the process's life.
  int64_t prometheus_retention_time_s = 24 * 3600;
  // Vault prefixes gauge names with the host name unless this is set; strongroom's default is
  // true (stable names for dashboards); set it false for Vault's naming.
  bool disable_hostname = true;
  bool enable_hostname_label = false;  // a `host` label on every series
  std::string metrics_prefix = "vault";
  // How often the token count (vault.token.count, a scan of the token store) is refreshed; 0
  // ("none") turns it off.
  int64_t usage_gauge_period_s = 600;
  uint32_t maximum_gauge_cardinality = 500;
  bool filter_default = true;
  std::vector<std::string> prefix_filter;  // "+vault.token", "-vault.expire", ...
};

struct StorageConfig {
  std::string type = "rocksdb";  // or "raft"
  std::string path;
  std::string node_id;  // raft: this node's name (default: the host name)
  // raft: the cluster port's mutual TLS (strongroom's own; Vault makes these itself). Every
  // certificate the CA issued is a cluster member.
  std::string cluster_ca_file;
  std::string cluster_cert_file;
  std::string cluster_key_file;   // the key in a PEM file, or
  std::string cluster_key_label;  // the key in the token (-cluster-generate-key makes it)
  // raft: retry_join { leader_api_addr = "..." } blocks.
  std::vector<std::string> retry_join;
  // raft: retry_join's join_token_file (one for all blocks): the join credential minted for
  // this node id (sys/storage/raft/join-token), read at each attempt.
  std::string join_token_file;
};

struct SealConfig {
  std::string type = "pkcs11";
  std::string lib;
  std::string token_label;
  std::optional<unsigned long> slot;
  std::string pin;  // literal, env://VAR or file://PATH
  std::string key_label = "strongroom-kek";
  std::string audit_key_label = "strongroom-audit";  // ECDSA P-256 pair that signs checkpoints
};

struct ServerConfig {
  ListenerConfig listener;
  StorageConfig storage;
  SealConfig seal;
  TelemetryConfig telemetry;
  std::string api_addr;
  std::string cluster_addr;
  std::string cluster_name;
  std::string log_level = "info";
  int workers = 0;  // 0: number of cores
  // The user workers run as when strongroomd starts as root or with CAP_SETUID and CAP_SETGID
  // (sandbox/worker_sandbox.h, sandbox/capabilities.h); never the broker's own user. When the
  // default user does not exist, "nobody" is used (with a warning); a configured user must
  // exist.
  std::string worker_user = "strongroom-worker";
  bool worker_user_set = false;
  bool disable_mlock = false;
  int64_t default_lease_ttl_s = 768 * 3600;
  int64_t max_lease_ttl_s = 768 * 3600;
  // Audit checkpoints: every N records or T seconds (a device's options may override both).
  uint64_t audit_checkpoint_entries = 1000;
  int64_t audit_checkpoint_interval_s = 60;
  // Transit: encryptions per key version before automatic rotation; the smallest accepted
  // auto_rotate_period. Both exist to be lowered in tests; the defaults are the safe values.
  uint64_t transit_max_encryptions_per_version = 1ull << 32;
  int64_t transit_min_auto_rotate_period_s = 3600;
};

absl::StatusOr<ServerConfig> ParseConfig(std::string_view text);
// sys/config/state/sanitized: the configuration in Vault's key names with nothing secret in it
// (no PIN, no key material or key paths' contents; the seal and storage as their types and
// non-secret settings only).
core::json::object SanitizedConfig(const ServerConfig& c);
absl::StatusOr<ServerConfig> LoadConfigFile(const std::string& path);

}  // namespace strongroom::broker
