// Token store and ACL enforcement through the real daemon.
// Vault API sections: auth/token/* (§5.1), sys/policy and sys/policies/acl (§2.10), ACL (§7).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "tests/support/daemon.h"

namespace strongroom::testing {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using json = nlohmann::json;

class TokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(d_.Start()) << d_.Log();
    d_.Init();
    ASSERT_EQ(d_.Root("POST", "/v1/sys/mounts/kv", {{"type", "kv"}}).status, 204);
    ASSERT_EQ(
        d_.Root("PUT", "/v1/sys/policies/acl/kv-rw",
                {{"policy",
                  "path \"kv/*\" { capabilities = [\"create\", \"read\", \"update\", \"list\"] }"}})
            .status,
        204);
  }
  // Creates a token as root (or as `parent`); returns the whole response.
  json Create(const json& body, const std::string& parent = "") {
    auto r = d_.Call("POST", "/v1/auth/token/create", body.dump(),
                     {{"X-Vault-Token", parent.empty() ? d_.root_token() : parent}});
    EXPECT_EQ(r.status, 200) << r.body;
    return r.Json();
  }
  HttpResponse As(const std::string& token, const std::string& method, const std::string& path,
                  const json& body = nullptr) {
    return d_.Call(method, path, body.is_null() ? "" : body.dump(), {{"X-Vault-Token", token}});
  }
  Daemon d_;
};

TEST_F(TokenTest, CreateAndLookupHaveVaultShapes) {
  json c = Create(
      {{"policies", {"kv-rw"}}, {"ttl", "1h"}, {"meta", {{"team", "a"}}}, {"display_name", "ci"}});
  const json& auth = c["auth"];
  EXPECT_TRUE(c["data"].is_null());
  std::string tok = auth["client_token"];
  EXPECT_THAT(tok, ::testing::StartsWith("hvs."));
  EXPECT_EQ(auth["accessor"].get<std::string>().size(), 24u);
  EXPECT_EQ(auth["policies"], json({"default", "kv-rw"}));
  EXPECT_EQ(auth["lease_duration"], 3600);
  EXPECT_EQ(auth["renewable"], true);
  EXPECT_EQ(auth["orphan"], false);
  EXPECT_EQ(auth["token_type"], "service");
  EXPECT_EQ(auth["metadata"]["team"], "a");

  json self = As(tok, "GET", "/v1/auth/token/lookup-self").Json()["data"];
  EXPECT_EQ(self["id"], tok);
  EXPECT_EQ(self["display_name"], "token-ci");
  EXPECT_EQ(self["path"], "auth/token/create");
  EXPECT_EQ(self["policies"], json({"default", "kv-rw"}));
  EXPECT_GT(self["ttl"].get<int>(), 3590);
  EXPECT_TRUE(self["expire_time"].is_string());
  EXPECT_EQ(self["meta"]["team"], "a");
  json by_acc = d_.Root("POST", "/v1/auth/token/lookup-accessor", {{"accessor", auth["accessor"]}})
                    .Json()["data"];
  EXPECT_EQ(by_acc["id"], "");
  EXPECT_EQ(by_acc["policies"], json({"default", "kv-rw"}));
  json root_self = d_.Root("GET", "/v1/auth/token/lookup-self").Json()["data"];
  EXPECT_EQ(root_self["policies"], json({"root"}));
  EXPECT_EQ(root_self["ttl"], 0);
  EXPECT_TRUE(root_self["expire_time"].is_null());
  EXPECT_EQ(root_self["path"], "auth/token/root");
  auto list = d_.Root("LIST", "/v1/auth/token/accessors");
  EXPECT_THAT(list.Json()["data"]["keys"], Contains(auth["accessor"]));
  auto warn = Create({{"policies", {"nonexistent"}}});
  EXPECT_THAT(warn["warnings"][0].get<std::string>(),
              HasSubstr("Policy \"nonexistent\" does not exist"));
}

