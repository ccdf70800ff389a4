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
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "appliance/raft/raft_storage.h"
#include "appliance/raft/tls_transport.h"
#include "tests/integration/cluster_fixture.h"

namespace strongroom::testing {
namespace {

using ::testing::AllOf;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

// Answers every service call on 127.0.0.1:`port` with `answer`, as the holder of `certs`.
class FakeMember {
 public:
  FakeMember(const ClusterCerts& certs, int port, std::string answer) : answer_(std::move(answer)) {
    std::signal(SIGPIPE, SIG_IGN);  // a caller that hangs up before the answer is written
    ctx_ = SSL_CTX_new(TLS_server_method());
    ok_ = ctx_ != nullptr && SSL_CTX_use_certificate_chain_file(ctx_, certs.cert.c_str()) == 1 &&
          SSL_CTX_use_PrivateKey_file(ctx_, certs.key.c_str(), SSL_FILETYPE_PEM) == 1 &&
          SSL_CTX_load_verify_locations(ctx_, certs.ca.c_str(), nullptr) == 1;
    if (!ok_) return;
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
          ::listen(fd_, 16) == 0;
    if (ok_) thread_ = std::thread([this] { Run(); });
  }
  ~FakeMember() {
    stop_ = true;
    if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  }
  bool ok() const { return ok_; }
  int calls() const { return calls_.load(); }

 private:
  static bool ReadAll(SSL* ssl, void* buf, size_t n) {
    size_t got = 0;
    while (got < n) {
      int r = SSL_read(ssl, static_cast<char*>(buf) + got, static_cast<int>(n - got));
      if (r <= 0) return false;
      got += static_cast<size_t>(r);
    }
    return true;
  }
  void Run() {
    while (!stop_) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      SSL* ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, c);
      char magic[4];
      unsigned char len[4];
      if (SSL_accept(ssl) == 1 && ReadAll(ssl, magic, 4) && ReadAll(ssl, len, 4)) {
        const uint32_t n = len[0] | (len[1] << 8) | (len[2] << 16) | (uint32_t{len[3]} << 24);
        std::string req(n, '\0');
        if (n < 65536 && ReadAll(ssl, req.data(), n)) {
          std::string out;
          for (int i = 0; i < 4; ++i)
            out.push_back(static_cast<char>((answer_.size() >> (8 * i)) & 0xff));
          out += answer_;
          if (SSL_write(ssl, out.data(), static_cast<int>(out.size())) > 0) ++calls_;  // sent
        }
      }
      SSL_shutdown(ssl);
      SSL_free(ssl);
      ::close(c);
    }
  }
  std::string answer_;
  SSL_CTX* ctx_ = nullptr;
  int fd_ = -1;
  bool ok_ = false;
  std::atomic<bool> stop_{false};
  std::atomic<int> calls_{0};
  std::thread thread_;
};

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
    const nlohmann::json state = r.Json();  // held: the loop below refers into it
    for (const auto& [name, s] : state["data"]["servers"].items()) {
      last = std::max(last, s.value("last_index", uint64_t{0}));
    }
    return last;
  }

  // The answer the holder of `who` gets to `op` on `n`'s cluster port (once `n` has started).
  nlohmann::json AskAs(const ClusterCerts& who, Node& n, const char* op) {
    const std::string addr = "127.0.0.1:" + std::to_string(n.api_port + 1);
    nlohmann::json answer;
    EXPECT_TRUE(Eventually([&] {
      auto r = raft::CallService({who.ca, who.cert, who.key, nullptr}, addr,
                                 nlohmann::json{{"op", op}}.dump(), std::chrono::seconds(10));
      if (!r.ok()) return false;
      answer = nlohmann::json::parse(*r, nullptr, false);
      return answer.is_object() &&
             answer.value("error", "").find("still starting") == std::string::npos;
    })) << op;
    return answer;
  }

  // n1, n2 and n3 with n3 removed (n2's saved sets say so), all stopped.
  void RemoveN3AndStopAll() {
    ASSERT_NO_FATAL_FAILURE(StartThreeWithSecret());
    Node& n1 = nodes_[0];
    Node& n2 = nodes_[1];
    auto removed =
        n1.daemon->Root("POST", "/v1/sys/storage/raft/remove-peer", {{"server_id", "n3"}});
    ASSERT_EQ(removed.status, 204) << removed.body;
    ASSERT_TRUE(Eventually([&] {
      return ReadFileOr(n2.daemon->data_dir() + "/refused-peers").find("removed n3") !=
             std::string::npos;
    }));
    nodes_[2].daemon->Stop();
    n1.daemon->Stop();
    n2.daemon->Stop();
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

  // n3 leads: with n2 down, n1's step-down can only hand the leadership to n3. (On a loaded
  // machine the leadership may have moved already, or be moving after n2's stop: wait for a
  // leader, and step n1 down only if it is the one.)
  ASSERT_TRUE(Eventually([&] { return Health(n1) == 200 || Health(n3) == 200; })) << Logs();
  if (Health(n3) != 200) {
    auto down = n1.daemon->Root("PUT", "/v1/sys/step-down");
    ASSERT_EQ(down.status, 204) << down.body;
  }
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
  ASSERT_NO_FATAL_FAILURE(RemoveN3AndStopAll());
  Node& n2 = nodes_[1];
  const size_t log_before = n2.daemon->Log().size();  // what this start logs is after it
  ASSERT_TRUE(n2.daemon->Start()) << n2.daemon->Log();
  ASSERT_EQ(Health(n2), 503);
  const ClusterCerts n3 = NodeCerts(certs_, "n3");
  for (const char* op : {"term", "refused-sets"}) {
    nlohmann::json answer = AskAs(n3, n2, op);
    EXPECT_EQ(answer.value("ok", true), false) << op << ": " << answer.dump();
    EXPECT_THAT(answer.value("error", ""), HasSubstr("node \"n3\" was removed")) << op;
  }
  EXPECT_THAT(n2.daemon->Log().substr(log_before), Not(HasSubstr("took the refused node ids")));
}

