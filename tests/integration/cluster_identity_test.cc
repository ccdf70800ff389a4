// Node identity is the certificate's (issue 17 item 2): a member holding a valid cluster
// certificate for node "n3" cannot join or be added as "n2", cannot be added at an address its
// certificate does not name, and cannot claim another node's Raft id on the cluster port; a node
// whose own certificate names another node does not start. Real strongroomd processes, each with
// its own token and its own certificate (packaging/cluster-certs.sh).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "appliance/raft/raft_storage.h"
#include "appliance/raft/tls_transport.h"
#include "tests/integration/cluster_fixture.h"

namespace strongroom::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class ClusterIdentityTest : public ClusterFixture {
 protected:
  // n1 initialised; `n3` is a certificate of the cluster CA for node "n3" that no node uses.
  void SetUp() override {
    ClusterFixture::SetUp();
    ASSERT_NO_FATAL_FAILURE(StartFirstWithKv());
    n3_ = NodeCerts(certs_, "n3");
    ASSERT_FALSE(n3_.cert.empty());
  }

  std::string ClusterAddr(const Node& n) const {
    return "127.0.0.1:" + std::to_string(n.api_port + 1);
  }

  // One service call to `n` as the holder of `certs`.
  nlohmann::json Call(const Node& n, const ClusterCerts& certs, const nlohmann::json& request) {
    auto answer = raft::CallService({certs.ca, certs.cert, certs.key, nullptr}, ClusterAddr(n),
                                    request.dump(), std::chrono::seconds(60));
    EXPECT_TRUE(answer.ok()) << answer.status();
    if (!answer.ok()) return nlohmann::json::object();
    return nlohmann::json::parse(*answer, nullptr, false);
  }

  // The answer to a "term" call to `n` as the holder of `certs` once it is refused (the refused
  // sets follow within a tick of the main loop); not ok is a failure of the test.
  nlohmann::json RefusedTerm(const Node& n, const ClusterCerts& certs) {
    nlohmann::json term;
    EXPECT_TRUE(Eventually([&] {
      term = Call(n, certs, {{"op", "term"}});
      return !term.value("ok", true);
    })) << term.dump();
    return term;
  }

  // The members of the cluster, as sys/storage/raft/configuration on `n` lists them.
  std::string Members(Node& n) {
    auto r = n.daemon->Root("GET", "/v1/sys/storage/raft/configuration");
    EXPECT_EQ(r.status, 200) << r.body;
    std::string out;
    const nlohmann::json servers = r.Json()["data"]["config"]["servers"];  // a copy
    for (const auto& s : servers) {
      out += s["node_id"].get<std::string>() + "@" + s["address"].get<std::string>() + " ";
    }
    return out;
  }

  // Opens a Raft connection to `n` as the holder of `certs` and sends the preamble claiming
  // `raft_id` at `address`. True when `n` closed the connection (refused it); false when it was
  // still open after 30 s (a liveness deadline: a refused one is closed at once).
  bool PreambleRefused(const Node& n, const ClusterCerts& certs, uint64_t raft_id,
                       const std::string& address) {
    std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                          &SSL_CTX_free);
    EXPECT_EQ(SSL_CTX_use_certificate_chain_file(ctx.get(), certs.cert.c_str()), 1);
    EXPECT_EQ(SSL_CTX_use_PrivateKey_file(ctx.get(), certs.key.c_str(), SSL_FILETYPE_PEM), 1);
    EXPECT_EQ(SSL_CTX_load_verify_locations(ctx.get(), certs.ca.c_str(), nullptr), 1);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(n.api_port + 1));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    timeval tv{30, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    SSL* ssl = SSL_new(ctx.get());
    SSL_set_fd(ssl, fd);
    EXPECT_EQ(SSL_connect(ssl), 1);
    std::string pre = "SRT1";
    for (int i = 0; i < 8; ++i) pre.push_back(static_cast<char>((raft_id >> (8 * i)) & 0xff));
    pre.push_back(static_cast<char>(address.size() & 0xff));
    pre.push_back(static_cast<char>(address.size() >> 8));
    pre += address;
    EXPECT_EQ(SSL_write(ssl, pre.data(), static_cast<int>(pre.size())),
              static_cast<int>(pre.size()));
    char byte = 0;
    const int got = SSL_read(ssl, &byte, 1);
    const int err = SSL_get_error(ssl, got);
    // Closed: a clean close, or the socket shut under the TLS layer. A timeout is SYSCALL with
    // EAGAIN.
    const bool closed =
        got <= 0 && (err == SSL_ERROR_ZERO_RETURN ||
                     (err == SSL_ERROR_SYSCALL && errno != EAGAIN && errno != EWOULDBLOCK) ||
                     err == SSL_ERROR_SSL);
    SSL_free(ssl);
    ::close(fd);
    return closed;
  }

  // A P-256 public key's uncompressed point (what a joining node sends as its transport key).
  static std::string SoftwarePoint() {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    unsigned char* point = nullptr;
    const size_t len = EVP_PKEY_get1_encoded_public_key(key, &point);
    std::string out(reinterpret_cast<const char*>(point), len);
    OPENSSL_free(point);
    EVP_PKEY_free(key);
    return out;
  }

  ClusterCerts n3_;
};

