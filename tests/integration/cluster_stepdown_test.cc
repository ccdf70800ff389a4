// Issue 16, defect 3: the active node of a Raft cluster of real strongroomd processes (own
// tokens, own data, own audit files) gives up its role on sys/seal and on sys/step-down (Vault's
// API, "Step down leader": PUT|POST, sudo on sys/step-down, 204, forwarded by standbys). Its
// Raft leadership goes to another voter, the standbys forward to the new active node, and the
// cluster serves reads and writes through every unsealed node. A sealed node stays sealed (and
// is not the leader) until it is unsealed, then serves as a standby; a node that stepped down
// stays unsealed, as a standby. Waits poll with a generous deadline (liveness, not speed).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/cluster_fixture.h"

namespace strongroom::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The records of `file` whose request.path is `path`.
std::vector<nlohmann::json> RecordsFor(const std::string& file, const std::string& path) {
  std::vector<nlohmann::json> out;
  std::istringstream in(ReadFileOr(file));
  for (std::string line; std::getline(in, line);) {
    auto r = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (r.is_object() && r.contains("request") && r["request"].value("path", "") == path) {
      out.push_back(std::move(r));
    }
  }
  return out;
}

class ClusterStepDownTest : public ClusterFixture {
 protected:
  // n1 initialised (one recovery share) with secret/ (KV v2), a secret and the file audit device
  // (each node writes its own file); n2 and n3 joined through the API, standbys.
  void StartCluster() {
    ASSERT_NO_FATAL_FAILURE(StartFirstWithKv());
    Node& n1 = nodes_[0];
    auto audit = n1.daemon->Root("PUT", "/v1/sys/audit/file",
                                 {{"type", "file"}, {"options", {{"file_path", kAuditFilePath}}}});
    ASSERT_EQ(audit.status, 204) << audit.body << n1.daemon->Log();
    ASSERT_EQ(Write(n1, "app", "before"), 200);
    for (const std::string name : {"n2", "n3"}) {
      Node& n = AddNode(name);
      ASSERT_TRUE(n.daemon->Start()) << n.daemon->Log();
      auto joined = Join(n, n1);
      ASSERT_EQ(joined.status, 200) << joined.body << n.daemon->Log() << n1.daemon->Log();
      n.daemon->set_root_token(root_);
      ASSERT_TRUE(Eventually([&] { return Health(n) == 429; })) << n.daemon->Log();
    }
    ASSERT_EQ(Health(n1), 200);
  }

  // secret/data/<key> = {"v": value} through `n`; the HTTP status.
  static int Write(Node& n, const std::string& key, const std::string& value) {
    return n.daemon->Root("POST", "/v1/secret/data/" + key, {{"data", {{"v", value}}}}).status;
  }
  // secret/data/<key>'s "v" read through `n`, or "<status> <body>" when the read fails.
  static std::string Read(Node& n, const std::string& key) {
    auto r = n.daemon->Root("GET", "/v1/secret/data/" + key);
    if (r.status != 200) return std::to_string(r.status) + " " + r.body;
    return r.Json()["data"]["data"].value("v", "");
  }

  // The node of `candidates` that answers sys/health with 200 (the active node), once one does;
  // nullptr when none does before the deadline.
  static Node* WaitForActive(const std::vector<Node*>& candidates) {
    Node* active = nullptr;
    Eventually([&] {
      for (Node* n : candidates) {
        if (Health(*n) == 200) active = n;
      }
      return active != nullptr;
    });
    return active;
  }

  std::string Logs() const {
    std::string out;
    for (const auto& n : nodes_) out += "\n=== " + n.name + "\n" + n.daemon->Log();
    return out;
  }

  static HttpResponse StepDown(Node& via, const std::string& token) {
    return via.daemon->Call("PUT", "/v1/sys/step-down", "", {{"X-Vault-Token", token}});
  }
};

