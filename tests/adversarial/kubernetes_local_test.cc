// Kubernetes auth in local-only mode (pem_keys, no kubernetes_host: no TokenReview) checks the
// token's issuer and audience, since nothing else will (issue 15, item 5). A service-account JWT
// minted by any cluster that shares a signing key, or issued for another audience (another
// service's projected token), must not log in.
// Vault API sections: Kubernetes auth, configure method (auth/kubernetes/config: pem_keys, issuer,
// disable_iss_validation), create role (audience), login.
#include <gmock/gmock.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <ctime>
#include <memory>

#include "tests/adversarial/adversarial.h"

namespace strongroom::testing {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;
using json = nlohmann::json;

constexpr char kIssuer[] = "https://kubernetes.default.svc.cluster.local";

std::string Base64Url(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

class KubernetesLocalTest : public AdversarialTest {
 protected:
  void SetUp() override {
    AdversarialTest::SetUp();
    key_.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)));
    ASSERT_NE(key_, nullptr);
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    ASSERT_EQ(PEM_write_bio_PUBKEY(bio.get(), key_.get()), 1);
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    ASSERT_GT(len, 0);
    public_pem_.assign(data, static_cast<size_t>(len));
    ASSERT_EQ(d_.Root("POST", "/v1/sys/auth/kubernetes", {{"type", "kubernetes"}}).status, 204);
  }

  // A projected service-account token (apps/web) signed with the configured key.
  std::string Jwt(const std::string& issuer, const std::string& audience) {
    const int64_t now = static_cast<int64_t>(std::time(nullptr));
    const json claims = {
        {"iss", issuer},
        {"aud", json::array({audience})},
        {"sub", "system:serviceaccount:apps:web"},
        {"iat", now - 10},
        {"nbf", now - 10},
        {"exp", now + 3600},
        {"kubernetes.io",
         {{"namespace", "apps"},
          {"serviceaccount", {{"name", "web"}, {"uid", "2d6a0c4e-5b0e-4c1e-9f3a-1f2e3d4c5b6a"}}}}}};
    const std::string input =
        Base64Url(json({{"alg", "RS256"}, {"typ", "JWT"}}).dump()) + "." + Base64Url(claims.dump());
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    size_t len = 0;
    EXPECT_EQ(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()), 1);
    const auto* in = reinterpret_cast<const unsigned char*>(input.data());
    EXPECT_EQ(EVP_DigestSign(ctx.get(), nullptr, &len, in, input.size()), 1);
    std::string sig(len, '\0');
    EXPECT_EQ(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in,
                             input.size()),
              1);
    sig.resize(len);
    return input + "." + Base64Url(sig);
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
