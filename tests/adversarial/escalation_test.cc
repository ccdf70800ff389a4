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
  auto rid = d_.Root("GET", "/v1/auth/approle/role/r/role-id").Json()["data"]["role_id"];
  auto sid = d_.Root("POST", "/v1/auth/approle/role/r/secret-id").Json()["data"]["secret_id"];
  auto login = d_.Call("POST", "/v1/auth/approle/login",
                       json({{"role_id", rid}, {"secret_id", sid}}).dump());
  ASSERT_EQ(login.status, 200) << login.body;
  EXPECT_THAT(login.Json()["auth"]["policies"], ::testing::Not(::testing::Contains("root")));
}

}  // namespace
}  // namespace strongroom::testing
