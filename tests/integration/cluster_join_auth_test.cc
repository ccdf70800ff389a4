// Issue 17, items 1 and 5: a join needs the operator's consent, once. The active node mints a
// one-time join credential bound to a node id (sys/storage/raft/join-token, sudo); the leader
// checks it before any KEK is wrapped. A join without one, with one that is unknown, used,
// expired or minted for another node id, or for a node id removed since, is refused: the
// joiner's token holds no KEK afterwards and the refusal is in the leader's audit chain. A
// removed node id comes back only with a credential minted for it after its removal.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/cluster_fixture.h"

namespace strongroom::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The kek-export records (request and response) the leader wrote, in order.
std::vector<nlohmann::json> ExportRecords(const Node& leader) {
  std::vector<nlohmann::json> out;
  std::istringstream in(ReadFileOr(AuditFile(leader)));
  for (std::string line; std::getline(in, line);) {
    auto r = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!r.is_object() || !r.contains("request")) continue;
    const auto& req = r["request"];
    if (req.value("path", "") != "sys/storage/raft/join" || !req.contains("data")) continue;
    if (req["data"].value("step", "") == "kek-export") out.push_back(r);
  }
  return out;
}

class ClusterJoinAuthTest : public ClusterFixture {
 protected:
  void StartAudited() {
    ASSERT_NO_FATAL_FAILURE(StartFirstWithKv());
    auto r =
        nodes_[0].daemon->Root("PUT", "/v1/sys/audit/file",
                               {{"type", "file"}, {"options", {{"file_path", kAuditFilePath}}}});
    ASSERT_EQ(r.status, 204) << r.body;
  }

  static HttpResponse JoinWith(Node& n, const Node& leader, const std::string& token) {
    nlohmann::json body = {{"leader_api_addr", leader.api()}};
    if (!token.empty()) body["join_token"] = token;
    return n.daemon->Call("POST", "/v1/sys/storage/raft/join", body.dump());
  }

  // Whether the node's token holds the cluster's KEK (opened from the test process).
  static bool HasKek(Node& n) {
    n.daemon->token().Activate();  // this node's token directory (each daemon has its own)
    auto token = hsm::Token::Open(n.daemon->TokenConfig());
    if (!token.ok()) {
      ADD_FAILURE() << n.name << ": " << token.status();
      return true;
    }
    return (*token)->FindSecretKey("strongroom-kek").ok();
  }

  // One refused join: not 200, the reason in the answer, no KEK in the joiner's token, and the
  // leader's last kek-export record is a response with that reason and no data.
  void ExpectRefused(Node& n, Node& leader, const std::string& token, const std::string& why) {
    const size_t before = ExportRecords(leader).size();
    auto r = JoinWith(n, leader, token);
    EXPECT_NE(r.status, 200) << r.body;
    EXPECT_THAT(r.body, HasSubstr(why)) << n.daemon->Log();
    EXPECT_FALSE(HasKek(n)) << n.name;
    EXPECT_THAT(n.daemon->Log(), Not(HasSubstr("received the cluster's KEKs")));
    EXPECT_EQ(Health(n), 501) << n.name;  // still a new, uninitialised node
    auto records = ExportRecords(leader);
    ASSERT_EQ(records.size(), before + 2) << ReadFileOr(AuditFile(leader));
    EXPECT_EQ(records.back()["type"], "response");
    EXPECT_EQ(records.back()["request"]["data"]["node_id"], n.name);
    EXPECT_THAT(records.back().value("error", ""), HasSubstr(why));
    EXPECT_FALSE(records.back()["response"].contains("data")) << records.back().dump();
  }

  std::string Mint(Node& via, const std::string& node_id, const std::string& ttl = "") {
    nlohmann::json body = {{"node_id", node_id}};
    if (!ttl.empty()) body["ttl"] = ttl;
    auto r = via.daemon->Root("POST", "/v1/sys/storage/raft/join-token", body);
    EXPECT_EQ(r.status, 200) << r.body;
    if (r.status != 200) return "";
    return r.Json()["data"].value("join_token", "");
  }
};