TEST_F(ClusterStepDownTest, SealingTheActiveNodeHandsTheActiveRoleToAnotherNode) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  Node& n1 = nodes_[0];
  Node& n2 = nodes_[1];
  Node& n3 = nodes_[2];

  auto seal = n1.daemon->Root("PUT", "/v1/sys/seal");
  ASSERT_EQ(seal.status, 204) << seal.body;
  EXPECT_EQ(Health(n1), 503);

  // One of the others becomes the active node: it leads Raft, and the standby forwards to it.
  Node* active = WaitForActive({&n2, &n3});
  ASSERT_NE(active, nullptr)
      << "no node became active after the leader was sealed; a write "
         "through n2 answers: "
      << n2.daemon->Root("POST", "/v1/secret/data/probe", {{"data", {}}}).body << Logs();
  Node* other = active == &n2 ? &n3 : &n2;
  auto config = active->daemon->Root("GET", "/v1/sys/storage/raft/configuration");
  ASSERT_EQ(config.status, 200) << config.body;
  // A copy: iterating into the temporary Json() returns is a use after free.
  const nlohmann::json servers = config.Json()["data"]["config"]["servers"];
  for (const auto& s : servers) {
    EXPECT_EQ(s["leader"].get<bool>(), s["node_id"] == active->name) << config.body;
    EXPECT_TRUE(s["voter"].get<bool>()) << config.body;
  }
  EXPECT_TRUE(Eventually([&] { return Health(*other) == 429; })) << other->daemon->Log();

  // Writes and reads through every unsealed node (the standby forwards to the new active node).
  for (Node* via : {active, other}) {
    ASSERT_TRUE(Eventually([&] {
      return Write(*via, "after-seal-" + via->name, via->name) == 200;
    })) << via->name
        << ": " << Read(*via, "app") << Logs();
  }
  for (Node* via : {active, other}) {
    EXPECT_EQ(Read(*via, "app"), "before");
    for (Node* writer : {active, other}) {
      EXPECT_EQ(Read(*via, "after-seal-" + writer->name), writer->name) << via->name;
    }
  }
  auto leader = other->daemon->Call("GET", "/v1/sys/leader").Json();
  EXPECT_EQ(leader["leader_address"], active->api()) << leader.dump();

  // The sealed node stays sealed: it did not unseal itself as the cluster moved on.
  EXPECT_EQ(Health(n1), 503);
  EXPECT_TRUE(n1.daemon->Call("GET", "/v1/sys/seal-status").Json()["sealed"].get<bool>());
  auto sealed_read = n1.daemon->Root("GET", "/v1/secret/data/app");
  EXPECT_EQ(sealed_read.status, 503) << sealed_read.body;
  EXPECT_THAT(sealed_read.body, HasSubstr("Vault is sealed"));

  // The active node dies. The sealed node still votes, so the last unsealed node takes over
  // (when the sealed node wins the election, it hands the leadership on), and the sealed node
  // stays sealed.
  active->daemon->Kill();
  ASSERT_EQ(WaitForActive({other}), other) << Logs();
  ASSERT_TRUE(Eventually([&] { return Write(*other, "after-kill", "x") == 200; })) << Logs();
  EXPECT_EQ(Read(*other, "after-seal-" + active->name), active->name);
  EXPECT_EQ(Health(n1), 503);

  // Unsealed with its recovery key, n1 serves as a standby: it forwards to the active node.
  auto unseal = n1.daemon->Call("PUT", "/v1/sys/unseal",
                                nlohmann::json{{"key", n1.daemon->recovery_keys().at(0)}}.dump());
  ASSERT_EQ(unseal.status, 200) << unseal.body;
  EXPECT_FALSE(unseal.Json()["sealed"].get<bool>()) << unseal.body;
  ASSERT_TRUE(Eventually([&] { return Health(n1) == 429; })) << n1.daemon->Log();
  EXPECT_EQ(Read(n1, "after-kill"), "x");
  ASSERT_EQ(Write(n1, "via-n1", "n1"), 200) << Read(n1, "app");
  EXPECT_EQ(Read(*other, "via-n1"), "n1");
  EXPECT_EQ(n1.daemon->Call("GET", "/v1/sys/leader").Json()["leader_address"], other->api());

  // n1's chain holds the seal's request record (as Vault, no response: sealing closed the log
  // with a checkpoint, written while n1 still led) and verifies with n1's audit key.
  n1.daemon->Stop();
  EXPECT_EQ(RecordsFor(AuditFile(n1), "sys/seal").size(), 1u) << ReadFileOr(AuditFile(n1));
  const std::string pem = PublicKeyFile(n1);
  ASSERT_FALSE(pem.empty());
  RunResult verified = Verify(pem, {AuditFile(n1)});
  EXPECT_EQ(verified.exit_code, 0) << verified.output;
  EXPECT_THAT(n1.daemon->Log(), Not(HasSubstr("final checkpoint failed")));
}

// The hand-over sys/seal starts ends this node's leadership before the seal's own answer is
// confirmed. The seal happened (the node's own state, whatever Raft says now), so it is answered
// 204, as Vault does. Without an audit device (whose closing checkpoint is a write committed in
// the term, which confirms the answer) it was answered 503 "could not confirm that it is still
// the active node" (3 of 3 seal-leader rounds of the fault suite): the client thought it failed.
TEST_F(ClusterStepDownTest, SealingTheActiveNodeWithoutAuditDeviceAnswers204) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  Node& n1 = nodes_[0];
  ASSERT_EQ(n1.daemon->Root("DELETE", "/v1/sys/audit/file").status, 204);
  auto seal = n1.daemon->Root("PUT", "/v1/sys/seal");
  EXPECT_EQ(seal.status, 204) << seal.body << Logs();
  EXPECT_EQ(Health(n1), 503);
  EXPECT_NE(WaitForActive({&nodes_[1], &nodes_[2]}), nullptr) << Logs();
}

