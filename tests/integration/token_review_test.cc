// The Kubernetes TokenReview client against the fake API server of tests/e2e/fake_kube.js.
// Vault API section: Kubernetes auth login, step 4 (§5.2).
// Needs node: without it these tests fail (they do not skip).
#include "appliance/engines/token_review.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "tests/support/fake_kube.h"

namespace strongroom::engines {
namespace {

using ::strongroom::testing::FakeKube;

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;
using json = nlohmann::json;

constexpr char kVaultUnauthorized[] =
    "lookup failed: service account unauthorized; this could mean it has been deleted or "
    "recreated with a new token";

class TokenReviewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_ = FakeKube::Start();
    ASSERT_NE(fake_, nullptr);
  }

  // A request for the fake's good token, with its CA and the reviewer token.
  TokenReviewRequest Request(const std::string& token_key = "good") const {
    TokenReviewRequest r;
    r.host = fake_->Str("url");
    r.ca_pem = fake_->Str("caPem");
    r.bearer = fake_->Str("reviewerToken");
    r.token = fake_->Str(token_key.c_str());
    r.audiences = {fake_->Str("audience")};
    r.timeout = absl::Seconds(10);
    return r;
  }

  std::unique_ptr<FakeKube> fake_;
};

TEST_F(TokenReviewTest, AuthenticatesAGoodToken) {
  auto r = ReviewToken(Request());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->authenticated);
  EXPECT_EQ(r->username, "system:serviceaccount:apps:web");
  EXPECT_EQ(r->uid, fake_->Str("uid"));
  EXPECT_THAT(r->audiences, ElementsAre("vault"));
  EXPECT_THAT(r->error, IsEmpty());

  auto es = ReviewToken(Request("goodEs256"));
  ASSERT_TRUE(es.ok()) << es.status();
  EXPECT_TRUE(es->authenticated);
  EXPECT_EQ(es->uid, fake_->Str("uid"));
}

TEST_F(TokenReviewTest, SendsWhatVaultSends) {
  ASSERT_TRUE(ReviewToken(Request()).ok());
  json req = fake_->LastRequest();
  ASSERT_TRUE(req.is_object()) << req;
  EXPECT_EQ(req["method"], "POST");
  EXPECT_EQ(req["url"], "/apis/authentication.k8s.io/v1/tokenreviews");
  EXPECT_EQ(req["headers"]["authorization"], "Bearer " + fake_->Str("reviewerToken"));
  EXPECT_EQ(req["headers"]["content-type"], "application/json");
  EXPECT_EQ(req["headers"]["accept"], "application/json");
  EXPECT_EQ(req["headers"]["host"], fake_->Str("url").substr(strlen("https://")));
  EXPECT_EQ(req["body"], R"({"metadata":{"creationTimestamp":null},"spec":{"token":")" +
                             fake_->Str("good") +
                             R"(","audiences":["vault"]},"status":{"user":{}}})");
  EXPECT_TRUE(req["servername"].is_null()) << "no SNI for an IP address";
}

TEST_F(TokenReviewTest, ReportsTheServersErrorForBadTokens) {
  auto expired = ReviewToken(Request("expired"));
  ASSERT_TRUE(expired.ok()) << expired.status();
  EXPECT_FALSE(expired->authenticated);
  EXPECT_EQ(expired->error, "[invalid bearer token, service account token has expired]");
  EXPECT_THAT(expired->username, IsEmpty());

  for (const char* key : {"wrongKey", "unsigned"}) {
    auto r = ReviewToken(Request(key));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_FALSE(r->authenticated) << key;
    EXPECT_THAT(r->error, HasSubstr("invalid bearer token")) << key;
  }

  TokenReviewRequest other_audience = Request();
  other_audience.audiences = {"not-vault"};
  auto aud = ReviewToken(other_audience);
  ASSERT_TRUE(aud.ok()) << aud.status();
  EXPECT_FALSE(aud->authenticated);
  EXPECT_THAT(aud->error, HasSubstr("is invalid for the target audiences [\"not-vault\"]"));

  EXPECT_EQ(fake_->Command("revoke " + fake_->Str("uid")), json({{"ok", true}}));
  auto revoked = ReviewToken(Request());
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_FALSE(revoked->authenticated);
  EXPECT_EQ(revoked->error, "[invalid bearer token, service account token has been invalidated]");
}