TEST_F(ClusterJoinAuthTest, AJoinWithoutAValidCredentialGetsNoKeysAndIsAudited) {
  ASSERT_NO_FATAL_FAILURE(StartAudited());
  Node& n1 = nodes_[0];
  Node& n2 = AddNode("n2");
  ASSERT_TRUE(n2.daemon->Start()) << n2.daemon->Log();

  // A valid cluster certificate but no credential, or one the cluster never minted.
  ExpectRefused(n2, n1, "", "join token");
  ExpectRefused(n2, n1, "sr-join.bm90LWEtdG9rZW4", "join token");
  // A credential minted for another node id.
  const std::string for_n3 = Mint(n1, "n3");
  ASSERT_FALSE(for_n3.empty());
  ExpectRefused(n2, n1, for_n3, "another node");
  // An expired credential.
  const std::string short_lived = Mint(n1, "n2", "1s");
  ASSERT_FALSE(short_lived.empty());
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  ExpectRefused(n2, n1, short_lived, "expired");

  // Minting is for sudo tokens only, on a node id the cluster accepts, with a bounded TTL.
  EXPECT_EQ(n1.daemon->Root("POST", "/v1/sys/storage/raft/join-token", {{"node_id", "a|b"}}).status,
            400);
  EXPECT_EQ(
      n1.daemon->Root("POST", "/v1/sys/storage/raft/join-token", nlohmann::json::object()).status,
      400);
  EXPECT_EQ(
      n1.daemon
          ->Root("POST", "/v1/sys/storage/raft/join-token", {{"node_id", "n2"}, {"ttl", "25h"}})
          .status,
      400);

  // Without sudo on the path: 403.
  ASSERT_EQ(n1.daemon
                ->Root("POST", "/v1/sys/policies/acl/joiner",
                       {{"policy",
                         "path \"sys/storage/raft/join-token\" { capabilities = [\"create\", "
                         "\"update\"] }"}})
                .status,
            204);
  auto child = n1.daemon->Root("POST", "/v1/auth/token/create", {{"policies", {"joiner"}}});
  ASSERT_EQ(child.status, 200) << child.body;
  EXPECT_EQ(n1.daemon
                ->Call("POST", "/v1/sys/storage/raft/join-token",
                       nlohmann::json{{"node_id", "n2"}}.dump(),
                       {{"X-Vault-Token", child.Json()["auth"]["client_token"].get<std::string>()}})
                .status,
            403);

  // The operator's credential: n2 joins and holds the KEK; the export is audited with its node.
  const std::string good = Mint(n1, "n2");
  ASSERT_FALSE(good.empty());
  auto joined = JoinWith(n2, n1, good);
  ASSERT_EQ(joined.status, 200) << joined.body << n2.daemon->Log() << n1.daemon->Log();
  EXPECT_TRUE(HasKek(n2));
  auto records = ExportRecords(n1);
  ASSERT_FALSE(records.empty());
  EXPECT_EQ(records.back()["request"]["data"]["node_id"], "n2");
  EXPECT_FALSE(records.back().contains("error")) << records.back().dump();
  EXPECT_EQ(records.back()["response"]["data"]["keks_wrapped"], 2);
  // Which credential and which key of n2's token the export was for.
  EXPECT_EQ(records.back()["request"]["data"].value("join_token_id", "").size(), 16u);
  EXPECT_EQ(records.back()["response"]["data"].value("transport_key_sha256", "").size(), 64u);

  // The credential itself is never in the audit log in clear (the mint's answer is hashed).
  EXPECT_THAT(ReadFileOr(AuditFile(n1)), Not(HasSubstr(good)));

  // The same credential once more (a second machine calling itself n2): used.
  Node& again = AddNode("n2");
  ASSERT_TRUE(again.daemon->Start()) << again.daemon->Log();
  ExpectRefused(again, n1, good, "already used");
}

