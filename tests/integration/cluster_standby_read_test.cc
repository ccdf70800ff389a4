// Reads a standby answers itself (broker/cluster.h), on a three-node cluster of real strongroomd
// processes: each read through a standby sees every write acknowledged before it began (by the
// leader or through the other standby), under concurrent writes; a token revoked, a policy
// changed or a mount disabled on the active node holds on the standby at once; a token's
// limited uses are counted once each; with an audit device enabled the standby forwards. The
// standby's metrics (raft_storage.standby_reads.*) tell answered from forwarded.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/cluster_fixture.h"

namespace strongroom::testing {
namespace {

class ClusterStandbyReadTest : public ClusterFixture {
 protected:
  void SetUp() override {
    ClusterFixture::SetUp();
    // Each node answers sys/metrics with its own figures, without a token.
    extra_listener_ = "telemetry {\n  unauthenticated_metrics_access = true\n}\n";
  }

  // A counter of `n`'s own metrics (0 when absent).
  static double Counter(Node& n, const std::string& suffix) {
    auto r = n.daemon->Call("GET", "/v1/sys/metrics");
    if (r.status != 200) return -1;
    auto j = r.Json();
    if (!j.contains("Counters")) return 0;
    for (const auto& c : j["Counters"]) {
      const std::string name = c.value("Name", "");
      if (name.size() >= suffix.size() &&
          name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
        return c.value("Sum", 0.0);
      }
    }
    return 0;
  }
  static double Local(Node& n) { return Counter(n, "raft_storage.standby_reads.local"); }
  static double Forwarded(Node& n) { return Counter(n, "raft_storage.standby_reads.forwarded"); }

  static HttpResponse Read(Node& n, const std::string& path, const std::string& token) {
    return n.daemon->Call("GET", "/v1/" + path, "", {{"X-Vault-Token", token}});
  }

  // Once `n` answers a read of secret/data/app itself (its tables loaded after it joined or
  // after a change): the local counter moves.
  bool AnswersItself(Node& n, const std::string& token) {
    return Eventually([&] {
      const double before = Local(n);
      return Read(n, "secret/data/app", token).status == 200 && Local(n) > before;
    });
  }
};

TEST_F(ClusterStandbyReadTest, EachReadThroughAStandbySeesEveryWriteAcknowledgedBeforeIt) {
  ASSERT_NO_FATAL_FAILURE(StartThreeWithSecret());
  Node& n1 = nodes_[0];
  Node& n2 = nodes_[1];
  Node& n3 = nodes_[2];
  ASSERT_TRUE(AnswersItself(n2, root_)) << n2.daemon->Log();
  const double local_before = Local(n2);
  std::atomic<int> acked{0};
  std::atomic<bool> done{false};
  std::atomic<int> reads{0}, stale{0}, failed{0};
  std::string first_failure;
  std::mutex failure_mu;
  const auto note_failure = [&](const std::string& what) {
    ++failed;
    std::lock_guard<std::mutex> lock(failure_mu);
    if (first_failure.empty()) first_failure = what;
  };
  // One writer, through the leader and through the other standby in turn.
  std::thread writer([&] {
    for (int v = 1; v <= 120; ++v) {
      Node& via = v % 2 == 0 ? n1 : n3;
      auto w = via.daemon->Root("POST", "/v1/secret/data/counter", {{"data", {{"v", v}}}});
      if (w.status != 200) {
        note_failure("write " + std::to_string(v) + ": " + std::to_string(w.status) + " " + w.body);
        break;
      }
      acked.store(v);
    }
    done.store(true);
  });
  std::vector<std::thread> readers;
  for (int r = 0; r < 4; ++r) {
    readers.emplace_back([&] {
      while (!done.load()) {
        const int before = acked.load();
        auto got = Read(n2, "secret/data/counter", root_);
        if (got.status == 404 && before == 0) continue;
        if (got.status != 200) {
          note_failure("read: " + std::to_string(got.status) + " " + got.body);
          continue;
        }
        ++reads;
        const int seen = got.Json()["data"]["data"].value("v", -1);
        if (seen < before) ++stale;
      }
    });
  }
  writer.join();
  for (auto& t : readers) t.join();
  EXPECT_EQ(failed.load(), 0) << first_failure;
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(stale.load(), 0) << "of " << reads.load() << " reads";
  // The standby answered (most of) them itself.
  EXPECT_GT(Local(n2), local_before);
}

TEST_F(ClusterStandbyReadTest, ChangesOnTheActiveNodeHoldOnAStandbyAtOnce) {
  ASSERT_NO_FATAL_FAILURE(StartThreeWithSecret());
  Node& n1 = nodes_[0];
  Node& n2 = nodes_[1];
  const std::string token =
      TokenWithPolicy(n1, "reader", "path \"secret/data/app\" { capabilities = [\"read\"] }");
  ASSERT_FALSE(token.empty());
  ASSERT_TRUE(AnswersItself(n2, token)) << n2.daemon->Log();

  // A policy changed on the leader: the standby's next read is refused.
  auto p =
      n1.daemon->Root("PUT", "/v1/sys/policies/acl/reader",
                      {{"policy", "path \"secret/data/other\" { capabilities = [\"read\"] }"}});
  ASSERT_EQ(p.status, 204) << p.body;
  EXPECT_EQ(Read(n2, "secret/data/app", token).status, 403);
  // And allowed again: the next read is answered.
  p = n1.daemon->Root("PUT", "/v1/sys/policies/acl/reader",
                      {{"policy", "path \"secret/data/app\" { capabilities = [\"read\"] }"}});
  ASSERT_EQ(p.status, 204) << p.body;
  EXPECT_EQ(Read(n2, "secret/data/app", token).status, 200);
  ASSERT_TRUE(AnswersItself(n2, token)) << n2.daemon->Log();

  // A token revoked on the leader: refused on the standby at once.
  auto revoke = n1.daemon->Root("POST", "/v1/auth/token/revoke", {{"token", token}});
  ASSERT_EQ(revoke.status, 204) << revoke.body;
  EXPECT_EQ(Read(n2, "secret/data/app", token).status, 403);

  // A mount disabled on the leader: the standby answers as the leader does.
  ASSERT_EQ(n1.daemon->Root("POST", "/v1/sys/mounts/other", {{"type", "kv"}}).status, 204);
  ASSERT_EQ(n1.daemon->Root("POST", "/v1/other/x", {{"v", "1"}}).status, 204);
  ASSERT_TRUE(Eventually([&] {
    const double before = Local(n2);
    return n2.daemon->Root("GET", "/v1/other/x").status == 200 && Local(n2) > before;
  })) << n2.daemon->Log();
  ASSERT_EQ(n1.daemon->Root("DELETE", "/v1/sys/mounts/other").status, 204);
  const int on_leader = n1.daemon->Root("GET", "/v1/other/x").status;
  EXPECT_NE(on_leader, 200);
  EXPECT_EQ(n2.daemon->Root("GET", "/v1/other/x").status, on_leader);
}

// The main loop takes a changed table up even while reads never stop arriving at the standby
// (they could otherwise keep it from the lock it changes the tables under).
TEST_F(ClusterStandbyReadTest, AStandbyUnderSteadyReadsStillTakesUpATableChange) {
  ASSERT_NO_FATAL_FAILURE(StartThreeWithSecret());
  Node& n1 = nodes_[0];
  Node& n2 = nodes_[1];
  ASSERT_TRUE(AnswersItself(n2, root_)) << n2.daemon->Log();
  std::atomic<bool> stop{false};
  std::atomic<int> failed{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 6; ++r) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        if (Read(n2, "secret/data/app", root_).status != 200) ++failed;
      }
    });
  }
  // A mount and a policy change (table 1 and table 2) under that load.
  ASSERT_EQ(n1.daemon->Root("POST", "/v1/sys/mounts/more", {{"type", "kv"}}).status, 204);
  ASSERT_EQ(n1.daemon
                ->Root("PUT", "/v1/sys/policies/acl/any",
                       {{"policy", "path \"more/*\" { capabilities = [\"read\"] }"}})
                .status,
            204);
  // The standby answers itself again: it read its tables anew meanwhile.
  const double after_change = Local(n2);
  EXPECT_TRUE(Eventually([&] { return Local(n2) > after_change + 20; })) << n2.daemon->Log();
  stop.store(true);
  for (auto& t : readers) t.join();
  EXPECT_EQ(failed.load(), 0);
}