TEST_F(TokenTest, AclGrantsExactlyWhatThePolicySays) {
  std::string tok = Create({{"policies", {"kv-rw"}}})["auth"]["client_token"];
  EXPECT_EQ(As(tok, "PUT", "/v1/kv/app", {{"k", "v"}}).status, 204);
  EXPECT_EQ(As(tok, "GET", "/v1/kv/app").Json()["data"]["k"], "v");
  EXPECT_EQ(As(tok, "LIST", "/v1/kv/").status, 200);
  auto del = As(tok, "DELETE", "/v1/kv/app");
  EXPECT_EQ(del.status, 403);
  EXPECT_EQ(del.Json()["errors"][0], "1 error occurred:\n\t* permission denied\n\n");
  EXPECT_EQ(As(tok, "GET", "/v1/sys/mounts").status, 403);
  EXPECT_EQ(As(tok, "GET", "/v1/nomount/x").status, 403);  // no mount enumeration for non-root
  EXPECT_EQ(As(tok, "PUT", "/v1/sys/rotate").status, 403);
  // The default policy: lookup-self, renew-self, revoke-self.
  EXPECT_EQ(As(tok, "GET", "/v1/auth/token/lookup-self").status, 200);
  EXPECT_EQ(As(tok, "POST", "/v1/auth/token/renew-self", {{"increment", "1h"}}).status, 200);
  // Policy change applies to live tokens.
  ASSERT_EQ(d_.Root("PUT", "/v1/sys/policies/acl/kv-rw",
                    {{"policy", "path \"kv/*\" { capabilities = [\"read\"] }"}})
                .status,
            204);
  EXPECT_EQ(As(tok, "PUT", "/v1/kv/app", {{"k", "w"}}).status, 403);
  EXPECT_EQ(As(tok, "GET", "/v1/kv/app").status, 200);
  // A deleted policy acts as empty.
  ASSERT_EQ(d_.Root("DELETE", "/v1/sys/policies/acl/kv-rw").status, 204);
  EXPECT_EQ(As(tok, "GET", "/v1/kv/app").status, 403);
}

TEST_F(TokenTest, ChildrenDieWithTheirParentAndOrphansSurvive) {
  std::string parent = Create({{"policies", {"kv-rw"}}})["auth"]["client_token"];
  // A non-root parent may create children with a subset of its policies...
  auto bad = As(parent, "POST", "/v1/auth/token/create", {{"policies", {"kv-rw", "other"}}});
  EXPECT_EQ(bad.status, 403);  // ...but this parent's ACL does not even grant auth/token/create
  ASSERT_EQ(d_.Root("PUT", "/v1/sys/policies/acl/maker",
                    {{"policy", "path \"auth/token/create\" { capabilities = [\"update\"] }"}})
                .status,
            204);
  std::string maker = Create({{"policies", {"kv-rw", "maker"}}})["auth"]["client_token"];
  auto superset = As(maker, "POST", "/v1/auth/token/create", {{"policies", {"kv-rw", "other"}}});
  EXPECT_EQ(superset.status, 400);
  EXPECT_EQ(superset.Json()["errors"][0], "child policies must be subset of parent");
  auto orphan_denied = As(maker, "POST", "/v1/auth/token/create", {{"no_parent", true}});
  EXPECT_EQ(orphan_denied.status, 400);
  EXPECT_THAT(orphan_denied.Json()["errors"][0].get<std::string>(),
              HasSubstr("root or sudo privileges required"));
  std::string child = Create({{"policies", {"kv-rw", "maker"}}}, maker)["auth"]["client_token"];
  std::string grandchild = Create({{"policies", {"kv-rw"}}}, child)["auth"]["client_token"];
  EXPECT_EQ(As(grandchild, "GET", "/v1/auth/token/lookup-self").status, 200);
  ASSERT_EQ(d_.Root("POST", "/v1/auth/token/revoke", {{"token", maker}}).status, 204);
  for (const auto& t : {maker, child, grandchild}) {
    auto r = As(t, "GET", "/v1/auth/token/lookup-self");
    EXPECT_EQ(r.status, 403);
    EXPECT_THAT(r.Json()["errors"][0].get<std::string>(), HasSubstr("invalid token"));
  }
  // revoke-orphan (sudo): the children stay, as orphans.
  std::string p2 = Create({{"policies", {"kv-rw"}}})["auth"]["client_token"];
  ASSERT_EQ(d_.Root("PUT", "/v1/sys/policies/acl/maker2",
                    {{"policy", "path \"auth/token/create\" { capabilities = [\"update\"] }"}})
                .status,
            204);
  std::string p3 = Create({{"policies", {"kv-rw", "maker2"}}})["auth"]["client_token"];
  std::string c3 = Create({{"policies", {"kv-rw"}}}, p3)["auth"]["client_token"];
  EXPECT_EQ(As(p2, "POST", "/v1/auth/token/revoke-orphan", {{"token", p3}}).status,
            403);  // needs sudo
  ASSERT_EQ(d_.Root("POST", "/v1/auth/token/revoke-orphan", {{"token", p3}}).status, 204);
  EXPECT_EQ(As(p3, "GET", "/v1/auth/token/lookup-self").status, 403);
  json c3_self = As(c3, "GET", "/v1/auth/token/lookup-self").Json()["data"];
  EXPECT_EQ(c3_self["orphan"], true);
  // revoke-self and revoke-accessor.
  std::string s = Create({{"policies", {"kv-rw"}}})["auth"]["client_token"];
  EXPECT_EQ(As(s, "POST", "/v1/auth/token/revoke-self").status, 204);
  EXPECT_EQ(As(s, "GET", "/v1/auth/token/lookup-self").status, 403);
  json a = Create({{"policies", {"kv-rw"}}})["auth"];
  EXPECT_EQ(d_.Root("POST", "/v1/auth/token/revoke-accessor", {{"accessor", a["accessor"]}}).status,
            204);
  EXPECT_EQ(As(a["client_token"], "GET", "/v1/auth/token/lookup-self").status, 403);
}

