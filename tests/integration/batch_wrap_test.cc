// Batch tokens, the cubbyhole and response wrapping through the real daemon.
// Vault API sections: auth/token (§5.1), sys/wrapping (§2.15).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "tests/support/daemon.h"

namespace strongroom::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using json = nlohmann::json;

class BatchWrapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(d_.Start()) << d_.Log();
    d_.Init();
    ASSERT_EQ(d_.Root("POST", "/v1/sys/mounts/kv", {{"type", "kv"}}).status, 204);
    ASSERT_EQ(d_.Root("PUT", "/v1/sys/policies/acl/kv-rw",
                      {{"policy",
                        "path \"kv/*\" { capabilities = [\"create\", \"read\", \"update\"] }\n"
                        "path \"auth/token/create\" { capabilities = [\"update\"] }"}})
                  .status,
              204);
  }
  HttpResponse As(const std::string& token, const std::string& method, const std::string& path,
                  const json& body = nullptr,
                  std::vector<std::pair<std::string, std::string>> extra = {}) {
    extra.emplace_back("X-Vault-Token", token);
    return d_.Call(method, path, body.is_null() ? "" : body.dump(), std::move(extra));
  }
  std::string CreateToken(const json& body, const std::string& parent = "") {
    auto r = As(parent.empty() ? d_.root_token() : parent, "POST", "/v1/auth/token/create", body);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.Json()["auth"]["client_token"];
  }
  // A response wrapped with `ttl`; returns its wrap_info.
  json Wrapped(const std::string& token, const std::string& method, const std::string& path,
               const std::string& ttl, const json& body = nullptr) {
    auto r = As(token, method, path, body, {{"X-Vault-Wrap-TTL", ttl}});
    EXPECT_EQ(r.status, 200) << r.body;
    json j = r.Json();
    EXPECT_TRUE(j["data"].is_null()) << r.body;
    EXPECT_TRUE(j["auth"].is_null()) << r.body;
    return j["wrap_info"];
  }
  Daemon d_;
};

TEST_F(BatchWrapTest, BatchTokensAreNotStoredAndCannotBeRenewedRevokedOrParents) {
  auto r = d_.Root("POST", "/v1/auth/token/create",
                   {{"type", "batch"}, {"policies", {"kv-rw"}}, {"ttl", "10m"}});
  ASSERT_EQ(r.status, 200) << r.body;
  json auth = r.Json()["auth"];
  const std::string batch = auth["client_token"];
  EXPECT_THAT(batch, StartsWith("hvb."));
  EXPECT_EQ(auth["accessor"], "");
  EXPECT_EQ(auth["token_type"], "batch");
  EXPECT_EQ(auth["renewable"], false);
  EXPECT_EQ(auth["lease_duration"], 600);
  // It works, and is nowhere in the accessor list (nothing is stored for it).
  EXPECT_EQ(As(batch, "POST", "/v1/kv/a", {{"v", "1"}}).status, 204);
  json self = As(batch, "GET", "/v1/auth/token/lookup-self").Json()["data"];
  EXPECT_EQ(self["type"], "batch");
  EXPECT_EQ(self["id"], batch);
  EXPECT_EQ(self["policies"], json({"default", "kv-rw"}));
  EXPECT_EQ(self["creation_ttl"], 600);
  EXPECT_EQ(self["orphan"], false);
  json looked = d_.Root("POST", "/v1/auth/token/lookup", {{"token", batch}}).Json()["data"];
  EXPECT_EQ(looked["type"], "batch");
  auto accessors = d_.Root("LIST", "/v1/auth/token/accessors").Json()["data"]["keys"];
  EXPECT_EQ(accessors.size(), 1u);  // the root token's only
  // Vault's refusals.
  EXPECT_THAT(As(batch, "POST", "/v1/auth/token/renew-self", json::object()).body,
              HasSubstr("batch tokens cannot be renewed"));
  EXPECT_THAT(As(batch, "POST", "/v1/auth/token/revoke-self", json::object()).body,
              HasSubstr("batch tokens cannot be revoked"));
  EXPECT_THAT(d_.Root("POST", "/v1/auth/token/revoke", {{"token", batch}}).body,
              HasSubstr("batch tokens cannot be revoked"));
  auto child = As(batch, "POST", "/v1/auth/token/create", json::object());
  EXPECT_EQ(child.status, 400);
  EXPECT_THAT(child.body, HasSubstr("batch tokens cannot create more tokens"));
  for (const auto& [field, value] : std::vector<std::pair<std::string, json>>{
           {"num_uses", 3}, {"period", "1h"}, {"explicit_max_ttl", "1h"}}) {
    auto bad = d_.Root("POST", "/v1/auth/token/create", {{"type", "batch"}, {field, value}});
    EXPECT_EQ(bad.status, 400) << field;
    EXPECT_THAT(bad.body, HasSubstr("batch tokens cannot have \\\"" + field + "\\\" set"));
  }
  auto root_batch =
      d_.Root("POST", "/v1/auth/token/create", {{"type", "batch"}, {"policies", {"root"}}});
  EXPECT_THAT(root_batch.body, HasSubstr("batch tokens cannot be root tokens"));
  EXPECT_THAT(d_.Root("POST", "/v1/auth/token/create", {{"type", "weird"}}).body,
              HasSubstr("invalid 'token_type' value"));
  // No cubbyhole for a batch token.
  EXPECT_THAT(As(batch, "POST", "/v1/cubbyhole/x", {{"a", "b"}}).body,
              HasSubstr("only supported by \\\"service\\\" type tokens"));
  // Survives a restart: the barrier keyring, not memory, seals it.
  ASSERT_TRUE(d_.Restart()) << d_.Log();
  EXPECT_EQ(As(batch, "GET", "/v1/kv/a").status, 200);
}

