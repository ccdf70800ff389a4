// Each node's cluster TLS key lives in its token (issue 17 item 3): made there by
// `strongroomd -cluster-generate-key`, certified from the request `-cluster-csr` writes (which
// names the node id), used for every handshake on the cluster port without ever being a file.
// Real strongroomd processes, each with its own SoftHSM2 token.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/integration/cluster_fixture.h"

namespace strongroom::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Through OpenSSL's provider interface (pkcs11-provider, which packaging/install-deps.sh
// installs); sanitizer builds cannot load it (RTLD_DEEPBIND) and use strongroom's own signer.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kProvider = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kProvider = false;
#else
constexpr bool kProvider = true;
#endif
#else
constexpr bool kProvider = true;
#endif

class ClusterTokenKeyTest : public ClusterFixture {
 protected:
  void SetUp() override {
    ClusterFixture::SetUp();
    key_in_token_ = true;
  }

  // Every regular file under `dir` whose content holds a PEM private key.
  static std::string PrivateKeyFilesUnder(const std::string& dir) {
    std::string found;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
      if (!e.is_regular_file()) continue;
      std::ifstream in(e.path(), std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      if (ss.str().find("PRIVATE KEY-----") != std::string::npos) found += e.path().string() + " ";
    }
    return found;
  }
};

TEST_F(ClusterTokenKeyTest, ThreeNodesJoinReplicateAndForwardWithTheirKeysInTheirTokens) {
  ASSERT_NO_FATAL_FAILURE(StartThreeWithSecret());
  for (Node& n : nodes_) {
    EXPECT_THAT(n.daemon->Log(),
                HasSubstr(std::string("cluster key \"strongroom-cluster\" in the token, through ") +
                          (kProvider ? "pkcs11-provider" : "strongroom's token signer") +
                          ": handshakes are signed by the token"));
    if (kProvider) {
      EXPECT_THAT(n.daemon->Log(), Not(HasSubstr("pkcs11-provider cannot use")));
    }
    // No key file anywhere in the node's directory (configuration, data, Raft log).
    EXPECT_EQ(PrivateKeyFilesUnder(n.daemon->dir()), "") << n.name;
  }
  // A standby forwards over the cluster port (its handshakes signed by its token) ...
  auto read = nodes_[1].daemon->Root("GET", "/v1/secret/data/app");
  ASSERT_EQ(read.status, 200) << read.body;
  EXPECT_EQ(read.Json()["data"]["data"]["password"], "s3cret");
  // ... and what is written through another standby reaches every node.
  ASSERT_EQ(
      nodes_[2].daemon->Root("POST", "/v1/secret/data/other", {{"data", {{"k", "v"}}}}).status,
      200);
  auto again = nodes_[0].daemon->Root("GET", "/v1/secret/data/other");
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.Json()["data"]["data"]["k"], "v");
}

TEST_F(ClusterTokenKeyTest, TheRequestNamesTheNodeAndTheKeyIsMadeOnce) {
  Node& n = AddNode("n1");
  const std::string csr = n.daemon->dir() + "/cluster.csr";
  RunResult text = RunProgram("/usr/bin/openssl", {"req", "-in", csr, "-noout", "-text"});
  ASSERT_EQ(text.exit_code, 0) << text.output;
  EXPECT_THAT(text.output, HasSubstr("URI:urn:strongroom:node:n1"));
  EXPECT_THAT(text.output, HasSubstr("IP Address:127.0.0.1"));
  EXPECT_THAT(text.output, HasSubstr("ASN1 OID: prime256v1"));
  // The request is signed by the key it names (the token's).
  RunResult verify = RunProgram("/usr/bin/openssl", {"req", "-in", csr, "-noout", "-verify"});
  EXPECT_EQ(verify.exit_code, 0) << verify.output;

  RunResult twice = RunStrongroomd({"-config=" + n.daemon->config_path(), "-cluster-generate-key"});
  EXPECT_NE(twice.exit_code, 0);
  EXPECT_THAT(twice.output, HasSubstr("already exists"));
  // A second request is for the same key.
  const std::string csr2 = n.daemon->dir() + "/again.csr";
  RunResult again = RunStrongroomd({"-config=" + n.daemon->config_path(), "-cluster-csr=" + csr2,
                                    "-cluster-cert-hosts=node1.example,10.0.0.7"});
  ASSERT_EQ(again.exit_code, 0) << again.output;
  RunResult k1 = RunProgram("/usr/bin/openssl", {"req", "-in", csr, "-noout", "-pubkey"});
  RunResult k2 = RunProgram("/usr/bin/openssl", {"req", "-in", csr2, "-noout", "-pubkey"});
  EXPECT_EQ(k1.output, k2.output);
  RunResult text2 = RunProgram("/usr/bin/openssl", {"req", "-in", csr2, "-noout", "-text"});
  EXPECT_THAT(text2.output, HasSubstr("DNS:node1.example"));
  EXPECT_THAT(text2.output, HasSubstr("IP Address:10.0.0.7"));

  // The node starts with the certificate issued for that request.
  ASSERT_TRUE(n.daemon->Start()) << n.daemon->Log();
  EXPECT_EQ(n.daemon->Init(1, 1).contains("root_token"), true) << n.daemon->Log();
}

TEST_F(ClusterTokenKeyTest, ACertificateForAnotherKeyOrNoKeyInTheTokenIsRefusedAtStart) {
  // A valid certificate of the cluster CA for this node id, but for a key outside the token:
  // the node refuses to start rather than present a certificate it cannot prove.
  Node& n = AddNode("n1");
  const ClusterCerts file_pair = NodeCerts(certs_, "n1");
  ASSERT_FALSE(file_pair.cert.empty());
  std::string config;
  {
    std::ifstream in(n.daemon->config_path());
    std::stringstream ss;
    ss << in.rdbuf();
    config = ss.str();
  }
  const std::string cert_line = "cluster_cert_file = \"";
  const size_t at = config.find(cert_line);
  ASSERT_NE(at, std::string::npos);
  const size_t end = config.find('"', at + cert_line.size());
  const std::string issued = config.substr(at + cert_line.size(), end - at - cert_line.size());
  std::filesystem::copy_file(file_pair.cert, issued,
                             std::filesystem::copy_options::overwrite_existing);
  EXPECT_FALSE(n.daemon->Start());
  EXPECT_THAT(n.daemon->Log(), HasSubstr("is not a certificate for the cluster key"));

  // A node whose token holds no cluster key names the command that makes it.
  key_in_token_ = false;
  Node& plain = AddNode("n2");
  key_in_token_ = true;
  plain.daemon->WriteConfig();
  std::ifstream in(plain.daemon->config_path());
  std::stringstream ss;
  ss << in.rdbuf();
  std::string with_label = ss.str();
  const std::string key_line = "cluster_key_file = \"";
  const size_t k = with_label.find(key_line);
  ASSERT_NE(k, std::string::npos);
  const size_t kend = with_label.find('"', k + key_line.size());
  with_label.replace(k, kend + 1 - k, "cluster_key_label = \"strongroom-cluster\"");
  std::ofstream(plain.daemon->config_path()) << with_label;
  RunResult csr = RunStrongroomd(
      {"-config=" + plain.daemon->config_path(), "-cluster-csr=" + plain.daemon->dir() + "/x.csr"});
  EXPECT_NE(csr.exit_code, 0);
  EXPECT_THAT(csr.output, HasSubstr("-cluster-generate-key"));
}

}  // namespace
}  // namespace strongroom::testing