// Two machines present the same credential at once: exactly one gets the KEKs.
TEST_F(ClusterJoinAuthTest, ACredentialPresentedTwiceAtOnceAdmitsOneJoin) {
  ASSERT_NO_FATAL_FAILURE(StartAudited());
  Node& n1 = nodes_[0];
  Node& a = AddNode("n2");
  Node& b = AddNode("n2");
  ASSERT_TRUE(a.daemon->Start()) << a.daemon->Log();
  ASSERT_TRUE(b.daemon->Start()) << b.daemon->Log();
  const std::string token = Mint(n1, "n2");
  ASSERT_FALSE(token.empty());
  HttpResponse ra, rb;
  std::thread ta([&] { ra = JoinWith(a, n1, token); });
  std::thread tb([&] { rb = JoinWith(b, n1, token); });
  ta.join();
  tb.join();
  EXPECT_EQ((ra.status == 200) + (rb.status == 200), 1) << ra.body << rb.body;
  EXPECT_EQ(HasKek(a) + HasKek(b), 1);
  const std::string loser = ra.status == 200 ? rb.body : ra.body;
  EXPECT_THAT(loser, HasSubstr("already")) << loser;
}

TEST_F(ClusterJoinAuthTest, RemovalIsFinalUntilANewCredentialIsMintedForTheNode) {
  ASSERT_NO_FATAL_FAILURE(StartAudited());
  Node& n1 = nodes_[0];
  Node& n2 = AddNode("n2");
  ASSERT_TRUE(n2.daemon->Start()) << n2.daemon->Log();
  ASSERT_EQ(JoinWith(n2, n1, Mint(n1, "n2")).status, 200) << n2.daemon->Log();
  Node& n3 = AddNode("n3");
  ASSERT_TRUE(n3.daemon->Start()) << n3.daemon->Log();
  ASSERT_EQ(JoinWith(n3, n1, Mint(n1, "n3")).status, 200) << n3.daemon->Log();
  ASSERT_TRUE(Eventually([&] { return Health(n3) == 429; })) << n3.daemon->Log();

  // A credential minted for n3 before its removal does not outlive it.
  const std::string before_removal = Mint(n1, "n3");
  ASSERT_FALSE(before_removal.empty());
  auto removed = n1.daemon->Root("POST", "/v1/sys/storage/raft/remove-peer", {{"server_id", "n3"}});
  ASSERT_EQ(removed.status, 204) << removed.body;
  n3.daemon->Stop();

  // The removed node itself, its data wiped, its token still holding the KEKs: asking to be
  // added again is refused (and audited).
  std::filesystem::remove_all(n3.daemon->data_dir());
  ASSERT_TRUE(n3.daemon->Start()) << n3.daemon->Log();
  auto readd = JoinWith(n3, n1, "");
  EXPECT_NE(readd.status, 200) << readd.body;
  EXPECT_THAT(readd.body, HasSubstr("removed"));
  n3.daemon->Stop();
  {
    std::istringstream in(ReadFileOr(AuditFile(n1)));
    bool audited = false;
    for (std::string line; std::getline(in, line);) {
      auto r = nlohmann::json::parse(line, nullptr, false);
      if (r.is_object() && r.value("type", "") == "response" &&
          r["request"].value("path", "") == "sys/storage/raft/join" &&
          r["request"]["data"].value("step", "") == "add-voter" &&
          r["request"]["data"].value("node_id", "") == "n3" &&
          r.value("error", "").find("removed") != std::string::npos) {
        audited = true;
      }
    }
    EXPECT_TRUE(audited) << ReadFileOr(AuditFile(n1));
  }
  auto config = n1.daemon->Root("GET", "/v1/sys/storage/raft/configuration");
  EXPECT_EQ(config.Json()["data"]["config"]["servers"].size(), 2u) << config.body;

  // A new machine under the removed name, with the credential minted before the removal.
  Node& fresh = AddNode("n3");
  ASSERT_TRUE(fresh.daemon->Start()) << fresh.daemon->Log();
  ExpectRefused(fresh, n1, before_removal, "removed");

  // The only way back: a credential minted for n3 after its removal.
  auto back = JoinWith(fresh, n1, Mint(n1, "n3"));
  ASSERT_EQ(back.status, 200) << back.body << fresh.daemon->Log() << n1.daemon->Log();
  EXPECT_TRUE(HasKek(fresh));
  ASSERT_TRUE(Eventually([&] { return Health(fresh) == 429; })) << fresh.daemon->Log();
}

}  // namespace
}  // namespace strongroom::testing