TEST_F(TokenTest, UsesAndTtlAreEnforcedOnEveryRequest) {
  std::string limited = Create({{"policies", {"kv-rw"}}, {"num_uses", 2}})["auth"]["client_token"];
  // Each request uses one: the lookup itself leaves one use, the write spends the last.
  EXPECT_EQ(As(limited, "GET", "/v1/auth/token/lookup-self").Json()["data"]["num_uses"], 1);
  EXPECT_EQ(As(limited, "PUT", "/v1/kv/x", {{"a", "b"}}).status, 204);
  auto third = As(limited, "GET", "/v1/kv/x");
  EXPECT_EQ(third.status, 403);
  EXPECT_THAT(third.Json()["errors"][0].get<std::string>(), HasSubstr("invalid token"));

  std::string brief = Create({{"policies", {"kv-rw"}}, {"ttl", "2s"}})["auth"]["client_token"];
  EXPECT_EQ(As(brief, "GET", "/v1/auth/token/lookup-self").status, 200);
  std::this_thread::sleep_for(
      std::chrono::milliseconds(3100));  // let the TTL pass (not a timing check)
  auto expired = As(brief, "GET", "/v1/auth/token/lookup-self");
  EXPECT_EQ(expired.status, 403);
  EXPECT_THAT(expired.Json()["errors"][0].get<std::string>(), HasSubstr("invalid token"));
}

TEST_F(TokenTest, RenewalIsCappedByExplicitMaxTtl) {
  json a = Create({{"policies", {"kv-rw"}}, {"ttl", "10m"}, {"explicit_max_ttl", "30m"}})["auth"];
  std::string tok = a["client_token"];
  auto r = As(tok, "POST", "/v1/auth/token/renew-self", {{"increment", "2h"}});
  ASSERT_EQ(r.status, 200);
  EXPECT_LE(r.Json()["auth"]["lease_duration"].get<int>(), 1800);
  EXPECT_GT(r.Json()["auth"]["lease_duration"].get<int>(), 1790);
  EXPECT_THAT(r.Json()["warnings"][0].get<std::string>(),
              HasSubstr("exceeded the effective max_ttl"));
  std::string fixed =
      Create({{"policies", {"kv-rw"}}, {"renewable", false}})["auth"]["client_token"];
  auto nr = As(fixed, "POST", "/v1/auth/token/renew-self");
  EXPECT_EQ(nr.status, 400);
  json renewed =
      d_.Root("POST", "/v1/auth/token/renew", {{"token", tok}, {"increment", 60}}).Json();
  EXPECT_EQ(renewed["auth"]["lease_duration"], 60);
}

