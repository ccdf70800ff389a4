// The CSI provider's token cache against a real appliance, in process with an injected clock:
// a cached token is used until two thirds into its lease, then renewed (renew-self) rather than
// replaced; a token that cannot be renewed (a batch token) is replaced by a new login; one past
// its expiry is never used. The appliance sees real time, the cache sees the test's clock.
// Vault API sections: Kubernetes auth login (§5.2), token renew-self (§2).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "cli/csi/params.h"
#include "cli/csi/provider.h"
#include "cli/csi/token_cache.h"
#include "tests/support/daemon.h"
#include "tests/support/fake_kube.h"

namespace strongroom::testing {
namespace {

using json = nlohmann::json;

class CsiRenewalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(d_.Start()) << d_.Log();
    d_.Init();
    kube_ = FakeKube::Start();
    ASSERT_NE(kube_, nullptr);
    ASSERT_EQ(d_.Root("POST", "/v1/sys/mounts/secret", {{"type", "kv-v2"}}).status, 204);
    ASSERT_EQ(d_.Root("POST", "/v1/sys/auth/kubernetes", {{"type", "kubernetes"}}).status, 204);
    ASSERT_EQ(d_.Root("POST", "/v1/auth/kubernetes/config",
                      {{"kubernetes_host", kube_->Str("url")},
                       {"kubernetes_ca_cert", kube_->Str("caPem")},
                       {"token_reviewer_jwt", kube_->Str("reviewerToken")}})
                  .status,
              204);
    ASSERT_EQ(d_.Root("PUT", "/v1/sys/policies/acl/reader",
                      {{"policy", "path \"secret/data/app\" { capabilities = [\"read\"] }\n"}})
                  .status,
              204);
    ASSERT_EQ(d_.Root("POST", "/v1/secret/data/app", {{"data", {{"k", "v-renewal-test"}}}}).status,
              200);
  }

  void Role(const std::string& name, const json& extra) {
    json body = {{"bound_service_account_names", "web"},
                 {"bound_service_account_namespaces", "apps"},
                 {"audience", "vault"},
                 {"policies", "reader"}};
    body.update(extra);
    auto r = d_.Root("POST", "/v1/auth/kubernetes/role/" + name, body);
    ASSERT_EQ(r.status, 204) << r.body;
  }

  csi::MountParams Params(const std::string& role) {
    const std::string jwt = kube_->Token({{"namespace", "apps"},
                                          {"name", "web"},
                                          {"audiences", {"vault"}},
                                          {"pod", {{"name", "web-0"}, {"uid", "0000-1"}}}});
    json a = {
        {"roleName", role},
        {"objects", "- {objectName: k, secretPath: secret/data/app, secretKey: k}"},
        {"csi.storage.k8s.io/pod.name", "web-0"},
        {"csi.storage.k8s.io/pod.namespace", "apps"},
        {"csi.storage.k8s.io/pod.uid", "0000-1"},
        {"csi.storage.k8s.io/serviceAccount.name", "web"},
        {"csi.storage.k8s.io/serviceAccount.tokens", json({{"vault", {{"token", jwt}}}}).dump()}};
    auto p = csi::ParseMountRequest(a.dump(), "/target", "420");
    EXPECT_TRUE(p.ok()) << p.status();
    return *p;
  }

  // Tokens the Kubernetes login has issued so far that are still alive.
  int LiveKubernetesTokens() {
    auto list = d_.Root("LIST", "/v1/auth/token/accessors");
    const json accessors = list.Json()["data"]["keys"];
    int n = 0;
    for (const json& a : accessors) {
      auto info = d_.Root("POST", "/v1/auth/token/lookup-accessor", {{"accessor", a}});
      n += info.Json()["data"]["path"] == "auth/kubernetes/login";
    }
    return n;
  }

  Daemon d_;
  std::unique_ptr<FakeKube> kube_;
  absl::Time now_ = absl::Now();
};

TEST_F(CsiRenewalTest, RenewedTwoThirdsIntoTheLeaseThenReplacedAfterExpiry) {
  Role("svc", {{"ttl", "1h"}, {"max_ttl", "4h"}});
  csi::TokenCache cache(10, [this] { return now_; });
  csi::ProviderConfig config;
  config.vault_address = "http://127.0.0.1:" + std::to_string(d_.port());
  csi::Provider provider(config, std::string(32, 'k'), &cache, nullptr);
  const csi::MountParams params = Params("svc");

  auto r = provider.Mount(params);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->logged_in);
  EXPECT_EQ(r->files[0].contents, "v-renewal-test");
  EXPECT_EQ(LiveKubernetesTokens(), 1);

  now_ += absl::Minutes(30);  // before two thirds: the cached token as it is
  r = provider.Mount(params);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->logged_in);

  now_ += absl::Minutes(11);  // 41 minutes: renewed, not replaced
  r = provider.Mount(params);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->logged_in);
  EXPECT_EQ(LiveKubernetesTokens(), 1);
  auto lookup = d_.Root("LIST", "/v1/auth/token/accessors");
  int renewed = 0;
  for (const json& a : json(lookup.Json()["data"]["keys"])) {
    auto info = d_.Root("POST", "/v1/auth/token/lookup-accessor", {{"accessor", a}});
    renewed += info.Json()["data"].contains("last_renewal_time");
  }
  EXPECT_EQ(renewed, 1) << "renew-self reached the appliance";

  now_ += absl::Minutes(30);  // within the renewed lease (renewed at 41 min for 1 h)
  r = provider.Mount(params);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->logged_in);

  now_ += absl::Hours(2);  // past the cached expiry: never used, a new login
  r = provider.Mount(params);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->logged_in);
  EXPECT_EQ(LiveKubernetesTokens(), 2);
}

TEST_F(CsiRenewalTest, ATokenThatCannotBeRenewedIsReplaced) {
  Role("batch", {{"ttl", "1h"}, {"token_type", "batch"}});
  csi::TokenCache cache(10, [this] { return now_; });
  csi::ProviderConfig config;
  config.vault_address = "http://127.0.0.1:" + std::to_string(d_.port());
  csi::Provider provider(config, std::string(32, 'k'), &cache, nullptr);
  const csi::MountParams params = Params("batch");
  auto r = provider.Mount(params);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->logged_in);
  now_ += absl::Minutes(10);
  r = provider.Mount(params);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->logged_in);
  now_ += absl::Minutes(31);  // two thirds in: a batch token is not renewable, so a new login
  r = provider.Mount(params);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->logged_in);
}

}  // namespace
}  // namespace strongroom::testing
