// Integration: the listener's TLS key lives in the PKCS#11 token (listener tls_key_label). The
// real strongroomd creates it (-tls-generate-key), makes a self-signed certificate signed by the
// token (-tls-self-signed-cert), and serves HTTPS with no key file anywhere: the workers have
// every handshake signature made by the broker. Clients are the real openssl s_client and curl.
// Vault API sections: sys/init, sys/health.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "hsm/rv.h"
#include "hsm/token.h"
#include "tests/support/daemon.h"

namespace strongroom::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kLabel[] = "strongroom-tls";

// Runs a shell command; returns its exit status and its stdout+stderr.
std::pair<int, std::string> Shell(const std::string& cmd) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return {-1, ""};
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// Every file under `dir` that holds a PEM private key.
std::vector<std::string> FilesWithPrivateKeys(const std::string& dir) {
  std::vector<std::string> found;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    if (ReadFileOr(e.path()).find("PRIVATE KEY-----") != std::string::npos) {
      found.push_back(e.path());
    }
  }
  return found;
}

class TlsKeyInTokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cert_ = d_.dir() + "/tls.crt";
    d_.options().extra_listener =
        "  tls_cert_file = \"" + cert_ + "\"\n  tls_key_label = \"" + kLabel + "\"\n";
    d_.WriteConfig(/*tls=*/true);
  }
  RunResult Cli(std::vector<std::string> args) {
    args.insert(args.begin(), "-config=" + d_.config_path());
    return RunStrongroomd(args);
  }
  std::string Url(const std::string& host, const std::string& path) const {
    return "https://" + host + ":" + std::to_string(d_.port()) + path;
  }
  // A GET over TLS with openssl s_client (extra flags pick the version and signature
  // algorithms); returns its whole output (handshake summary and HTTP response).
  // No -ignore_unexpected_eof: after "Connection: close" the worker sends a TLS close_notify
  // before closing the TCP connection, so s_client exits 0 only if that close_notify arrives.
  std::pair<int, std::string> SClient(const std::string& flags, const std::string& path) {
    return Shell("printf 'GET " + path +
                 " HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' | "
                 "timeout 20 openssl s_client -brief -ign_eof -connect 127.0.0.1:" +
                 std::to_string(d_.port()) + " -servername localhost -CAfile " + cert_ +
                 " -verify_return_error -verify_hostname localhost " + flags);
  }

  Daemon d_;
  std::string cert_;
};