TEST_F(ClusterIdentityTest, JoinAndAddClaimingAnotherNodeIdAreRefusedAndChangeNothing) {
  Node& n1 = nodes_[0];
  // n1's file audit device, in its own directory.
  ASSERT_EQ(n1.daemon
                ->Root("PUT", "/v1/sys/audit/file",
                       {{"type", "file"}, {"options", {{"file_path", "/proc/self/cwd/audit.log"}}}})
                .status,
            204);
  const std::string before = Members(n1);
  const std::string point = absl::Base64Escape(SoftwarePoint());

  // A join as "n2" with n3's certificate: refused, no KEK wrapped.
  auto join = Call(n1, n3_, {{"op", "join"}, {"node_id", "n2"}, {"transport_key", point}});
  EXPECT_EQ(join.value("ok", true), false) << join.dump();
  EXPECT_THAT(join.value("error", ""), HasSubstr("\"n3\", which the caller's cluster certificate"));
  EXPECT_FALSE(join.contains("keks")) << join.dump();
  EXPECT_THAT(n1.daemon->Log(), Not(HasSubstr("to joining node n2")));

  // An add as "n2" with n3's certificate: refused, the configuration unchanged.
  auto add = Call(n1, n3_,
                  {{"op", "add"},
                   {"node_id", "n2"},
                   {"cluster_addr", "127.0.0.1:1"},
                   {"api_addr", "http://127.0.0.1:2"}});
  EXPECT_EQ(add.value("ok", true), false) << add.dump();
  EXPECT_THAT(add.value("error", ""), HasSubstr("\"n3\", which the caller's cluster certificate"));
  // As "n3" but at an address its certificate does not name: refused too.
  auto elsewhere = Call(n1, n3_,
                        {{"op", "add"},
                         {"node_id", "n3"},
                         {"cluster_addr", "192.0.2.7:8201"},
                         {"api_addr", "http://192.0.2.7:8200"}});
  EXPECT_EQ(elsewhere.value("ok", true), false) << elsewhere.dump();
  EXPECT_THAT(elsewhere.value("error", ""), HasSubstr("cluster_addr is not at a host"));
  EXPECT_EQ(Members(n1), before);
  EXPECT_THAT(n1.daemon->Log(), HasSubstr("refused a service call (add) from node n3"));
  // Each refusal is in n1's audit chain (request and response records), with the node the
  // certificate names, the node_id claimed and why.
  std::vector<nlohmann::json> refusals;
  std::istringstream audit(ReadFileOr(n1.daemon->dir() + "/audit.log"));
  for (std::string line; std::getline(audit, line);) {
    auto r = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (r.is_object() && r.contains("request") && r["request"].contains("data") &&
        r["request"]["data"].value("certificate_node_id", "") == "n3") {
      refusals.push_back(r);
    }
  }
  ASSERT_EQ(refusals.size(), 6u) << ReadFileOr(n1.daemon->dir() + "/audit.log");
  EXPECT_EQ(refusals[0]["request"]["path"], "sys/storage/raft/join");
  EXPECT_EQ(refusals[0]["request"]["data"]["step"], "kek-export");
  EXPECT_EQ(refusals[0]["request"]["data"]["node_id"], "n2");
  EXPECT_THAT(refusals[1].value("error", ""), HasSubstr("which the caller's cluster certificate"));
  EXPECT_EQ(refusals[2]["request"]["data"]["step"], "add-voter");
  EXPECT_THAT(refusals[5].value("error", ""), HasSubstr("cluster_addr is not at a host"));

  // The same certificate under its own name, with a join credential for it, is answered (the
  // refusals were for the claim).
  auto own = Call(n1, n3_,
                  {{"op", "join"},
                   {"node_id", "n3"},
                   {"transport_key", point},
                   {"join_token", MintJoinToken(n1, "n3")}});
  EXPECT_EQ(own.value("ok", false), true) << own.dump();
}