TEST_F(BatchWrapTest, ForgedAlteredOrForeignBatchTokensAreRefused) {
  const std::string batch = CreateToken({{"type", "batch"}, {"policies", {"kv-rw"}}});
  // Flip one character in the sealed part, in several places.
  for (size_t pos : {size_t{5}, batch.size() / 2, batch.size() - 2}) {
    std::string altered = batch;
    altered[pos] = altered[pos] == 'A' ? 'B' : 'A';
    EXPECT_EQ(As(altered, "GET", "/v1/kv/a").status, 403) << pos;
  }
  // Other spellings of the same bytes (padding, a space, other trailing bits) are not the
  // token: it has one spelling, so one audit digest.
  for (const std::string& variant :
       {batch + "=", batch + "==", batch.substr(0, 10) + " " + batch.substr(10)}) {
    EXPECT_EQ(As(variant, "GET", "/v1/kv/a").status, 403) << variant;
  }
  EXPECT_EQ(As(batch, "GET", "/v1/kv/a").status, 404);  // the token itself works (no such key)
  EXPECT_EQ(As("hvb.", "GET", "/v1/kv/a").status, 403);
  EXPECT_EQ(As("hvb.!!!notbase64", "GET", "/v1/kv/a").status, 403);
  EXPECT_EQ(As("hvb." + std::string(3000, 'A'), "GET", "/v1/kv/a").status, 403);
  // One from another cluster (another keyring) means nothing here.
  Daemon other;
  ASSERT_TRUE(other.Start()) << other.Log();
  other.Init();
  auto foreign =
      other.Root("POST", "/v1/auth/token/create", {{"type", "batch"}, {"policies", {"default"}}});
  ASSERT_EQ(foreign.status, 200);
  EXPECT_EQ(As(foreign.Json()["auth"]["client_token"], "GET", "/v1/auth/token/lookup-self").status,
            403);
}

TEST_F(BatchWrapTest, ANonOrphanBatchTokenEndsWithItsParent) {
  const std::string parent = CreateToken({{"policies", {"kv-rw"}}});
  const std::string batch = CreateToken({{"type", "batch"}, {"policies", {"kv-rw"}}}, parent);
  const std::string orphan =
      CreateToken({{"type", "batch"}, {"policies", {"kv-rw"}}, {"no_parent", true}}, "");
  EXPECT_EQ(As(batch, "GET", "/v1/auth/token/lookup-self").status, 200);
  ASSERT_EQ(d_.Root("POST", "/v1/auth/token/revoke", {{"token", parent}}).status, 204);
  EXPECT_EQ(As(batch, "GET", "/v1/auth/token/lookup-self").status, 403);
  EXPECT_EQ(As(orphan, "GET", "/v1/auth/token/lookup-self").status, 200);
}