TEST_F(TokenTest, PolicyEndpointsValidateAndProtectBuiltins) {
  auto bad = d_.Root("PUT", "/v1/sys/policies/acl/broken",
                     {{"policy", "path \"a\" { capabilities = [\"reed\"] }"}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(bad.Json()["errors"][0].get<std::string>(),
              HasSubstr("failed to parse policy: line 1"));
  EXPECT_EQ(d_.Root("PUT", "/v1/sys/policies/acl/root",
                    {{"policy", "path \"a\" { capabilities = [\"read\"] }"}})
                .status,
            400);
  auto del_default = d_.Root("DELETE", "/v1/sys/policies/acl/default");
  EXPECT_EQ(del_default.status, 400);
  EXPECT_EQ(del_default.Json()["errors"][0], "cannot delete default policy");
  json one = d_.Root("GET", "/v1/sys/policies/acl/KV-RW").Json();
  EXPECT_EQ(one["data"]["name"], "kv-rw");
  EXPECT_THAT(one["data"]["policy"].get<std::string>(), HasSubstr("kv/*"));
  json listed = d_.Root("LIST", "/v1/sys/policies/acl").Json()["data"]["keys"];
  EXPECT_EQ(listed, json({"default", "kv-rw", "root"}));
  json legacy = d_.Root("GET", "/v1/sys/policy").Json();
  EXPECT_EQ(legacy["policies"], json({"default", "kv-rw", "root"}));
  EXPECT_EQ(legacy["keys"], legacy["data"]["keys"]);
  EXPECT_EQ(
      d_.Root("PUT", "/v1/sys/policy/legacy", {{"rules", "path \"kv/l\" { policy = \"read\" }"}})
          .status,
      204);
  EXPECT_EQ(d_.Root("GET", "/v1/sys/policy/legacy").Json()["rules"],
            "path \"kv/l\" { policy = \"read\" }");
  EXPECT_EQ(d_.Root("GET", "/v1/sys/policies/acl/nope").status, 404);
}

TEST_F(TokenTest, TokensSurviveRestart) {
  std::string tok = Create({{"policies", {"kv-rw"}}, {"ttl", "1h"}})["auth"]["client_token"];
  ASSERT_TRUE(d_.Restart()) << d_.Log();
  EXPECT_EQ(As(tok, "GET", "/v1/auth/token/lookup-self").Json()["data"]["policies"],
            json({"default", "kv-rw"}));
  EXPECT_EQ(As(tok, "PUT", "/v1/kv/after", {{"a", "b"}}).status, 204);
}

}  // namespace
}  // namespace strongroom::testing