TEST_F(ClusterIdentityTest, ARaftConnectionClaimingAnotherNodesIdOrAddressIsRefused) {
  Node& n1 = nodes_[0];
  const std::string me = "127.0.0.1:9|n3|http://127.0.0.1:8";
  // Another node's Raft id (n2's, and the leader's own) with n3's certificate.
  EXPECT_TRUE(PreambleRefused(n1, n3_, raft::RaftStorage::IdFor("n2"), me));
  EXPECT_TRUE(PreambleRefused(n1, n3_, raft::RaftStorage::IdFor("n1"), me));
  // n3's Raft id, but an address naming n2, or at a host the certificate does not name.
  EXPECT_TRUE(PreambleRefused(n1, n3_, raft::RaftStorage::IdFor("n3"),
                              "127.0.0.1:9|n2|http://127.0.0.1:8"));
  EXPECT_TRUE(PreambleRefused(n1, n3_, raft::RaftStorage::IdFor("n3"),
                              "192.0.2.7:9|n3|http://192.0.2.7:8"));
  EXPECT_THAT(n1.daemon->Log(), HasSubstr("refused a Raft connection claiming id " +
                                          std::to_string(raft::RaftStorage::IdFor("n2"))));
  // The cluster still serves (nothing a refused connection said reached libraft).
  EXPECT_EQ(n1.daemon->Root("POST", "/v1/secret/data/after", {{"data", {{"v", "1"}}}}).status, 200);
}

TEST_F(ClusterIdentityTest, ANodeWhoseCertificateNamesAnotherNodeDoesNotStart) {
  // "n2" configured with n3's certificate and key.
  Node& n2 = AddNode("n2", "", /*cert_node_id=*/"n3");
  EXPECT_FALSE(n2.daemon->Start());
  EXPECT_THAT(n2.daemon->Log(), HasSubstr("names node id \"n3\", not this node's node_id \"n2\""));
}

TEST_F(ClusterIdentityTest, NodesWithTheirOwnCertificatesJoinAndReplicate) {
  Node& n1 = nodes_[0];
  Node& n2 = AddNode("n2");
  ASSERT_TRUE(n2.daemon->Start()) << n2.daemon->Log();
  auto joined = Join(n2, n1);
  ASSERT_EQ(joined.status, 200) << joined.body << n2.daemon->Log();
  EXPECT_TRUE(Eventually([&] { return Members(n1).find("n2@") != std::string::npos; }));
  ASSERT_EQ(n1.daemon->Root("POST", "/v1/secret/data/x", {{"data", {{"v", "2"}}}}).status, 200);
  EXPECT_TRUE(Eventually([&] { return Health(n2) == 429; })) << n2.daemon->Log();
}

