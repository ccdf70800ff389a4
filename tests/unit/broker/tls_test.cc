// The pieces of "TLS key in the token" without a token: the remote EC key (signatures made by a
// callback), the certificate helpers, and the signing channel between a worker
// (tls::RequestSignature) and the broker (TlsSignServer) over a real SOCK_SEQPACKET socketpair.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <vector>

#include "appliance/broker/tls_sign_server.h"
#include "appliance/tls/certificates.h"
#include "appliance/tls/remote_ec_key.h"
#include "appliance/tls/sign_channel.h"

namespace strongroom {
namespace {

using ::testing::HasSubstr;

tls::PkeyPtr GenerateKey(const char* curve) { return tls::PkeyPtr(EVP_EC_gen(curve)); }

std::string SpkiDer(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key, &der);
  std::string out(reinterpret_cast<const char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

// A software signer standing in for the token: DER ECDSA over the digest with `key`.
absl::StatusOr<std::string> SignLocally(EVP_PKEY* key, std::span<const uint8_t> digest) {
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(key, nullptr);
  unsigned char sig[128];
  size_t len = sizeof sig;
  const bool ok = ctx != nullptr && EVP_PKEY_sign_init(ctx) == 1 &&
                  EVP_PKEY_sign(ctx, sig, &len, digest.data(), digest.size()) == 1;
  EVP_PKEY_CTX_free(ctx);
  if (!ok) return absl::InternalError("local sign failed");
  return std::string(reinterpret_cast<const char*>(sig), len);
}

X509* ParseCert(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  return cert;
}

TEST(RemoteEcKey, CertificatesAreSignedThroughTheCallback) {
  tls::PkeyPtr local = GenerateKey("P-256");
  ASSERT_TRUE(local);
  std::vector<size_t> digest_sizes;
  auto remote = tls::MakeRemoteEcKey(SpkiDer(local.get()), [&](std::span<const uint8_t> d) {
    digest_sizes.push_back(d.size());
    return SignLocally(local.get(), d);
  });
  ASSERT_TRUE(remote.ok()) << remote.status();

  auto pem = tls::SelfSignedCertificatePem(remote->get(), {"127.0.0.1", "localhost"}, 365);
  ASSERT_TRUE(pem.ok()) << pem.status();
  EXPECT_EQ(digest_sizes, std::vector<size_t>{32});  // one SHA-256 digest, nothing else
  X509* cert = ParseCert(*pem);
  ASSERT_NE(cert, nullptr);
  EXPECT_EQ(X509_verify(cert, local.get()), 1);
  EXPECT_EQ(X509_get_signature_nid(cert), NID_ecdsa_with_SHA256);
  X509_free(cert);
  auto spki = tls::LeafPublicKeyDer(*pem);
  ASSERT_TRUE(spki.ok());
  EXPECT_EQ(*spki, SpkiDer(local.get()));

  auto csr = tls::CertificateRequestPem(remote->get(), {"vault.example.com"});
  ASSERT_TRUE(csr.ok()) << csr.status();
  EXPECT_THAT(*csr, HasSubstr("BEGIN CERTIFICATE REQUEST"));
  EXPECT_EQ(digest_sizes.size(), 2u);
}

TEST(RemoteEcKey, SignerErrorsFailTheOperationAndOtherCurvesAreRefused) {
  tls::PkeyPtr local = GenerateKey("P-256");
  auto remote = tls::MakeRemoteEcKey(SpkiDer(local.get()), [](std::span<const uint8_t>) {
    return absl::StatusOr<std::string>(absl::UnavailableError("token gone"));
  });
  ASSERT_TRUE(remote.ok());
  EXPECT_FALSE(tls::SelfSignedCertificatePem(remote->get(), {"localhost"}, 1).ok());
  // A signer answering garbage is not passed on as a signature either.
  auto garbage = tls::MakeRemoteEcKey(SpkiDer(local.get()), [](std::span<const uint8_t>) {
    return absl::StatusOr<std::string>(std::string("\x30\x03\x02\x01", 4));
  });
  ASSERT_TRUE(garbage.ok());
  EXPECT_FALSE(tls::SelfSignedCertificatePem(garbage->get(), {"localhost"}, 1).ok());

  tls::PkeyPtr p384 = GenerateKey("P-384");
  auto refused = tls::MakeRemoteEcKey(SpkiDer(p384.get()), [](std::span<const uint8_t>) {
    return absl::StatusOr<std::string>(std::string());
  });
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(tls::MakeRemoteEcKey("not DER", [](std::span<const uint8_t>) {
                 return absl::StatusOr<std::string>(std::string());
               }).ok());
}

// One in-memory handshake between a server holding `key` (a remote key) for `cert` and a client
// trusting `cert`. Returns the negotiated version, or "" when the handshake failed.
std::string Handshake(EVP_PKEY* key, X509* cert, int version, const char* sigalgs) {
  SSL_CTX* sctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX* cctx = SSL_CTX_new(TLS_client_method());
  std::string result;
  if (sctx != nullptr && cctx != nullptr && SSL_CTX_set_min_proto_version(sctx, version) == 1 &&
      SSL_CTX_set_max_proto_version(sctx, version) == 1 &&
      SSL_CTX_use_certificate(sctx, cert) == 1 && SSL_CTX_use_PrivateKey(sctx, key) == 1 &&
      SSL_CTX_check_private_key(sctx) == 1 &&
      X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx), cert) == 1 &&
      (sigalgs == nullptr || SSL_CTX_set1_sigalgs_list(cctx, sigalgs) == 1)) {
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, nullptr);
    SSL* server = SSL_new(sctx);
    SSL* client = SSL_new(cctx);
    BIO* sbio = nullptr;
    BIO* cbio = nullptr;
    BIO_new_bio_pair(&sbio, 0, &cbio, 0);
    SSL_set_bio(server, sbio, sbio);
    SSL_set_bio(client, cbio, cbio);
    SSL_set_accept_state(server);
    SSL_set_connect_state(client);
    bool client_done = false, server_done = false, failed = false;
    for (int i = 0; i < 50 && !(client_done && server_done) && !failed; ++i) {
      for (auto [ssl, done] : {std::pair{client, &client_done}, std::pair{server, &server_done}}) {
        if (*done) continue;
        const int rc = SSL_do_handshake(ssl);
        const int err = SSL_get_error(ssl, rc);
        if (rc == 1) {
          *done = true;
        } else if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
          failed = true;
        }
      }
    }
    if (client_done && server_done && SSL_get_verify_result(client) == X509_V_OK) {
      result = SSL_get_version(client);
    }
    SSL_free(client);
    SSL_free(server);
  }
  SSL_CTX_free(cctx);
  SSL_CTX_free(sctx);
  return result;
}

