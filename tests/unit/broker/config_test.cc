#include "appliance/broker/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

namespace strongroom::broker {
namespace {

using ::testing::HasSubstr;

constexpr char kGood[] = R"(
# A production-like configuration
api_addr = "https://10.0.0.1:8200"
cluster_addr = "https://10.0.0.1:8201"
workers = 4
listener "tcp" {
  address       = "0.0.0.0:8200"
  tls_cert_file = "/etc/strongroom/tls.crt"
  tls_key_file  = "/etc/strongroom/tls.key"
  max_request_size = 1048576
  http_idle_timeout = "2m"
}
storage "rocksdb" {
  path    = "/var/lib/strongroom/data"
  node_id = "node1"
}
seal "pkcs11" {
  lib         = "/usr/lib/softhsm/libsofthsm2.so"
  token_label = "strongroom"
  pin         = "env://STRONGROOM_HSM_PIN"
  key_label   = "kek"
}
)";

TEST(Config, ParsesVaultStyleServerConfig) {
  auto c = ParseConfig(kGood);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->api_addr, "https://10.0.0.1:8200");
  EXPECT_EQ(c->workers, 4);
  EXPECT_EQ(c->listener.address, "0.0.0.0:8200");
  EXPECT_FALSE(c->listener.tls_disable);
  EXPECT_EQ(c->listener.max_request_size, 1048576u);
  EXPECT_EQ(c->listener.http_idle_timeout_s, 120);
  EXPECT_EQ(c->storage.path, "/var/lib/strongroom/data");
  EXPECT_EQ(c->seal.pin, "env://STRONGROOM_HSM_PIN");
  EXPECT_EQ(c->seal.key_label, "kek");
}

// sys/config/state/sanitized: Vault's key names, and nothing of the seal but its type (the PIN,
// even as a reference, the token and key labels stay out).
TEST(Config, SanitizedHasVaultsKeysAndNoSecret) {
  ServerConfig c = *ParseConfig(kGood);
  c.seal.pin = "123456-literal-pin";
  const std::string s = core::Serialize(SanitizedConfig(c));
  for (const char* key :
       {"\"api_addr\":\"https://10.0.0.1:8200\"", "\"cluster_addr\"",
        "\"listeners\":[{\"type\":\"tcp\"", "\"address\":\"0.0.0.0:8200\"",
        "\"seals\":[{\"type\":\"pkcs11\",\"disabled\":false}]", "\"storage\":{\"type\":\"rocksdb\"",
        "\"default_lease_ttl\"", "\"disable_mlock\"", "\"raw_storage_endpoint\":false"}) {
    EXPECT_THAT(s, HasSubstr(key));
  }
  for (const char* secret : {"123456", "pin", "softhsm", "kek", "token_label", "/var/lib"}) {
    EXPECT_THAT(s, ::testing::Not(HasSubstr(secret))) << s;
  }
}

// Issue 15 item 9: the connection limits against floods, with their secure defaults.
// Vault API section: listener "tcp" parameters (http_read_header_timeout).
TEST(Config, ConnectionFloodLimits) {
  const std::string tail =
      "storage \"rocksdb\" { path = \"/d\" }\nseal \"pkcs11\" { lib = \"/l\" token_label = \"t\" "
      "pin = \"1\" }\n";
  auto defaults = ParseConfig("listener \"tcp\" {\n tls_disable = true\n}\n" + tail);
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->listener.http_read_header_timeout_s, 10);
  EXPECT_EQ(defaults->listener.max_connections_per_address, 256u);
  auto set = ParseConfig(
      "listener \"tcp\" {\n tls_disable = true\n http_read_header_timeout = \"3s\"\n "
      "max_connections_per_address = 32\n}\n" +
      tail);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->listener.http_read_header_timeout_s, 3);
  EXPECT_EQ(set->listener.max_connections_per_address, 32u);
  for (const std::string bad :
       {"http_read_header_timeout = \"0s\"", "http_read_header_timeout = \"48h\"",
        "max_connections_per_address = 0", "http_read_timeout = \"100000h\""}) {
    EXPECT_FALSE(
        ParseConfig("listener \"tcp\" {\n tls_disable = true\n " + bad + "\n}\n" + tail).ok())
        << bad;
  }
}

