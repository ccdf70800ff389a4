// Full-cluster restarts of a Raft cluster of three real strongroomd processes (issue 16, defect
// 1). Every node of an initialised cluster stops (SIGTERM, or kill -9) and the nodes come back in
// several orders. Each must come back as the active node or a standby of the initialised cluster
// (never "not initialised"), serve the data through every node, and the cluster must then survive
// the loss of whichever node became its leader. A node that is back but cannot know the cluster's
// state yet (no quorum) answers as sealed and initialised, never as "not initialised", and
// refuses sys/init. Waits poll with a generous deadline (liveness, not speed).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/cluster_fixture.h"

namespace strongroom::testing {
namespace {

using ::testing::HasSubstr;

enum class StopHow { kSigterm, kSigkill };

struct RestartCase {
  std::string name;
  StopHow how = StopHow::kSigterm;
  std::vector<int>
      order;         // node indexes (0 is the node that was initialised and led), in start order
  int pause_ms = 0;  // between two starts
  // The first node started is checked alone (no quorum): sealed and initialised, sys/init refused.
  bool check_first_alone = false;
};

std::ostream& operator<<(std::ostream& os, const RestartCase& c) { return os << c.name; }

class ClusterRestartTest : public ClusterFixture,
                           public ::testing::WithParamInterface<RestartCase> {
 protected:
  // n1 initialised with secret/ (KV v2) and a secret; n2 joined through the API, n3 through
  // retry_join. n1 leads.
  void StartCluster() {
    ASSERT_NO_FATAL_FAILURE(StartFirstWithSecret());
    Node& n1 = nodes_[0];
    Node& n2 = AddNode("n2");
    ASSERT_TRUE(n2.daemon->Start()) << n2.daemon->Log();
    auto joined = Join(n2, n1);
    ASSERT_EQ(joined.status, 200) << joined.body << n2.daemon->Log();
    Node& n3 = AddNode("n3", n1.api());
    ASSERT_TRUE(n3.daemon->Start()) << n3.daemon->Log();
    ASSERT_TRUE(Eventually([&] { return Health(n3) == 429; })) << n3.daemon->Log();
    for (auto& n : nodes_) n.daemon->set_root_token(root_);
    // Written through a standby (forwarded), so it is in the log after the joins.
    ASSERT_EQ(
        n2.daemon->Root("POST", "/v1/secret/data/joined", {{"data", {{"v", "all three"}}}}).status,
        200);
  }

  // Each node's sys/health status and body, for failure messages.
  std::string Describe(const std::vector<Node*>& nodes) {
    std::ostringstream out;
    for (Node* n : nodes) {
      auto h = n->daemon->Call("GET", "/v1/sys/health");
      out << n->name << ": sys/health " << h.status << " " << h.body << "\n";
    }
    return out.str();
  }

  // One node answers sys/health 200 (active) and every other 429 (standby), as Vault's do.
  static Node* Settled(const std::vector<Node*>& nodes) {
    Node* active = nullptr;
    for (Node* n : nodes) {
      const int code = Health(*n);
      if (code == 200 && active == nullptr) {
        active = n;
      } else if (code != 429) {
        return nullptr;
      }
    }
    return active;
  }

  // The data written before the restart reads back through `n` (a standby forwards).
  static void ExpectData(Node& n) {
    auto app = n.daemon->Root("GET", "/v1/secret/data/app");
    EXPECT_EQ(app.status, 200) << n.name << ": " << app.body;
    if (app.status == 200) {
      EXPECT_EQ(app.Json()["data"]["data"]["password"], "s3cret") << n.name;
    }
    auto joined = n.daemon->Root("GET", "/v1/secret/data/joined");
    EXPECT_EQ(joined.status, 200) << n.name << ": " << joined.body;
    if (joined.status == 200) {
      EXPECT_EQ(joined.Json()["data"]["data"]["v"], "all three") << n.name;
    }
  }
};

TEST_P(ClusterRestartTest, EveryNodeComesBackInitialisedAndTheClusterSurvivesItsNewLeader) {
  const RestartCase& c = GetParam();
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  std::vector<Node*> all = {&nodes_[0], &nodes_[1], &nodes_[2]};

  for (Node* n : all) {
    if (c.how == StopHow::kSigterm) {
      n->daemon->Stop();
    } else {
      n->daemon->Kill();
    }
  }

  for (size_t i = 0; i < c.order.size(); ++i) {
    Node& n = nodes_[static_cast<size_t>(c.order[i])];
    if (i > 0 && c.pause_ms > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(c.pause_ms));
    }
    EXPECT_TRUE(n.daemon->Start()) << n.name << " did not come up:\n" << n.daemon->Log();
    if (i == 0 && c.check_first_alone) {
      // Alone, the node cannot learn what the cluster committed (no quorum, no leader): it
      // must not conclude "not initialised" from its empty state machine.
      auto health = n.daemon->Call("GET", "/v1/sys/health");
      EXPECT_EQ(health.status, 503) << health.body;
      auto h = health.Json();
      EXPECT_EQ(h.value("initialized", false), true) << health.body;
      EXPECT_EQ(h.value("sealed", false), true) << health.body;
      auto status = n.daemon->Call("GET", "/v1/sys/seal-status").Json();
      EXPECT_EQ(status.value("initialized", false), true) << status.dump();
      EXPECT_EQ(status.value("sealed", false), true) << status.dump();
      EXPECT_EQ(n.daemon->Call("GET", "/v1/sys/init").Json().value("initialized", false), true);
      // Nor may it be initialised again (a second cluster's KEK, keyring and root token).
      auto init =
          n.daemon->Call("PUT", "/v1/sys/init", R"({"recovery_shares":1,"recovery_threshold":1})");
      EXPECT_NE(init.status, 200) << init.body;
      EXPECT_GE(init.status, 400) << init.body;
    }
  }