TEST_F(TokenReviewTest, UnauthorizedBearerGivesVaultsMessage) {
  TokenReviewRequest r = Request();
  r.bearer = "not-the-reviewer-token";
  auto result = ReviewToken(r);
  ASSERT_TRUE(absl::IsPermissionDenied(result.status())) << result.status();
  EXPECT_EQ(result.status().message(), kVaultUnauthorized);
}

TEST_F(TokenReviewTest, ServiceAccountBearerAndRbac) {
  TokenReviewRequest r = Request();
  r.bearer = fake_->Str("saBearer");
  auto ok = ReviewToken(r);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(ok->authenticated);

  r.bearer = fake_->Str("forbiddenBearer");
  auto forbidden = ReviewToken(r);
  ASSERT_TRUE(absl::IsPermissionDenied(forbidden.status())) << forbidden.status();
  EXPECT_EQ(forbidden.status().message(),
            "TokenReview failed: 403 tokenreviews.authentication.k8s.io is forbidden: User "
            "\"system:serviceaccount:default:no-rbac\" cannot create resource \"tokenreviews\" in "
            "API group \"authentication.k8s.io\" at the cluster scope");
}

TEST_F(TokenReviewTest, OtherHttpFailures) {
  const std::string token = fake_->Str("good");
  // Non-2xx without a Status object: the reason phrase.
  fake_->Command(R"(respond-next {"status":500,"body":"<html>oops</html>"})");
  auto r = ReviewToken(Request());
  ASSERT_TRUE(absl::IsPermissionDenied(r.status())) << r.status();
  EXPECT_EQ(r.status().message(), "TokenReview failed: 500 Internal Server Error");

  // A Status message that echoes the credentials has them redacted.
  json status = {{"kind", "Status"},
                 {"apiVersion", "v1"},
                 {"status", "Failure"},
                 {"message", "bad token " + token + " from " + fake_->Str("reviewerToken")},
                 {"code", 400}};
  fake_->Command("respond-next " + json({{"status", 400}, {"body", status.dump()}}).dump());
  r = ReviewToken(Request());
  ASSERT_TRUE(absl::IsPermissionDenied(r.status())) << r.status();
  EXPECT_EQ(r.status().message(), "TokenReview failed: 400 bad token [redacted] from [redacted]");

  // A 2xx Status that is not Success is a failure too (as in client-go).
  status["message"] = "nope";
  fake_->Command("respond-next " + json({{"status", 200}, {"body", status.dump()}}).dump());
  r = ReviewToken(Request());
  ASSERT_TRUE(absl::IsPermissionDenied(r.status())) << r.status();
  EXPECT_EQ(r.status().message(), "TokenReview failed: 200 nope");

  fake_->Command(R"(respond-next {"status":201,"body":"not json"})");
  r = ReviewToken(Request());
  ASSERT_TRUE(absl::IsPermissionDenied(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("malformed response"));

  // Bodies over 1 MiB are refused.
  const std::string big = R"({"status":{"error":")" + std::string(1100000, 'x') + "\"}}";
  fake_->Command("respond-next " + json({{"status", 201}, {"body", big}}).dump());
  r = ReviewToken(Request());
  ASSERT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("larger than 1 MiB"));

  // None of the messages carries the credentials.
  EXPECT_THAT(std::string(r.status().message()), Not(HasSubstr(token)));
}

TEST_F(TokenReviewTest, RefusesAnUntrustedServer) {
  TokenReviewRequest r = Request();
  r.ca_pem = fake_->Str("otherCaPem");
  auto wrong_ca = ReviewToken(r);
  ASSERT_TRUE(absl::IsUnavailable(wrong_ca.status())) << wrong_ca.status();
  EXPECT_THAT(wrong_ca.status().message(), HasSubstr("TLS handshake"));
  EXPECT_THAT(wrong_ca.status().message(), HasSubstr("certificate verify failed"));

  // No kubernetes_ca_cert: the system's CAs, which do not know the fake's CA.
  r.ca_pem.clear();
  auto system_ca = ReviewToken(r);
  ASSERT_TRUE(absl::IsUnavailable(system_ca.status())) << system_ca.status();
  EXPECT_THAT(system_ca.status().message(), HasSubstr("certificate verify failed"));

  EXPECT_THAT(std::string(system_ca.status().message()), Not(HasSubstr(r.token)));
  EXPECT_THAT(std::string(system_ca.status().message()), Not(HasSubstr(r.bearer)));
}