// Issue 23 item 8: the JSON body limits (Vault's CVE-2025-6203 listener parameters, OpenBao's
// max_request_json_memory / max_request_json_strings), with their defaults.
TEST(Config, JsonBodyLimits) {
  const std::string tail =
      "storage \"rocksdb\" { path = \"/d\" }\nseal \"pkcs11\" { lib = \"/l\" token_label = \"t\" "
      "pin = \"1\" }\n";
  auto defaults = ParseConfig("listener \"tcp\" {\n tls_disable = true\n}\n" + tail);
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->listener.max_json_depth, 64u);
  EXPECT_EQ(defaults->listener.max_json_string_value_length, 1048576u);
  EXPECT_EQ(defaults->listener.max_json_object_entry_count, 10000u);
  EXPECT_EQ(defaults->listener.max_json_array_element_count, 10000u);
  EXPECT_EQ(defaults->listener.max_request_json_memory, 34078720u);
  EXPECT_EQ(defaults->listener.max_request_json_strings, 100000u);
  auto set = ParseConfig(
      "listener \"tcp\" {\n tls_disable = true\n max_json_depth = 500\n "
      "max_json_string_value_length = 4096\n max_json_object_entry_count = 50\n "
      "max_json_array_element_count = \"60\"\n max_request_json_memory = 1048576\n "
      "max_request_json_strings = 1000\n}\n" +
      tail);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->listener.max_json_depth, 500u);
  EXPECT_EQ(set->listener.max_json_string_value_length, 4096u);
  EXPECT_EQ(set->listener.max_json_object_entry_count, 50u);
  EXPECT_EQ(set->listener.max_json_array_element_count, 60u);
  EXPECT_EQ(set->listener.max_request_json_memory, 1048576u);
  EXPECT_EQ(set->listener.max_request_json_strings, 1000u);
  for (const std::string bad :
       {"max_json_string_value_length = 0", "max_json_object_entry_count = -1",
        "max_json_array_element_count = 1.5", "max_request_json_memory = 100",
        "max_request_json_strings = 0", "max_json_depth = 1001"}) {
    auto r = ParseConfig("listener \"tcp\" {\n tls_disable = true\n " + bad + "\n}\n" + tail);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(bad.substr(0, bad.find(' '))));
  }
}

TEST(Config, ClearErrorsWithPositions) {
  auto err = [](const std::string& text) {
    return std::string(ParseConfig(text).status().message());
  };
  const std::string tail =
      "storage \"rocksdb\" { path = \"/d\" }\nseal \"pkcs11\" { lib = \"/l\" token_label = \"t\" "
      "pin = \"1\" }\n";
  EXPECT_THAT(err("listener \"tcp\" {\n tls_disable = true\n bogus = 1\n}\n" + tail),
              HasSubstr("line 3, column 2: unknown key \"bogus\" in listener \"tcp\""));
  EXPECT_THAT(err("listener \"udp\" { tls_disable = true }\n" + tail),
              HasSubstr("listener \"tcp\""));
  EXPECT_THAT(
      err("listener \"tcp\" { tls_disable = true }\nstorage \"raftish\" { path = \"/d\" }\n"),
      HasSubstr("unsupported storage type \"raftish\""));
  EXPECT_THAT(err("listener \"tcp\" { tls_disable = \"maybe\" }\n" + tail),
              HasSubstr("must be true or false"));
  EXPECT_THAT(err("listener \"tcp\" {}\n" + tail),
              HasSubstr("tls_cert_file and tls_key_label (a key in the token) or tls_key_file "
                        "are required unless tls_disable = true"));
  EXPECT_THAT(
      err("listener \"tcp\" { tls_disable = true }\nstorage \"rocksdb\" { path = \"/d\" }\n"),
      HasSubstr("seal \"pkcs11\" block is required"));
  EXPECT_THAT(err("listener \"tcp\" { tls_disable = true }\n" + tail + "colour = \"red\"\n"),
              HasSubstr("unknown key \"colour\""));
  EXPECT_THAT(err("listener \"tcp\" { tls_disable = true }\nstorage \"rocksdb\" { path = \"/d\" }\n"
                  "seal \"pkcs11\" { lib = \"/l\" token_label = \"t\" }\n"),
              HasSubstr("\"pin\" is required"));
  EXPECT_THAT(err("listener \"tcp\" { tls_disable = true max_request_size = -5 }\n" + tail),
              HasSubstr("max_request_size"));
  EXPECT_THAT(err("ui = true\nlistener \"tcp\" { tls_disable = true }\n" + tail),
              HasSubstr("no web UI"));
}