// Item 5: removal is final for the certificate too. Before, a removed node's certificate (it
// still names a node id the CA issued) was answered on the cluster port: its service calls
// (forwards, term) were served and its Raft connections accepted.
TEST_F(ClusterIdentityTest, ARemovedNodesCertificateGetsNothingOnTheClusterPort) {
  Node& n1 = nodes_[0];
  Node& n3 = AddNode("n3");
  ASSERT_TRUE(n3.daemon->Start()) << n3.daemon->Log();
  ASSERT_EQ(Join(n3, n1).status, 200) << n3.daemon->Log();
  ASSERT_TRUE(Eventually([&] { return Members(n1).find("n3@") != std::string::npos; }));
  const std::string n3_addr = ClusterAddr(n3) + "|n3|" + n3.api();
  auto removed = n1.daemon->Root("POST", "/v1/sys/storage/raft/remove-peer", {{"server_id", "n3"}});
  ASSERT_EQ(removed.status, 204) << removed.body;
  // The Raft connections n1 had with n3 (both ways) are closed, not only new ones refused.
  const std::string n3_id = std::to_string(raft::RaftStorage::IdFor("n3"));
  EXPECT_TRUE(Eventually([&] {
    return absl::StrContains(n1.daemon->Log(), "closed the Raft connection with id " + n3_id);
  })) << n1.daemon->Log();
  n3.daemon->Stop();  // its certificate and key stay (a copied disk, a kept backup)

  EXPECT_THAT(RefusedTerm(n1, n3_).value("error", ""),
              HasSubstr("node \"n3\" was removed from the cluster"));
  auto forward = Call(n1, n3_, {{"op", "forward"}});
  EXPECT_EQ(forward.value("ok", true), false) << forward.dump();
  EXPECT_THAT(forward.value("error", ""), HasSubstr("was removed"));
  EXPECT_TRUE(PreambleRefused(n1, n3_, raft::RaftStorage::IdFor("n3"), n3_addr));
  EXPECT_EQ(n1.daemon->Root("POST", "/v1/secret/data/after", {{"data", {{"v", "1"}}}}).status, 200);
}

