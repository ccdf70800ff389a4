// TTL arithmetic near 2^63 (issue 15, item 8): a duration the server cannot represent answers
// 400; one it can represent is clamped to the mount's max, and the token or secret stays usable.
// Vault API sections: token create / renew-self (auth/token/create, auth/token/renew-self,
// auth/token/roles/:name), KV v2 config and metadata (secret/config, secret/metadata/:path,
// delete_version_after), sys/mounts/:path/tune; durations as parseutil.ParseDurationSecond reads
// them (integer seconds, Go durations, "<n>d").
#include <gmock/gmock.h>

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "tests/adversarial/adversarial.h"

namespace strongroom::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using json = nlohmann::json;

constexpr int64_t kSystemMaxTtl = 768 * 3600;  // the test daemon's max_lease_ttl

// Durations beyond what a Go time.Duration (int64 nanoseconds, ~292 years) can hold.
std::vector<json> Unrepresentable() {
  return {json("9223372036854775807"), json(INT64_MAX),  json("106751991167300d"),
          json(int64_t{1} << 62),      json("2562048h"), json("9223372037")};
}

class TtlTest : public AdversarialTest {
 protected:
  // The token answers lookup-self and has a TTL in (0, max].
  void ExpectUsable(const std::string& token, const std::string& what) {
    auto look = As(token, "GET", "/v1/auth/token/lookup-self");
    ASSERT_EQ(look.status, 200) << what << ": the token is dead: " << look.body;
    const int64_t ttl = look.Json()["data"]["ttl"].get<int64_t>();
    EXPECT_GT(ttl, 0) << what;
    EXPECT_LE(ttl, kSystemMaxTtl) << what;
  }
};

TEST_F(TtlTest, HugeCreateTtlsAnswer400) {
  for (const char* field : {"ttl", "explicit_max_ttl", "period"}) {
    for (const json& v : Unrepresentable()) {
      auto r = d_.Root("POST", "/v1/auth/token/create",
                       {{"policies", json::array({"default"})}, {field, v}});
      EXPECT_EQ(r.status, 400) << field << "=" << v.dump() << ": " << r.body;
    }
  }
}

TEST_F(TtlTest, LargeRepresentableCreateTtlsAreClampedAndTheTokenWorks) {
  // 9e9 s (285 years) fits a Go duration; the system max (768h) caps what the token gets.
  for (const char* field : {"ttl", "explicit_max_ttl", "period"}) {
    for (const json& v : {json(9000000000), json("9223372036"), json("106751d")}) {
      auto r = d_.Root("POST", "/v1/auth/token/create",
                       {{"policies", json::array({"default"})}, {field, v}});
      ASSERT_EQ(r.status, 200) << field << "=" << v.dump() << ": " << r.body;
      const auto auth = r.Json()["auth"];
      EXPECT_GT(auth["lease_duration"].get<int64_t>(), 0) << field;
      EXPECT_LE(auth["lease_duration"].get<int64_t>(), kSystemMaxTtl) << field;
      ExpectUsable(auth["client_token"].get<std::string>(), std::string(field) + "=" + v.dump());
    }
  }
}

TEST_F(TtlTest, HugeRenewIncrementIsRefusedOrCappedAndTheTokenWorks) {
  for (const json& inc : {json("9223372036854775807"), json(INT64_MAX), json(int64_t{1} << 62),
                          json("106751991167300d"), json(9000000000)}) {
    const std::string t = CreateToken({{"policies", json::array({"default"})}, {"ttl", "1h"}});
    ASSERT_FALSE(t.empty());
    auto r = As(t, "POST", "/v1/auth/token/renew-self", {{"increment", inc}});
    EXPECT_TRUE(r.status == 400 || r.status == 200) << inc.dump() << ": " << r.body;
    if (r.status == 200) {
      const int64_t granted = r.Json()["auth"]["lease_duration"].get<int64_t>();
      EXPECT_GT(granted, 0) << inc.dump();
      EXPECT_LE(granted, kSystemMaxTtl) << inc.dump();
    }
    ExpectUsable(t, "renew-self increment " + inc.dump());
    // The same through auth/token/renew (the token in the body).
    auto r2 = d_.Root("POST", "/v1/auth/token/renew", {{"token", t}, {"increment", inc}});
    EXPECT_TRUE(r2.status == 400 || r2.status == 200) << inc.dump() << ": " << r2.body;
    ExpectUsable(t, "renew increment " + inc.dump());
  }
}