// Vault's telemetry stanzas: the listener's (unauthenticated_metrics_access) and the server's
// (Prometheus retention, names, filters); push sinks are refused with the reason.
TEST(Config, TelemetryStanzas) {
  const std::string tail =
      "storage \"rocksdb\" { path = \"/d\" }\nseal \"pkcs11\" { lib = \"/l\" token_label = \"t\" "
      "pin = \"1\" }\n";
  auto defaults = ParseConfig("listener \"tcp\" { tls_disable = true }\n" + tail);
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_FALSE(defaults->listener.unauthenticated_metrics_access);
  EXPECT_EQ(defaults->telemetry.prometheus_retention_time_s, 24 * 3600);
  EXPECT_TRUE(defaults->telemetry.disable_hostname);
  EXPECT_EQ(defaults->telemetry.metrics_prefix, "vault");
  EXPECT_EQ(defaults->telemetry.usage_gauge_period_s, 600);

  auto c = ParseConfig(R"(
listener "tcp" {
  tls_disable = true
  telemetry {
    unauthenticated_metrics_access = true
  }
}
telemetry {
  prometheus_retention_time = "30s"
  disable_hostname = false
  enable_hostname_label = true
  metrics_prefix = "strongroom"
  usage_gauge_period = "none"
  maximum_gauge_cardinality = 50
  filter_default = false
  prefix_filter = ["+strongroom.token", "-strongroom.expire"]
  lease_metrics_epsilon = "1h"
}
)" + tail);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->listener.unauthenticated_metrics_access);
  EXPECT_EQ(c->telemetry.prometheus_retention_time_s, 30);
  EXPECT_FALSE(c->telemetry.disable_hostname);
  EXPECT_TRUE(c->telemetry.enable_hostname_label);
  EXPECT_EQ(c->telemetry.metrics_prefix, "strongroom");
  EXPECT_EQ(c->telemetry.usage_gauge_period_s, 0);
  EXPECT_EQ(c->telemetry.maximum_gauge_cardinality, 50u);
  EXPECT_FALSE(c->telemetry.filter_default);
  EXPECT_THAT(c->telemetry.prefix_filter,
              testing::ElementsAre("+strongroom.token", "-strongroom.expire"));

  // The JSON form: the listener's telemetry is an object.
  auto json = ParseConfig(R"({
  "listener": {"tcp": {"tls_disable": true, "telemetry": {"unauthenticated_metrics_access": true}}},
  "storage": {"rocksdb": {"path": "/d"}},
  "seal": {"pkcs11": {"lib": "/l", "token_label": "t", "pin": "1"}},
  "telemetry": {"prometheus_retention_time": "0"}
})");
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_TRUE(json->listener.unauthenticated_metrics_access);
  EXPECT_EQ(json->telemetry.prometheus_retention_time_s, 0);

  auto err = [&](const std::string& text) {
    return std::string(ParseConfig(text + tail).status().message());
  };
  const std::string listener = "listener \"tcp\" { tls_disable = true }\n";
  EXPECT_THAT(err(listener + "telemetry {\n  statsd_address = \"statsd:8125\"\n}\n"),
              HasSubstr("line 3, column 3: \"statsd_address\": strongroom does not push metrics"));
  EXPECT_THAT(err(listener + "telemetry { colour = 1 }\n"),
              HasSubstr("unknown key \"colour\" in telemetry"));
  EXPECT_THAT(err(listener + "telemetry { prefix_filter = [\"vault.token\"] }\n"),
              HasSubstr("prefix_filter rules are"));
  EXPECT_THAT(err(listener + "telemetry { metrics_prefix = \"a b\" }\n"),
              HasSubstr("metrics_prefix must be"));
  EXPECT_THAT(err(listener + "telemetry { prometheus_retention_time = \"soon\" }\n"),
              HasSubstr("invalid duration"));
  EXPECT_THAT(err(listener + "telemetry {}\ntelemetry {}\n"),
              HasSubstr("only one telemetry block"));
  EXPECT_THAT(
      err("listener \"tcp\" {\n tls_disable = true\n telemetry { unauthenticated_metrics_access "
          "= \"yes\" }\n}\n"),
      HasSubstr("must be true or false"));
  EXPECT_THAT(err("listener \"tcp\" {\n tls_disable = true\n telemetry { x = 1 }\n}\n"),
              HasSubstr("unknown key \"x\" in the listener's telemetry"));
  EXPECT_THAT(err("listener \"tcp\" {\n tls_disable = true\n profiling { }\n}\n"),
              HasSubstr("unexpected block \"profiling\" in listener"));
}