TEST(RemoteEcKey, TlsHandshakesAreSignedThroughTheCallback) {
  tls::PkeyPtr local = GenerateKey("P-256");
  std::vector<size_t> digest_sizes;
  auto remote = tls::MakeRemoteEcKey(SpkiDer(local.get()), [&](std::span<const uint8_t> d) {
    digest_sizes.push_back(d.size());
    return SignLocally(local.get(), d);
  });
  ASSERT_TRUE(remote.ok());
  auto pem = tls::SelfSignedCertificatePem(remote->get(), {"localhost"}, 1);
  ASSERT_TRUE(pem.ok()) << pem.status();
  X509* cert = ParseCert(*pem);
  ASSERT_NE(cert, nullptr);
  digest_sizes.clear();
  EXPECT_EQ(Handshake(remote->get(), cert, TLS1_3_VERSION, nullptr), "TLSv1.3");
  EXPECT_EQ(digest_sizes, std::vector<size_t>{32});  // CertificateVerify, ecdsa_secp256r1_sha256
  EXPECT_EQ(Handshake(remote->get(), cert, TLS1_2_VERSION, "ECDSA+SHA384"), "TLSv1.2");
  EXPECT_EQ(digest_sizes, (std::vector<size_t>{32, 48}));  // ServerKeyExchange
  // A signer that fails makes the handshake fail (and nothing else).
  auto failing = tls::MakeRemoteEcKey(SpkiDer(local.get()), [](std::span<const uint8_t>) {
    return absl::StatusOr<std::string>(absl::InternalError("no"));
  });
  ASSERT_TRUE(failing.ok());
  EXPECT_EQ(Handshake(failing->get(), cert, TLS1_3_VERSION, nullptr), "");
  X509_free(cert);
}

