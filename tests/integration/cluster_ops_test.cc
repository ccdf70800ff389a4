// The operations endpoints on a Raft cluster of three real strongroomd processes, in Vault's
// shapes: sys/storage/raft/autopilot/state (Vault API: /sys/storage/raft/autopilot, "Get cluster
// state"), sys/ha-status (/sys/ha-status), sys/leader's raft indexes (/sys/leader), on the active
// node and forwarded by a standby; a killed follower turns unhealthy and the failure tolerance
// drops; autopilot/state needs sudo. Waits poll with a generous deadline (liveness, not speed).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "tests/integration/cluster_fixture.h"

namespace strongroom::testing {
namespace {

using ::testing::HasSubstr;

class ClusterOpsTest : public ClusterFixture {
 protected:
  static HttpResponse Get(Node& via, const std::string& path, const std::string& token) {
    return via.daemon->Call("GET", path, "", {{"X-Vault-Token", token}});
  }

  std::string Logs() const {
    std::string out;
    for (const auto& n : nodes_) out += "\n=== " + n.name + "\n" + n.daemon->Log();
    return out;
  }
};

TEST_F(ClusterOpsTest, AutopilotStateHaStatusAndLeaderInVaultShapes) {
  ASSERT_NO_FATAL_FAILURE(StartThreeWithSecret());
  Node& n1 = nodes_[0];
  Node& n2 = nodes_[1];

  // Every follower has answered the leader within the threshold once the joins are done.
  nlohmann::json state;
  ASSERT_TRUE(Eventually([&] {
    auto r = n1.daemon->Root("GET", "/v1/sys/storage/raft/autopilot/state");
    if (r.status != 200) return false;
    state = r.Json()["data"];
    return state["healthy"] == true;
  })) << state.dump()
      << Logs();
  EXPECT_EQ(state["failure_tolerance"], 1) << state.dump();
  EXPECT_EQ(state["leader"], "n1");
  EXPECT_EQ(state["voters"].get<std::set<std::string>>(),
            (std::set<std::string>{"n1", "n2", "n3"}));
  EXPECT_FALSE(state.contains("non_voters")) << state.dump();
  ASSERT_EQ(state["servers"].size(), 3u) << state.dump();
  for (const auto& n : nodes_) {
    const auto& s = state["servers"][n.name];
    ASSERT_TRUE(s.is_object()) << n.name << " " << state.dump();
    EXPECT_EQ(s["id"], n.name);
    EXPECT_EQ(s["name"], n.name);
    EXPECT_EQ(s["address"], "127.0.0.1:" + std::to_string(n.api_port + 1));
    EXPECT_EQ(s["node_status"], "alive");
    EXPECT_EQ(s["node_type"], "voter");
    EXPECT_EQ(s["status"], n.name == "n1" ? "leader" : "voter");
    EXPECT_EQ(s["healthy"], true);
    EXPECT_GT(s["last_index"].get<uint64_t>(), 0u);
    EXPECT_GT(s["last_term"].get<uint64_t>(), 0u);
    EXPECT_TRUE(s["last_contact"].is_string()) << s.dump();
    EXPECT_TRUE(s["stable_since"].is_string()) << s.dump();
    EXPECT_TRUE(s["version"].is_string()) << s.dump();
  }
  EXPECT_EQ(state["servers"]["n1"]["last_contact"], "0s");
  EXPECT_EQ(state["servers"]["n1"]["version"], "1.19.0+strongroom");

  // A standby forwards it to the active node: the same leader's view.
  auto via_standby = n2.daemon->Root("GET", "/v1/sys/storage/raft/autopilot/state");
  ASSERT_EQ(via_standby.status, 200) << via_standby.body;
  EXPECT_EQ(via_standby.Json()["data"]["leader"], "n1");
  EXPECT_EQ(via_standby.Json()["data"]["servers"]["n2"]["status"], "voter");

  // sys/ha-status: the active node first, then the members it heard from (at the top level too,
  // as Vault injects it).
  nlohmann::json ha;
  ASSERT_TRUE(Eventually([&] {
    auto r = n2.daemon->Root("GET", "/v1/sys/ha-status");
    if (r.status != 200) return false;
    ha = r.Json();
    return ha["data"]["nodes"].size() == 3;
  })) << ha.dump();
  EXPECT_EQ(ha["nodes"], ha["data"]["nodes"]);
  const auto& nodes = ha["data"]["nodes"];
  EXPECT_EQ(nodes[0]["hostname"], "n1");
  EXPECT_EQ(nodes[0]["active_node"], true);
  EXPECT_TRUE(nodes[0]["last_echo"].is_null());
  EXPECT_EQ(nodes[0]["api_address"], n1.api());
  EXPECT_EQ(nodes[0]["cluster_address"], "https://127.0.0.1:" + std::to_string(n1.api_port + 1));
  EXPECT_EQ(nodes[0]["version"], "1.19.0+strongroom");
  std::set<std::string> standbys;
  for (size_t i = 1; i < nodes.size(); ++i) {
    EXPECT_EQ(nodes[i]["active_node"], false);
    EXPECT_TRUE(nodes[i]["last_echo"].is_string()) << nodes[i].dump();
    standbys.insert(nodes[i]["hostname"].get<std::string>());
  }
  EXPECT_EQ(standbys, (std::set<std::string>{"n2", "n3"}));

  // sys/leader carries the Raft indexes, as Vault's does with raft storage.
  auto leader = n2.daemon->Call("GET", "/v1/sys/leader").Json();
  EXPECT_GT(leader["raft_committed_index"].get<uint64_t>(), 0u) << leader.dump();
  EXPECT_GT(leader["raft_applied_index"].get<uint64_t>(), 0u) << leader.dump();

  // The configuration endpoint keeps Vault's shape.
  auto config = n1.daemon->Root("GET", "/v1/sys/storage/raft/configuration");
  ASSERT_EQ(config.status, 200) << config.body;
  EXPECT_GT(config.Json()["data"]["config"]["index"].get<uint64_t>(), 0u);
  EXPECT_EQ(config.Json()["data"]["config"]["servers"].size(), 3u);
}

TEST_F(ClusterOpsTest, AutopilotStateNeedsSudoAndHaStatusNeedsRead) {
  ASSERT_NO_FATAL_FAILURE(StartThreeWithSecret());
  Node& n1 = nodes_[0];
  Node& n2 = nodes_[1];
  const std::string read_only =
      TokenWithPolicy(n1, "ops-read",
                      "path \"sys/storage/raft/autopilot/state\" { capabilities = [\"read\"] }\n"
                      "path \"sys/ha-status\" { capabilities = [\"read\"] }\n");
  const std::string sudo = TokenWithPolicy(
      n1, "ops-sudo",
      "path \"sys/storage/raft/autopilot/state\" { capabilities = [\"read\", \"sudo\"] }\n");
  const std::string nothing =
      TokenWithPolicy(n1, "nothing", "path \"secret/*\" { capabilities = [\"read\"] }\n");

  for (Node* via : {&n1, &n2}) {
    auto denied = Get(*via, "/v1/sys/storage/raft/autopilot/state", read_only);
    EXPECT_EQ(denied.status, 403) << denied.body;
    EXPECT_THAT(denied.body, HasSubstr("permission denied"));
    EXPECT_EQ(Get(*via, "/v1/sys/storage/raft/autopilot/state", nothing).status, 403);
    auto allowed = Get(*via, "/v1/sys/storage/raft/autopilot/state", sudo);
    EXPECT_EQ(allowed.status, 200) << allowed.body;
    EXPECT_EQ(allowed.Json()["data"]["leader"], "n1");
    EXPECT_EQ(Get(*via, "/v1/sys/ha-status", read_only).status, 200);
    EXPECT_EQ(Get(*via, "/v1/sys/ha-status", sudo).status, 403);
    EXPECT_EQ(Get(*via, "/v1/sys/ha-status", nothing).status, 403);
    EXPECT_EQ(via->daemon->Call("GET", "/v1/sys/ha-status").status, 403);  // no token
  }
}

TEST_F(ClusterOpsTest, AKilledFollowerTurnsUnhealthyAndTheFailureToleranceDrops) {
  ASSERT_NO_FATAL_FAILURE(StartThreeWithSecret());
  Node& n1 = nodes_[0];
  Node& n3 = nodes_[2];
  nlohmann::json state;
  ASSERT_TRUE(Eventually([&] {
    auto r = n1.daemon->Root("GET", "/v1/sys/storage/raft/autopilot/state");
    state = r.Json()["data"];
    return r.status == 200 && state["healthy"] == true;
  })) << state.dump();
  EXPECT_EQ(state["failure_tolerance"], 1);

  n3.daemon->Kill();
  // Past the last-contact threshold (10 s) n3 is unhealthy; the cluster still has its quorum.
  ASSERT_TRUE(Eventually([&] {
    auto r = n1.daemon->Root("GET", "/v1/sys/storage/raft/autopilot/state");
    state = r.Json()["data"];
    return r.status == 200 && state["servers"]["n3"]["healthy"] == false;
  })) << state.dump();
  EXPECT_EQ(state["healthy"], false) << state.dump();
  EXPECT_EQ(state["failure_tolerance"], 0) << state.dump();
  EXPECT_EQ(state["servers"]["n1"]["healthy"], true);
  EXPECT_EQ(state["servers"]["n2"]["healthy"], true);
  EXPECT_NE(state["servers"]["n3"]["last_contact"], "0s");
  EXPECT_EQ(state["voters"].size(), 3u);
  // sys/ha-status keeps listing what it last heard from n3, with the time of it.
  auto ha = n1.daemon->Root("GET", "/v1/sys/ha-status");
  ASSERT_EQ(ha.status, 200) << ha.body;
  // Writes go on with two of three.
  EXPECT_EQ(n1.daemon->Root("POST", "/v1/secret/data/after", {{"data", {{"v", "1"}}}}).status, 200);

  // Removed, it leaves the state; the two left are healthy again, with no failure tolerance.
  ASSERT_EQ(
      n1.daemon->Root("POST", "/v1/sys/storage/raft/remove-peer", {{"server_id", "n3"}}).status,
      204);
  ASSERT_TRUE(Eventually([&] {
    auto r = n1.daemon->Root("GET", "/v1/sys/storage/raft/autopilot/state");
    state = r.Json()["data"];
    return r.status == 200 && state["servers"].size() == 2 && state["healthy"] == true;
  })) << state.dump();
  EXPECT_EQ(state["failure_tolerance"], 0);
}

// Single-node storage: sys/ha-status lists this node alone (as Vault without HA peers), autopilot
// is refused as Vault refuses it without raft storage.
TEST(SingleNodeOps, HaStatusListsThisNodeAndAutopilotIsRefused) {
  Daemon d;
  ASSERT_TRUE(d.Start()) << d.Log();
  d.Init(1, 1);
  auto ha = d.Root("GET", "/v1/sys/ha-status");
  ASSERT_EQ(ha.status, 200) << ha.body;
  const auto nodes = ha.Json()["data"]["nodes"];
  ASSERT_EQ(nodes.size(), 1u) << ha.body;
  EXPECT_EQ(nodes[0]["active_node"], true);
  EXPECT_TRUE(nodes[0]["last_echo"].is_null());
  EXPECT_EQ(nodes[0]["version"], "1.19.0+strongroom");
  EXPECT_EQ(ha.Json()["nodes"], nodes);
  auto autopilot = d.Root("GET", "/v1/sys/storage/raft/autopilot/state");
  EXPECT_EQ(autopilot.status, 400) << autopilot.body;
  EXPECT_THAT(autopilot.body, HasSubstr("raft storage is not in use"));
  auto leader = d.Call("GET", "/v1/sys/leader").Json();
  EXPECT_FALSE(leader.contains("raft_committed_index")) << leader.dump();
}

}  // namespace
}  // namespace strongroom::testing