// The listener's key in the token (tls_key_label) is the alternative to tls_key_file.
TEST(Config, TlsKeyLabelKeepsTheKeyInTheToken) {
  const std::string tail =
      "storage \"rocksdb\" { path = \"/d\" }\nseal \"pkcs11\" { lib = \"/l\" token_label = \"t\" "
      "pin = \"1\" }\n";
  auto c = ParseConfig(
      "listener \"tcp\" {\n tls_cert_file = \"/c.pem\"\n tls_key_label = \"strongroom-tls\"\n}\n" +
      tail);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listener.tls_key_label, "strongroom-tls");
  EXPECT_TRUE(c->listener.tls_key_file.empty());

  auto err = [&](const std::string& listener) {
    return std::string(ParseConfig(listener + tail).status().message());
  };
  EXPECT_THAT(err("listener \"tcp\" { tls_cert_file = \"/c\" tls_key_file = \"/k\" "
                  "tls_key_label = \"strongroom-tls\" }\n"),
              HasSubstr("set either tls_key_label (a key in the token) or tls_key_file, not both"));
  EXPECT_THAT(err("listener \"tcp\" { tls_key_label = \"strongroom-tls\" }\n"),
              HasSubstr("tls_cert_file and tls_key_label"));
  // Never the audit key or a KEK: the TLS key signs whatever digest a worker sends.
  for (const char* label : {"strongroom-audit", "strongroom-kek", "strongroom-transit-kek"}) {
    EXPECT_THAT(err(std::string("listener \"tcp\" { tls_cert_file = \"/c\" tls_key_label = \"") +
                    label + "\" }\n"),
                HasSubstr("must differ from the seal's key_label and audit_key_label"))
        << label;
  }
  // Ignored with tls_disable, like tls_key_file.
  EXPECT_TRUE(
      ParseConfig("listener \"tcp\" { tls_disable = true tls_key_label = \"strongroom-audit\" }\n" +
                  tail)
          .ok());
}

}  // namespace
}  // namespace strongroom::broker