TEST_F(TtlTest, TokenRoleTtlsAreCheckedAndClamped) {
  for (const json& v : Unrepresentable()) {
    auto w = d_.Root("POST", "/v1/auth/token/roles/r", {{"token_explicit_max_ttl", v}});
    EXPECT_EQ(w.status, 400) << v.dump() << ": " << w.body;
    auto p = d_.Root("POST", "/v1/auth/token/roles/r", {{"token_period", v}});
    EXPECT_EQ(p.status, 400) << v.dump() << ": " << p.body;
  }
  ASSERT_EQ(d_.Root("POST", "/v1/auth/token/roles/big",
                    {{"token_period", 9000000000}, {"allowed_policies", "default"}})
                .status,
            204);
  auto c = d_.Root("POST", "/v1/auth/token/create/big", json::object());
  ASSERT_EQ(c.status, 200) << c.body;
  ExpectUsable(c.Json()["auth"]["client_token"].get<std::string>(), "role token_period 9e9");
}

TEST_F(TtlTest, AuthMethodRoleTtlsAreCheckedAndClamped) {
  ASSERT_EQ(d_.Root("POST", "/v1/sys/auth/approle", {{"type", "approle"}}).status, 204);
  for (const json& v : Unrepresentable()) {
    for (const char* field : {"token_ttl", "token_max_ttl", "token_period", "secret_id_ttl"}) {
      auto w =
          d_.Root("POST", "/v1/auth/approle/role/r", {{"token_policies", "default"}, {field, v}});
      EXPECT_EQ(w.status, 400) << field << "=" << v.dump() << ": " << w.body;
    }
  }
  ASSERT_EQ(d_.Root("POST", "/v1/auth/approle/role/r",
                    {{"token_policies", "default"}, {"token_period", 9000000000}})
                .status,
            204);
  auto login = AppRoleLogin("r");
  ASSERT_EQ(login.status, 200) << login.body;
  ExpectUsable(login.Json()["auth"]["client_token"].get<std::string>(), "approle period 9e9");
}