// Item 5 and the review of items 1 and 2: a node id is bound to the key it joined with (pinned
// in replicated state at the credential's use; the active node pins its own). A certificate the
// cluster CA issued for the same node id and another key (a second request signed, a CA misuse)
// is refused on the cluster port; a renewed certificate for the same key is not. The KEK
// export's audit record names the certificate the keys went to.
TEST_F(ClusterIdentityTest, AnotherKeyForAJoinedNodeIdIsRefusedAndTheExportNamesTheCertificate) {
  Node& n1 = nodes_[0];
  ASSERT_EQ(n1.daemon
                ->Root("PUT", "/v1/sys/audit/file",
                       {{"type", "file"}, {"options", {{"file_path", kAuditFilePath}}}})
                .status,
            204);
  Node& n2 = AddNode("n2");
  ASSERT_TRUE(n2.daemon->Start()) << n2.daemon->Log();
  ASSERT_EQ(Join(n2, n1).status, 200) << n2.daemon->Log();
  ASSERT_TRUE(Eventually([&] { return Health(n2) == 429; })) << n2.daemon->Log();
  const ClusterCerts n2_certs = NodeCerts(certs_, "n2");

  // The export record names n2's certificate by its SHA-256.
  RunResult fp = RunProgram("/usr/bin/openssl",
                            {"x509", "-in", n2_certs.cert, "-noout", "-fingerprint", "-sha256"});
  ASSERT_EQ(fp.exit_code, 0) << fp.output;
  std::string expected;
  for (char c : fp.output.substr(fp.output.find('=') + 1)) {
    if (std::isxdigit(static_cast<unsigned char>(c))) {
      expected.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
  }
  ASSERT_EQ(expected.size(), 64u) << fp.output;
  bool named = false;
  std::istringstream audit(ReadFileOr(AuditFile(n1)));
  for (std::string line; std::getline(audit, line);) {
    auto r = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (r.is_object() && r.contains("request") && r["request"].contains("data") &&
        r["request"]["data"].value("step", "") == "kek-export" &&
        r["request"]["data"].value("node_id", "") == "n2") {
      EXPECT_EQ(r["request"]["data"].value("certificate_sha256", ""), expected) << line;
      EXPECT_EQ(r["request"]["data"].value("public_key_sha256", "").size(), 64u) << line;
      named = true;
    }
  }
  EXPECT_TRUE(named) << ReadFileOr(AuditFile(n1));

  // Certificates of the same CA signed in a copy of the CA's directory (so that the nodes' own
  // files stay as they are): for "n2" and "n1" with new keys, and for n2's own key (renewed).
  const std::string other = dir_ + "/other-ca";
  std::filesystem::create_directories(other);
  const std::string ca_dir = std::filesystem::path(certs_.ca).parent_path();
  for (const char* f : {"ca.pem", "ca.key"}) {
    std::filesystem::copy_file(ca_dir + "/" + f, other + "/" + f);
  }
  auto issue = [&](const std::string& node, const std::string& existing_key) {
    ClusterCerts c{certs_.ca, other + "/" + node + "-x.pem",
                   existing_key.empty() ? other + "/" + node + "-x.key" : existing_key};
    const std::string csr = other + "/" + node + ".csr";
    RunResult r =
        existing_key.empty()
            ? RunProgram("/usr/bin/openssl",
                         {"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                          "-nodes", "-subj", "/CN=" + node, "-keyout", c.key, "-out", csr})
            : RunProgram("/usr/bin/openssl", {"req", "-new", "-key", existing_key, "-subj",
                                              "/CN=" + node, "-out", csr});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(SignNodeRequest({other + "/ca.pem", "", ""}, node, csr, c.cert));
    return c;
  };
  const ClusterCerts second = issue("n2", "");
  EXPECT_THAT(RefusedTerm(n1, second).value("error", ""),
              HasSubstr("is not the key pinned for node \"n2\""));
  EXPECT_TRUE(PreambleRefused(n1, second, raft::RaftStorage::IdFor("n2"),
                              ClusterAddr(n2) + "|n2|" + n2.api()));
  // The founding node pinned its own key: a certificate for "n1" with another key is refused by
  // its peers.
  const ClusterCerts not_n1 = issue("n1", "");
  EXPECT_THAT(RefusedTerm(n2, not_n1).value("error", ""),
              HasSubstr("is not the key pinned for node \"n1\""));
  // A renewed certificate for n2's own key is n2.
  const ClusterCerts renewed = issue("n2", n2_certs.key);
  auto renewed_term = Call(n1, renewed, {{"op", "term"}});
  EXPECT_EQ(renewed_term.value("ok", false), true) << renewed_term.dump();
  // n2's own certificate is still answered, and the cluster still replicates to n2.
  auto own = Call(n1, n2_certs, {{"op", "term"}});
  EXPECT_EQ(own.value("ok", false), true) << own.dump();
  ASSERT_EQ(n1.daemon->Root("POST", "/v1/secret/data/x", {{"data", {{"v", "2"}}}}).status, 200);
  n2.daemon->set_root_token(root_);
  auto read = n2.daemon->Root("GET", "/v1/secret/data/x");
  EXPECT_EQ(read.status, 200) << read.body;
}

// Item 2, the calling side: a node calling a member's service port checks the answering
// certificate as it would a peer's: it must name a node id and the host that was dialled (as
// HTTPS checks a server's name). A holder of any cluster certificate at another address (a
// removed node's, say) that got between a standby and its leader received the forwarded request
// (tokens and secrets) before; now the call is refused before anything is sent.
TEST(ClusterServiceClient, AMemberWhoseCertificateDoesNotNameTheDialledHostGetsNothing) {
  char tmpl[] = "/tmp/sr-svc-identity-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  const ClusterCerts ca = MakeClusterCerts(dir, "caller");
  ASSERT_FALSE(ca.ca.empty());
  const ClusterCerts elsewhere = NodeCerts(ca, "n9", "192.0.2.7");
  ASSERT_FALSE(elsewhere.cert.empty());
  const int port = FreeLoopbackPort();
  const pid_t server = fork();
  if (server == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    if (null < 0 || ::dup2(null, 1) < 0 || ::dup2(null, 2) < 0) ::_exit(126);
    const std::string accept = "127.0.0.1:" + std::to_string(port);
    ::execlp("openssl", "openssl", "s_server", "-quiet", "-accept", accept.c_str(), "-cert",
             elsewhere.cert.c_str(), "-key", elsewhere.key.c_str(), "-CAfile", ca.ca.c_str(),
             static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ASSERT_GT(server, 0);
  const std::string address = "127.0.0.1:" + std::to_string(port);
  raft::ServiceClient client({ca.ca, ca.cert, ca.key, nullptr});
  absl::StatusOr<std::string> answer = absl::UnavailableError("not called");
  // Until s_server listens (a refused connection); then the call's own outcome.
  Eventually([&] {
    answer = client.Call(address, R"({"op":"term"})", std::chrono::seconds(3));
    return answer.ok() || !absl::StrContains(answer.status().message(), "connect:");
  });
  ::kill(server, SIGKILL);
  ::waitpid(server, nullptr, 0);
  std::filesystem::remove_all(dir);
  ASSERT_FALSE(answer.ok());
  EXPECT_THAT(answer.status().message(), HasSubstr("does not name the host"));
  EXPECT_FALSE(raft::RequestMayHaveArrived(answer.status())) << answer.status();
}

}  // namespace
}  // namespace strongroom::testing