// The review of the exchange: the answer counts only from the member asked. A holder of removed
// n3's certificate answers at n1's address (n1 down) that nothing is refused, as new as 2^64-1:
// n2, back alone, does not take it, and goes on refusing n3.
TEST_F(ClusterRefusedTest, AnAnswerFromAnotherCertificateThanTheMembersIsNotTaken) {
  ASSERT_NO_FATAL_FAILURE(RemoveN3AndStopAll());
  Node& n1 = nodes_[0];
  Node& n2 = nodes_[1];
  const ClusterCerts n3 = NodeCerts(certs_, "n3");
  FakeMember fake(n3, n1.api_port + 1,
                  R"({"ok":true,"index":"18446744073709551615","removed":[],"pinned":{}})");
  ASSERT_TRUE(fake.ok());
  const size_t log_before = n2.daemon->Log().size();  // what this start logs is after it
  ASSERT_TRUE(n2.daemon->Start()) << n2.daemon->Log();
  EXPECT_TRUE(n2.daemon->WaitForLog("are not taken: its certificate names node \"n3\"", 20000))
      << "fake calls " << fake.calls() << "\n"
      << n2.daemon->Log();
  EXPECT_THAT(AskAs(n3, n2, "term").value("error", ""), HasSubstr("node \"n3\" was removed"));
  EXPECT_THAT(n2.daemon->Log().substr(log_before), Not(HasSubstr("took the refused node ids")));
  EXPECT_THAT(ReadFileOr(n2.daemon->data_dir() + "/refused-peers"),
              Not(HasSubstr("18446744073709551615")));
}

// A member's answer (here n1's own certificate, answering what a confused or hostile member
// could: nothing refused, as new as 2^64-1) is taken by n2 before it has caught up, but held in
// memory only: once n2 has caught up from the real n1 and hears from it, its store decides
// again (n3 removed), and the saved sets never carry that index.
TEST_F(ClusterRefusedTest, AMembersAnswerHoldsOnlyUntilTheNodeHasCaughtUp) {
  ASSERT_NO_FATAL_FAILURE(RemoveN3AndStopAll());
  Node& n1 = nodes_[0];
  Node& n2 = nodes_[1];
  const ClusterCerts n3 = NodeCerts(certs_, "n3");
  {
    FakeMember fake(NodeCerts(certs_, "n1"), n1.api_port + 1,
                    R"({"ok":true,"index":"18446744073709551615","removed":[],"pinned":{}})");
    ASSERT_TRUE(fake.ok());
    ASSERT_TRUE(n2.daemon->Start()) << n2.daemon->Log();
    ASSERT_TRUE(
        n2.daemon->WaitForLog("took the refused node ids and keys as of index "
                              "18446744073709551615 from node n1",
                              20000))
        << n2.daemon->Log();
  }
  EXPECT_THAT(ReadFileOr(n2.daemon->data_dir() + "/refused-peers"),
              Not(HasSubstr("18446744073709551615")));
  ASSERT_TRUE(n1.daemon->Start()) << n1.daemon->Log();
  ASSERT_TRUE(Eventually([&] { return Health(n2) == 429 || Health(n2) == 200; }, 120))
      << n2.daemon->Log();
  nlohmann::json term;
  EXPECT_TRUE(Eventually([&] {
    term = AskAs(n3, n2, "term");
    return term.value("error", "").find("node \"n3\" was removed") != std::string::npos;
  })) << term.dump()
      << "\n"
      << ReadFileOr(n2.daemon->data_dir() + "/refused-peers");
  EXPECT_THAT(ReadFileOr(n2.daemon->data_dir() + "/refused-peers"),
              AllOf(HasSubstr("removed n3"), Not(HasSubstr("18446744073709551615"))));
}