// The voter with the highest match index is asked first; one that does not take the leadership
// (here: it is down, its match index no lower than the live one's while nothing is written) is
// given up after an election timeout and the next is asked.
TEST_F(ClusterStepDownTest, SealingTheActiveNodeWhileAVoterIsDownHandsOverToTheLiveOne) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  Node& n1 = nodes_[0];
  Node& n2 = nodes_[1];
  Node& n3 = nodes_[2];
  n2.daemon->Kill();
  auto seal = n1.daemon->Root("PUT", "/v1/sys/seal");
  ASSERT_EQ(seal.status, 204) << seal.body;
  ASSERT_EQ(WaitForActive({&n3}), &n3) << Logs();
  ASSERT_TRUE(Eventually([&] { return Write(n3, "after-seal", "x") == 200; })) << Logs();
  EXPECT_EQ(Read(n3, "app"), "before");
  EXPECT_EQ(Health(n1), 503);
}

// A hand-over passes a sealed member over: it could not serve (it would hold the leadership
// sealed, or hand it on again). n1 is sealed first, then the node that took over is sealed: the
// leadership must go straight to the third node. (It went to n1 first, the most up-to-date
// voter by configuration order, which handed it on again.)
TEST_F(ClusterStepDownTest, HandOverPassesASealedMemberOver) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  Node& n1 = nodes_[0];
  ASSERT_EQ(n1.daemon->Root("PUT", "/v1/sys/seal").status, 204);
  Node* a = WaitForActive({&nodes_[1], &nodes_[2]});
  ASSERT_NE(a, nullptr) << Logs();
  Node* b = a == &nodes_[1] ? &nodes_[2] : &nodes_[1];
  auto seal = a->daemon->Root("PUT", "/v1/sys/seal");
  ASSERT_EQ(seal.status, 204) << seal.body;
  EXPECT_EQ(WaitForActive({b}), b) << Logs();
  EXPECT_THAT(a->daemon->Log(), HasSubstr("raft: node " + b->name + " leads now")) << Logs();
  const std::string n1_log = n1.daemon->Log();
  const std::string handing = "raft: handing the leadership";
  size_t handed = 0;
  for (size_t at = n1_log.find(handing); at != std::string::npos;
       at = n1_log.find(handing, at + 1)) {
    ++handed;
  }
  EXPECT_EQ(handed, 1u) << "the sealed n1 was handed the leadership again" << Logs();
}

TEST_F(ClusterStepDownTest, StepDownHandsTheActiveRoleToAStandbyAndStaysUnsealed) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  Node& n1 = nodes_[0];
  Node& n2 = nodes_[1];
  Node& n3 = nodes_[2];
  // `vault operator step-down`'s documented policy.
  const std::string op = TokenWithPolicy(
      n1, "stepdown", R"(path "sys/step-down" { capabilities = ["update", "sudo"] })");
  ASSERT_FALSE(op.empty());

  auto r = StepDown(n1, op);
  ASSERT_EQ(r.status, 204) << r.body << n1.daemon->Log();
  EXPECT_EQ(r.body, "");

  Node* active = WaitForActive({&n2, &n3});
  ASSERT_NE(active, nullptr) << Logs();
  Node* other = active == &n2 ? &n3 : &n2;
  // The old leader is an unsealed standby that forwards.
  ASSERT_TRUE(Eventually([&] { return Health(n1) == 429; })) << n1.daemon->Log();
  EXPECT_FALSE(n1.daemon->Call("GET", "/v1/sys/seal-status").Json()["sealed"].get<bool>());
  auto leader = n1.daemon->Call("GET", "/v1/sys/leader").Json();
  EXPECT_FALSE(leader["is_self"].get<bool>()) << leader.dump();
  EXPECT_EQ(leader["leader_address"], active->api()) << leader.dump();
  for (Node* via : {&n1, active, other}) {
    ASSERT_TRUE(Eventually([&] { return Write(*via, "after-" + via->name, via->name) == 200; }))
        << via->name << ": " << Read(*via, "app") << Logs();
  }
  for (Node* via : {&n1, active, other}) {
    EXPECT_EQ(Read(*via, "app"), "before") << via->name;
    for (Node* writer : {&n1, active, other}) {
      EXPECT_EQ(Read(*via, "after-" + writer->name), writer->name) << via->name;
    }
  }

  // The step-down is in the chain of the node that carried it out, request and response, and
  // that chain still verifies with n1's audit key.
  n1.daemon->Stop();
  auto records = RecordsFor(AuditFile(n1), "sys/step-down");
  ASSERT_EQ(records.size(), 2u) << ReadFileOr(AuditFile(n1));
  EXPECT_EQ(records[0]["type"], "request");
  EXPECT_EQ(records[1]["type"], "response");
  EXPECT_EQ(records[0]["request"]["id"], records[1]["request"]["id"]);
  EXPECT_EQ(records[1]["request"]["operation"], "update");
  EXPECT_FALSE(records[1].contains("error")) << records[1].dump();
  const std::string pem = PublicKeyFile(n1);
  ASSERT_FALSE(pem.empty());
  RunResult verified = Verify(pem, {AuditFile(n1)});
  EXPECT_EQ(verified.exit_code, 0) << verified.output;
  EXPECT_THAT(n1.daemon->Log(), Not(HasSubstr("final checkpoint failed")));
}