  Node* active = nullptr;
  EXPECT_TRUE(Eventually([&] { return (active = Settled(all)) != nullptr; }, 120))
      << c.name << ": the restarted cluster did not settle (one active, two standbys):\n"
      << Describe(all);
  ASSERT_NE(active, nullptr) << Describe(all) << nodes_[0].daemon->Log() << nodes_[1].daemon->Log()
                             << nodes_[2].daemon->Log();
  for (Node* n : all) {
    // Each waited until it had caught up with the cluster, then read its state.
    EXPECT_THAT(n->daemon->Log(), HasSubstr("caught up with the cluster; reading its state"))
        << n->name;
    auto status = n->daemon->Call("GET", "/v1/sys/seal-status").Json();
    EXPECT_EQ(status.value("initialized", false), true) << n->name << ": " << status.dump();
    EXPECT_EQ(status.value("sealed", true), false) << n->name << ": " << status.dump();
    ExpectData(*n);
  }
  Node* standby = active == all[0] ? all[1] : all[0];
  ASSERT_EQ(
      standby->daemon->Root("POST", "/v1/secret/data/restarted", {{"data", {{"v", "yes"}}}}).status,
      200);

  // The node that became the leader dies: the other two elect one and serve reads and writes.
  active->daemon->Kill();
  std::vector<Node*> rest;
  for (Node* n : all) {
    if (n != active) rest.push_back(n);
  }
  Node* next = nullptr;
  EXPECT_TRUE(Eventually([&] { return (next = Settled(rest)) != nullptr; }, 120))
      << c.name << ": the two survivors did not settle:\n"
      << Describe(rest);
  ASSERT_NE(next, nullptr) << rest[0]->daemon->Log() << rest[1]->daemon->Log();
  for (Node* n : rest) {
    ExpectData(*n);
    const std::string key = "/v1/secret/data/after-" + n->name;
    auto wrote = n->daemon->Root("POST", key, {{"data", {{"v", n->name}}}});
    EXPECT_EQ(wrote.status, 200) << n->name << ": " << wrote.body;
  }
  for (Node* n : rest) {
    for (Node* writer : rest) {
      auto read = n->daemon->Root("GET", "/v1/secret/data/after-" + writer->name);
      EXPECT_EQ(read.status, 200) << n->name << ": " << read.body;
      if (read.status == 200) {
        EXPECT_EQ(read.Json()["data"]["data"]["v"], writer->name);
      }
    }
    auto restarted = n->daemon->Root("GET", "/v1/secret/data/restarted");
    EXPECT_EQ(restarted.status, 200) << n->name << ": " << restarted.body;
  }

  // The dead leader comes back as a standby with everything.
  EXPECT_TRUE(active->daemon->Start()) << active->daemon->Log();
  EXPECT_TRUE(Eventually([&] { return Health(*active) == 429; }, 120))
      << Describe({active}) << active->daemon->Log();
  auto after = active->daemon->Root("GET", "/v1/secret/data/after-" + rest[0]->name);
  EXPECT_EQ(after.status, 200) << after.body;
}

INSTANTIATE_TEST_SUITE_P(
    Orders, ClusterRestartTest,
    ::testing::Values(
        RestartCase{"SigtermFollowersFirstThenOldLeader", StopHow::kSigterm, {1, 2, 0}, 0, false},
        RestartCase{"SigtermOldLeaderFirstAlone", StopHow::kSigterm, {0, 1, 2}, 0, true},
        RestartCase{"SigkillOneAtATimeWithPauses", StopHow::kSigkill, {2, 0, 1}, 3000, true},
        RestartCase{"SigkillAllAtOnce", StopHow::kSigkill, {0, 1, 2}, 0, false},
        RestartCase{"SigkillFollowerAloneThenTheOthers", StopHow::kSigkill, {1, 0, 2}, 1000, true}),
    [](const ::testing::TestParamInfo<RestartCase>& param) { return param.param.name; });

}  // namespace
}  // namespace strongroom::testing