TEST_F(TlsKeyInTokenTest, HandshakesAreSignedInTheTokenAndNoKeyFileExists) {
  // The key: created in the token, once.
  RunResult gen = Cli({"-tls-generate-key"});
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  EXPECT_THAT(gen.output, HasSubstr("-----BEGIN PUBLIC KEY-----"));
  EXPECT_THAT(gen.output, HasSubstr("generated in token"));
  RunResult again = Cli({"-tls-generate-key"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.output, HasSubstr("already exists"));

  // The certificate: self-signed by the token for the requested names.
  RunResult cert = Cli({"-tls-self-signed-cert=" + cert_, "-tls-cert-hosts=127.0.0.1,localhost"});
  ASSERT_EQ(cert.exit_code, 0) << cert.output;
  auto [x509_rc, text] = Shell("openssl x509 -in " + cert_ + " -noout -text");
  ASSERT_EQ(x509_rc, 0) << text;
  EXPECT_THAT(text, HasSubstr("Signature Algorithm: ecdsa-with-SHA256"));
  EXPECT_THAT(text, HasSubstr("NIST CURVE: P-256"));
  EXPECT_THAT(text, HasSubstr("IP Address:127.0.0.1"));
  EXPECT_THAT(text, HasSubstr("DNS:localhost"));
  EXPECT_THAT(text, HasSubstr("CA:FALSE"));
  EXPECT_THAT(text, HasSubstr("TLS Web Server Authentication"));
  // Its signature verifies with its own public key (the token signed it).
  auto [verify_rc, verify] = Shell("openssl verify -CAfile " + cert_ + " " + cert_);
  EXPECT_EQ(verify_rc, 0) << verify;
  // A certificate signing request for a CA, signed by the token too.
  const std::string csr = d_.dir() + "/tls.csr";
  RunResult req = Cli({"-tls-csr=" + csr, "-tls-cert-hosts=vault.example.com,10.0.0.7"});
  ASSERT_EQ(req.exit_code, 0) << req.output;
  auto [req_rc, req_text] = Shell("openssl req -in " + csr + " -noout -verify -text");
  EXPECT_EQ(req_rc, 0) << req_text;
  EXPECT_THAT(req_text, HasSubstr("DNS:vault.example.com, IP Address:10.0.0.7"));
  EXPECT_THAT(req_text, HasSubstr("CN = vault.example.com"));

  // No private key exists as a file: not in the daemon's folder, not in the configuration.
  EXPECT_THAT(FilesWithPrivateKeys(d_.dir()), ::testing::IsEmpty());
  EXPECT_THAT(ReadFileOr(d_.config_path()), Not(HasSubstr("tls_key_file")));

  ASSERT_TRUE(d_.Start(/*tls=*/true)) << d_.Log();
  EXPECT_THAT(d_.Log(), HasSubstr("API on https://"));
  EXPECT_THAT(d_.Log(), HasSubstr("handshakes are signed by the token"));
  EXPECT_THAT(d_.Log(), HasSubstr("serving (TLS, key in the broker's token)"));

  // Initialise over HTTPS (curl), then sys/health answers 200 to every client below.
  auto [init_rc, init] = Shell("curl -s --cacert " + cert_ +
                               " -X PUT -d '{\"recovery_shares\":1,\"recovery_threshold\":1}' " +
                               Url("127.0.0.1", "/v1/sys/init"));
  ASSERT_EQ(init_rc, 0) << init;
  EXPECT_THAT(init, HasSubstr("\"root_token\""));
  for (const std::string host : {"127.0.0.1", "localhost"}) {
    auto [rc, code] = Shell("curl -s -o /dev/null -w '%{http_code}' --cacert " + cert_ + " " +
                            Url(host, "/v1/sys/health"));
    EXPECT_EQ(rc, 0) << host << ": " << code;
    EXPECT_EQ(code, "200") << host;
  }

  // openssl s_client, TLS 1.3 (CertificateVerify with ecdsa_secp256r1_sha256).
  auto [rc13, out13] = SClient("-tls1_3", "/v1/sys/health");
  EXPECT_EQ(rc13, 0) << out13;
  EXPECT_THAT(out13, HasSubstr("Protocol version: TLSv1.3"));
  EXPECT_THAT(out13, HasSubstr("Signature type: ECDSA"));
  EXPECT_THAT(out13, HasSubstr("Verification: OK"));
  EXPECT_THAT(out13, HasSubstr("HTTP/1.1 200"));
  // TLS 1.2 (ECDHE-ECDSA ServerKeyExchange), with SHA-256, SHA-384 and SHA-512 digests.
  for (const std::string sigalgs : {"ECDSA+SHA256", "ECDSA+SHA384", "ECDSA+SHA512"}) {
    auto [rc12, out12] = SClient("-tls1_2 -sigalgs " + sigalgs, "/v1/sys/health");
    EXPECT_EQ(rc12, 0) << sigalgs << "\n" << out12;
    EXPECT_THAT(out12, HasSubstr("Protocol version: TLSv1.2")) << sigalgs;
    EXPECT_THAT(out12, HasSubstr("Verification: OK")) << sigalgs;
    EXPECT_THAT(out12, HasSubstr("HTTP/1.1 200")) << sigalgs;
  }
  // Many handshakes in a row, on every worker: the signing channels stay in step.
  for (int i = 0; i < 20; ++i) {
    auto [rc, code] = Shell("curl -s -o /dev/null -w '%{http_code}' --cacert " + cert_ + " " +
                            Url("127.0.0.1", "/v1/sys/health"));
    ASSERT_EQ(code, "200") << i;
  }
  // A client that does not trust the certificate fails; the server keeps serving.
  EXPECT_NE(Shell("curl -s -o /dev/null " + Url("127.0.0.1", "/v1/sys/health")).first, 0);
  // A restarted worker gets a fresh signing channel and signs as before.
  const std::vector<pid_t> before = d_.WorkerPids();
  ASSERT_EQ(before.size(), 2u);
  kill(before[0], SIGKILL);
  auto serving = [&] {
    const std::string log = d_.Log();
    size_t count = 0;
    for (size_t at = 0; (at = log.find("serving (TLS, key in", at)) != std::string::npos; ++at) {
      ++count;
    }
    return count;
  };
  for (int i = 0; i < 400 && serving() < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_EQ(serving(), 3u) << d_.Log();
  EXPECT_THAT(d_.Log(), HasSubstr("restarting in"));
  EXPECT_EQ(d_.WorkerPids().size(), 2u);
  for (int i = 0; i < 20; ++i) {
    auto [rc, code] = Shell("curl -s -o /dev/null -w '%{http_code}' --cacert " + cert_ + " " +
                            Url("127.0.0.1", "/v1/sys/health"));
    ASSERT_EQ(code, "200") << "after the restart, " << i;
  }
  EXPECT_THAT(d_.Log(), Not(HasSubstr("protocol violation")));
  EXPECT_EQ(d_.Stop(), 0);

  // The key in the token: sensitive, never extractable, sign-only (seen by a second client).
  auto token = hsm::Token::Open(d_.TokenConfig());
  ASSERT_TRUE(token.ok()) << token.status();
  auto key = (*token)->FindSigningKey(kLabel);
  ASSERT_TRUE(key.ok()) << key.status();
  auto attrs = (*token)->GetKeyAttributes(key->private_key);
  ASSERT_TRUE(attrs.ok());
  EXPECT_EQ(attrs->object_class, CKO_PRIVATE_KEY);
  EXPECT_EQ(attrs->key_type, CKK_EC);
  EXPECT_TRUE(attrs->token);
  EXPECT_TRUE(attrs->sensitive);
  EXPECT_TRUE(attrs->always_sensitive);
  EXPECT_FALSE(attrs->extractable);
  EXPECT_TRUE(attrs->never_extractable);
  EXPECT_TRUE(attrs->sign);
  EXPECT_FALSE(attrs->decrypt);
  EXPECT_FALSE(attrs->unwrap);
  EXPECT_EQ(ReadValueAnswer(**token, key->private_key), "CKR_ATTRIBUTE_SENSITIVE");
}

TEST_F(TlsKeyInTokenTest, RefusesToStartWithoutTheKeyOrWithAnotherKeysCertificate) {
  // A certificate (and key) made elsewhere, and no key in the token yet.
  ASSERT_EQ(Shell("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
                  "-subj /CN=localhost -keyout " +
                  d_.dir() + "/other.key -out " + cert_)
                .first,
            0);
  EXPECT_FALSE(d_.Start(/*tls=*/true));
  EXPECT_THAT(d_.Log(), HasSubstr("no TLS key labelled \"strongroom-tls\""));
  EXPECT_THAT(d_.Log(), HasSubstr("-tls-generate-key"));

  ASSERT_EQ(Cli({"-tls-generate-key"}).exit_code, 0);
  EXPECT_FALSE(d_.Start(/*tls=*/true));
  EXPECT_THAT(d_.Log(), HasSubstr("is not a certificate for the TLS key \"strongroom-tls\""));

  // CLI errors: bad host names, and a listener without tls_key_label.
  RunResult bad = Cli({"-tls-self-signed-cert=" + cert_, "-tls-cert-hosts=ok.example,bad host"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.output, HasSubstr("\"bad host\" is neither an IP address nor a DNS name"));
  d_.options().extra_listener =
      "  tls_cert_file = \"" + cert_ + "\"\n  tls_key_file = \"" + d_.dir() + "/other.key\"\n";
  d_.WriteConfig(/*tls=*/true);
  RunResult no_label = Cli({"-tls-generate-key"});
  EXPECT_EQ(no_label.exit_code, 1);
  EXPECT_THAT(no_label.output, HasSubstr("the listener has no tls_key_label"));
}

}  // namespace
}  // namespace strongroom::testing