// The certificate names DNS:localhost only: https://localhost works (with SNI and the path
// prefix), https://127.0.0.1 does not, because an IP literal is matched against IP SANs only.
TEST(TokenReviewHostNameTest, VerifiesTheNameAndKeepsThePrefix) {
  auto fake = FakeKube::Start({"--san", "DNS:localhost", "--prefix", "/k8s"});
  ASSERT_NE(fake, nullptr);
  const std::string url = fake->Str("url");  // https://127.0.0.1:<port>/k8s
  const std::string port = url.substr(url.rfind(':') + 1, url.find("/k8s") - url.rfind(':') - 1);
  TokenReviewRequest r;
  r.ca_pem = fake->Str("caPem");
  r.bearer = fake->Str("reviewerToken");
  r.token = fake->Str("good");
  r.audiences = {"vault"};

  r.host = "https://localhost:" + port + "/k8s/";
  auto ok = ReviewToken(r);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(ok->authenticated);
  json req = fake->LastRequest();
  EXPECT_EQ(req["url"], "/k8s/apis/authentication.k8s.io/v1/tokenreviews");
  EXPECT_EQ(req["servername"], "localhost");
  EXPECT_EQ(req["headers"]["host"], "localhost:" + port);

  r.host = url;
  auto mismatch = ReviewToken(r);
  ASSERT_TRUE(absl::IsUnavailable(mismatch.status())) << mismatch.status();
  EXPECT_THAT(mismatch.status().message(), HasSubstr("IP address mismatch"));
}

TEST(TokenReviewHostNameTest, AnIpAddressIsNotMatchedAgainstDnsNames) {
  auto fake = FakeKube::Start({"--san", "DNS:127.0.0.1"});
  ASSERT_NE(fake, nullptr);
  TokenReviewRequest r;
  r.host = fake->Str("url");
  r.ca_pem = fake->Str("caPem");
  r.bearer = fake->Str("reviewerToken");
  r.token = fake->Str("good");
  auto result = ReviewToken(r);
  ASSERT_TRUE(absl::IsUnavailable(result.status())) << result.status();
  EXPECT_THAT(result.status().message(), HasSubstr("IP address mismatch"));

  // And a name is not matched against IP SANs.
  auto by_ip = FakeKube::Start({"--san", "IP:127.0.0.1"});
  ASSERT_NE(by_ip, nullptr);
  const std::string url = by_ip->Str("url");
  r.host = "https://localhost:" + url.substr(url.rfind(':') + 1);
  r.ca_pem = by_ip->Str("caPem");
  r.bearer = by_ip->Str("reviewerToken");
  r.token = by_ip->Str("good");
  result = ReviewToken(r);
  ASSERT_TRUE(absl::IsUnavailable(result.status())) << result.status();
  EXPECT_THAT(result.status().message(), HasSubstr("hostname mismatch"));
}

// OpenSSL's X509_check_host (and so host_name_verification) falls back to the subject CN when a
// certificate has no DNS SAN; Go, and so Vault, does not. Neither do we.
TEST(TokenReviewHostNameTest, TheSubjectCommonNameIsNotEnough) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--no-san", "--cn", "localhost"},
        std::vector<std::string>{"--san", "IP:127.0.0.1", "--cn", "localhost"}}) {
    auto fake = FakeKube::Start(args);
    ASSERT_NE(fake, nullptr);
    const std::string url = fake->Str("url");
    TokenReviewRequest r;
    r.host = "https://localhost:" + url.substr(url.rfind(':') + 1);
    r.ca_pem = fake->Str("caPem");
    r.bearer = fake->Str("reviewerToken");
    r.token = fake->Str("good");
    auto result = ReviewToken(r);
    ASSERT_TRUE(absl::IsUnavailable(result.status())) << args[1] << ": " << result.status();
    EXPECT_THAT(result.status().message(), HasSubstr("hostname mismatch"));
  }
}

