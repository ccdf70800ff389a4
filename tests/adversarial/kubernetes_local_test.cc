// Kubernetes auth in local-only mode (pem_keys, no kubernetes_host: no TokenReview) checks the
// token's issuer and audience, since nothing else will (issue 15, item 5). A service-account JWT
// minted by any cluster that shares a signing key, or issued for another audience (another
// service's projected token), must not log in.
// Vault API sections: Kubernetes auth, configure method (auth/kubernetes/config: pem_keys, issuer,
// disable_iss_validation), create role (audience), login.
#include <gmock/gmock.h>
#include <openssl/evp.h>

#include <memory>

#include "tests/adversarial/adversarial.h"

namespace strongroom::testing {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;
using json = nlohmann::json;

constexpr char kIssuer[] = "https://kubernetes.default.svc.cluster.local";

class KubernetesLocalTest : public AdversarialTest {
 protected:
  void SetUp() override {
    AdversarialTest::SetUp();
    key_.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)));
    ASSERT_NE(key_, nullptr);
    public_pem_ = PublicKeyPem(key_.get());
    ASSERT_FALSE(public_pem_.empty());
    ASSERT_EQ(d_.Root("POST", "/v1/sys/auth/kubernetes", {{"type", "kubernetes"}}).status, 204);
  }

  // A projected service-account token (apps/web) signed with the configured key.
  std::string Jwt(const std::string& issuer, const std::string& audience) {
    return ServiceAccountJwt(key_.get(), issuer, audience);
  }

  HttpResponse Config(json body) {
    body["pem_keys"] = json::array({public_pem_});
    return d_.Root("POST", "/v1/auth/kubernetes/config", body);
  }
  void Role(const std::string& name, const std::string& audience) {
    json body = {{"bound_service_account_names", "web"},
                 {"bound_service_account_namespaces", "apps"},
                 {"token_policies", "default"}};
    if (!audience.empty()) body["audience"] = audience;
    ASSERT_EQ(d_.Root("POST", "/v1/auth/kubernetes/role/" + name, body).status, 204);
  }
  HttpResponse Login(const std::string& role, const std::string& jwt) {
    return d_.Call("POST", "/v1/auth/kubernetes/login",
                   json({{"role", role}, {"jwt", jwt}}).dump());
  }

  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key_{nullptr, EVP_PKEY_free};
  std::string public_pem_;
};

// Without kubernetes_host, a configuration must name the issuer, or opt out explicitly.
TEST_F(KubernetesLocalTest, LocalOnlyConfigNeedsIssuerOrExplicitOptOut) {
  auto w = Config(json::object());
  EXPECT_EQ(w.status, 400) << w.body;
  EXPECT_THAT(w.body, HasSubstr("issuer"));
  w = Config({{"disable_iss_validation", false}});
  EXPECT_EQ(w.status, 400) << w.body;
  EXPECT_THAT(w.body, HasSubstr("issuer"));
  EXPECT_EQ(d_.Root("GET", "/v1/auth/kubernetes/config").status, 404);

  EXPECT_EQ(Config({{"issuer", kIssuer}}).status, 204);
  EXPECT_EQ(Config({{"disable_iss_validation", true}}).status, 204);
  auto read = d_.Root("GET", "/v1/auth/kubernetes/config");
  ASSERT_EQ(read.status, 200) << read.body;
  EXPECT_EQ(read.Json()["data"]["disable_iss_validation"], true);
}

// A token from another issuer, or for another audience, does not log in.
TEST_F(KubernetesLocalTest, LocalOnlyLoginChecksIssuerAndAudience) {
  // Before the fix, a configuration without issuer and a role without audience were accepted;
  // then any token the key signed logged in, whoever issued it and for whatever audience. Now
  // the configuration is refused (400 at login: not configured).
  (void)Config(json::object());
  Role("any-audience", "");
  auto stray = Login("any-audience", Jwt("https://other-cluster.example", "some-other-service"));
  EXPECT_THAT(stray.status, AnyOf(400, 403)) << stray.body;

  ASSERT_EQ(Config({{"issuer", kIssuer}}).status, 204);
  Role("web", "vault");
  EXPECT_EQ(Login("web", Jwt("https://other-cluster.example", "vault")).status, 403);
  EXPECT_EQ(Login("web", Jwt(kIssuer, "some-other-service")).status, 403);
  auto ok = Login("web", Jwt(kIssuer, "vault"));
  EXPECT_EQ(ok.status, 200) << ok.body;

  // A role without audience refuses every login in this mode, and the log says why.
  auto no_aud = Login("any-audience", Jwt(kIssuer, "vault"));
  EXPECT_EQ(no_aud.status, 403) << no_aud.body;
  EXPECT_TRUE(d_.WaitForLog("kubernetes login refused")) << d_.Log();
  EXPECT_THAT(d_.Log(), HasSubstr("role any-audience has no audience"));

  // An explicit opt-out of issuer validation is honoured; the audience still is checked.
  ASSERT_EQ(Config({{"disable_iss_validation", true}}).status, 204);
  EXPECT_EQ(Login("web", Jwt("https://other-cluster.example", "vault")).status, 200);
  EXPECT_EQ(Login("web", Jwt("https://other-cluster.example", "other")).status, 403);
  EXPECT_EQ(Login("any-audience", Jwt(kIssuer, "vault")).status, 403);
}

}  // namespace
}  // namespace strongroom::testing
