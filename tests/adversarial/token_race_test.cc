// Token races and revocation depth (issue 15, items 6 and 7, and 15's ui/mounts use count).
// Vault API sections: auth/token/create (num_uses), renew-self, revoke-self, lookup-self;
// sys/internal/ui/mounts.
#include <gmock/gmock.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>

#include "tests/adversarial/adversarial.h"

namespace strongroom::testing {
namespace {

using json = nlohmann::json;

constexpr int kClients = 16;

class TokenRaceTest : public AdversarialTest {
 protected:
  void SetUp() override {
    AdversarialTest::SetUp();
    ASSERT_EQ(d_.Root("PUT", "/v1/sys/policies/acl/reader",
                      {{"policy", "path \"secret/*\" { capabilities = [\"read\", \"create\"] }"}})
                  .status,
              204);
    ASSERT_EQ(d_.Root("PUT", "/v1/secret/data/x", {{"data", {{"k", "v"}}}}).status, 200);
  }
};

// Item 6: renew-self racing revoke-self never brings the token back. Before the fix a renewal
// that had read the entry before the revocation wrote it back after it (6 of 10 trials).
TEST_F(TokenRaceTest, RevokeAlwaysWinsOverConcurrentRenew) {
  int resurrected = 0;
  for (int trial = 0; trial < 10; ++trial) {
    const std::string token = CreateToken({{"policies", {"reader"}}, {"ttl", "1h"}});
    ASSERT_FALSE(token.empty());
    const std::string accessor =
        As(token, "GET", "/v1/auth/token/lookup-self").Json()["data"]["accessor"];
    RunConcurrently(kClients, [&](int i) {
      for (int n = 0; n < 4; ++n) {
        if (i == 0 && n == 1) {
          EXPECT_EQ(As(token, "POST", "/v1/auth/token/revoke-self").status, 204);
        } else {
          As(token, "POST", "/v1/auth/token/renew-self", {{"increment", "1h"}});
        }
      }
    });
    const bool alive =
        As(token, "GET", "/v1/auth/token/lookup-self").status == 200 ||
        d_.Root("POST", "/v1/auth/token/lookup-accessor", {{"accessor", accessor}}).status == 200;
    if (alive) ++resurrected;
  }
  EXPECT_EQ(resurrected, 0) << "revoked tokens came back in " << resurrected << " of 10 trials";
}

// Item 6: a token created with num_uses=N answers exactly N requests, however many race.
TEST_F(TokenRaceTest, NumUsesAdmitsExactlyNUnderConcurrency) {
  for (int uses : {1, 3, 5}) {
    for (int trial = 0; trial < 5; ++trial) {
      const std::string token = CreateToken({{"policies", {"reader"}}, {"num_uses", uses}});
      ASSERT_FALSE(token.empty());
      std::atomic<int> admitted{0};
      RunConcurrently(kClients, [&](int) {
        auto r = As(token, "GET", "/v1/secret/data/x");
        if (r.status == 200) {
          ++admitted;
        } else {
          EXPECT_EQ(r.status, 403) << r.body;
        }
      });
      EXPECT_EQ(admitted.load(), uses) << "num_uses=" << uses << " trial " << trial;
      EXPECT_EQ(As(token, "GET", "/v1/secret/data/x").status, 403);
    }
  }
}

// 15: sys/internal/ui/mounts/<path> spends a use like any other request with a token.
TEST_F(TokenRaceTest, UiMountsSpendsUses) {
  const std::string token = CreateToken({{"policies", {"reader"}}, {"num_uses", 2}});
  ASSERT_FALSE(token.empty());
  EXPECT_EQ(As(token, "GET", "/v1/sys/internal/ui/mounts/secret/x").status, 200);
  EXPECT_EQ(As(token, "GET", "/v1/sys/internal/ui/mounts/secret/x").status, 200);
  EXPECT_EQ(As(token, "GET", "/v1/sys/internal/ui/mounts/secret/x").status, 403);
  EXPECT_EQ(As(token, "GET", "/v1/secret/data/x").status, 403);
}

// 15: lookup and lookup-accessor answer only their own operations, and tokens and accessors are
// taken from the body only (a token in a path would reach the audit log in clear).
TEST_F(TokenRaceTest, LookupEndpointsTakeNoPathFormsAndOnlyTheirOperations) {
  const std::string token = CreateToken({{"policies", {"reader"}}});
  const std::string accessor =
      As(token, "GET", "/v1/auth/token/lookup-self").Json()["data"]["accessor"];
  EXPECT_EQ(d_.Root("POST", "/v1/auth/token/lookup", {{"token", token}}).status, 200);
  EXPECT_EQ(d_.Root("POST", "/v1/auth/token/lookup-accessor", {{"accessor", accessor}}).status,
            200);
  for (const std::string& path :
       {"/v1/auth/token/lookup/" + token, "/v1/auth/token/lookup-accessor/" + accessor,
        "/v1/auth/token/renew/" + token}) {
    EXPECT_NE(d_.Root("POST", path).status, 200) << path;
  }
  EXPECT_EQ(d_.Root("DELETE", "/v1/auth/token/lookup").status, 405);
  EXPECT_EQ(d_.Root("GET", "/v1/auth/token/lookup-accessor").status, 405);
  EXPECT_EQ(d_.Root("DELETE", "/v1/auth/token/lookup-accessor").status, 405);
  // The token still works: none of the refused calls touched it.
  EXPECT_EQ(As(token, "GET", "/v1/secret/data/x").status, 200);
}

// Item 7: a chain of 20,000 generations, built with auth/token/create alone, is revoked without
// crashing the broker, and every generation is gone. Before the fix revoke-self recursed once per
// generation and the broker died of a stack overflow. STRONGROOM_DEEP_CHAIN overrides the depth.
TEST_F(TokenRaceTest, DeepTokenChainRevokesWithoutCrashingTheBroker) {
  const char* env = std::getenv("STRONGROOM_DEEP_CHAIN");
  const int depth = env != nullptr ? std::atoi(env) : 20000;
  ASSERT_EQ(d_.Root("PUT", "/v1/sys/policies/acl/chain",
                    {{"policy", "path \"auth/token/create\" { capabilities = [\"update\"] }"}})
                .status,
            204);
  std::vector<std::string> chain = {CreateToken({{"policies", {"chain"}}})};
  ASSERT_FALSE(chain.back().empty());
  for (int i = 1; i < depth; ++i) {
    std::string next = CreateToken({{"policies", {"chain"}}}, chain.back());
    ASSERT_FALSE(next.empty()) << "generation " << i;
    chain.push_back(std::move(next));
  }
  // Revoking 20,000 tokens is 20,000 synced storage writes: give the call minutes, not the
  // default 30 s (the point is the broker's survival, not its speed).
  const auto started = std::chrono::steady_clock::now();
  HttpRequest revoke_self{"POST", "/v1/auth/token/revoke-self", "", {{"X-Vault-Token", chain[0]}}};
  auto revoke = SendHttp("127.0.0.1", d_.port(), revoke_self, 600000);
  std::cout << "revoked a chain of " << depth << " in "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()
            << " s\n";
  ASSERT_EQ(revoke.status, 204) << revoke.body << d_.Log().substr(0, 2000);
  EXPECT_EQ(d_.Call("GET", "/v1/sys/health").status, 200);
  for (size_t i : {size_t{1}, chain.size() / 2, chain.size() - 1}) {
    EXPECT_EQ(As(chain[i], "GET", "/v1/auth/token/lookup-self").status, 403) << "generation " << i;
  }
  // Nothing of the chain is left behind for the tidy pass or a restart to trip over.
  auto accessors = d_.Root("LIST", "/v1/auth/token/accessors").Json()["data"]["keys"];
  EXPECT_EQ(accessors.size(), 1u) << accessors.dump().substr(0, 200);  // the root token's
  ASSERT_TRUE(d_.Restart()) << d_.Log();
  EXPECT_EQ(d_.Root("GET", "/v1/auth/token/lookup-self").status, 200);
}

}  // namespace
}  // namespace strongroom::testing