// A loopback socket bound and listening; the kernel completes connects, nobody ever answers.
class SilentListener {
 public:
  SilentListener() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 || listen(fd_, 8) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "cannot listen on loopback";
    }
    port_ = ntohs(addr.sin_port);
  }
  ~SilentListener() { close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST(TokenReviewTimeoutTest, AServerThatNeverAnswersCannotHoldTheCall) {
  SilentListener listener;
  TokenReviewRequest r;
  r.host = "https://127.0.0.1:" + std::to_string(listener.port());
  r.bearer = "reviewer";
  r.token = "token";
  r.timeout = absl::Seconds(1);
  auto result = ReviewToken(r);
  ASSERT_TRUE(absl::IsUnavailable(result.status())) << result.status();
  EXPECT_THAT(result.status().message(), HasSubstr("timed out"));
}

TEST(TokenReviewTimeoutTest, ConnectionRefusedAndUnresolvableHost) {
  int port = 0;
  {
    SilentListener gone;
    port = gone.port();
  }
  TokenReviewRequest r;
  r.host = "https://127.0.0.1:" + std::to_string(port);
  r.bearer = "reviewer";
  r.token = "token";
  r.timeout = absl::Seconds(5);
  auto refused = ReviewToken(r);
  ASSERT_TRUE(absl::IsUnavailable(refused.status())) << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr("connect"));

  r.host = "https://no-such-host.invalid";
  r.timeout = absl::Seconds(2);
  auto unresolvable = ReviewToken(r);
  ASSERT_TRUE(absl::IsUnavailable(unresolvable.status())) << unresolvable.status();
  EXPECT_THAT(unresolvable.status().message(), HasSubstr("resolve"));
}

TEST(TokenReviewArgumentsTest, RefusesBadHostsAndCredentials) {
  TokenReviewRequest r;
  r.bearer = "reviewer";
  r.token = "token";
  for (const char* host :
       {"http://127.0.0.1:6443", "HTTP://kube", "kube:6443", "", "https://", "https://:6443",
        "https://kube:0", "https://kube:65536", "https://kube:x", "https://user@kube",
        "https://kube/?q=1", "https://[::1", "https://[zz]:443", "https://ku be",
        "https://kube\r\nX: y"}) {
    r.host = host;
    auto result = ReviewToken(r);
    EXPECT_TRUE(absl::IsInvalidArgument(result.status())) << host << ": " << result.status();
  }
  r.host = "https://127.0.0.1:1";
  r.bearer = "a\r\nX-Injected: 1";
  EXPECT_TRUE(absl::IsInvalidArgument(ReviewToken(r).status()));
  r.bearer = "";
  EXPECT_TRUE(absl::IsInvalidArgument(ReviewToken(r).status()));
  r.bearer = "reviewer";
  r.ca_pem = "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
  EXPECT_TRUE(absl::IsInvalidArgument(ReviewToken(r).status()));
  r.ca_pem = "no pem at all";
  EXPECT_TRUE(absl::IsInvalidArgument(ReviewToken(r).status()));
}

TEST(TokenReviewBodyTest, MarshalsLikeGo) {
  EXPECT_EQ(TokenReviewBody("a.b.c", {"vault", "https://kubernetes.default.svc"}),
            R"({"metadata":{"creationTimestamp":null},"spec":{"token":"a.b.c","audiences":)"
            R"(["vault","https://kubernetes.default.svc"]},"status":{"user":{}}})");
  // No audiences: the field is omitted (omitempty).
  EXPECT_EQ(TokenReviewBody("t", {}),
            R"({"metadata":{"creationTimestamp":null},"spec":{"token":"t"},"status":{"user":{}}})");
  // encoding/json: HTML-safe escapes, short escapes, \u00XX, U+2028, invalid UTF-8 -> U+FFFD.
  EXPECT_EQ(TokenReviewBody("t", {"<a>&\"\\\n\t\x01\x7f\u2028\xff\xc3\xa9"}),
            R"({"metadata":{"creationTimestamp":null},"spec":{"token":"t","audiences":)"
            R"(["\u003ca\u003e\u0026\"\\\n\t\u0001)"
            "\x7f"
            R"(\u2028\ufffd)"
            "\xc3\xa9"
            R"("]},"status":{"user":{}}})");
}

}  // namespace
}  // namespace strongroom::engines
