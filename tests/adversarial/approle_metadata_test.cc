// Secret-ID metadata belongs to the one token it logs in, not to the role's identity (issue 15,
// item 4). All logins of an AppRole role share one entity alias (its name is the role ID), so
// metadata written there would rewrite templated policies for every token of the role.
// Vault API sections: AppRole login and secret-id `metadata` (auth/approle/role/:role_name/
// secret-id, auth/approle/login: the alias metadata holds role_name only, the token's metadata
// holds the secret ID's metadata), ACL templating
// ({{identity.entity.aliases.<mount accessor>.metadata.<key>}}), auth/token/lookup-self `meta`.
#include <gmock/gmock.h>

#include "tests/adversarial/adversarial.h"

namespace strongroom::testing {
namespace {

using json = nlohmann::json;

class AppRoleMetadataTest : public AdversarialTest {
 protected:
  void SetUp() override {
    AdversarialTest::SetUp();
    ASSERT_EQ(d_.Root("POST", "/v1/sys/auth/approle", {{"type", "approle"}}).status, 204);
    auto auths = d_.Root("GET", "/v1/sys/auth");
    ASSERT_EQ(auths.status, 200) << auths.body;
    accessor_ = auths.Json()["data"]["approle/"]["accessor"].get<std::string>();
    const std::string rules = "path \"secret/data/{{identity.entity.aliases." + accessor_ +
                              ".metadata.team}}/*\" { capabilities = [\"read\"] }\n"
                              "path \"secret/data/roles/{{identity.entity.aliases." +
                              accessor_ + ".metadata.role_name}}\" { capabilities = [\"read\"] }\n";
    ASSERT_EQ(d_.Root("PUT", "/v1/sys/policies/acl/by-team", {{"policy", rules}}).status, 204);
    ASSERT_EQ(d_.Root("POST", "/v1/auth/approle/role/ci", {{"token_policies", "by-team"}}).status,
              204);
    role_id_ = d_.Root("GET", "/v1/auth/approle/role/ci/role-id")
                   .Json()["data"]["role_id"]
                   .get<std::string>();
    for (const char* team : {"dev", "finance"}) {
      ASSERT_EQ(
          d_.Root("POST", std::string("/v1/secret/data/") + team + "/db", {{"data", {{"v", team}}}})
              .status,
          200);
    }
    ASSERT_EQ(d_.Root("POST", "/v1/secret/data/roles/ci", {{"data", {{"v", "role"}}}}).status, 200);
  }

  // A login with a fresh secret ID carrying `metadata` (a JSON object of strings, or none).
  json Login(const json& metadata) {
    json body = json::object();
    if (!metadata.is_null()) body["metadata"] = metadata.dump();
    auto sid = d_.Root("POST", "/v1/auth/approle/role/ci/secret-id", body);
    EXPECT_EQ(sid.status, 200) << sid.body;
    auto login = d_.Call(
        "POST", "/v1/auth/approle/login",
        json({{"role_id", role_id_}, {"secret_id", sid.Json()["data"]["secret_id"]}}).dump());
    EXPECT_EQ(login.status, 200) << login.body;
    return login.Json()["auth"];
  }

  std::string accessor_;
  std::string role_id_;
};

TEST_F(AppRoleMetadataTest, SecretIdMetadataDoesNotRewriteTheRolesTemplates) {
  const json plain = Login(nullptr);
  const std::string plain_token = plain["client_token"].get<std::string>();
  // The role's own alias metadata resolves; the team template does not (no such alias key).
  EXPECT_EQ(As(plain_token, "GET", "/v1/secret/data/roles/ci").status, 200);
  EXPECT_EQ(As(plain_token, "GET", "/v1/secret/data/finance/db").status, 403);

  // Someone allowed to mint secret IDs for the role attaches team=finance, and logs in with it.
  const json tagged = Login({{"team", "finance"}, {"role_name", "admin"}});
  const std::string tagged_token = tagged["client_token"].get<std::string>();
  EXPECT_EQ(tagged["entity_id"], plain["entity_id"]);  // one alias, one entity for the role

  // The entity alias holds the role name only.
  auto entity = d_.Root("GET", "/v1/identity/entity/id/" + plain["entity_id"].get<std::string>());
  ASSERT_EQ(entity.status, 200) << entity.body;
  ASSERT_EQ(entity.Json()["data"]["aliases"].size(), 1u) << entity.body;
  EXPECT_EQ(entity.Json()["data"]["aliases"][0]["metadata"], json({{"role_name", "ci"}}))
      << entity.body;

  // Every token of the role reads what it read before: the earlier one, the tagged one, and
  // one from a later plain login.
  const auto reads_as_before = [&](const std::string& token) {
    auto r = As(token, "GET", "/v1/secret/data/finance/db");
    EXPECT_EQ(r.status, 403) << r.body;
    EXPECT_EQ(As(token, "GET", "/v1/secret/data/dev/db").status, 403);
    EXPECT_EQ(As(token, "GET", "/v1/secret/data/roles/ci").status, 200);
  };
  reads_as_before(plain_token);
  reads_as_before(tagged_token);
  reads_as_before(Login(nullptr)["client_token"].get<std::string>());

  // The secret ID's metadata is the tagged token's own metadata (role_name cannot be overridden).
  EXPECT_EQ(tagged["metadata"], json({{"team", "finance"}, {"role_name", "ci"}})) << tagged;
  auto self = As(tagged_token, "GET", "/v1/auth/token/lookup-self");
  ASSERT_EQ(self.status, 200) << self.body;
  EXPECT_EQ(self.Json()["data"]["meta"], json({{"team", "finance"}, {"role_name", "ci"}}))
      << self.body;
  EXPECT_EQ(plain["metadata"], json({{"role_name", "ci"}})) << plain;
}

}  // namespace
}  // namespace strongroom::testing