TEST(Certificates, HostsAreIpAddressesOrDnsNames) {
  auto hosts = tls::ParseHosts("127.0.0.1, localhost,::1,*.example.com");
  ASSERT_TRUE(hosts.ok()) << hosts.status();
  EXPECT_EQ(*hosts, (std::vector<std::string>{"127.0.0.1", "localhost", "::1", "*.example.com"}));
  for (const char* bad : {"", "a b", "x,DNS:evil", "a..b", "IP:1.2.3.4"}) {
    EXPECT_FALSE(tls::ParseHosts(bad).ok()) << bad;
  }
}

// The signing channel end to end: a "worker" thread side and the broker's TlsSignServer.
class SignChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds_), 0);
    const timeval timeout{5, 0};
    setsockopt(fds_[1], SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  void TearDown() override {
    server_.Stop();
    close(fds_[1]);
  }
  void Start() { server_.AddWorker(0, fds_[0], 4242); }

  int fds_[2] = {-1, -1};
  std::atomic<pid_t> killed_{0};
  broker::TlsSignServer server_{[this](pid_t pid) { killed_ = pid; }, 50};
};

const std::string kSignature("\x30\x06\x02\x01\x01\x02\x01\x02", 8);

TEST_F(SignChannelTest, DigestsAreSignedAndAnsweredInOrder) {
  std::mutex mu;
  std::vector<std::string> seen;
  server_.SetSigner([&](std::span<const uint8_t> digest) -> absl::StatusOr<std::string> {
    std::lock_guard<std::mutex> lock(mu);
    seen.emplace_back(reinterpret_cast<const char*>(digest.data()), digest.size());
    return kSignature;
  });
  Start();
  for (size_t len : {20u, 28u, 32u, 48u, 64u}) {
    std::vector<uint8_t> digest(len, static_cast<uint8_t>(len));
    auto sig = tls::RequestSignature(fds_[1], digest);
    ASSERT_TRUE(sig.ok()) << len << ": " << sig.status();
    EXPECT_EQ(*sig, kSignature);
  }
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(seen[2], std::string(32, '\x20'));
  // Lengths that are not a digest are refused before anything is sent.
  std::vector<uint8_t> odd(33, 1);
  EXPECT_EQ(tls::RequestSignature(fds_[1], odd).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(killed_.load(), 0);
}

TEST_F(SignChannelTest, WithoutASignerOrOnTokenErrorsTheAnswerIsAFailureByte) {
  Start();
  std::vector<uint8_t> digest(32, 7);
  EXPECT_EQ(tls::RequestSignature(fds_[1], digest).status().code(), absl::StatusCode::kInternal);
  server_.SetSigner([](std::span<const uint8_t>) -> absl::StatusOr<std::string> {
    return absl::InternalError("CKR_DEVICE_ERROR");
  });
  EXPECT_EQ(tls::RequestSignature(fds_[1], digest).status().code(), absl::StatusCode::kInternal);
  server_.SetSigner(
      [](std::span<const uint8_t>) -> absl::StatusOr<std::string> { return kSignature; });
  EXPECT_TRUE(tls::RequestSignature(fds_[1], digest).ok());  // the channel is still fine
}

TEST_F(SignChannelTest, AProtocolViolationClosesTheChannelAndEndsTheWorker) {
  server_.SetSigner(
      [](std::span<const uint8_t>) -> absl::StatusOr<std::string> { return kSignature; });
  Start();
  // 100 bytes is no digest: the broker closes the channel and asks for the worker's end.
  std::string junk(100, 'x');
  ASSERT_EQ(send(fds_[1], junk.data(), junk.size(), MSG_NOSIGNAL), 100);
  char buf[8];
  EXPECT_EQ(recv(fds_[1], buf, sizeof buf, 0), 0);  // EOF, no answer
  EXPECT_EQ(killed_.load(), 4242);
  std::vector<uint8_t> digest(32, 7);
  EXPECT_EQ(tls::RequestSignature(fds_[1], digest).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(SignChannelTest, SignaturesAreRateLimitedPerWorker) {
  server_.SetSigner(
      [](std::span<const uint8_t>) -> absl::StatusOr<std::string> { return kSignature; });
  Start();
  // 50 per second with a burst of 50 (this test's server): 100 signatures take about a second.
  std::vector<uint8_t> digest(32, 7);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(tls::RequestSignature(fds_[1], digest).ok()) << i;
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, std::chrono::milliseconds(900));
  EXPECT_EQ(killed_.load(), 0);  // slowed, not ended
}

}  // namespace
}  // namespace strongroom