namespace strongroom::testing {
namespace {

// Vault API §2.9: the CLI / Agent preflight.
TEST_F(TokenTest, InternalUiMountsAnswersThePreflightWithoutLeakingMounts) {
  ASSERT_EQ(d_.Root("POST", "/v1/sys/mounts/secret", {{"type", "kv-v2"}}).status, 204);
  ASSERT_EQ(d_.Root("PUT", "/v1/sys/policies/acl/reader",
                    {{"policy", "path \"secret/data/app\" { capabilities = [\"read\"] }"}})
                .status,
            204);
  std::string tok = Create({{"policies", {"reader"}}})["auth"]["client_token"];
  auto pre = As(tok, "GET", "/v1/sys/internal/ui/mounts/secret/app");
  ASSERT_EQ(pre.status, 200) << pre.body;
  EXPECT_EQ(pre.Json()["data"]["path"], "secret/");
  EXPECT_EQ(pre.Json()["data"]["type"], "kv");
  EXPECT_EQ(pre.Json()["data"]["options"]["version"], "2");
  auto other = As(tok, "GET", "/v1/sys/internal/ui/mounts/kv/x");
  EXPECT_EQ(other.status, 403);
  EXPECT_THAT(other.Json()["errors"][0].get<std::string>(),
              HasSubstr("preflight capability check returned 403"));
  auto missing = As(tok, "GET", "/v1/sys/internal/ui/mounts/nomount/x");
  EXPECT_EQ(missing.status, 403);  // same answer as "no access": no mount enumeration
  EXPECT_EQ(d_.Call("GET", "/v1/sys/internal/ui/mounts/secret/app").status, 403);
  auto listing = As(tok, "GET", "/v1/sys/internal/ui/mounts").Json()["data"];
  EXPECT_TRUE(listing["secret"].contains("secret/"));
  EXPECT_FALSE(listing["secret"].contains("kv/"));
  auto anonymous = d_.Call("GET", "/v1/sys/internal/ui/mounts");
  EXPECT_EQ(anonymous.status, 200);
  EXPECT_TRUE(anonymous.Json()["data"]["secret"].empty());
  EXPECT_EQ(d_.Root("GET", "/v1/sys/internal/ui/mounts/kv/anything").Json()["data"]["path"], "kv/");
}

}  // namespace
}  // namespace strongroom::testing

