#include "appliance/broker/config.h"

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "appliance/core/json.h"
#include "appliance/core/seal.h"
#include "base/hcl.h"
#include "base/metrics.h"
#include "base/metrics_text.h"
#include "base/status_macros.h"

namespace strongroom::broker {
namespace {

using hcl::Value;

absl::Status Err(const hcl::Position& pos, absl::string_view msg) {
  return absl::InvalidArgumentError(absl::StrCat(hcl::Where(pos), ": ", msg));
}

absl::Status ReadString(const hcl::Attribute& a, std::string* out) {
  if (a.value.kind != Value::Kind::kString)
    return Err(a.value.pos, absl::StrCat("\"", a.key, "\" must be a string"));
  *out = a.value.str;
  return absl::OkStatus();
}

absl::Status ReadBool(const hcl::Attribute& a, bool* out) {
  if (a.value.kind == Value::Kind::kBool) {
    *out = a.value.boolean;
    return absl::OkStatus();
  }
  if (a.value.kind == Value::Kind::kString && (a.value.str == "true" || a.value.str == "false")) {
    *out = a.value.str == "true";
    return absl::OkStatus();
  }
  return Err(a.value.pos, absl::StrCat("\"", a.key, "\" must be true or false"));
}

template <typename T>
absl::Status ReadUint(const hcl::Attribute& a, T* out, T min, T max) {
  double n = 0;
  if (a.value.kind == Value::Kind::kNumber) {
    n = a.value.number;
  } else if (a.value.kind == Value::Kind::kString && absl::SimpleAtod(a.value.str, &n)) {
  } else {
    return Err(a.value.pos, absl::StrCat("\"", a.key, "\" must be a number"));
  }
  if (n < static_cast<double>(min) || n > static_cast<double>(max) ||
      n != static_cast<double>(static_cast<T>(n))) {
    return Err(a.value.pos,
               absl::StrCat("\"", a.key, "\" must be a whole number from ", min, " to ", max));
  }
  *out = static_cast<T>(n);
  return absl::OkStatus();
}

absl::Status ReadDuration(const hcl::Attribute& a, int64_t* out) {
  if (a.value.kind == Value::Kind::kNumber) {
    if (a.value.number < 0) return Err(a.value.pos, "duration must not be negative");
    // Range first (a double beyond int64 is undefined behaviour to convert); Vault's limit.
    if (!(a.value.number <= static_cast<double>(core::kMaxDurationSeconds))) {
      return Err(a.value.pos, "duration is out of range (at most 2562047h47m16s)");
    }
    *out = static_cast<int64_t>(a.value.number);
    return absl::OkStatus();
  }
  if (a.value.kind != Value::Kind::kString)
    return Err(a.value.pos, absl::StrCat("\"", a.key, "\" must be a duration"));
  auto d = core::ParseDurationSeconds(a.value.str);
  if (!d.ok()) return Err(a.value.pos, d.status().message());
  *out = *d;
  return absl::OkStatus();
}

absl::Status Unknown(const hcl::Position& pos, absl::string_view key, absl::string_view where) {
  return Err(pos, absl::StrCat("unknown key \"", key, "\" in ", where));
}

// The attributes of a `name { ... }` block, or of `name = { ... }` (an object: what the JSON
// form of a nested block reads as, base/hcl.h).
absl::StatusOr<std::vector<hcl::Attribute>> InnerAttributes(const hcl::Block* block,
                                                            const hcl::Attribute* attribute) {
  if (block != nullptr) {
    if (!block->labels.empty()) {
      return Err(block->pos, absl::StrCat("\"", block->type, "\" takes no label"));
    }
    if (!block->blocks.empty()) {
      return Err(block->blocks[0].pos, absl::StrCat("unexpected block in \"", block->type, "\""));
    }
    return block->attributes;
  }
  if (attribute->value.kind != Value::Kind::kObject) {
    return Err(attribute->value.pos, absl::StrCat("\"", attribute->key, "\" must be a block"));
  }
  std::vector<hcl::Attribute> out;
  for (const auto& [key, value] : attribute->value.object) {
    out.push_back(hcl::Attribute{key, value.pos, value});
  }
  return out;
}

// The listener's telemetry stanza (Vault's: unauthenticated_metrics_access alone).
absl::Status ParseListenerTelemetry(const std::vector<hcl::Attribute>& attributes,
                                    ListenerConfig* l) {
  for (const auto& a : attributes) {
    if (a.key == "unauthenticated_metrics_access") {
      RETURN_IF_ERROR(ReadBool(a, &l->unauthenticated_metrics_access));
    } else {
      return Unknown(a.pos, a.key, "the listener's telemetry");
    }
  }
  return absl::OkStatus();
}

absl::Status ParseListener(const hcl::Block& b, ListenerConfig* l) {
  if (b.labels.size() != 1 || b.labels[0] != "tcp") {
    return Err(b.pos, "listener must be written listener \"tcp\" { ... }");
  }
  bool have_telemetry = false;
  for (const auto& inner : b.blocks) {
    if (inner.type != "telemetry") {
      return Err(inner.pos, absl::StrCat("unexpected block \"", inner.type,
                                         "\" in listener \"tcp\" (only telemetry)"));
    }
    if (have_telemetry) return Err(inner.pos, "only one telemetry block is allowed");
    have_telemetry = true;
    ASSIGN_OR_RETURN(auto attributes, InnerAttributes(&inner, nullptr));
    RETURN_IF_ERROR(ParseListenerTelemetry(attributes, l));
  }
  for (const auto& a : b.attributes) {
    const std::string& k = a.key;
    if (k == "telemetry") {
      if (have_telemetry) return Err(a.pos, "only one telemetry block is allowed");
      have_telemetry = true;
      ASSIGN_OR_RETURN(auto attributes, InnerAttributes(nullptr, &a));
      RETURN_IF_ERROR(ParseListenerTelemetry(attributes, l));
    } else if (k == "address")
      RETURN_IF_ERROR(ReadString(a, &l->address));
    else if (k == "tls_disable")
      RETURN_IF_ERROR(ReadBool(a, &l->tls_disable));
    else if (k == "tls_cert_file")
      RETURN_IF_ERROR(ReadString(a, &l->tls_cert_file));
    else if (k == "tls_key_file")
      RETURN_IF_ERROR(ReadString(a, &l->tls_key_file));
    else if (k == "tls_key_label")
      RETURN_IF_ERROR(ReadString(a, &l->tls_key_label));
    else if (k == "tls_min_version") {
      RETURN_IF_ERROR(ReadString(a, &l->tls_min_version));
      if (l->tls_min_version != "tls12" && l->tls_min_version != "tls13") {
        return Err(a.value.pos, "tls_min_version must be \"tls12\" or \"tls13\"");
      }
    } else if (k == "max_request_size") {
      RETURN_IF_ERROR(ReadUint<uint64_t>(a, &l->max_request_size, 1024, 1ull << 30));
    } else if (k == "max_header_bytes") {
      RETURN_IF_ERROR(ReadUint<uint32_t>(a, &l->max_header_bytes, 1024, 1u << 20));
    } else if (k == "http_idle_timeout")
      RETURN_IF_ERROR(ReadDuration(a, &l->http_idle_timeout_s));
    else if (k == "http_read_timeout")
      RETURN_IF_ERROR(ReadDuration(a, &l->http_read_timeout_s));
    else if (k == "http_read_header_timeout")
      RETURN_IF_ERROR(ReadDuration(a, &l->http_read_header_timeout_s));
    else if (k == "max_connections_per_worker") {
      RETURN_IF_ERROR(ReadUint<uint32_t>(a, &l->max_connections_per_worker, 1, 100000));
    } else if (k == "max_connections_per_address") {
      RETURN_IF_ERROR(ReadUint<uint32_t>(a, &l->max_connections_per_address, 1, 1000000));
    } else if (k == "max_json_depth") {
      RETURN_IF_ERROR(ReadUint<uint32_t>(a, &l->max_json_depth, 2, 1000));
    } else if (k == "max_json_string_value_length") {
      RETURN_IF_ERROR(ReadUint<uint64_t>(a, &l->max_json_string_value_length, 16, 1ull << 30));
    } else if (k == "max_json_object_entry_count") {
      RETURN_IF_ERROR(ReadUint<uint64_t>(a, &l->max_json_object_entry_count, 1, 1ull << 30));
    } else if (k == "max_json_array_element_count") {
      RETURN_IF_ERROR(ReadUint<uint64_t>(a, &l->max_json_array_element_count, 1, 1ull << 30));
    } else if (k == "max_request_json_memory") {
      RETURN_IF_ERROR(ReadUint<uint64_t>(a, &l->max_request_json_memory, 1024, 1ull << 40));
    } else if (k == "max_request_json_strings") {
      RETURN_IF_ERROR(ReadUint<uint64_t>(a, &l->max_request_json_strings, 1, 1ull << 30));
    } else
      return Unknown(a.pos, k, "listener \"tcp\"");
  }
  // (The workers get them in milliseconds, as 32-bit numbers.)
  for (int64_t t :
       {l->http_idle_timeout_s, l->http_read_timeout_s, l->http_read_header_timeout_s}) {
    if (t <= 0 || t > 86400) return Err(b.pos, "http timeouts must be positive and at most 24h");
  }
  if (!l->tls_disable) {
    if (l->tls_cert_file.empty() || (l->tls_key_file.empty() && l->tls_key_label.empty())) {
      return Err(b.pos,
                 "listener \"tcp\": tls_cert_file and tls_key_label (a key in the token) or "
                 "tls_key_file are required unless tls_disable = true");
    }
    if (!l->tls_key_file.empty() && !l->tls_key_label.empty()) {
      return Err(b.pos,
                 "listener \"tcp\": set either tls_key_label (a key in the token) or "
                 "tls_key_file, not both");
    }
  }
  return absl::OkStatus();
}

absl::Status ParseStorage(const hcl::Block& b, StorageConfig* s) {
  if (b.labels.size() != 1)
    return Err(b.pos, "storage must be written storage \"rocksdb\" { ... } or storage \"raft\"");
  s->type = b.labels[0];
  const bool raft = s->type == "raft";
  if (s->type != "rocksdb" && !raft) {
    return Err(b.pos, absl::StrCat("unsupported storage type \"", s->type,
                                   "\" (supported: rocksdb, raft)"));
  }
  for (const auto& a : b.attributes) {
    if (a.key == "path")
      RETURN_IF_ERROR(ReadString(a, &s->path));
    else if (a.key == "node_id")
      RETURN_IF_ERROR(ReadString(a, &s->node_id));
    else if (raft && a.key == "cluster_ca_file")
      RETURN_IF_ERROR(ReadString(a, &s->cluster_ca_file));
    else if (raft && a.key == "cluster_cert_file")
      RETURN_IF_ERROR(ReadString(a, &s->cluster_cert_file));
    else if (raft && a.key == "cluster_key_file")
      RETURN_IF_ERROR(ReadString(a, &s->cluster_key_file));
    else if (raft && a.key == "cluster_key_label")
      RETURN_IF_ERROR(ReadString(a, &s->cluster_key_label));
    else
      return Unknown(a.pos, a.key, absl::StrCat("storage \"", s->type, "\""));
  }
  for (const auto& inner : b.blocks) {
    if (!raft || inner.type != "retry_join" || !inner.labels.empty()) {
      return Err(inner.pos,
                 absl::StrCat("unknown block \"", inner.type, "\" in storage \"", s->type, "\""));
    }
    std::string leader;
    for (const auto& a : inner.attributes) {
      if (a.key == "leader_api_addr") {
        RETURN_IF_ERROR(ReadString(a, &leader));
      } else if (a.key == "join_token_file") {
        std::string file;
        RETURN_IF_ERROR(ReadString(a, &file));
        if (!s->join_token_file.empty() && s->join_token_file != file) {
          return Err(a.pos, "retry_join: every block must name the same join_token_file");
        }
        s->join_token_file = file;
      } else if (a.key == "leader_ca_cert_file" || a.key == "leader_client_cert_file" ||
                 a.key == "leader_client_key_file" || a.key == "leader_tls_servername") {
        // Vault's API-TLS settings for the join call: strongroom joins over the cluster port
        // with the cluster certificate instead, so these have nothing to configure.
        std::string ignored;
        RETURN_IF_ERROR(ReadString(a, &ignored));
      } else {
        return Unknown(a.pos, a.key, "retry_join");
      }
    }
    if (leader.empty()) return Err(inner.pos, "retry_join: \"leader_api_addr\" is required");
    s->retry_join.push_back(leader);
  }
  if (s->path.empty()) return Err(b.pos, "storage: \"path\" is required");
  if (raft && (s->cluster_ca_file.empty() || s->cluster_cert_file.empty() ||
               (s->cluster_key_file.empty() && s->cluster_key_label.empty()))) {
    return Err(b.pos,
               "storage \"raft\": cluster_ca_file, cluster_cert_file and cluster_key_label (the "
               "key in the token) or cluster_key_file are required (the cluster port is mutual "
               "TLS)");
  }
  if (raft && !s->cluster_key_file.empty() && !s->cluster_key_label.empty()) {
    return Err(b.pos,
               "storage \"raft\": give cluster_key_label (the key in the token) or "
               "cluster_key_file, not both");
  }
  return absl::OkStatus();
}

absl::Status ParseSeal(const hcl::Block& b, SealConfig* s) {
  if (b.labels.size() != 1 || b.labels[0] != "pkcs11") {
    return Err(b.pos, "seal must be written seal \"pkcs11\" { ... } (the only supported seal)");
  }
  for (const auto& a : b.attributes) {
    const std::string& k = a.key;
    if (k == "lib")
      RETURN_IF_ERROR(ReadString(a, &s->lib));
    else if (k == "token_label")
      RETURN_IF_ERROR(ReadString(a, &s->token_label));
    else if (k == "pin")
      RETURN_IF_ERROR(ReadString(a, &s->pin));
    else if (k == "key_label")
      RETURN_IF_ERROR(ReadString(a, &s->key_label));
    else if (k == "audit_key_label")
      RETURN_IF_ERROR(ReadString(a, &s->audit_key_label));
    else if (k == "slot") {
      unsigned long slot = 0;
      RETURN_IF_ERROR(ReadUint<unsigned long>(a, &slot, 0, 0xffffffffUL));
      s->slot = slot;
    } else if (k == "mechanism" || k == "generate_key") {
      return Err(a.pos,
                 absl::StrCat("\"", k,
                              "\" is fixed by strongroom (AES key wrap, KEK created by sys/init)"));
    } else
      return Unknown(a.pos, k, "seal \"pkcs11\"");
  }
  if (s->lib.empty()) return Err(b.pos, "seal \"pkcs11\": \"lib\" is required");
  if (s->token_label.empty() && !s->slot)
    return Err(b.pos, "seal \"pkcs11\": \"token_label\" (or \"slot\") is required");
  if (s->pin.empty())
    return Err(b.pos, "seal \"pkcs11\": \"pin\" is required (literal, env://VAR or file://PATH)");
  if (s->key_label.empty()) return Err(b.pos, "seal \"pkcs11\": \"key_label\" must not be empty");
  if (s->audit_key_label.empty() || s->audit_key_label == s->key_label) {
    return Err(b.pos, "seal \"pkcs11\": \"audit_key_label\" must be set and differ from key_label");
  }
  return absl::OkStatus();
}

// The top-level telemetry stanza (config.h, TelemetryConfig).
absl::Status ParseTelemetry(const std::vector<hcl::Attribute>& attributes, TelemetryConfig* t) {
  static constexpr std::string_view kPushSinks[] = {"statsite_", "statsd_", "dogstatsd_",
                                                    "circonus_", "stackdriver_"};
  for (const auto& a : attributes) {
    const std::string& k = a.key;
    if (k == "prometheus_retention_time") {
      RETURN_IF_ERROR(ReadDuration(a, &t->prometheus_retention_time_s));
    } else if (k == "disable_hostname") {
      RETURN_IF_ERROR(ReadBool(a, &t->disable_hostname));
    } else if (k == "enable_hostname_label") {
      RETURN_IF_ERROR(ReadBool(a, &t->enable_hostname_label));
    } else if (k == "metrics_prefix") {
      RETURN_IF_ERROR(ReadString(a, &t->metrics_prefix));
      if (!t->metrics_prefix.empty() &&
          (t->metrics_prefix.size() > 64 || !metrics::ValidMetricName(t->metrics_prefix))) {
        return Err(a.value.pos,
                   "metrics_prefix must be dotted names of letters, digits and '_' (at most 64 "
                   "characters), starting with a letter or '_'");
      }
    } else if (k == "usage_gauge_period") {
      if (a.value.kind == Value::Kind::kString && a.value.str == "none") {
        t->usage_gauge_period_s = 0;
      } else {
        RETURN_IF_ERROR(ReadDuration(a, &t->usage_gauge_period_s));
      }
    } else if (k == "maximum_gauge_cardinality") {
      RETURN_IF_ERROR(ReadUint<uint32_t>(a, &t->maximum_gauge_cardinality, 1, 100000));
    } else if (k == "filter_default") {
      RETURN_IF_ERROR(ReadBool(a, &t->filter_default));
    } else if (k == "prefix_filter") {
      if (a.value.kind != Value::Kind::kList || a.value.list.size() > 256) {
        return Err(a.value.pos, "prefix_filter must be a list of at most 256 strings");
      }
      t->prefix_filter.clear();
      for (const Value& v : a.value.list) {
        if (v.kind != Value::Kind::kString || !metrics::ValidFilterRule(v.str) ||
            v.str.size() > 256) {
          return Err(v.pos, "prefix_filter rules are \"+prefix\" (allow) or \"-prefix\" (block)");
        }
        t->prefix_filter.push_back(v.str);
      }
    } else if (k == "lease_metrics_epsilon" || k == "num_lease_metrics_buckets" ||
               k == "add_lease_metrics_namespace_labels" ||
               k == "add_mount_point_rollback_metrics") {
      // Vault's lease and rollback metrics: strongroom keeps no leases apart from tokens and
      // has no rollback manager, so these shape nothing. Accepted for Vault configurations.
      if (a.value.kind == Value::Kind::kList || a.value.kind == Value::Kind::kObject) {
        return Err(a.value.pos, absl::StrCat("\"", k, "\" must be a single value"));
      }
    } else {
      for (std::string_view sink : kPushSinks) {
        if (std::string_view(k).starts_with(sink)) {
          return Err(a.pos, absl::StrCat("\"", k,
                                         "\": strongroom does not push metrics; Prometheus "
                                         "reads them from sys/metrics (docs/operations.md)"));
        }
      }
      return Unknown(a.pos, k, "telemetry");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ServerConfig> ParseConfig(std::string_view text) {
  ASSIGN_OR_RETURN(hcl::Body body, hcl::Parse(text));
  ServerConfig c;
  bool have_listener = false, have_storage = false, have_seal = false, have_telemetry = false;
  for (const auto& b : body.blocks) {
    if (b.type == "telemetry") {
      if (have_telemetry) return Err(b.pos, "only one telemetry block is allowed");
      have_telemetry = true;
      ASSIGN_OR_RETURN(auto attributes, InnerAttributes(&b, nullptr));
      RETURN_IF_ERROR(ParseTelemetry(attributes, &c.telemetry));
    } else if (b.type == "listener") {
      if (have_listener) return Err(b.pos, "only one listener is supported");
      have_listener = true;
      RETURN_IF_ERROR(ParseListener(b, &c.listener));
    } else if (b.type == "storage") {
      if (have_storage) return Err(b.pos, "only one storage block is allowed");
      have_storage = true;
      RETURN_IF_ERROR(ParseStorage(b, &c.storage));
    } else if (b.type == "seal") {
      if (have_seal) return Err(b.pos, "only one seal block is allowed");
      have_seal = true;
      RETURN_IF_ERROR(ParseSeal(b, &c.seal));
    } else {
      return Err(b.pos, absl::StrCat("unknown block \"", b.type, "\""));
    }
  }
  for (const auto& a : body.attributes) {
    const std::string& k = a.key;
    if (k == "api_addr")
      RETURN_IF_ERROR(ReadString(a, &c.api_addr));
    else if (k == "cluster_addr")
      RETURN_IF_ERROR(ReadString(a, &c.cluster_addr));
    else if (k == "cluster_name")
      RETURN_IF_ERROR(ReadString(a, &c.cluster_name));
    else if (k == "log_level")
      RETURN_IF_ERROR(ReadString(a, &c.log_level));
    else if (k == "disable_mlock")
      RETURN_IF_ERROR(ReadBool(a, &c.disable_mlock));
    else if (k == "ui") {
      bool ui = false;
      RETURN_IF_ERROR(ReadBool(a, &ui));
      if (ui) return Err(a.value.pos, "strongroom has no web UI; set ui = false or remove it");
    } else if (k == "workers")
      RETURN_IF_ERROR(ReadUint<int>(a, &c.workers, 1, 256));
    else if (k == "worker_user") {
      RETURN_IF_ERROR(ReadString(a, &c.worker_user));
      c.worker_user_set = true;
    } else if (k == "default_lease_ttl")
      RETURN_IF_ERROR(ReadDuration(a, &c.default_lease_ttl_s));
    else if (k == "max_lease_ttl")
      RETURN_IF_ERROR(ReadDuration(a, &c.max_lease_ttl_s));
    else if (k == "audit_checkpoint_entries")
      RETURN_IF_ERROR(ReadUint<uint64_t>(a, &c.audit_checkpoint_entries, 1, 1ull << 32));
    else if (k == "audit_checkpoint_interval") {
      RETURN_IF_ERROR(ReadDuration(a, &c.audit_checkpoint_interval_s));
      if (c.audit_checkpoint_interval_s <= 0)
        return Err(a.value.pos, "audit_checkpoint_interval must be positive");
    } else if (k == "transit_max_encryptions_per_version")
      RETURN_IF_ERROR(ReadUint<uint64_t>(a, &c.transit_max_encryptions_per_version, 1, 1ull << 32));
    else if (k == "transit_min_auto_rotate_period") {
      RETURN_IF_ERROR(ReadDuration(a, &c.transit_min_auto_rotate_period_s));
      if (c.transit_min_auto_rotate_period_s < 1)
        return Err(a.value.pos, "transit_min_auto_rotate_period must be at least 1s");
    } else
      return Unknown(a.pos, k, "the server configuration");
  }
  // As Vault: zero means the default (768h), and the default may not exceed the maximum.
  if (c.default_lease_ttl_s == 0) c.default_lease_ttl_s = 768 * 3600;
  if (c.max_lease_ttl_s == 0) c.max_lease_ttl_s = 768 * 3600;
  if (c.default_lease_ttl_s > c.max_lease_ttl_s) {
    return absl::InvalidArgumentError(
        "configuration: default_lease_ttl must not be greater than max_lease_ttl");
  }
  if (!have_listener)
    return absl::InvalidArgumentError("configuration: a listener \"tcp\" block is required");
  if (!have_storage)
    return absl::InvalidArgumentError("configuration: a storage block is required");
  if (!have_seal)
    return absl::InvalidArgumentError("configuration: a seal \"pkcs11\" block is required");
  // As Vault's VAULT_API_ADDR, VAULT_CLUSTER_ADDR and VAULT_RAFT_NODE_ID: what differs from pod
  // to pod when one configuration file serves them all.
  if (const char* v = std::getenv("STRONGROOM_API_ADDR"); v != nullptr && *v != '\0')
    c.api_addr = v;
  if (const char* v = std::getenv("STRONGROOM_CLUSTER_ADDR"); v != nullptr && *v != '\0') {
    c.cluster_addr = v;
  }
  if (const char* v = std::getenv("STRONGROOM_RAFT_NODE_ID"); v != nullptr && *v != '\0') {
    c.storage.node_id = v;
  }
  // retry_join's join credential, per pod (a Kubernetes Secret key named after the pod).
  if (const char* v = std::getenv("STRONGROOM_RAFT_JOIN_TOKEN_FILE"); v != nullptr && *v != '\0') {
    c.storage.join_token_file = v;
  }
  if (c.storage.type == "raft" && (c.api_addr.empty() || c.cluster_addr.empty())) {
    return absl::InvalidArgumentError(
        "configuration: storage \"raft\" needs api_addr and cluster_addr (what the other nodes "
        "use to reach this one)");
  }
  // The TLS key signs whatever digest a worker sends: it must never be the audit key (a worker
  // could then forge checkpoints) or share a label with the KEKs.
  const std::string& tls_label = c.listener.tls_key_label;
  if (!c.listener.tls_disable && !tls_label.empty() &&
      (tls_label == c.seal.audit_key_label || tls_label == c.seal.key_label ||
       tls_label == core::Pkcs11SealConfig().transit_kek_label)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "configuration: listener tls_key_label \"", tls_label,
        "\" must differ from the seal's key_label and audit_key_label (and the Transit KEK's)"));
  }
  return c;
}

absl::StatusOr<ServerConfig> LoadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    return absl::NotFoundError(absl::StrCat("cannot read configuration file \"", path, "\""));
  std::stringstream ss;
  ss << in.rdbuf();
  auto c = ParseConfig(ss.str());
  if (!c.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", c.status().message()));
  return c;
}

core::json::object SanitizedConfig(const ServerConfig& c) {
  using core::json::array;
  using core::json::object;
  const bool raft = c.storage.type == "raft";
  object listener_config;
  listener_config["address"] = c.listener.address;
  listener_config["tls_disable"] = c.listener.tls_disable;
  if (!c.listener.tls_disable) {
    listener_config["tls_cert_file"] = c.listener.tls_cert_file;
    listener_config["tls_min_version"] = c.listener.tls_min_version;
    // Where the key is, never the key: a file path or a label in the token.
    if (!c.listener.tls_key_file.empty()) listener_config["tls_key_file"] = c.listener.tls_key_file;
    if (!c.listener.tls_key_label.empty()) {
      listener_config["tls_key_label"] = c.listener.tls_key_label;
    }
  }
  listener_config["max_request_size"] = c.listener.max_request_size;
  listener_config["http_idle_timeout"] = c.listener.http_idle_timeout_s;
  listener_config["http_read_timeout"] = c.listener.http_read_timeout_s;
  listener_config["http_read_header_timeout"] = c.listener.http_read_header_timeout_s;
  object listener;
  listener["type"] = "tcp";
  listener["config"] = std::move(listener_config);
  array listeners;
  listeners.emplace_back(std::move(listener));
  object seal;
  seal["type"] = c.seal.type;
  seal["disabled"] = false;
  array seals;
  seals.emplace_back(std::move(seal));
  object storage;
  storage["type"] = c.storage.type;
  storage["redirect_addr"] = c.api_addr;
  storage["cluster_addr"] = c.cluster_addr;
  storage["disable_clustering"] = !raft;
  object d;
  d["api_addr"] = c.api_addr;
  d["cache_size"] = 0;
  d["cluster_addr"] = c.cluster_addr;
  d["cluster_cipher_suites"] = "";
  d["cluster_name"] = c.cluster_name;
  d["default_lease_ttl"] = c.default_lease_ttl_s;
  d["default_max_request_duration"] = 0;
  d["disable_cache"] = false;
  d["disable_clustering"] = !raft;
  d["disable_indexing"] = false;
  d["disable_mlock"] = c.disable_mlock;
  d["disable_performance_standby"] = true;
  d["disable_printable_check"] = false;
  d["disable_sealwrap"] = true;
  d["enable_ui"] = false;
  d["listeners"] = std::move(listeners);
  d["log_format"] = "";
  d["log_level"] = c.log_level;
  d["max_lease_ttl"] = c.max_lease_ttl_s;
  d["pid_file"] = "";
  d["plugin_directory"] = "";
  d["raw_storage_endpoint"] = false;
  d["seals"] = std::move(seals);
  d["storage"] = std::move(storage);
  return d;
}

}  // namespace strongroom::broker
