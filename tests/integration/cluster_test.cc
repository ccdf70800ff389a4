// A Raft cluster of three real strongroomd processes, each with its own SoftHSM2 token and its
// own data directory, on loopback: init on one node, the others join (through the API, and
// through retry_join), the KEKs travel token to token, standbys forward and redirect, and the
// cluster survives the loss of its leader with data, tokens and Transit keys intact.
// Waits poll with a generous deadline (liveness, not speed).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/cluster_fixture.h"

namespace strongroom::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class ClusterTest : public ClusterFixture {
 protected:
  // Node 1 initialised with secret/ (KV v2), a secret and a Transit key; nodes 2 and 3 joined.
  void StartCluster() {
    ASSERT_NO_FATAL_FAILURE(StartFirstWithKv());
    Node& n1 = nodes_[0];
    EXPECT_EQ(
        n1.daemon->Root("POST", "/v1/secret/data/app", {{"data", {{"password", "s3cret"}}}}).status,
        200);
    EXPECT_EQ(n1.daemon->Root("POST", "/v1/sys/mounts/transit", {{"type", "transit"}}).status, 204);
    EXPECT_EQ(n1.daemon->Root("POST", "/v1/transit/keys/orders", nlohmann::json::object()).status,
              200);
    auto enc = n1.daemon->Root("POST", "/v1/transit/encrypt/orders",
                               {{"plaintext", "aGVsbG8gY2x1c3Rlcg=="}});
    ASSERT_EQ(enc.status, 200) << enc.body;
    ciphertext_ = enc.Json()["data"]["ciphertext"];

    // Node 2 joins through the API, as `vault operator raft join` does.
    Node& n2 = AddNode("n2");
    ASSERT_TRUE(n2.daemon->Start()) << n2.daemon->Log();
    auto joined = Join(n2, n1);
    ASSERT_EQ(joined.status, 200) << joined.body << n2.daemon->Log() << n1.daemon->Log();
    EXPECT_EQ(joined.Json(), nlohmann::json({{"joined", true}}));
    // Node 3 joins by itself at start (retry_join in its configuration).
    Node& n3 = AddNode("n3", n1.api());
    ASSERT_TRUE(n3.daemon->Start()) << n3.daemon->Log();
    ASSERT_TRUE(Eventually([&] { return Health(n3) == 429; })) << n3.daemon->Log();
    for (auto& n : nodes_) n.daemon->set_root_token(root_);
  }

  std::string ciphertext_;
};