namespace strongroom::testing {
namespace {

// Vault API §5.1: token roles.
TEST_F(TokenTest, RolesConstrainAndShapeTheTokensCreatedThroughThem) {
  ASSERT_EQ(d_.Root("PUT", "/v1/sys/policies/acl/other",
                    {{"policy", "path \"x/*\" { capabilities = [\"read\"] }"}})
                .status,
            204);
  ASSERT_EQ(d_.Root("POST", "/v1/auth/token/roles/ci",
                    {{"allowed_policies", {"kv-rw"}},
                     {"orphan", true},
                     {"token_period", "1h"},
                     {"path_suffix", "build"},
                     {"token_num_uses", 5}})
                .status,
            204);
  json role = d_.Root("GET", "/v1/auth/token/roles/ci").Json()["data"];
  EXPECT_EQ(role["name"], "ci");
  EXPECT_EQ(role["allowed_policies"], json({"kv-rw"}));
  EXPECT_EQ(role["token_period"], 3600);
  EXPECT_EQ(role["orphan"], true);
  EXPECT_EQ(d_.Root("LIST", "/v1/auth/token/roles").Json()["data"]["keys"], json({"ci"}));

  json c = d_.Root("POST", "/v1/auth/token/create/ci").Json();
  ASSERT_TRUE(c["auth"].is_object()) << c.dump();
  EXPECT_EQ(c["auth"]["policies"], json({"default", "kv-rw"}));
  EXPECT_EQ(c["auth"]["orphan"], true);
  EXPECT_EQ(c["auth"]["lease_duration"], 3600);
  std::string tok = c["auth"]["client_token"];
  json self = As(tok, "GET", "/v1/auth/token/lookup-self").Json()["data"];
  EXPECT_EQ(self["role"], "ci");
  EXPECT_EQ(self["path"], "auth/token/create/ci/build");
  EXPECT_EQ(self["period"], 3600);
  EXPECT_EQ(self["num_uses"], 4);  // five from the role, one spent on this lookup

  auto outside = d_.Root("POST", "/v1/auth/token/create/ci", {{"policies", {"other"}}});
  EXPECT_EQ(outside.status, 400);
  EXPECT_THAT(outside.Json()["errors"][0].get<std::string>(),
              HasSubstr("must be subset of the role's allowed policies"));
  ASSERT_EQ(d_.Root("POST", "/v1/auth/token/roles/ci", {{"disallowed_policies", {"kv-rw"}}}).status,
            204);
  auto disallowed = d_.Root("POST", "/v1/auth/token/create/ci");
  EXPECT_EQ(disallowed.status, 400);
  EXPECT_THAT(disallowed.Json()["errors"][0].get<std::string>(), HasSubstr("disallowed"));
  // role_name in the body of auth/token/create is ignored, as in Vault: a role is named in the
  // path, where the ACL sees it (the root parent's own policies here, not the role's).
  ASSERT_EQ(d_.Root("POST", "/v1/auth/token/roles/plain", {{"allowed_policies", {"other"}}}).status,
            204);
  json viaBody = d_.Root("POST", "/v1/auth/token/create", {{"role_name", "plain"}}).Json();
  EXPECT_EQ(viaBody["auth"]["policies"], json({"root"}));
  EXPECT_EQ(d_.Root("POST", "/v1/auth/token/create/missing").status, 400);
  EXPECT_EQ(d_.Root("DELETE", "/v1/auth/token/roles/plain").status, 204);
  EXPECT_EQ(d_.Root("GET", "/v1/auth/token/roles/plain").status, 404);
}

TEST_F(TokenTest, CapabilitiesEndpointsAnswerAsVaultDoes) {
  ASSERT_EQ(d_.Root("PUT", "/v1/sys/policies/acl/app",
                    {{"policy",
                      "path \"kv/app/*\" { capabilities = [\"read\", \"list\"] }\n"
                      "path \"kv/app/admin\" { capabilities = [\"deny\"] }"}})
                .status,
            204);
  json created = Create({{"policies", json::array({"app"})}});
  const std::string token = created["auth"]["client_token"];
  const std::string accessor = created["auth"]["accessor"];
  const json paths = {{"paths", json::array({"kv/app/x", "/kv/app/admin", "sys/mounts"})}};

  // -self needs only the default policy.
  auto self = As(token, "POST", "/v1/sys/capabilities-self", paths);
  ASSERT_EQ(self.status, 200) << self.body;
  json d = self.Json()["data"];
  EXPECT_EQ(d["kv/app/x"], json({"list", "read"}));
  EXPECT_EQ(d["kv/app/admin"], json({"deny"}));
  EXPECT_EQ(d["sys/mounts"], json({"deny"}));
  EXPECT_FALSE(d.contains("capabilities"));                    // only for a single path
  EXPECT_EQ(self.Json()["kv/app/x"], json({"list", "read"}));  // Vault's top-level copy

  auto single = As(token, "POST", "/v1/sys/capabilities-self", {{"path", "kv/app/y"}});
  EXPECT_EQ(single.Json()["data"]["capabilities"], json({"list", "read"}));

  // The same answers for a token or an accessor named by someone allowed to ask (root here).
  auto by_token = d_.Root("POST", "/v1/sys/capabilities",
                          {{"token", token}, {"paths", json::array({"kv/app/x"})}});
  EXPECT_EQ(by_token.Json()["data"]["capabilities"], json({"list", "read"}));
  auto by_accessor = d_.Root("POST", "/v1/sys/capabilities-accessor",
                             {{"accessor", accessor}, {"paths", json::array({"kv/app/admin"})}});
  EXPECT_EQ(by_accessor.Json()["data"]["capabilities"], json({"deny"}));
  auto root = d_.Root("POST", "/v1/sys/capabilities-self", {{"paths", json::array({"x/y"})}});
  EXPECT_EQ(root.Json()["data"]["capabilities"], json({"root"}));

  // Errors, and the token's own policy does not let it ask about others.
  EXPECT_EQ(d_.Root("POST", "/v1/sys/capabilities-self", json::object()).status, 400);
  EXPECT_EQ(
      d_.Root("POST", "/v1/sys/capabilities", {{"token", "hvs.nope"}, {"paths", {"a"}}}).status,
      400);
  EXPECT_EQ(
      d_.Root("POST", "/v1/sys/capabilities-accessor", {{"accessor", "nope"}, {"paths", {"a"}}})
          .status,
      400);
  EXPECT_EQ(As(token, "POST", "/v1/sys/capabilities", {{"token", token}, {"paths", {"a"}}}).status,
            403);
  EXPECT_EQ(d_.Root("GET", "/v1/sys/capabilities-self").status, 405);
}

TEST_F(TokenTest, AuthTableListsTheTokenMethod) {
  auto list = d_.Root("GET", "/v1/sys/auth");
  ASSERT_EQ(list.status, 200) << list.body;
  json token = list.Json()["data"]["token/"];
  EXPECT_EQ(token["type"], "token");
  EXPECT_THAT(token["accessor"].get<std::string>(), ::testing::StartsWith("auth_token_"));
  EXPECT_EQ(list.Json()["token/"]["type"], "token");  // Vault's top-level copy
  EXPECT_EQ(d_.Root("DELETE", "/v1/sys/auth/token").status, 400);
  auto unknown = d_.Root("POST", "/v1/sys/auth/x", {{"type", "nosuch"}});
  EXPECT_EQ(unknown.status, 400);
  EXPECT_THAT(unknown.body, ::testing::HasSubstr("plugin not found in the catalog: nosuch"));
  // Listing needs a grant on sys/auth (managing methods also needs sudo).
  json created = Create({{"policies", json::array({"kv-rw"})}});
  EXPECT_EQ(As(created["auth"]["client_token"], "GET", "/v1/sys/auth").status, 403);
}

TEST_F(TokenTest, AppRoleLoginIssuesScopedTokens) {
  ASSERT_EQ(d_.Root("POST", "/v1/sys/auth/approle", {{"type", "approle"}}).status, 204);
  auto auths = d_.Root("GET", "/v1/sys/auth").Json()["data"];
  ASSERT_TRUE(auths.contains("approle/")) << auths.dump();
  EXPECT_EQ(auths["approle/"]["type"], "approle");
  EXPECT_THAT(auths["approle/"]["accessor"].get<std::string>(),
              ::testing::StartsWith("auth_approle_"));
  EXPECT_THAT(d_.Root("POST", "/v1/sys/mounts/ar", {{"type", "approle"}}).body,
              ::testing::HasSubstr("is an auth method"));

  ASSERT_EQ(d_.Root("POST", "/v1/auth/approle/role/app",
                    {{"token_policies", json::array({"kv-rw"})},
                     {"token_ttl", "1h"},
                     {"token_max_ttl", "2h"},
                     {"secret_id_num_uses", 2},
                     {"secret_id_ttl", "10m"}})
                .status,
            204);
  auto role = d_.Root("GET", "/v1/auth/approle/role/app").Json()["data"];
  EXPECT_EQ(role["token_policies"], json({"kv-rw"}));
  EXPECT_EQ(role["token_ttl"], 3600);
  EXPECT_EQ(role["token_max_ttl"], 7200);
  EXPECT_EQ(role["secret_id_num_uses"], 2);
  EXPECT_EQ(d_.Root("LIST", "/v1/auth/approle/role").Json()["data"]["keys"], json({"app"}));
  const std::string role_id =
      d_.Root("GET", "/v1/auth/approle/role/app/role-id").Json()["data"]["role_id"];
  auto sid = d_.Root("POST", "/v1/auth/approle/role/app/secret-id",
                     {{"metadata", R"({"team":"payments"})"}});
  ASSERT_EQ(sid.status, 200) << sid.body;
  const std::string secret_id = sid.Json()["data"]["secret_id"];
  EXPECT_EQ(sid.Json()["data"]["secret_id_num_uses"], 2);
  EXPECT_EQ(sid.Json()["data"]["secret_id_ttl"], 600);

  // Login needs no token; the token it returns holds the role's policies and TTLs.
  const std::string creds = json({{"role_id", role_id}, {"secret_id", secret_id}}).dump();
  auto login = d_.Call("POST", "/v1/auth/approle/login", creds);
  ASSERT_EQ(login.status, 200) << login.body;
  json auth = login.Json()["auth"];
  EXPECT_EQ(auth["policies"], json({"default", "kv-rw"}));
  EXPECT_EQ(auth["metadata"]["role_name"], "app");
  EXPECT_EQ(auth["metadata"]["team"], "payments");
  EXPECT_EQ(auth["lease_duration"], 3600);
  EXPECT_EQ(auth["renewable"], true);
  const std::string token = auth["client_token"];
  EXPECT_EQ(As(token, "POST", "/v1/kv/from-approle", {{"v", "1"}}).status, 204);
  EXPECT_EQ(As(token, "GET", "/v1/sys/mounts").status, 403);
  auto self = As(token, "GET", "/v1/auth/token/lookup-self").Json()["data"];
  EXPECT_EQ(self["path"], "auth/approle/login");
  EXPECT_EQ(self["orphan"], true);
  // Renewal cannot go past token_max_ttl.
  auto renewed = As(token, "POST", "/v1/auth/token/renew-self", {{"increment", "3h"}});
  ASSERT_EQ(renewed.status, 200) << renewed.body;
  EXPECT_LE(renewed.Json()["auth"]["lease_duration"].get<int64_t>(), 7200);

  // The secret ID has two uses.
  EXPECT_EQ(d_.Call("POST", "/v1/auth/approle/login", creds).status, 200);
  auto spent = d_.Call("POST", "/v1/auth/approle/login", creds);
  EXPECT_EQ(spent.status, 400);
  EXPECT_THAT(spent.body, ::testing::HasSubstr("invalid role or secret ID"));
  EXPECT_EQ(d_.Call("POST", "/v1/auth/approle/login",
                    json({{"role_id", "nope"}, {"secret_id", secret_id}}).dump())
                .status,
            400);
  EXPECT_EQ(d_.Call("POST", "/v1/auth/approle/login", json({{"role_id", role_id}}).dump()).status,
            400);

  // CIDR binding on the secret ID (the test client is 127.0.0.1).
  auto far = d_.Root("POST", "/v1/auth/approle/role/app/secret-id",
                     {{"cidr_list", json::array({"10.0.0.0/8"})}});
  auto far_login =
      d_.Call("POST", "/v1/auth/approle/login",
              json({{"role_id", role_id}, {"secret_id", far.Json()["data"]["secret_id"]}}).dump());
  EXPECT_EQ(far_login.status, 400);
  EXPECT_THAT(far_login.body, ::testing::HasSubstr("unauthorized through CIDR restrictions"));
  auto near = d_.Root("POST", "/v1/auth/approle/role/app/secret-id",
                      {{"cidr_list", json::array({"127.0.0.0/8"})}});
  const std::string near_id = near.Json()["data"]["secret_id"];
  EXPECT_EQ(d_.Call("POST", "/v1/auth/approle/login",
                    json({{"role_id", role_id}, {"secret_id", near_id}}).dump())
                .status,
            200);

  // Lookup and destroy by accessor.
  auto looked =
      d_.Root("POST", "/v1/auth/approle/role/app/secret-id/lookup", {{"secret_id", near_id}});
  ASSERT_EQ(looked.status, 200) << looked.body;
  EXPECT_EQ(looked.Json()["data"]["secret_id_num_uses"], 1);  // one of two used
  const std::string accessor = looked.Json()["data"]["secret_id_accessor"];
  EXPECT_EQ(d_.Root("POST", "/v1/auth/approle/role/app/secret-id-accessor/destroy",
                    {{"secret_id_accessor", accessor}})
                .status,
            204);
  EXPECT_EQ(d_.Call("POST", "/v1/auth/approle/login",
                    json({{"role_id", role_id}, {"secret_id", near_id}}).dump())
                .status,
            400);

  // Disabling the method removes its login and revokes the tokens it issued.
  EXPECT_EQ(As(token, "GET", "/v1/auth/token/lookup-self").status, 200);
  ASSERT_EQ(d_.Root("DELETE", "/v1/sys/auth/approle").status, 204);
  EXPECT_EQ(d_.Call("POST", "/v1/auth/approle/login", creds).status, 403);
  EXPECT_EQ(As(token, "GET", "/v1/auth/token/lookup-self").status, 403);
  EXPECT_EQ(d_.Root("GET", "/v1/auth/token/lookup-self").status, 200);  // others untouched
}

}  // namespace
}  // namespace strongroom::testing