namespace strongroom::broker {
namespace {

constexpr char kRaftBase[] = R"(
listener "tcp" {
  address     = "0.0.0.0:8200"
  tls_disable = true
}
seal "pkcs11" {
  lib         = "/usr/lib/softhsm/libsofthsm2.so"
  token_label = "strongroom"
  pin         = "1234"
}
)";

TEST(Config, RaftStorageWithRetryJoin) {
  std::string text = std::string(kRaftBase) + R"(
api_addr     = "https://node1:8200"
cluster_addr = "https://node1:8201"
storage "raft" {
  path              = "/var/lib/strongroom/data"
  node_id           = "node1"
  cluster_ca_file   = "/etc/ca.crt"
  cluster_cert_file = "/etc/tls.crt"
  cluster_key_file  = "/etc/tls.key"
  retry_join {
    leader_api_addr     = "https://node2:8200"
    leader_ca_cert_file = "/ignored/ca.pem"
  }
  retry_join {
    leader_api_addr = "https://node3:8200"
    join_token_file = "/etc/strongroom/join-token"
  }
}
)";
  auto c = ParseConfig(text);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->storage.type, "raft");
  EXPECT_EQ(c->storage.node_id, "node1");
  EXPECT_EQ(c->storage.cluster_cert_file, "/etc/tls.crt");
  EXPECT_EQ(c->storage.retry_join,
            (std::vector<std::string>{"https://node2:8200", "https://node3:8200"}));
  EXPECT_EQ(c->storage.join_token_file, "/etc/strongroom/join-token");
  // One credential file for the node: two blocks naming different ones are refused.
  std::string two = text;
  two.replace(two.find("    leader_ca_cert_file"), 0, "    join_token_file = \"/other\"\n");
  auto refused = ParseConfig(two);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("join_token_file"));
}

