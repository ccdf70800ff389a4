// Escalation through auth methods and token roles (issue 15, items 1 and 2).
// Vault API sections: AppRole (auth/approle/role), Kubernetes auth (auth/kubernetes/role),
// token roles (auth/token/roles, auth/token/create/:role).
#include <gmock/gmock.h>

#include "tests/adversarial/adversarial.h"

namespace strongroom::testing {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

class EscalationTest : public AdversarialTest {};

// Item 1: an AppRole role may not hand out root, neither at write time nor at login.
TEST_F(EscalationTest, AppRoleRoleCannotGrantRoot) {
  ASSERT_EQ(d_.Root("POST", "/v1/sys/auth/approle", {{"type", "approle"}}).status, 204);
  for (const json& pols : {json("root"), json({"default", "root"}), json(" ROOT ")}) {
    auto w = d_.Root("POST", "/v1/auth/approle/role/r",
                     {{"token_policies", pols}, {"token_no_default_policy", true}});
    EXPECT_EQ(w.status, 400) << pols.dump() << " " << w.body;
    EXPECT_THAT(w.body, HasSubstr("cannot create root tokens"));
    auto legacy = d_.Root("POST", "/v1/auth/approle/role/r", {{"policies", pols}});
    EXPECT_EQ(legacy.status, 400) << legacy.body;
  }
  // The role was never written with root, so a login gets no root token.
  ASSERT_EQ(d_.Root("POST", "/v1/auth/approle/role/r", {{"token_policies", "default"}}).status,
            204);
  auto login = AppRoleLogin("r");
  ASSERT_EQ(login.status, 200) << login.body;
  EXPECT_THAT(login.Json()["auth"]["policies"], ::testing::Not(::testing::Contains("root")));
}

// Item 1, the Kubernetes method: the same shared check refuses root in its roles.
TEST_F(EscalationTest, KubernetesRoleCannotGrantRoot) {
  ASSERT_EQ(d_.Root("POST", "/v1/sys/auth/kubernetes", {{"type", "kubernetes"}}).status, 204);
  auto w = d_.Root("POST", "/v1/auth/kubernetes/role/r",
                   {{"bound_service_account_names", {"app"}},
                    {"bound_service_account_namespaces", {"default"}},
                    {"token_policies", {"root"}},
                    {"token_no_default_policy", true}});
  EXPECT_EQ(w.status, 400) << w.body;
  EXPECT_THAT(w.body, HasSubstr("auth methods cannot create root tokens"));
  EXPECT_EQ(d_.Root("GET", "/v1/auth/kubernetes/role/r").status, 404);
}

// Item 1, identity: an entity's policies never make its tokens root (refused at write, and
// ignored when building a token's ACL should one be stored).
TEST_F(EscalationTest, EntityPoliciesNeverGrantRoot) {
  // The login creates the entity; its policies are then set to root.
  ASSERT_EQ(d_.Root("POST", "/v1/sys/auth/approle", {{"type", "approle"}}).status, 204);
  ASSERT_EQ(d_.Root("POST", "/v1/auth/approle/role/r", {{"token_policies", "default"}}).status,
            204);
  auto login = AppRoleLogin("r");
  ASSERT_EQ(login.status, 200) << login.body;
  const std::string token = login.Json()["auth"]["client_token"];
  const std::string login_entity = login.Json()["auth"]["entity_id"];
  auto grant = d_.Root("POST", "/v1/identity/entity/id/" + login_entity, {{"policies", {"root"}}});
  EXPECT_EQ(grant.status, 400) << grant.body;
  // Root would let it write any policy; it gets no such power.
  auto write = As(token, "PUT", "/v1/sys/policies/acl/mine", {{"policy", "path \"*\" {}"}});
  EXPECT_EQ(write.status, 403) << write.body;
}

class TokenRoleTest : public EscalationTest {
 protected:
  void SetUp() override {
    EscalationTest::SetUp();
    for (const char* name : {"a", "b", "admin-x", "ops"}) {
      ASSERT_EQ(d_.Root("PUT", std::string("/v1/sys/policies/acl/") + name,
                        {{"policy", "path \"secret/*\" { capabilities = [\"read\"] }"}})
                    .status,
                204);
    }
    ASSERT_EQ(d_.Root("PUT", "/v1/sys/policies/acl/creator",
                      {{"policy",
                        "path \"auth/token/create*\" { capabilities = [\"create\", \"update\"] }"}})
                  .status,
              204);
    creator_ = CreateToken({{"policies", {"creator", "a"}}});
    ASSERT_FALSE(creator_.empty());
  }
  HttpResponse CreateVia(const std::string& role, const json& body) {
    return As(creator_, "POST", "/v1/auth/token/create/" + role, body);
  }
  std::string creator_;
};

// Item 2: a role without allowed/disallowed lists gives no more than the parent holds.
TEST_F(TokenRoleTest, RoleWithoutPolicyListsKeepsChildWithinParent) {
  ASSERT_EQ(d_.Root("POST", "/v1/auth/token/roles/open", {{"orphan", false}}).status, 204);
  auto escalate = CreateVia("open", {{"policies", {"b"}}});
  EXPECT_EQ(escalate.status, 400) << escalate.body;
  EXPECT_THAT(escalate.body, HasSubstr("child policies must be subset of parent"));
  auto within = CreateVia("open", {{"policies", {"a"}}});
  ASSERT_EQ(within.status, 200) << within.body;
  EXPECT_EQ(within.Json()["auth"]["policies"], json({"a", "default"}));
  auto inherit = CreateVia("open", json::object());
  ASSERT_EQ(inherit.status, 200) << inherit.body;
  EXPECT_EQ(inherit.Json()["auth"]["policies"], json({"a", "creator", "default"}));
  // Root needs a root parent, whatever the role says.
  EXPECT_EQ(CreateVia("open", {{"policies", {"root"}}}).status, 400);
}

// Item 2: allowed and disallowed names and globs, Vault's rules and messages.
TEST_F(TokenRoleTest, RoleListsAndGlobsDecide) {
  ASSERT_EQ(d_.Root("POST", "/v1/auth/token/roles/globbed",
                    {{"allowed_policies_glob", {"admin-*"}}, {"allowed_policies", {"b"}}})
                .status,
            204);
  EXPECT_EQ(CreateVia("globbed", {{"policies", {"admin-x", "b"}}}).status, 200);
  auto outside = CreateVia("globbed", {{"policies", {"ops"}}});
  EXPECT_EQ(outside.status, 400);
  EXPECT_THAT(outside.body, HasSubstr("must be subset of the role's allowed policies"));
  auto defaults = CreateVia("globbed", json::object());
  ASSERT_EQ(defaults.status, 200) << defaults.body;
  EXPECT_EQ(defaults.Json()["auth"]["policies"], json({"b", "default"}));

  ASSERT_EQ(d_.Root("POST", "/v1/auth/token/roles/denying",
                    {{"disallowed_policies_glob", {"admin-*"}}, {"disallowed_policies", {"ops"}}})
                .status,
            204);
  auto denied_glob = CreateVia("denying", {{"policies", {"admin-x"}}});
  EXPECT_EQ(denied_glob.status, 400);
  EXPECT_EQ(denied_glob.Json()["errors"][0], "token policy \"admin-x\" is disallowed by this role");
  EXPECT_EQ(CreateVia("denying", {{"policies", {"ops"}}}).status, 400);
  // With only a disallowed list, the role's allowed set is open (Vault): "b" is allowed even
  // though the parent does not hold it.
  EXPECT_EQ(CreateVia("denying", {{"policies", {"b"}}}).status, 200);
  // Inherited parent policies are checked against the disallowed list too.
  ASSERT_EQ(d_.Root("POST", "/v1/auth/token/roles/noa", {{"disallowed_policies", {"a"}}}).status,
            204);
  EXPECT_EQ(CreateVia("noa", json::object()).status, 400);
}

// Item 2: orphans need sudo (or a role that says orphan); restricted-use tokens make no children.
TEST_F(TokenRoleTest, OrphansAndRestrictedParents) {
  auto orphan = As(creator_, "POST", "/v1/auth/token/create", {{"no_parent", true}});
  EXPECT_EQ(orphan.status, 400);
  EXPECT_THAT(orphan.body, HasSubstr("root or sudo privileges required to create orphan token"));
  ASSERT_EQ(d_.Root("POST", "/v1/auth/token/roles/orph", {{"orphan", true}}).status, 204);
  auto by_role = CreateVia("orph", json::object());
  ASSERT_EQ(by_role.status, 200) << by_role.body;
  EXPECT_EQ(by_role.Json()["auth"]["orphan"], true);

  const std::string limited = CreateToken({{"policies", {"creator"}}, {"num_uses", 5}});
  ASSERT_FALSE(limited.empty());
  auto child = As(limited, "POST", "/v1/auth/token/create", {{"policies", {"creator"}}});
  EXPECT_EQ(child.status, 400);
  EXPECT_THAT(child.body, HasSubstr("restricted use token cannot generate child tokens"));
}

// Review of item 2/3: a token role's name is matched in one case everywhere, a role is named in
// the path only, a role's use limit holds, and role globs are case-insensitive.
TEST_F(TokenRoleTest, RoleNamesCannotDodgePathRules) {
  ASSERT_EQ(
      d_.Root("POST", "/v1/auth/token/roles/admin", {{"allowed_policies", {"admin-x"}}}).status,
      204);
  ASSERT_EQ(d_.Root("PUT", "/v1/sys/policies/acl/creator",
                    {{"policy",
                      "path \"auth/token/create*\" { capabilities = [\"create\", \"update\"] }\n"
                      "path \"auth/token/create/admin\" { capabilities = [\"deny\"] }\n"
                      "path \"auth/token/roles/admin\" { capabilities = [\"deny\"] }\n"
                      "path \"auth/token/roles/*\" { capabilities = [\"create\", \"update\"] }"}})
                .status,
            204);
  EXPECT_EQ(CreateVia("admin", json::object()).status, 403);
  EXPECT_EQ(CreateVia("ADMIN", json::object()).status, 403);
  EXPECT_EQ(CreateVia("Admin", json::object()).status, 403);
  EXPECT_EQ(
      As(creator_, "POST", "/v1/auth/token/roles/ADMIN", {{"allowed_policies", {"root"}}}).status,
      403);
  // A role_name in the body of plain create does not select the role.
  auto body = As(creator_, "POST", "/v1/auth/token/create", {{"role_name", "admin"}});
  ASSERT_EQ(body.status, 200) << body.body;
  EXPECT_THAT(body.Json()["auth"]["policies"], ::testing::Not(::testing::Contains("admin-x")));
}

TEST_F(TokenRoleTest, RoleUseLimitAndGlobCaseHold) {
  ASSERT_EQ(d_.Root("POST", "/v1/auth/token/roles/once",
                    {{"token_num_uses", 1}, {"disallowed_policies_glob", {"Admin*"}}})
                .status,
            204);
  auto unlimited = CreateVia("once", {{"num_uses", 0}});
  ASSERT_EQ(unlimited.status, 200) << unlimited.body;
  EXPECT_EQ(unlimited.Json()["auth"]["num_uses"], 1);
  EXPECT_EQ(CreateVia("once", {{"num_uses", 5}}).Json()["auth"]["num_uses"], 1);
  EXPECT_EQ(CreateVia("once", {{"policies", {"admin-x"}}}).status, 400);
}

}  // namespace
}  // namespace strongroom::testing