TEST_F(TtlTest, DaysSuffixIsVaultsTwentyFourHours) {
  auto r = d_.Root("POST", "/v1/auth/token/create",
                   {{"policies", json::array({"default"})}, {"ttl", "2d"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Json()["auth"]["lease_duration"].get<int64_t>(), 172800);
  ASSERT_EQ(d_.Root("POST", "/v1/secret/config", {{"delete_version_after", "2d"}}).status, 204);
  auto cfg = d_.Root("GET", "/v1/secret/config");
  ASSERT_EQ(cfg.status, 200) << cfg.body;
  EXPECT_EQ(cfg.Json()["data"]["delete_version_after"], "48h0m0s");
  // Only "<integer>d": Go's parser knows no "d" unit inside a compound duration.
  EXPECT_EQ(d_.Root("POST", "/v1/auth/token/create", {{"ttl", "1d12h"}}).status, 400);
  EXPECT_EQ(d_.Root("POST", "/v1/auth/token/create", {{"ttl", "-1d"}}).status, 400);
  EXPECT_EQ(d_.Root("POST", "/v1/auth/token/create", {{"ttl", "inf"}}).status, 400);
}

TEST_F(TtlTest, KvDeleteVersionAfterHugeAnswers400AndNeverInfiniteFuture) {
  for (const json& v : Unrepresentable()) {
    auto c = d_.Root("POST", "/v1/secret/config", {{"delete_version_after", v}});
    EXPECT_EQ(c.status, 400) << v.dump() << ": " << c.body;
    auto m = d_.Root("POST", "/v1/secret/metadata/k", {{"delete_version_after", v}});
    EXPECT_EQ(m.status, 400) << v.dump() << ": " << m.body;
  }
  // The largest representable value: the version stays readable, its deletion_time is a real
  // RFC 3339 time 292 years ahead with the created_time's own fraction.
  ASSERT_EQ(
      d_.Root("POST", "/v1/secret/metadata/k", {{"delete_version_after", "9223372036"}}).status,
      204);
  auto w = d_.Root("POST", "/v1/secret/data/k", {{"data", {{"a", "b"}}}});
  ASSERT_EQ(w.status, 200) << w.body;
  EXPECT_THAT(w.body, Not(HasSubstr("infinite")));
  auto read = d_.Root("GET", "/v1/secret/data/k");
  ASSERT_EQ(read.status, 200) << read.body;
  EXPECT_EQ(read.Json()["data"]["data"]["a"], "b");
  auto meta = d_.Root("GET", "/v1/secret/metadata/k");
  ASSERT_EQ(meta.status, 200) << meta.body;
  EXPECT_THAT(meta.body, Not(HasSubstr("infinite")));
  const auto v1 = meta.Json()["data"]["versions"]["1"];
  const std::string created = v1["created_time"].get<std::string>();
  const std::string deletion = v1["deletion_time"].get<std::string>();
  absl::Time c, d;
  std::string err;
  ASSERT_TRUE(absl::ParseTime(absl::RFC3339_full, created, &c, &err)) << created;
  ASSERT_TRUE(absl::ParseTime(absl::RFC3339_full, deletion, &d, &err)) << deletion << " " << err;
  EXPECT_EQ(d - c, absl::Seconds(9223372036)) << created << " -> " << deletion;
  EXPECT_EQ(meta.Json()["data"]["delete_version_after"], "2562047h47m16s");
}

TEST_F(TtlTest, MountTuneTtlsHugeAnswer400) {
  for (const json& v : Unrepresentable()) {
    for (const char* field : {"default_lease_ttl", "max_lease_ttl"}) {
      auto r = d_.Root("POST", "/v1/sys/mounts/secret/tune", {{field, v}});
      EXPECT_EQ(r.status, 400) << field << "=" << v.dump() << ": " << r.body;
      auto a = d_.Root("POST", "/v1/sys/mounts/auth/token/tune", {{field, v}});
      EXPECT_EQ(a.status, 400) << field << "=" << v.dump() << ": " << a.body;
    }
  }
}

// The token mount's tuned max caps what create grants, as Vault's system view does
// (sys/auth/:path/tune, Vault's path for tuning an auth method).
TEST_F(TtlTest, TokenCreateIsClampedToTheTunedMountMax) {
  ASSERT_EQ(d_.Root("POST", "/v1/sys/auth/token/tune",
                    {{"default_lease_ttl", "30m"}, {"max_lease_ttl", "1h"}})
                .status,
            204);
  for (const char* field : {"ttl", "explicit_max_ttl", "period"}) {
    auto r = d_.Root("POST", "/v1/auth/token/create",
                     {{"policies", json::array({"default"})}, {field, "100h"}});
    ASSERT_EQ(r.status, 200) << field << ": " << r.body;
    const int64_t granted = r.Json()["auth"]["lease_duration"].get<int64_t>();
    EXPECT_GT(granted, 0) << field;
    EXPECT_LE(granted, 3600) << field;
  }
  auto def = d_.Root("POST", "/v1/auth/token/create", {{"policies", json::array({"default"})}});
  ASSERT_EQ(def.status, 200) << def.body;
  EXPECT_EQ(def.Json()["auth"]["lease_duration"].get<int64_t>(), 1800);
}

}  // namespace
}  // namespace strongroom::testing