TEST_F(ClusterStandbyReadTest, ATokensLimitedUsesAreCountedOnceEachThroughAStandby) {
  ASSERT_NO_FATAL_FAILURE(StartThreeWithSecret());
  Node& n1 = nodes_[0];
  Node& n2 = nodes_[1];
  ASSERT_TRUE(AnswersItself(n2, root_)) << n2.daemon->Log();
  auto t = n1.daemon->Root("POST", "/v1/auth/token/create", {{"num_uses", 3}});
  ASSERT_EQ(t.status, 200) << t.body;
  const std::string token = t.Json()["auth"].value("client_token", "");
  // A use is a write: the standby forwards (the leader counts it), never answers itself.
  const double forwarded = Forwarded(n2);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Read(n2, "secret/data/app", token).status, 200) << "use " << i + 1;
  }
  EXPECT_EQ(Read(n2, "secret/data/app", token).status, 403);
  EXPECT_GE(Forwarded(n2), forwarded + 3);
}

TEST_F(ClusterStandbyReadTest, WithAnAuditDeviceAStandbyForwardsItsReads) {
  ASSERT_NO_FATAL_FAILURE(StartThreeWithSecret());
  Node& n1 = nodes_[0];
  Node& n2 = nodes_[1];
  ASSERT_TRUE(AnswersItself(n2, root_)) << n2.daemon->Log();
  auto a = n1.daemon->Root("PUT", "/v1/sys/audit/file",
                           {{"type", "file"}, {"options", {{"file_path", kAuditFilePath}}}});
  ASSERT_EQ(a.status, 204) << a.body;
  // From now on the standby answers no read itself (its tables changed, then it has a device):
  // each read is forwarded, and recorded in the active node's audit log.
  const double local = Local(n2);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Read(n2, "secret/data/app", root_).status, 200);
  EXPECT_EQ(Local(n2), local);
  EXPECT_TRUE(Eventually(
      [&] { return ReadFileOr(AuditFile(n1)).find("secret/data/app") != std::string::npos; }));
}

}  // namespace
}  // namespace strongroom::testing
