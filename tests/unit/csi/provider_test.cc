// The parts of the CSI provider that need no server: the token cache (bound, LRU, renewal times
// with an injected clock), secretPath splitting, object versions and the TokenRequest body. The
// mounts themselves run against a real appliance in tests/integration/csi_provider_test.cc.
#include "cli/csi/provider.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "cli/csi/kube_token.h"
#include "cli/csi/params.h"
#include "cli/csi/token_cache.h"

namespace strongroom::csi {
namespace {

using ::testing::HasSubstr;
using njson = nlohmann::json;

TEST(CsiTokenCacheTest, BoundedLeastRecentlyUsedFirst) {
  TokenCache cache(2);
  cache.Put("a", cache.Make("ta", 60, true));
  cache.Put("b", cache.Make("tb", 60, true));
  ASSERT_TRUE(cache.Get("a").has_value());  // a is now the most recent
  cache.Put("c", cache.Make("tc", 60, true));
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_FALSE(cache.Get("b").has_value());
  EXPECT_EQ(cache.Get("a")->token, "ta");
  EXPECT_EQ(cache.Get("c")->token, "tc");

  // Erase only removes the token it was asked to (a newer one put meanwhile stays).
  cache.Put("a", cache.Make("ta2", 60, true));
  cache.Erase("a", "ta");
  EXPECT_EQ(cache.Get("a")->token, "ta2");
  cache.Erase("a", "ta2");
  EXPECT_FALSE(cache.Get("a").has_value());

  TokenCache none(0);
  none.Put("a", none.Make("t", 60, true));
  EXPECT_FALSE(none.Get("a").has_value());
  EXPECT_EQ(none.size(), 0u);
}

TEST(CsiTokenCacheTest, RenewalTwoThirdsIntoTheLease) {
  absl::Time now = absl::FromUnixSeconds(1700000000);
  TokenCache cache(10, [&] { return now; });
  CachedToken t = cache.Make("t", 3600, true);
  EXPECT_EQ(t.renew_at, now + absl::Seconds(2400));
  EXPECT_EQ(t.expires_at, now + absl::Seconds(3600));
  EXPECT_TRUE(t.renewable);
  CachedToken forever = cache.Make("root-like", 0, false);
  EXPECT_EQ(forever.renew_at, absl::InfiniteFuture());
  EXPECT_EQ(forever.expires_at, absl::InfiniteFuture());
  EXPECT_EQ(cache.Make("t", 1, false).renew_at, now + absl::Seconds(1));
}

TEST(CsiSecretPathTest, SplitsAsVaultsProvider) {
  struct Case {
    const char* in;
    const char* path;
    const char* query;
  };
  for (const Case& c :
       {Case{"secret/data/a", "secret/data/a", ""}, Case{"/v1/secret/data/a", "secret/data/a", ""},
        Case{"v1/secret/data/a", "secret/data/a", ""}, Case{"/secret/data/a", "secret/data/a", ""},
        Case{"secret/data/a?version=2", "secret/data/a", "version=2"},
        Case{"pki/issue/web/", "pki/issue/web", ""}}) {
    auto r = SplitSecretPath(c.in);
    ASSERT_TRUE(r.ok()) << c.in << ": " << r.status();
    EXPECT_EQ(r->path, c.path) << c.in;
    EXPECT_EQ(r->query, c.query) << c.in;
  }
  EXPECT_FALSE(SplitSecretPath("/v1/").ok());
  EXPECT_FALSE(SplitSecretPath("secret/a?x=1 2").ok());
  EXPECT_FALSE(SplitSecretPath("secret/a?x=1#f").ok());
}

TEST(CsiVersionTest, ChangesExactlyWithContentOrConfiguration) {
  TokenCache cache(1);
  Provider p(ProviderConfig{}, std::string(32, 'k'), &cache, nullptr);
  auto objects = ParseObjects(
      "- {objectName: a, secretPath: secret/data/x, secretKey: k}\n"
      "- {objectName: b, secretPath: secret/data/x, secretKey: k}\n"
      "- {objectName: a2, secretPath: secret/data/x, secretKey: k, filePermission: 0400}");
  ASSERT_TRUE(objects.ok()) << objects.status();
  const ObjectSpec& a = (*objects)[0];
  const std::string v1 = p.Version(a, "sk-live-1");
  EXPECT_EQ(v1.size(), 44u);  // base64url of 32 bytes, padded
  EXPECT_EQ(v1.find_first_of("+/"), std::string::npos);
  EXPECT_EQ(p.Version(a, "sk-live-1"), v1);
  EXPECT_NE(p.Version(a, "sk-live-2"), v1);
  // The same content under another configuration is another version (versions of different
  // objects holding the same secret cannot be matched up).
  EXPECT_NE(p.Version((*objects)[1], "sk-live-1"), v1);
  EXPECT_NE(p.Version((*objects)[2], "sk-live-1"), v1);
  // Another Vault, Vault namespace or pod namespace (the mount's scope): another version.
  EXPECT_NE(p.Version(a, "sk-live-1", "[\"https://other:8200\",\"\",\"apps\"]"), v1);
  EXPECT_NE(p.Version(a, "sk-live-1", "[\"https://vault:8200\",\"\",\"apps\"]"),
            p.Version(a, "sk-live-1", "[\"https://vault:8200\",\"\",\"other\"]"));
  // Another key (another cluster, or a restart without -hmac-key-file): other versions.
  Provider q(ProviderConfig{}, std::string(32, 'q'), &cache, nullptr);
  EXPECT_NE(q.Version(a, "sk-live-1"), v1);
}

TEST(CsiTokenRequestTest, BodyAsVaultsProviderSendsIt) {
  PodInfo pod;
  pod.name = "lobstack-api-0";
  pod.uid = "6a7b2c1e-0000-4000-8000-000000000001";
  pod.namespace_ = "lobstack-control-plane";
  pod.service_account_name = "lobstack-api";
  EXPECT_EQ(njson::parse(TokenRequester::Body(pod, "vault")),
            njson::parse(R"({"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest",
              "spec":{"audiences":["vault"],"expirationSeconds":900,
                      "boundObjectRef":{"kind":"Pod","apiVersion":"v1","name":"lobstack-api-0",
                                        "uid":"6a7b2c1e-0000-4000-8000-000000000001"}}})"));
  EXPECT_EQ(njson::parse(TokenRequester::Body(pod, ""))["spec"]["audiences"], njson::array());

  TokenRequester requester(
      KubeApiConfig{"https://127.0.0.1:1", "", "/nonexistent", absl::Seconds(1)});
  PodInfo partial = pod;
  partial.uid.clear();
  auto r = requester.ServiceAccountToken(partial, "vault");
  ASSERT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("podInfoOnMount"));
  r = requester.ServiceAccountToken(pod, "vault");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("/nonexistent"));
}

}  // namespace
}  // namespace strongroom::csi