// The second review of the exchange: an answer only lifts refusals. n1's certificate (a
// member that lies, or one removed while n2 was down) answers that n1 and n3 are removed, as
// new as 2^64-1: n2, back alone, takes nothing that makes it refuse n1, and catches up from the
// real n1 once it is back.
TEST_F(ClusterRefusedTest, AnAnswerCannotMakeTheNodeRefuseAMember) {
  ASSERT_NO_FATAL_FAILURE(RemoveN3AndStopAll());
  Node& n1 = nodes_[0];
  Node& n2 = nodes_[1];
  {
    FakeMember fake(
        NodeCerts(certs_, "n1"), n1.api_port + 1,
        R"({"ok":true,"index":"18446744073709551615","removed":["n1","n3"],"pinned":{}})");
    ASSERT_TRUE(fake.ok());
    ASSERT_TRUE(n2.daemon->Start()) << n2.daemon->Log();
    ASSERT_TRUE(Eventually([&] { return fake.calls() >= 1; })) << n2.daemon->Log();
  }
  ASSERT_TRUE(n1.daemon->Start()) << n1.daemon->Log();
  EXPECT_TRUE(Eventually([&] { return Health(n2) == 429 || Health(n2) == 200; }, 60))
      << n2.daemon->Log();
  const std::string n1_id = std::to_string(raft::RaftStorage::IdFor("n1"));
  EXPECT_THAT(n2.daemon->Log(), Not(HasSubstr("claiming id " + n1_id)));
  EXPECT_THAT(ReadFileOr(n2.daemon->data_dir() + "/refused-peers"), Not(HasSubstr("removed n1")));
}

// Round 70 of the seventh session's fault run: a node joining replays the whole log (no snapshot
// yet), through n3's removal and, many entries later, its re-admission. n3 leads. Had the joiner
// taken its store's sets while replaying, it would have refused n3 for that stretch, and the
// leader's promotion of it failed ("promote: no connection to remote server available"). It
// holds the sets of the leader's join answer until it has caught up.
TEST_F(ClusterRefusedTest, ANodeJoiningThroughALeaderThatWasOnceRemovedIsNotCutOff) {
  ASSERT_NO_FATAL_FAILURE(StartThreeWithSecret());
  Node& n1 = nodes_[0];
  Node& n2 = nodes_[1];
  Node& n3 = nodes_[2];
  auto removed = n1.daemon->Root("POST", "/v1/sys/storage/raft/remove-peer", {{"server_id", "n3"}});
  ASSERT_EQ(removed.status, 204) << removed.body;
  n3.daemon->Stop();
  for (int i = 0; i < 1500; ++i) {
    ASSERT_EQ(
        n1.daemon
            ->Root("POST", "/v1/secret/data/gap" + std::to_string(i % 50), {{"data", {{"i", i}}}})
            .status,
        200);
  }
  // n3 again: a new machine under the same name (its storage wiped), with a new credential.
  std::filesystem::remove_all(n3.daemon->data_dir());
  ASSERT_TRUE(n3.daemon->Start()) << n3.daemon->Log();
  auto rejoined = Join(n3, n1);
  ASSERT_EQ(rejoined.status, 200) << rejoined.body << n3.daemon->Log();
  ASSERT_TRUE(Eventually([&] { return Health(n3) == 429; })) << n3.daemon->Log();
  // n3 leads: with n2 down, n1's step-down can only hand the leadership to n3.
  n2.daemon->Stop();
  ASSERT_EQ(n1.daemon->Root("PUT", "/v1/sys/step-down").status, 204);
  ASSERT_TRUE(Eventually([&] { return Health(n3) == 200; })) << Logs();
  ASSERT_TRUE(n2.daemon->Start()) << n2.daemon->Log();
  ASSERT_TRUE(Eventually([&] { return Health(n2) == 429; })) << n2.daemon->Log();
  n3.daemon->set_root_token(root_);

  Node& n4 = AddNode("n4");
  ASSERT_TRUE(n4.daemon->Start()) << n4.daemon->Log();
  auto joined = Join(n4, n3);
  EXPECT_EQ(joined.status, 200) << joined.body << n4.daemon->Log();
  EXPECT_TRUE(Eventually([&] { return Health(n4) == 429; })) << n4.daemon->Log();
  const std::string n3_id = std::to_string(raft::RaftStorage::IdFor("n3"));
  EXPECT_THAT(n4.daemon->Log(), Not(HasSubstr("closed the Raft connection with id " + n3_id)));
  EXPECT_THAT(n4.daemon->Log(), Not(HasSubstr("claiming id " + n3_id)));
  EXPECT_THAT(n4.daemon->Log(), HasSubstr("refusing the node ids and keys the leader at"));
}

}  // namespace
}  // namespace strongroom::testing
