// Names a backend treats case-insensitively are canonical before Exists, the ACL and the handler
// (issue 15, item 3): a different spelling of a name can neither dodge a deny nor turn an update
// into a create.
// Vault API sections: ACL policies (sys/policies/acl/:name, sys/policy/:name; names are
// case-insensitive), AppRole (auth/approle/role/:role_name and its sub-paths), Kubernetes auth
// (auth/kubernetes/role/:name); ACL capabilities create vs update (existence check).
#include <gmock/gmock.h>

#include "tests/adversarial/adversarial.h"

namespace strongroom::testing {
namespace {

using json = nlohmann::json;

class NamesTest : public AdversarialTest {
 protected:
  // A policy named `name` with `rules`, and a token holding only it.
  std::string TokenWithPolicy(const std::string& name, const std::string& rules) {
    auto w = d_.Root("PUT", "/v1/sys/policies/acl/" + name, {{"policy", rules}});
    EXPECT_EQ(w.status, 204) << w.body;
    return CreateToken({{"policies", json::array({name})}, {"no_default_policy", true}});
  }
  std::string PolicyText(const std::string& name) {
    auto r = d_.Root("GET", "/v1/sys/policies/acl/" + name);
    if (r.status != 200) return "";
    return r.Json()["data"]["policy"].get<std::string>();
  }
};

constexpr char kAdminPolicy[] = "path \"sys/*\" { capabilities = [\"read\"] }\n";
constexpr char kEvilPolicy[] = "path \"*\" { capabilities = [\"sudo\", \"read\", \"update\"] }\n";

// A deny on one policy name holds for every spelling of that name, on both policy endpoints.
TEST_F(NamesTest, PolicyDenyHoldsForEverySpelling) {
  ASSERT_EQ(d_.Root("PUT", "/v1/sys/policies/acl/admin", {{"policy", kAdminPolicy}}).status, 204);
  const std::string token = TokenWithPolicy("policy-writer", R"(
path "sys/policies/acl/*" { capabilities = ["create", "update", "read"] }
path "sys/policies/acl/admin" { capabilities = ["deny"] }
path "sys/policy/*" { capabilities = ["create", "update", "read"] }
path "sys/policy/admin" { capabilities = ["deny"] }
path "sys/capabilities-self" { capabilities = ["update"] }
)");
  ASSERT_FALSE(token.empty());
  // The deny itself works.
  EXPECT_EQ(As(token, "PUT", "/v1/sys/policies/acl/admin", {{"policy", kEvilPolicy}}).status, 403);
  for (const char* path : {"/v1/sys/policies/acl/ADMIN", "/v1/sys/policies/acl/Admin",
                           "/v1/sys/policy/ADMIN", "/v1/sys/policy/aDmIn"}) {
    auto w = As(token, "PUT", path, {{"policy", kEvilPolicy}});
    EXPECT_EQ(w.status, 403) << path << ": " << w.body;
    EXPECT_EQ(As(token, "GET", path).status, 403) << path;
  }
  EXPECT_EQ(PolicyText("admin"), kAdminPolicy);
  // Other names, in any case, are still the writer's to write; they are stored lower-cased.
  EXPECT_EQ(As(token, "PUT", "/v1/sys/policies/acl/Team-A", {{"policy", kAdminPolicy}}).status,
            204);
  EXPECT_EQ(PolicyText("team-a"), kAdminPolicy);
  // sys/capabilities-self answers for the path the request would really be checked on.
  auto caps =
      As(token, "POST", "/v1/sys/capabilities-self", {{"paths", {"sys/policies/acl/ADMIN"}}});
  ASSERT_EQ(caps.status, 200) << caps.body;
  EXPECT_EQ(caps.Json()["capabilities"], json::array({"deny"})) << caps.body;
}

// A token allowed only to create roles cannot overwrite an existing role (nor reach a denied
// sub-path) by spelling the role's name in another case.
TEST_F(NamesTest, AppRoleCreateOnlyCannotOverwriteThroughOtherCase) {
  ASSERT_EQ(d_.Root("POST", "/v1/sys/auth/approle", {{"type", "approle"}}).status, 204);
  ASSERT_EQ(d_.Root("POST", "/v1/auth/approle/role/web", {{"token_policies", "default"}}).status,
            204);
  const std::string token = TokenWithPolicy(
      "role-creator", "path \"auth/approle/role/*\" { capabilities = [\"create\"] }\n");
  ASSERT_FALSE(token.empty());
  for (const char* path :
       {"/v1/auth/approle/role/web", "/v1/auth/approle/role/WEB", "/v1/auth/approle/role/Web"}) {
    auto w = As(token, "POST", path, {{"token_policies", "admin"}});
    EXPECT_EQ(w.status, 403) << path << ": " << w.body;
  }
  auto role = d_.Root("GET", "/v1/auth/approle/role/web");
  ASSERT_EQ(role.status, 200) << role.body;
  EXPECT_EQ(role.Json()["data"]["token_policies"], json::array({"default"})) << role.body;
  // Creating a new role still works, under its canonical (lower-case) name.
  EXPECT_EQ(As(token, "POST", "/v1/auth/approle/role/NewRole", {{"token_policies", "x"}}).status,
            204);
  auto created = d_.Root("GET", "/v1/auth/approle/role/newrole");
  ASSERT_EQ(created.status, 200) << created.body;
  EXPECT_EQ(created.Json()["data"]["token_policies"], json::array({"x"}));
  // ...and the creator, holding only "create", cannot now update it either.
  EXPECT_EQ(As(token, "POST", "/v1/auth/approle/role/NEWROLE", {{"token_policies", "y"}}).status,
            403);
  // Root reaches the same role through any spelling (AppRole names are case-insensitive).
  auto rid = d_.Root("GET", "/v1/auth/approle/role/WEB/role-id");
  ASSERT_EQ(rid.status, 200) << rid.body;
  EXPECT_EQ(rid.Json()["data"]["role_id"],
            d_.Root("GET", "/v1/auth/approle/role/web/role-id").Json()["data"]["role_id"]);
}

// A deny on one role's sub-path holds for every spelling of the role's name.
TEST_F(NamesTest, AppRoleDenyOnSubPathHoldsForEverySpelling) {
  ASSERT_EQ(d_.Root("POST", "/v1/sys/auth/approle", {{"type", "approle"}}).status, 204);
  ASSERT_EQ(d_.Root("POST", "/v1/auth/approle/role/web", {{"token_policies", "default"}}).status,
            204);
  ASSERT_EQ(d_.Root("POST", "/v1/auth/approle/role/batch", {{"token_policies", "default"}}).status,
            204);
  const std::string token = TokenWithPolicy("secret-id-minter", R"(
path "auth/approle/role/*" { capabilities = ["create", "update"] }
path "auth/approle/role/web/secret-id" { capabilities = ["deny"] }
)");
  ASSERT_FALSE(token.empty());
  for (const char* path :
       {"/v1/auth/approle/role/web/secret-id", "/v1/auth/approle/role/WEB/secret-id",
        "/v1/auth/approle/role/wEB/secret-id"}) {
    auto w = As(token, "POST", path);
    EXPECT_EQ(w.status, 403) << path << ": " << w.body;
  }
  auto list = d_.Root("LIST", "/v1/auth/approle/role/web/secret-id");
  EXPECT_EQ(list.status, 404) << list.body;  // no secret ID was minted for web
  EXPECT_EQ(As(token, "POST", "/v1/auth/approle/role/BATCH/secret-id").status, 200);
}

TEST_F(NamesTest, KubernetesCreateOnlyCannotOverwriteThroughOtherCase) {
  ASSERT_EQ(d_.Root("POST", "/v1/sys/auth/kubernetes", {{"type", "kubernetes"}}).status, 204);
  const json web = {{"bound_service_account_names", "web"},
                    {"bound_service_account_namespaces", "apps"},
                    {"token_policies", "default"}};
  ASSERT_EQ(d_.Root("POST", "/v1/auth/kubernetes/role/web", web).status, 204);
  const std::string token = TokenWithPolicy(
      "k8s-role-creator", "path \"auth/kubernetes/role/*\" { capabilities = [\"create\"] }\n");
  ASSERT_FALSE(token.empty());
  const json evil = {{"bound_service_account_names", "*"},
                     {"bound_service_account_namespaces", "*"},
                     {"token_policies", "admin"}};
  for (const char* path : {"/v1/auth/kubernetes/role/web", "/v1/auth/kubernetes/role/WEB",
                           "/v1/auth/kubernetes/role/wEb"}) {
    auto w = As(token, "POST", path, evil);
    EXPECT_EQ(w.status, 403) << path << ": " << w.body;
  }
  auto role = d_.Root("GET", "/v1/auth/kubernetes/role/web");
  ASSERT_EQ(role.status, 200) << role.body;
  EXPECT_EQ(role.Json()["data"]["bound_service_account_names"], json::array({"web"})) << role.body;
  EXPECT_EQ(role.Json()["data"]["token_policies"], json::array({"default"})) << role.body;
  EXPECT_EQ(As(token, "POST", "/v1/auth/kubernetes/role/Batch", web).status, 204);
  auto list = d_.Root("LIST", "/v1/auth/kubernetes/role");
  ASSERT_EQ(list.status, 200) << list.body;
  EXPECT_EQ(list.Json()["data"]["keys"], json::array({"batch", "web"})) << list.body;
}

}  // namespace
}  // namespace strongroom::testing
