// The refused sets of a member that was away (issue 17, found by the fault suite, rounds 72 and
// 83 of its 100-round run): a member keeps the removed node ids and pinned keys it last knew in
// <path>/refused-peers, so that after a restart it refuses them before it has caught up. A copy
// older than the cluster's (a node removed, then re-admitted while the member was down) made it
// refuse a member of the cluster; when that member led, the restarted one never caught up
// (503 for good). The same happened to a node joining, as it applied the log again through a
// removal and the re-admission after it. A member holds the sets with the index they are as
// new as; until it has caught up it keeps them (its store may be older), or takes a caught-up
// member's (one it does not refuse) when they are at least as new.
// Waits poll with a generous deadline (liveness, not speed).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>

#include "appliance/raft/tls_transport.h"
#include "tests/integration/cluster_fixture.h"

namespace strongroom::testing {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

class ClusterRefusedTest : public ClusterFixture {
 protected:
  std::string Logs() const {
    std::string out;
    for (const auto& n : nodes_) out += "\n=== " + n.name + "\n" + n.daemon->Log();
    return out;
  }

  // The highest last_index autopilot reports on `via` (the active node).
  uint64_t LastIndex(Node& via) {
    auto r = via.daemon->Root("GET", "/v1/sys/storage/raft/autopilot/state");
    EXPECT_EQ(r.status, 200) << r.body;
    uint64_t last = 0;
    if (r.status != 200) return last;
    for (const auto& [name, s] : r.Json()["data"]["servers"].items()) {
      last = std::max(last, s.value("last_index", uint64_t{0}));
    }
    return last;
  }

  // `n`'s saved sets, with "removed <id>" added and the index line set to `index`.
  static void SaveStaleRemoval(Node& n, const std::string& id, uint64_t index) {
    const std::string file = n.daemon->data_dir() + "/refused-peers";
    std::istringstream old(ReadFileOr(file));
    std::string kept;
    for (std::string line; std::getline(old, line);) {
      if (line.rfind("index ", 0) != 0) kept += line + "\n";
    }
    std::ofstream(file, std::ios::trunc) << "index " << index << "\n"
                                         << kept << "removed " << id << "\n";
  }
};

// n2 holds "n3 was removed" as new as the cluster's last index, and comes back while n3 leads:
// it asks n1 (a caught-up member it does not refuse) for the current sets, takes them (n1's are
// newer), stops refusing n3 and catches up from it.
TEST_F(ClusterRefusedTest, AMemberWithAStaleRemovalTakesTheClustersSetsAndCatchesUp) {
  ASSERT_NO_FATAL_FAILURE(StartThreeWithSecret());
  Node& n1 = nodes_[0];
  Node& n2 = nodes_[1];
  Node& n3 = nodes_[2];
  // n2's saved sets are written while it is caught up (the pins of the three).
  ASSERT_TRUE(Eventually([&] {
    return ReadFileOr(n2.daemon->data_dir() + "/refused-peers").find("pin n3 ") !=
           std::string::npos;
  })) << ReadFileOr(n2.daemon->data_dir() + "/refused-peers");
  n2.daemon->Stop();

  // n3 leads: with n2 down, n1's step-down can only hand the leadership to n3.
  auto down = n1.daemon->Root("PUT", "/v1/sys/step-down");
  ASSERT_EQ(down.status, 204) << down.body;
  ASSERT_TRUE(Eventually([&] { return Health(n3) == 200 && Health(n1) == 429; })) << Logs();
  ASSERT_EQ(
      n3.daemon->Root("POST", "/v1/secret/data/away", {{"data", {{"v", "n2 was down"}}}}).status,
      200);

  SaveStaleRemoval(n2, "n3", LastIndex(n3));
  ASSERT_TRUE(n2.daemon->Start()) << n2.daemon->Log();
  EXPECT_TRUE(Eventually([&] { return Health(n2) == 429; }, 60))
      << "n2 did not catch up from the leader it refused:" << Logs();
  EXPECT_THAT(n2.daemon->Log(), ContainsRegex("took the refused node ids and keys as of index "
                                              "[0-9]+ from node n1"));
  auto away = n2.daemon->Root("GET", "/v1/secret/data/away");
  EXPECT_EQ(away.status, 200) << away.body;
  // The sets it saved are the cluster's again: n3 is not among the removed.
  EXPECT_TRUE(Eventually([&] {
    return ReadFileOr(n2.daemon->data_dir() + "/refused-peers").find("removed n3") ==
           std::string::npos;
  })) << ReadFileOr(n2.daemon->data_dir() + "/refused-peers");
}

// What the sets are for: n3 removed, n2 comes back alone (no quorum, so it cannot catch up). It
// refuses n3 from its saved sets before it has caught up, and asks no node it refuses for newer
// ones; n3's certificate gets nothing from it, the sets included.
TEST_F(ClusterRefusedTest, ARestartedMemberRefusesARemovedNodeBeforeItHasCaughtUp) {
  ASSERT_NO_FATAL_FAILURE(StartThreeWithSecret());
  Node& n1 = nodes_[0];
  Node& n2 = nodes_[1];
  auto removed = n1.daemon->Root("POST", "/v1/sys/storage/raft/remove-peer", {{"server_id", "n3"}});
  ASSERT_EQ(removed.status, 204) << removed.body;
  ASSERT_TRUE(Eventually([&] {
    return ReadFileOr(n2.daemon->data_dir() + "/refused-peers").find("removed n3") !=
           std::string::npos;
  })) << ReadFileOr(n2.daemon->data_dir() + "/refused-peers");
  n1.daemon->Stop();
  n2.daemon->Stop();
  ASSERT_TRUE(n2.daemon->Start()) << n2.daemon->Log();
  ASSERT_EQ(Health(n2), 503);

  const ClusterCerts n3 = NodeCerts(certs_, "n3");
  const std::string n2_cluster = "127.0.0.1:" + std::to_string(n2.api_port + 1);
  for (const char* op : {"term", "refused-sets"}) {
    nlohmann::json answer;
    EXPECT_TRUE(Eventually([&] {
      auto r = raft::CallService({n3.ca, n3.cert, n3.key, nullptr}, n2_cluster,
                                 nlohmann::json{{"op", op}}.dump(), std::chrono::seconds(10));
      if (!r.ok()) return false;
      answer = nlohmann::json::parse(*r, nullptr, false);
      return answer.is_object() &&
             answer.value("error", "").find("still starting") == std::string::npos;
    })) << op;
    EXPECT_EQ(answer.value("ok", true), false) << op << ": " << answer.dump();
    EXPECT_THAT(answer.value("error", ""), HasSubstr("node \"n3\" was removed")) << op;
  }
  EXPECT_THAT(n2.daemon->Log(), Not(HasSubstr("took the refused node ids")));
}

}  // namespace
}  // namespace strongroom::testing