TEST_F(ClusterTest, ThreeNodesShareKeysAndDataStandbysForwardAndTheClusterSurvivesItsLeader) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  Node& n1 = nodes_[0];
  Node& n2 = nodes_[1];
  Node& n3 = nodes_[2];

  // The configuration, as Vault shapes it.
  auto config = n1.daemon->Root("GET", "/v1/sys/storage/raft/configuration");
  ASSERT_EQ(config.status, 200) << config.body;
  auto servers = config.Json()["data"]["config"]["servers"];
  ASSERT_EQ(servers.size(), 3u) << config.body;
  for (const auto& s : servers) {
    EXPECT_TRUE(s["voter"].get<bool>());
    EXPECT_EQ(s["leader"].get<bool>(), s["node_id"] == "n1");
    EXPECT_EQ(s["protocol_version"], "3");
  }

  // Standbys: 429 on sys/health (200 with standbyok), sys/leader names the active node.
  EXPECT_EQ(Health(n1), 200);
  EXPECT_EQ(Health(n2), 429);
  EXPECT_EQ(n2.daemon->Call("GET", "/v1/sys/health?standbyok=true").status, 200);
  auto h2 = n2.daemon->Call("GET", "/v1/sys/health").Json();
  EXPECT_TRUE(h2["standby"].get<bool>());
  EXPECT_FALSE(h2["sealed"].get<bool>());
  auto leader = n2.daemon->Call("GET", "/v1/sys/leader").Json();
  EXPECT_TRUE(leader["ha_enabled"].get<bool>());
  EXPECT_FALSE(leader["is_self"].get<bool>());
  EXPECT_EQ(leader["leader_address"], n1.api());
  EXPECT_EQ(leader["leader_cluster_address"],
            "https://127.0.0.1:" + std::to_string(n1.api_port + 1));
  EXPECT_EQ(n2.daemon->Call("GET", "/v1/sys/seal-status").Json()["storage_type"], "raft");

  // A standby forwards: the client gets the active node's answer.
  auto read = n2.daemon->Root("GET", "/v1/secret/data/app");
  ASSERT_EQ(read.status, 200) << read.body << n2.daemon->Log();
  EXPECT_EQ(read.Json()["data"]["data"]["password"], "s3cret");
  ASSERT_EQ(n3.daemon->Root("POST", "/v1/secret/data/from-n3", {{"data", {{"v", "3"}}}}).status,
            200);
  EXPECT_EQ(n1.daemon->Root("GET", "/v1/secret/data/from-n3").Json()["data"]["data"]["v"], "3");
  // A large body is forwarded whole (1 MiB of value).
  const std::string big(1 << 20, 'b');
  auto wrote_big = n3.daemon->Root("POST", "/v1/secret/data/big", {{"data", {{"v", big}}}});
  EXPECT_EQ(wrote_big.status, 200) << wrote_big.body.substr(0, 300);
  EXPECT_EQ(n2.daemon->Root("GET", "/v1/secret/data/big").Json()["data"]["data"]["v"], big);
  // ... or redirects the client that asks not to be forwarded (Vault's 307).
  auto redirected =
      n2.daemon->Call("GET", "/v1/secret/data/app?version=1", "",
                      {{"X-Vault-Token", root_}, {"X-Vault-No-Request-Forwarding", "true"}});
  EXPECT_EQ(redirected.status, 307);
  EXPECT_EQ(redirected.headers["location"], n1.api() + "/v1/secret/data/app?version=1");
  // sys/seal is not forwarded: a standby refuses it, and the leader stays unsealed.
  auto seal = n2.daemon->Root("PUT", "/v1/sys/seal");
  EXPECT_EQ(seal.status, 400) << seal.body;
  EXPECT_THAT(seal.body, HasSubstr("standby"));
  EXPECT_EQ(Health(n1), 200);
  // A forged token gets the active node's 403 through the standby.
  EXPECT_EQ(
      n2.daemon->Call("GET", "/v1/secret/data/app", "", {{"X-Vault-Token", "hvs.forged"}}).status,
      403);

  // What went over Raft is barrier ciphertext: no node's files hold the secret.
  for (auto& n : nodes_) {
    std::string cmd = "grep -r -q s3cret '" + n.daemon->data_dir() + "'";
    EXPECT_NE(std::system(cmd.c_str()), 0) << n.name;
  }
  // The joined nodes hold the cluster's KEK in their own tokens, and it stays there.
  EXPECT_THAT(n2.daemon->Log(), HasSubstr("received the cluster's KEKs"));
  EXPECT_THAT(n1.daemon->Log(), HasSubstr("sent the cluster's KEKs, wrapped for its token, to "
                                          "joining node n2"));

  // The leader dies. One of the others takes over, with the data, the root token and the
  // Transit key (whose KEK it received at join).
  n1.daemon->Kill();
  Node* active = nullptr;
  ASSERT_TRUE(Eventually([&] {
    for (Node* n : {&n2, &n3}) {
      if (Health(*n) == 200) {
        active = n;
        return true;
      }
    }
    return false;
  })) << n2.daemon->Log()
      << n3.daemon->Log();
  Node* other = active == &n2 ? &n3 : &n2;
  EXPECT_TRUE(active->daemon->WaitForLog("reloading as the active node"));
  auto again = active->daemon->Root("GET", "/v1/secret/data/app");
  ASSERT_EQ(again.status, 200) << again.body << active->daemon->Log();
  EXPECT_EQ(again.Json()["data"]["data"]["password"], "s3cret");
  auto dec =
      active->daemon->Root("POST", "/v1/transit/decrypt/orders", {{"ciphertext", ciphertext_}});
  ASSERT_EQ(dec.status, 200) << dec.body << active->daemon->Log();
  EXPECT_EQ(dec.Json()["data"]["plaintext"], "aGVsbG8gY2x1c3Rlcg==");
  ASSERT_EQ(
      active->daemon->Root("POST", "/v1/secret/data/after", {{"data", {{"v", "after"}}}}).status,
      200);
  EXPECT_TRUE(Eventually([&] { return Health(*other) == 429; })) << other->daemon->Log();
  EXPECT_EQ(other->daemon->Root("GET", "/v1/secret/data/after").Json()["data"]["data"]["v"],
            "after");

  // The old leader comes back from its own directory and token as a standby, up to date.
  ASSERT_TRUE(n1.daemon->Start()) << n1.daemon->Log();
  EXPECT_TRUE(Eventually([&] { return Health(n1) == 429; })) << n1.daemon->Log();
  EXPECT_EQ(n1.daemon->Root("GET", "/v1/secret/data/after").Json()["data"]["data"]["v"], "after");
}

TEST_F(ClusterTest, JoinIsRefusedWithoutTheClusterCertificateOrOnceInitialised) {
  Node& n1 = AddNode("n1");
  ASSERT_TRUE(n1.daemon->Start()) << n1.daemon->Log();
  n1.daemon->Init(1, 1);
  // An initialised node cannot join another cluster.
  auto again = n1.daemon->Call("POST", "/v1/sys/storage/raft/join",
                               R"({"leader_api_addr":"http://127.0.0.1:1"})");
  EXPECT_EQ(again.status, 400);
  EXPECT_THAT(again.body, HasSubstr("initialized"));

  // A node whose cluster certificate comes from another CA gets nothing.
  ClusterCerts rogue = MakeClusterCerts(dir_ + "/rogue", "rogue");
  certs_ = rogue;
  Node& r = AddNode("rogue");
  ASSERT_TRUE(r.daemon->Start()) << r.daemon->Log();
  auto refused = r.daemon->Call("POST", "/v1/sys/storage/raft/join",
                                nlohmann::json{{"leader_api_addr", n1.api()}}.dump());
  EXPECT_NE(refused.status, 200);
  EXPECT_THAT(refused.body, HasSubstr("cluster call"));
  EXPECT_THAT(r.daemon->Log(), Not(HasSubstr("received the cluster's KEKs")));
  EXPECT_EQ(r.daemon->Call("GET", "/v1/sys/health").status, 501);  // still not initialised
  // Bad input: no leader, a non-voter request.
  EXPECT_EQ(r.daemon->Call("POST", "/v1/sys/storage/raft/join", "{}").status, 400);
  EXPECT_EQ(r.daemon
                ->Call("POST", "/v1/sys/storage/raft/join",
                       R"({"leader_api_addr":"http://127.0.0.1:1","non_voter":true})")
                .status,
            400);
}

}  // namespace
}  // namespace strongroom::testing