TEST_F(BatchWrapTest, AppRoleRolesIssueBatchTokensThatDieWithTheMethod) {
  ASSERT_EQ(d_.Root("POST", "/v1/sys/auth/approle", {{"type", "approle"}}).status, 204);
  auto bad =
      d_.Root("POST", "/v1/auth/approle/role/b", {{"token_type", "batch"}, {"token_num_uses", 2}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(bad.body, HasSubstr("batch tokens cannot have"));
  ASSERT_EQ(d_.Root("POST", "/v1/auth/approle/role/b",
                    {{"token_type", "batch"}, {"token_policies", {"kv-rw"}}, {"token_ttl", "5m"}})
                .status,
            204);
  EXPECT_EQ(d_.Root("GET", "/v1/auth/approle/role/b").Json()["data"]["token_type"], "batch");
  const std::string role_id =
      d_.Root("GET", "/v1/auth/approle/role/b/role-id").Json()["data"]["role_id"];
  const std::string secret_id =
      d_.Root("POST", "/v1/auth/approle/role/b/secret-id").Json()["data"]["secret_id"];
  auto login = d_.Call("POST", "/v1/auth/approle/login",
                       json({{"role_id", role_id}, {"secret_id", secret_id}}).dump());
  ASSERT_EQ(login.status, 200) << login.body;
  json auth = login.Json()["auth"];
  EXPECT_EQ(auth["token_type"], "batch");
  EXPECT_EQ(auth["lease_duration"], 300);
  EXPECT_EQ(auth["renewable"], false);
  const std::string token = auth["client_token"];
  EXPECT_THAT(token, StartsWith("hvb."));
  json self = As(token, "GET", "/v1/auth/token/lookup-self").Json()["data"];
  EXPECT_EQ(self["path"], "auth/approle/login");
  EXPECT_FALSE(self["entity_id"].get<std::string>().empty());
  EXPECT_EQ(As(token, "POST", "/v1/kv/x", {{"v", "1"}}).status, 204);
  // A batch token cannot be revoked, so disabling its auth method must end it.
  ASSERT_EQ(d_.Root("DELETE", "/v1/sys/auth/approle").status, 204);
  EXPECT_EQ(As(token, "GET", "/v1/kv/x").status, 403);
  // Enabled again at the same path: a new mount, so the old tokens stay dead.
  ASSERT_EQ(d_.Root("POST", "/v1/sys/auth/approle", {{"type", "approle"}}).status, 204);
  EXPECT_EQ(As(token, "GET", "/v1/kv/x").status, 403);
}

TEST_F(BatchWrapTest, ARolesLimitsHoldForBatchTokens) {
  // A role's use limit cannot be shed by asking for a batch token; its hard TTL cap holds.
  ASSERT_EQ(d_.Root("POST", "/v1/auth/token/roles/limited",
                    {{"token_num_uses", 1}, {"allowed_policies", {"kv-rw"}}})
                .status,
            204);
  auto r = d_.Root("POST", "/v1/auth/token/create/limited", {{"type", "batch"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("batch tokens cannot have \\\"num_uses\\\" set"));
  ASSERT_EQ(d_.Root("POST", "/v1/auth/token/roles/capped",
                    {{"token_explicit_max_ttl", "5m"},
                     {"allowed_policies", {"kv-rw"}},
                     {"token_type", "default-batch"}})
                .status,
            204);
  r = d_.Root("POST", "/v1/auth/token/create/capped", {{"ttl", "1h"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Json()["auth"]["token_type"], "batch");
  EXPECT_EQ(r.Json()["auth"]["lease_duration"], 300);
  // Nobody hands out the response-wrapping policy: only wrapping makes such tokens.
  EXPECT_THAT(d_.Root("POST", "/v1/auth/token/create", {{"policies", {"response-wrapping"}}}).body,
              HasSubstr("cannot assign policy"));
  ASSERT_EQ(d_.Root("POST", "/v1/sys/auth/approle", {{"type", "approle"}}).status, 204);
  EXPECT_EQ(d_.Root("POST", "/v1/auth/approle/role/w", {{"token_policies", {"response-wrapping"}}})
                .status,
            400);
}

TEST_F(BatchWrapTest, TokenRolesChooseTheType) {
  ASSERT_EQ(d_.Root("POST", "/v1/auth/token/roles/b", {{"token_type", "default-batch"}}).status,
            204);
  EXPECT_EQ(d_.Root("GET", "/v1/auth/token/roles/b").Json()["data"]["token_type"], "default-batch");
  const json pol = {"default"};
  auto r = d_.Root("POST", "/v1/auth/token/create/b", {{"policies", pol}});
  EXPECT_EQ(r.Json()["auth"]["token_type"], "batch") << r.body;
  r = d_.Root("POST", "/v1/auth/token/create/b", {{"type", "service"}, {"policies", pol}});
  EXPECT_EQ(r.Json()["auth"]["token_type"], "service");
  ASSERT_EQ(d_.Root("POST", "/v1/auth/token/roles/s", {{"token_type", "service"}}).status, 204);
  r = d_.Root("POST", "/v1/auth/token/create/s", {{"type", "batch"}, {"policies", pol}});
  EXPECT_EQ(r.Json()["auth"]["token_type"], "service");
  EXPECT_EQ(d_.Root("POST", "/v1/auth/token/roles/x", {{"token_type", "nope"}}).status, 400);
}

TEST_F(BatchWrapTest, EachTokenHasItsOwnCubbyholeWhichDiesWithIt) {
  const std::string a = CreateToken({{"policies", {"kv-rw"}}});
  const std::string b = CreateToken({{"policies", {"kv-rw"}}});
  ASSERT_EQ(As(a, "POST", "/v1/cubbyhole/dir/k", {{"secret", "a-only"}}).status, 204);
  ASSERT_EQ(As(a, "POST", "/v1/cubbyhole/top", {{"x", "1"}}).status, 204);
  EXPECT_EQ(As(a, "GET", "/v1/cubbyhole/dir/k").Json()["data"]["secret"], "a-only");
  EXPECT_EQ(As(a, "LIST", "/v1/cubbyhole/").Json()["data"]["keys"], json({"dir/", "top"}));
  EXPECT_EQ(As(a, "LIST", "/v1/cubbyhole/dir").Json()["data"]["keys"], json({"k"}));
  // b sees nothing of a's, at the same paths.
  EXPECT_EQ(As(b, "GET", "/v1/cubbyhole/dir/k").status, 404);
  EXPECT_EQ(As(b, "LIST", "/v1/cubbyhole/").status, 404);
  EXPECT_EQ(d_.Root("GET", "/v1/cubbyhole/dir/k").status, 404);
  // Bad keys and empty writes are refused; deletes work.
  EXPECT_EQ(As(a, "POST", "/v1/cubbyhole/x", json::object()).status, 400);
  EXPECT_EQ(As(a, "DELETE", "/v1/cubbyhole/top").status, 204);
  EXPECT_EQ(As(a, "GET", "/v1/cubbyhole/top").status, 404);
  // The cubbyhole mount is built in and cannot be removed or moved.
  EXPECT_EQ(d_.Root("GET", "/v1/sys/mounts").Json()["data"]["cubbyhole/"]["type"], "cubbyhole");
  EXPECT_EQ(d_.Root("DELETE", "/v1/sys/mounts/cubbyhole").status, 400);
  EXPECT_EQ(d_.Root("POST", "/v1/sys/remount", {{"from", "cubbyhole"}, {"to", "c2"}}).status, 400);
  // Revoked: the data goes with it (a token with a new value would not find it, and the
  // storage no longer holds it, so a later token with the same hash could not either).
  ASSERT_EQ(d_.Root("POST", "/v1/auth/token/revoke", {{"token", a}}).status, 204);
  EXPECT_EQ(As(a, "GET", "/v1/cubbyhole/dir/k").status, 403);
}

TEST_F(BatchWrapTest, AWrappedResponseIsUnwrappedOnceOnly) {
  ASSERT_EQ(d_.Root("POST", "/v1/kv/app", {{"password", "s3cret"}}).status, 204);
  json info = Wrapped(d_.root_token(), "GET", "/v1/kv/app", "5m");
  const std::string w = info["token"];
  EXPECT_THAT(w, StartsWith("hvs."));
  EXPECT_EQ(info["ttl"], 300);
  EXPECT_EQ(info["creation_path"], "kv/app");
  EXPECT_FALSE(info["accessor"].get<std::string>().empty());
  EXPECT_TRUE(info["creation_time"].is_string());
  // Lookup needs no token and spends nothing.
  auto look = d_.Call("POST", "/v1/sys/wrapping/lookup", json({{"token", w}}).dump());
  ASSERT_EQ(look.status, 200) << look.body;
  EXPECT_EQ(look.Json()["data"]["creation_path"], "kv/app");
  EXPECT_EQ(look.Json()["data"]["creation_ttl"], 300);
  // The wrapped answer is in the wrapping token's cubbyhole, as Vault keeps it:
  // {"response": "<JSON text>"} (reading it there spends the token's one use, as in Vault).
  json info2 = Wrapped(d_.root_token(), "GET", "/v1/kv/app", "5m");
  auto raw = As(info2["token"], "GET", "/v1/cubbyhole/response");
  ASSERT_EQ(raw.status, 200) << raw.body;
  EXPECT_EQ(json::parse(raw.Json()["data"]["response"].get<std::string>())["data"]["password"],
            "s3cret");
  EXPECT_EQ(d_.Root("POST", "/v1/sys/wrapping/unwrap", {{"token", info2["token"]}}).status, 400);
  // The wrapping token can do nothing but unwrap.
  EXPECT_EQ(As(w, "GET", "/v1/auth/token/lookup-self").status, 403);
  EXPECT_EQ(As(w, "GET", "/v1/kv/app").status, 403);
  // (the refused request above did not spend its use: refusals come before the use)
  auto unwrapped = As(w, "POST", "/v1/sys/wrapping/unwrap", json::object());
  ASSERT_EQ(unwrapped.status, 200) << unwrapped.body;
  EXPECT_EQ(unwrapped.Json()["data"]["password"], "s3cret");
  auto again = As(w, "POST", "/v1/sys/wrapping/unwrap", json::object());
  EXPECT_EQ(again.status, 400);
  EXPECT_THAT(again.body, HasSubstr("wrapping token is not valid or does not exist"));
  EXPECT_EQ(d_.Call("POST", "/v1/sys/wrapping/lookup", json({{"token", w}}).dump()).status, 400);
}

TEST_F(BatchWrapTest, ConcurrentUnwrapsOfOneTokenGiveOneAnswer) {
  ASSERT_EQ(d_.Root("POST", "/v1/kv/app", {{"password", "s3cret"}}).status, 204);
  for (int round = 0; round < 3; ++round) {
    const std::string w = Wrapped(d_.root_token(), "GET", "/v1/kv/app", "5m")["token"];
    std::atomic<int> ok{0}, refused{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i) {
      threads.emplace_back([&, i] {
        // Half present it as their own token, half in the body with root's.
        auto r = i % 2 == 0 ? As(w, "POST", "/v1/sys/wrapping/unwrap", json::object())
                            : d_.Root("POST", "/v1/sys/wrapping/unwrap", {{"token", w}});
        if (r.status == 200) ++ok;
        if (r.status == 400) ++refused;
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(ok.load(), 1) << "round " << round;
    EXPECT_EQ(refused.load(), 7) << "round " << round;
  }
}

TEST_F(BatchWrapTest, WrapRewrapAndWrappedTokens) {
  json info =
      Wrapped(d_.root_token(), "POST", "/v1/sys/wrapping/wrap", "60", {{"foo", "bar"}, {"n", 1}});
  EXPECT_EQ(info["creation_path"], "sys/wrapping/wrap");
  EXPECT_EQ(info["ttl"], 60);
  auto rewrapped = d_.Root("POST", "/v1/sys/wrapping/rewrap", {{"token", info["token"]}});
  ASSERT_EQ(rewrapped.status, 200) << rewrapped.body;
  json info2 = rewrapped.Json()["wrap_info"];
  EXPECT_NE(info2["token"], info["token"]);
  EXPECT_EQ(info2["creation_path"], "sys/wrapping/wrap");
  EXPECT_EQ(info2["ttl"], 60);
  EXPECT_EQ(d_.Root("POST", "/v1/sys/wrapping/unwrap", {{"token", info["token"]}}).status, 400);
  auto out = d_.Root("POST", "/v1/sys/wrapping/unwrap", {{"token", info2["token"]}});
  ASSERT_EQ(out.status, 200) << out.body;
  EXPECT_EQ(out.Json()["data"], json({{"foo", "bar"}, {"n", 1}}));
  // Wrapping needs a TTL; a bad one is refused before anything runs.
  EXPECT_THAT(d_.Root("POST", "/v1/sys/wrapping/wrap", {{"a", "b"}}).body,
              HasSubstr("X-Vault-Wrap-TTL"));
  for (const char* ttl : {"x", "0", "500ms", "-5"}) {
    auto bad =
        As(d_.root_token(), "POST", "/v1/kv/never", {{"v", "1"}}, {{"X-Vault-Wrap-TTL", ttl}});
    EXPECT_EQ(bad.status, 400) << ttl << ": " << bad.body;
  }
  EXPECT_EQ(d_.Root("GET", "/v1/kv/never").status, 404);
  // A wrapped token creation: wrapped_accessor names the token inside.
  json tinfo =
      Wrapped(d_.root_token(), "POST", "/v1/auth/token/create", "2m", {{"policies", {"kv-rw"}}});
  auto t = d_.Root("POST", "/v1/sys/wrapping/unwrap", {{"token", tinfo["token"]}});
  ASSERT_EQ(t.Json()["auth"]["accessor"], tinfo["wrapped_accessor"]);
  const std::string inner = t.Json()["auth"]["client_token"];
  EXPECT_EQ(As(inner, "POST", "/v1/kv/w", {{"v", "1"}}).status, 204);
  // A 204 stays a 204 (nothing to wrap).
  EXPECT_EQ(
      As(d_.root_token(), "POST", "/v1/kv/y", {{"v", "1"}}, {{"X-Vault-Wrap-TTL", "1m"}}).status,
      204);
}

TEST_F(BatchWrapTest, PoliciesBoundTheWrappingTtl) {
  ASSERT_EQ(d_.Root("PUT", "/v1/sys/policies/acl/must-wrap",
                    {{"policy",
                      "path \"kv/*\" { capabilities = [\"read\"]\n"
                      "  min_wrapping_ttl = \"1m\"\n  max_wrapping_ttl = \"10m\" }"}})
                .status,
            204);
  ASSERT_EQ(d_.Root("POST", "/v1/kv/app", {{"password", "s3cret"}}).status, 204);
  const std::string t = CreateToken({{"policies", {"must-wrap"}}});
  EXPECT_EQ(As(t, "GET", "/v1/kv/app").status, 403);
  EXPECT_EQ(As(t, "GET", "/v1/kv/app", nullptr, {{"X-Vault-Wrap-TTL", "30s"}}).status, 403);
  EXPECT_EQ(As(t, "GET", "/v1/kv/app", nullptr, {{"X-Vault-Wrap-TTL", "1h"}}).status, 403);
  auto ok = As(t, "GET", "/v1/kv/app", nullptr, {{"X-Vault-Wrap-TTL", "5m"}});
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_FALSE(ok.Json()["wrap_info"]["token"].get<std::string>().empty());
  // The response-wrapping policy is built in and cannot be changed.
  EXPECT_EQ(d_.Root("PUT", "/v1/sys/policies/acl/response-wrapping",
                    {{"policy", "path \"*\" { capabilities = [\"sudo\"] }"}})
                .status,
            400);
}

TEST_F(BatchWrapTest, AnExpiredWrappingTokenIsRefused) {
  ASSERT_EQ(d_.Root("POST", "/v1/kv/app", {{"password", "s3cret"}}).status, 204);
  const std::string w = Wrapped(d_.root_token(), "GET", "/v1/kv/app", "1s")["token"];
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  auto r = d_.Root("POST", "/v1/sys/wrapping/unwrap", {{"token", w}});
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("wrapping token is not valid or does not exist"));
}

}  // namespace
}  // namespace strongroom::testing
