// Lost-quorum recovery (docs/operations.md, "Recovering from lost quorum"; Vault's peers.json):
// `strongroomd -config=FILE -raft-recover=PEERS.json` on a survivor of a three-node cluster whose
// two other nodes are gone for good makes it the cluster's only voter; it becomes the active
// node and serves what was written before. Refused, with nothing written, while a majority of
// the configuration is reachable. Waits poll with a generous deadline (liveness, not speed).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "appliance/raft/tls_transport.h"
#include "tests/integration/cluster_fixture.h"

namespace strongroom::testing {
namespace {

using ::testing::HasSubstr;

class ClusterRecoverTest : public ClusterFixture {
 protected:
  // A peers file naming `n` alone, as Vault's peers.json does.
  std::string PeersFileFor(const Node& n) {
    const std::string path = dir_ + "/peers-" + n.name + ".json";
    std::ofstream(path) << nlohmann::json::array(
                               {{{"id", n.name},
                                 {"address", "127.0.0.1:" + std::to_string(n.api_port + 1)},
                                 {"non_voter", false}}})
                               .dump();
    return path;
  }

  static RunResult RecoverOffline(Node& n, const std::string& peers) {
    n.daemon->WriteConfig();
    return RunStrongroomd({"-config=" + n.daemon->config_path(), "-raft-recover=" + peers}, 60000);
  }
};

TEST_F(ClusterRecoverTest, RefusedWhileAMajorityIsReachableAndNothingIsWritten) {
  ASSERT_NO_FATAL_FAILURE(StartThreeWithSecret());
  Node& n1 = nodes_[0];
  Node& n3 = nodes_[2];
  n3.daemon->Stop();
  RunResult r = RecoverOffline(n3, PeersFileFor(n3));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("raft recovery refused: 3 of the 3 voters of the current Raft "
                                  "configuration are reachable"));
  EXPECT_THAT(r.output, HasSubstr("quorum"));
  // Nothing changed: n3 starts normally and is a standby of the three-node cluster again.
  ASSERT_TRUE(n3.daemon->Start()) << n3.daemon->Log();
  ASSERT_TRUE(Eventually([&] { return Health(n3) == 429; })) << n3.daemon->Log();
  auto config = n1.daemon->Root("GET", "/v1/sys/storage/raft/configuration");
  ASSERT_EQ(config.status, 200) << config.body;
  EXPECT_EQ(config.Json()["data"]["config"]["servers"].size(), 3u) << config.body;
  EXPECT_EQ(n3.daemon->Root("GET", "/v1/secret/data/app").Json()["data"]["data"]["password"],
            "s3cret");

  // A peers file that does not name this node, or names a stranger, is refused too.
  n3.daemon->Stop();
  const std::string stranger = dir_ + "/stranger.json";
  std::ofstream(stranger) << R"([{"id":"n9","address":"127.0.0.1:1"}])";
  r = RecoverOffline(n3, stranger);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("this node (n3) must be in the peers file as a voter"));
  const std::string junk = dir_ + "/junk.json";
  std::ofstream(junk) << R"({"id":"n3"})";
  r = RecoverOffline(n3, junk);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("must be a JSON array"));
}