TEST_F(ClusterStepDownTest, StepDownSentToAStandbyIsForwardedToTheActiveNode) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  Node& n1 = nodes_[0];
  Node& n2 = nodes_[1];
  Node& n3 = nodes_[2];

  auto r = StepDown(n2, root_);
  ASSERT_EQ(r.status, 204) << r.body << n2.daemon->Log();

  Node* active = WaitForActive({&n2, &n3});
  ASSERT_NE(active, nullptr) << Logs();
  ASSERT_TRUE(Eventually([&] { return Health(n1) == 429; })) << n1.daemon->Log();
  ASSERT_TRUE(Eventually([&] { return Write(n1, "after", "n1") == 200; })) << Logs();
  EXPECT_EQ(Read(*active, "after"), "n1");
  // n1 (the active node then) carried it out and recorded it; n2 only passed it on.
  EXPECT_EQ(RecordsFor(AuditFile(n1), "sys/step-down").size(), 2u) << ReadFileOr(AuditFile(n1));
  EXPECT_EQ(RecordsFor(AuditFile(n2), "sys/step-down").size(), 0u) << ReadFileOr(AuditFile(n2));
}

// Vault: sys/step-down needs sudo (or root). A refused step-down changes nothing; on a node that
// no other voter can replace, a step-down is answered and the node stays active (Vault: "the same
// node may become the active node again"), and a seal still seals it.
TEST_F(ClusterStepDownTest, StepDownNeedsSudoAndALoneNodeStaysActive) {
  Node& n1 = AddNode("n1");
  ASSERT_TRUE(n1.daemon->Start()) << n1.daemon->Log();
  ASSERT_TRUE(n1.daemon->Init(1, 1).contains("root_token")) << n1.daemon->Log();
  root_ = n1.daemon->root_token();
  ASSERT_EQ(
      n1.daemon
          ->Root("POST", "/v1/sys/mounts/secret", {{"type", "kv"}, {"options", {{"version", "2"}}}})
          .status,
      204);
  const std::string no_sudo = TokenWithPolicy(
      n1, "stepdown-no-sudo", R"(path "sys/step-down" { capabilities = ["update"] })");
  ASSERT_FALSE(no_sudo.empty());
  auto refused = StepDown(n1, no_sudo);
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_THAT(refused.body, HasSubstr("permission denied"));
  EXPECT_EQ(StepDown(n1, "hvs.forged").status, 403);
  // GET is not an operation of sys/step-down.
  EXPECT_EQ(n1.daemon->Root("GET", "/v1/sys/step-down").status, 405);

  auto alone = n1.daemon->Call("POST", "/v1/sys/step-down", "", {{"X-Vault-Token", root_}});
  EXPECT_EQ(alone.status, 204) << alone.body;
  ASSERT_TRUE(Eventually([&] { return Write(n1, "after-step-down", "x") == 200; }))
      << n1.daemon->Log();
  EXPECT_EQ(Health(n1), 200);

  ASSERT_EQ(n1.daemon->Root("PUT", "/v1/sys/seal").status, 204);
  EXPECT_EQ(Health(n1), 503);
  auto unseal = n1.daemon->Call("PUT", "/v1/sys/unseal",
                                nlohmann::json{{"key", n1.daemon->recovery_keys().at(0)}}.dump());
  ASSERT_EQ(unseal.status, 200) << unseal.body;
  ASSERT_TRUE(Eventually([&] { return Health(n1) == 200; })) << n1.daemon->Log();
  EXPECT_EQ(Read(n1, "after-step-down"), "x");
}

}  // namespace
}  // namespace strongroom::testing
