// A Raft cluster of real strongroomd processes on loopback, each with its own SoftHSM2 token, its
// own data directory and its own working directory, for the cluster tests. Waits poll with a
// generous deadline (liveness, not speed).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/daemon.h"

namespace strongroom::testing {

// Every daemon runs in its own directory, so this audit file_path is each node's own file.
inline constexpr char kAuditFilePath[] = "/proc/self/cwd/audit.log";

struct Node {
  std::unique_ptr<Daemon> daemon;
  int api_port = 0;
  std::string name;
  std::string api() const { return "http://127.0.0.1:" + std::to_string(api_port); }
};

// The audit file of `n` (a file device at kAuditFilePath).
inline std::string AuditFile(const Node& n) { return n.daemon->dir() + "/audit.log"; }

class ClusterFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sr-cluster-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    certs_ = MakeClusterCerts(dir_, "cluster");
    nodes_.reserve(8);  // AddNode hands out references
    ASSERT_FALSE(certs_.ca.empty());
  }
  void TearDown() override {
    nodes_.clear();
    std::filesystem::remove_all(dir_);
  }

  // A node named `name` (its storage node_id), not started, with its own cluster certificate
  // (naming `cert_node_id`, by default `name`). Every daemon runs in its own directory
  // (Daemon::dir()), so an audit file_path under /proc/self/cwd/ is each node's own.
  // With `retry_join` (a started node's API address), a join credential for `name` is minted
  // through that node (root_) and written to a file retry_join reads.
  Node& AddNode(const std::string& name, const std::string& retry_join = "",
                const std::string& cert_node_id = "") {
    std::string token_file;
    if (!retry_join.empty()) {
      for (Node& via : nodes_) {
        if (via.api() != retry_join) continue;
        token_file = dir_ + "/" + name + "-" + std::to_string(nodes_.size()) + ".join-token";
        std::ofstream(token_file) << MintJoinToken(via, name) << "\n";
      }
    }
    Node n;
    n.name = name;
    const std::string cert_name = cert_node_id.empty() ? name : cert_node_id;
    // With the key in the token the certificate is issued below, from the node's own request.
    const ClusterCerts mine =
        key_in_token_
            ? ClusterCerts{certs_.ca,
                           dir_ + "/" + name + "-" + std::to_string(nodes_.size()) + ".cluster.pem",
                           ""}
            : NodeCerts(certs_, cert_name);
    EXPECT_FALSE(mine.cert.empty());
    n.api_port = FreeLoopbackPortPair();
    Daemon::Options o;
    o.workers = 1;
    o.run_in_dir = true;
    o.extra_listener = extra_listener_;
    o.listen_address = "127.0.0.1:" + std::to_string(n.api_port);
    o.storage_block =
        "storage \"raft\" {\n  path = \"@DATA@\"\n  node_id = \"" + name +
        "\"\n  cluster_ca_file = \"" + mine.ca + "\"\n  cluster_cert_file = \"" + mine.cert +
        (key_in_token_ ? "\"\n  cluster_key_label = \"" + std::string(kClusterKeyLabel) + "\"\n"
                       : "\"\n  cluster_key_file = \"" + mine.key + "\"\n") +
        (retry_join.empty()
             ? ""
             : "  retry_join {\n    leader_api_addr = \"" + retry_join + "\"\n" +
                   (token_file.empty() ? std::string()
                                       : "    join_token_file = \"" + token_file + "\"\n") +
                   "  }\n") +
        "}";
    o.extra_top = "api_addr = \"" + n.api() +
                  "\"\ncluster_addr = \"https://127.0.0.1:" + std::to_string(n.api_port + 1) +
                  "\"\n";
    n.daemon = std::make_unique<Daemon>(o);
    if (key_in_token_) IssueFromToken(n, cert_name, mine.cert);
    nodes_.push_back(std::move(n));
    return nodes_.back();
  }

  // The cluster key made in `n`'s token (strongroomd -cluster-generate-key), its request
  // (-cluster-csr) signed by the cluster CA for `cert_node_id` at 127.0.0.1
  // (packaging/cluster-certs.sh sign), and the certificate moved to `cert`.
  void IssueFromToken(Node& n, const std::string& cert_node_id, const std::string& cert) {
    n.daemon->WriteConfig();  // its token's SoftHSM2 configuration, for the command
    const std::string csr = n.daemon->dir() + "/cluster.csr";
    RunResult r = RunStrongroomd(
        {"-config=" + n.daemon->config_path(), "-cluster-generate-key", "-cluster-csr=" + csr});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    ASSERT_TRUE(SignNodeRequest(certs_, cert_node_id, csr, cert));
  }

  // Node "n1" started, initialised (one recovery share; root_ holds its root token) and
  // secret/ (KV v2) mounted on it: nodes_[0].
  void StartFirstWithKv() {
    Node& n1 = AddNode("n1");
    ASSERT_TRUE(n1.daemon->Start()) << n1.daemon->Log();
    auto init = n1.daemon->Init(1, 1);
    ASSERT_TRUE(init.contains("root_token")) << init.dump() << n1.daemon->Log();
    root_ = n1.daemon->root_token();
    ASSERT_EQ(n1.daemon
                  ->Root("POST", "/v1/sys/mounts/secret",
                         {{"type", "kv"}, {"options", {{"version", "2"}}}})
                  .status,
              204);
  }

  // StartFirstWithKv with secret/app = {"password": "s3cret"} written on n1.
  void StartFirstWithSecret() {
    ASSERT_NO_FATAL_FAILURE(StartFirstWithKv());
    ASSERT_EQ(nodes_[0]
                  .daemon->Root("POST", "/v1/secret/data/app", {{"data", {{"password", "s3cret"}}}})
                  .status,
              200);
  }

  // StartFirstWithSecret, then n2 and n3 joined as standbys through n1; every node's daemon
  // holds root_.
  void StartThreeWithSecret() {
    ASSERT_NO_FATAL_FAILURE(StartFirstWithSecret());
    Node& n1 = nodes_[0];
    for (const char* name : {"n2", "n3"}) {
      Node& n = AddNode(name);
      ASSERT_TRUE(n.daemon->Start()) << n.daemon->Log();
      auto joined = Join(n, n1);
      ASSERT_EQ(joined.status, 200) << joined.body << n.daemon->Log() << n1.daemon->Log();
      ASSERT_TRUE(Eventually([&] { return Health(n) == 429; })) << n.daemon->Log();
    }
    for (auto& n : nodes_) n.daemon->set_root_token(root_);
  }

  // A token whose only policy `name` is `hcl`, made by root on `via`.
  std::string TokenWithPolicy(Node& via, const std::string& name, const std::string& hcl) {
    auto p = via.daemon->Root("PUT", "/v1/sys/policies/acl/" + name, {{"policy", hcl}});
    EXPECT_EQ(p.status, 204) << p.body;
    auto t = via.daemon->Root("POST", "/v1/auth/token/create",
                              {{"policies", {name}}, {"no_default_policy", true}});
    EXPECT_EQ(t.status, 200) << t.body;
    return t.Json()["auth"].value("client_token", "");
  }

  static int Health(Node& n) { return n.daemon->Call("GET", "/v1/sys/health").status; }

  // Extra lines in each node's listener block (for nodes added from then on).
  std::string extra_listener_;

  // A join credential for node id `name`, minted through `via` (forwarded to the active node)
  // with root_; "" on failure (the join it is for is then refused).
  std::string MintJoinToken(Node& via, const std::string& name) {
    HttpResponse r;
    for (int i = 0; i < 100; ++i) {  // a node that is becoming the active node answers 503
      r = via.daemon->Call("POST", "/v1/sys/storage/raft/join-token",
                           nlohmann::json{{"node_id", name}}.dump(), {{"X-Vault-Token", root_}});
      if (r.status != 503) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (r.status != 200) {
      ADD_FAILURE() << "minting a join token for " << name << ": " << r.status << " " << r.body;
      return "";
    }
    return r.Json()["data"].value("join_token", "");
  }

  // `n` joins the cluster through `leader`'s API, as `vault operator raft join` does, with a
  // join credential minted for it through `leader`.
  HttpResponse Join(Node& n, Node& leader) {
    return n.daemon->Call("POST", "/v1/sys/storage/raft/join",
                          nlohmann::json{{"leader_api_addr", leader.api()},
                                         {"join_token", MintJoinToken(leader, n.name)}}
                              .dump());
  }

  // The node's audit public key, read from its own token by `strongroomd -audit-public-key`
  // (the daemon stopped), written to <dir>/audit.pem; "" on failure.
  static std::string PublicKeyFile(Node& n) {
    n.daemon->WriteConfig();  // its token's SoftHSM2 configuration, for the command
    RunResult r = RunStrongroomd({"-config=" + n.daemon->config_path(), "-audit-public-key"});
    const size_t begin = r.output.find("-----BEGIN PUBLIC KEY-----");
    const std::string end_marker = "-----END PUBLIC KEY-----\n";
    const size_t end = r.output.find(end_marker);
    if (r.exit_code != 0 || begin == std::string::npos || end == std::string::npos) {
      ADD_FAILURE() << n.name << ": -audit-public-key: " << r.output;
      return "";
    }
    const std::string pem = n.daemon->dir() + "/audit.pem";
    std::ofstream(pem) << r.output.substr(begin, end + end_marker.size() - begin);
    return pem;
  }

  // The offline verifier (strongroom-audit verify) over `files` with the key in `pem`.
  static RunResult Verify(const std::string& pem, const std::vector<std::string>& files) {
    std::vector<std::string> args = {"verify", "--pubkey", pem};
    args.insert(args.end(), files.begin(), files.end());
    return RunProgram(AuditVerifierBinary(), args);
  }

  static constexpr char kClusterKeyLabel[] = "strongroom-cluster";
  // Nodes added from here on keep their cluster key in their token (cluster_key_label), with a
  // certificate issued from their own request; otherwise a key file (cluster_key_file).
  bool key_in_token_ = false;
  std::string dir_;
  ClusterCerts certs_;  // the cluster CA (and a certificate of it no node uses)
  std::vector<Node> nodes_;
  std::string root_;
};

}  // namespace strongroom::testing