TEST_F(ClusterRecoverTest, ASurvivorOfALostMajorityComesBackAloneWithItsData) {
  ASSERT_NO_FATAL_FAILURE(StartThreeWithSecret());
  Node& n1 = nodes_[0];
  Node& n2 = nodes_[1];
  Node& n3 = nodes_[2];
  // Written through the cluster (replicated to every node) just before the loss.
  ASSERT_EQ(n3.daemon->Root("POST", "/v1/secret/data/last", {{"data", {{"v", "before"}}}}).status,
            200);
  // ... and applied on n3 (its applied index reaches the leader's commit index).
  const uint64_t committed =
      n1.daemon->Call("GET", "/v1/sys/leader").Json()["raft_committed_index"].get<uint64_t>();
  ASSERT_TRUE(Eventually([&] {
    return n3.daemon->Call("GET", "/v1/sys/leader")
               .Json()
               .value("raft_applied_index", uint64_t{0}) >= committed;
  }));

  // Two of three gone for good: no leader, no quorum; n3 cannot write.
  n1.daemon->Kill();
  n2.daemon->Kill();
  ASSERT_TRUE(Eventually([&] {
    return n3.daemon->Call("GET", "/v1/sys/leader").Json().value("leader_address", "x").empty();
  })) << n3.daemon->Log();
  EXPECT_NE(n3.daemon->Root("POST", "/v1/secret/data/lost", {{"data", {{"v", "1"}}}}).status, 200);
  n3.daemon->Stop();  // the survivor is stopped for the recovery

  // The recovery: n3 alone in the peers file; it starts with that configuration.
  const std::string peers = PeersFileFor(n3);
  n3.daemon->options().extra_args = {"-raft-recover=" + peers};
  ASSERT_TRUE(n3.daemon->Start()) << n3.daemon->Log();
  EXPECT_TRUE(n3.daemon->WaitForLog("raft recovery: 1 of the 3 voters")) << n3.daemon->Log();
  ASSERT_TRUE(Eventually([&] { return Health(n3) == 200; })) << n3.daemon->Log();
  auto app = n3.daemon->Root("GET", "/v1/secret/data/app");
  ASSERT_EQ(app.status, 200) << app.body;
  EXPECT_EQ(app.Json()["data"]["data"]["password"], "s3cret");
  EXPECT_EQ(n3.daemon->Root("GET", "/v1/secret/data/last").Json()["data"]["data"]["v"], "before");
  EXPECT_EQ(n3.daemon->Root("POST", "/v1/secret/data/after", {{"data", {{"v", "1"}}}}).status, 200);
  auto config = n3.daemon->Root("GET", "/v1/sys/storage/raft/configuration");
  ASSERT_EQ(config.status, 200) << config.body;
  const auto servers = config.Json()["data"]["config"]["servers"];
  ASSERT_EQ(servers.size(), 1u) << config.body;
  EXPECT_EQ(servers[0]["node_id"], "n3");
  EXPECT_EQ(servers[0]["leader"], true);
  EXPECT_EQ(servers[0]["voter"], true);

  // The node ids the recovery dropped are removed for good: marked in replicated state, and
  // their certificates get nothing on the cluster port (they may come back with their old
  // state and disturb the new configuration otherwise).
  EXPECT_TRUE(n3.daemon->WaitForLog("marked n1, n2 (dropped by the recovery) removed"))
      << n3.daemon->Log();
  const ClusterCerts n1_certs = NodeCerts(certs_, "n1");
  auto term = raft::CallService({n1_certs.ca, n1_certs.cert, n1_certs.key, nullptr},
                                "127.0.0.1:" + std::to_string(n3.api_port + 1), R"({"op":"term"})",
                                std::chrono::seconds(30));
  ASSERT_TRUE(term.ok()) << term.status();
  EXPECT_THAT(nlohmann::json::parse(*term, nullptr, false).value("error", ""),
              HasSubstr("node \"n1\" was removed from the cluster"))
      << *term;

  // Restarted without the flag it stays the cluster, data and all.
  n3.daemon->options().extra_args.clear();
  n3.daemon->Stop();
  ASSERT_TRUE(n3.daemon->Start()) << n3.daemon->Log();
  ASSERT_TRUE(Eventually([&] { return Health(n3) == 200; })) << n3.daemon->Log();
  EXPECT_EQ(n3.daemon->Root("GET", "/v1/secret/data/after").Json()["data"]["data"]["v"], "1");
  // A recovery run again by mistake is refused: this node is a majority of its configuration.
  n3.daemon->Stop();
  RunResult again = RecoverOffline(n3, peers);
  EXPECT_EQ(again.exit_code, 1) << again.output;
  EXPECT_THAT(again.output, HasSubstr("1 of the 1 voters"));
}

}  // namespace
}  // namespace strongroom::testing