TEST(Config, RaftStorageNeedsItsTlsFilesAndAddresses) {
  const std::string storage = R"(
storage "raft" {
  path              = "/d"
  cluster_ca_file   = "/ca"
  cluster_cert_file = "/crt"
  cluster_key_file  = "/key"
}
)";
  auto no_addr = ParseConfig(std::string(kRaftBase) + storage);
  ASSERT_FALSE(no_addr.ok());
  EXPECT_THAT(std::string(no_addr.status().message()), HasSubstr("api_addr and cluster_addr"));
  auto no_tls = ParseConfig(std::string(kRaftBase) +
                            "api_addr = \"https://a:8200\"\ncluster_addr = \"https://a:8201\"\n" +
                            "storage \"raft\" {\n  path = \"/d\"\n}\n");
  ASSERT_FALSE(no_tls.ok());
  EXPECT_THAT(std::string(no_tls.status().message()), HasSubstr("cluster_ca_file"));
  auto bad_block = ParseConfig(std::string(kRaftBase) +
                               "storage \"rocksdb\" {\n  path = \"/d\"\n  retry_join {\n  }\n}\n");
  ASSERT_FALSE(bad_block.ok());
  EXPECT_THAT(std::string(bad_block.status().message()), HasSubstr("retry_join"));
  auto no_leader =
      ParseConfig(std::string(kRaftBase) +
                  "api_addr = \"https://a:8200\"\ncluster_addr = \"https://a:8201\"\n" +
                  "storage \"raft\" {\n  path = \"/d\"\n  cluster_ca_file = \"/ca\"\n"
                  "  cluster_cert_file = \"/c\"\n  cluster_key_file = \"/k\"\n"
                  "  retry_join {\n  }\n}\n");
  ASSERT_FALSE(no_leader.ok());
  EXPECT_THAT(std::string(no_leader.status().message()), HasSubstr("leader_api_addr"));

  // The cluster key in the token (cluster_key_label), or a key file; one of them, not both.
  const std::string addrs = "api_addr = \"https://a:8200\"\ncluster_addr = \"https://a:8201\"\n";
  const std::string tls = "  cluster_ca_file = \"/ca\"\n  cluster_cert_file = \"/c\"\n";
  auto label =
      ParseConfig(std::string(kRaftBase) + addrs + "storage \"raft\" {\n  path = \"/d\"\n" + tls +
                  "  cluster_key_label = \"strongroom-cluster\"\n}\n");
  ASSERT_TRUE(label.ok()) << label.status();
  EXPECT_EQ(label->storage.cluster_key_label, "strongroom-cluster");
  EXPECT_EQ(label->storage.cluster_key_file, "");
  auto both = ParseConfig(std::string(kRaftBase) + addrs + "storage \"raft\" {\n  path = \"/d\"\n" +
                          tls + "  cluster_key_label = \"k\"\n  cluster_key_file = \"/k\"\n}\n");
  ASSERT_FALSE(both.ok());
  EXPECT_THAT(std::string(both.status().message()), HasSubstr("not both"));
  auto neither = ParseConfig(std::string(kRaftBase) + addrs +
                             "storage \"raft\" {\n  path = \"/d\"\n" + tls + "}\n");
  ASSERT_FALSE(neither.ok());
  EXPECT_THAT(std::string(neither.status().message()), HasSubstr("cluster_key_label"));

  // One file for every pod: the environment says which pod this is (as VAULT_API_ADDR, ...).
  setenv("STRONGROOM_API_ADDR", "https://pod-1:8200", 1);
  setenv("STRONGROOM_CLUSTER_ADDR", "https://pod-1:8201", 1);
  setenv("STRONGROOM_RAFT_NODE_ID", "pod-1", 1);
  setenv("STRONGROOM_RAFT_JOIN_TOKEN_FILE", "/etc/strongroom/join-tokens/pod-1", 1);
  auto from_env = ParseConfig(std::string(kRaftBase) + storage);
  unsetenv("STRONGROOM_API_ADDR");
  unsetenv("STRONGROOM_CLUSTER_ADDR");
  unsetenv("STRONGROOM_RAFT_NODE_ID");
  unsetenv("STRONGROOM_RAFT_JOIN_TOKEN_FILE");
  ASSERT_TRUE(from_env.ok()) << from_env.status();
  EXPECT_EQ(from_env->api_addr, "https://pod-1:8200");
  EXPECT_EQ(from_env->cluster_addr, "https://pod-1:8201");
  EXPECT_EQ(from_env->storage.node_id, "pod-1");
  EXPECT_EQ(from_env->storage.join_token_file, "/etc/strongroom/join-tokens/pod-1");
}

// The Kubernetes ConfigMap's strongroom.hcl is a configuration strongroomd accepts.
TEST(Config, TheKubernetesConfigMapParses) {
  std::ifstream in(std::string(STRONGROOM_SOURCE_DIR) + "/deploy/kubernetes/20-configmap.yaml");
  ASSERT_TRUE(in.good());
  std::string line, hcl;
  bool inside = false;
  while (std::getline(in, line)) {
    if (inside) hcl += (line.size() >= 4 ? line.substr(4) : "") + "\n";
    if (line.find("strongroom.hcl: |") != std::string::npos) inside = true;
  }
  setenv("STRONGROOM_RAFT_NODE_ID", "strongroom-1", 1);
  auto c = ParseConfig(hcl);
  unsetenv("STRONGROOM_RAFT_NODE_ID");
  ASSERT_TRUE(c.ok()) << c.status() << "\n" << hcl;
  EXPECT_EQ(c->storage.type, "raft");
  EXPECT_EQ(c->storage.retry_join.size(), 3u);
  EXPECT_EQ(c->storage.node_id, "strongroom-1");
  // The listener's private key stays in each pod's token (issue 15, item 15g).
  EXPECT_EQ(c->listener.tls_key_label, "strongroom-tls");
  EXPECT_EQ(c->listener.tls_key_file, "");
  EXPECT_EQ(c->listener.tls_cert_file, "/var/lib/strongroom/tls/tls.crt");
}

}  // namespace
}  // namespace strongroom::broker
