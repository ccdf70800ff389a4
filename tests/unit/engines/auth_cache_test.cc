// The broker's caches of decrypted token entries and parsed policies, and its memo of compiled
// ACLs (issue 22; core/token_store.h, core/policy_store.h), through the real pipeline: each way a
// token or a policy changes is seen by the very next request. "Replicated" changes are written
// below the stores, as a Raft entry applied on a follower or an installed snapshot lands: as
// ciphertext in the physical store, with no call into the token or policy store.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "tests/unit/engines/core_fixture.h"

namespace strongroom::testing {
namespace {

using core::Operation;
using core::json::object;

constexpr char kReader[] = R"(path "secret/data/*" { capabilities = ["read"] })";
constexpr char kElsewhere[] = R"(path "secret/data/other/*" { capabilities = ["read"] })";

class AuthCacheTest : public CoreFixture {
 protected:
  void SetUp() override {
    CoreFixture::SetUp();
    ASSERT_TRUE(MountKv2("secret").status.ok());
    object secret;
    object data;
    data["v"] = "s3cret";
    secret["data"] = std::move(data);
    ASSERT_EQ(Root(Operation::kUpdate, "secret/data/app", std::move(secret)).code(), 200);
    ASSERT_TRUE(PutPolicy("reader", kReader).status.ok());
  }

  Reply PutPolicy(const std::string& name, const std::string& text) {
    return Root(Operation::kUpdate, "sys/policies/acl/" + name, {{"policy", text}});
  }
  // A read of the secret with `token`, twice: the second one is answered from the caches.
  int ReadTwice(const std::string& token) {
    const int first = Do(token, Operation::kRead, "secret/data/app").code();
    const int second = Do(token, Operation::kRead, "secret/data/app").code();
    EXPECT_EQ(first, second);
    return second;
  }
  int Read(const std::string& token) {
    return Do(token, Operation::kRead, "secret/data/app").code();
  }
  std::string TokenKey(const std::string& token) {
    return "sys/token/id/" + core_->tokens().Hash(token);
  }
  // The token's stored entry, decrypted.
  object Entry(const std::string& token) {
    auto raw = core_->barrier()->Get(TokenKey(token));
    EXPECT_TRUE(raw.ok() && raw->has_value());
    if (!raw.ok() || !raw->has_value()) return {};
    return core::ParseObject(**raw).value_or(object());
  }
  // Raw (ciphertext) bytes of `keys` in the physical store, as a snapshot holds them.
  std::map<std::string, std::optional<std::string>> Capture(const std::vector<std::string>& keys) {
    std::map<std::string, std::optional<std::string>> out;
    for (const auto& k : keys) {
      auto v = physical_.Get(k);
      EXPECT_TRUE(v.ok());
      out[k] = v.ok() ? *v : std::nullopt;
    }
    return out;
  }
  // Puts them back below every store, as installing that snapshot does.
  void Install(const std::map<std::string, std::optional<std::string>>& captured) {
    for (const auto& [k, v] : captured) {
      ASSERT_TRUE((v ? physical_.Put(k, *v) : physical_.Delete(k)).ok());
    }
  }
};

TEST_F(AuthCacheTest, ARevokedTokenIsRefusedOnItsNextUse) {
  const std::string t = TokenWith({"reader"});
  ASSERT_EQ(ReadTwice(t), 200);
  ASSERT_TRUE(Root(Operation::kUpdate, "auth/token/revoke", {{"token", t}}).status.ok());
  EXPECT_EQ(Read(t), 403);
  // Its child goes with it.
  ASSERT_TRUE(
      PutPolicy("creator", R"(path "auth/token/create" { capabilities = ["create", "update"] })")
          .status.ok());
  const std::string parent = TokenWith({"reader", "creator"});
  object child_req;
  child_req["policies"] = core::ToArray(std::vector<std::string>{"reader"});
  Reply child = Do(parent, Operation::kUpdate, "auth/token/create", std::move(child_req));
  ASSERT_TRUE(child.status.ok()) << child.status;
  const std::string c(child.response.auth->at("client_token").as_string());
  ASSERT_EQ(ReadTwice(c), 200);
  ASSERT_TRUE(Root(Operation::kUpdate, "auth/token/revoke", {{"token", parent}}).status.ok());
  EXPECT_EQ(Read(c), 403);
}

TEST_F(AuthCacheTest, UsesAreSpentOneAtATime) {
  object req;
  req["policies"] = core::ToArray(std::vector<std::string>{"reader"});
  req["num_uses"] = 3;
  Reply created = Root(Operation::kUpdate, "auth/token/create", std::move(req));
  ASSERT_TRUE(created.status.ok()) << created.status;
  const std::string t(created.response.auth->at("client_token").as_string());
  EXPECT_EQ(Read(t), 200);
  EXPECT_EQ(Entry(t).at("num_uses").as_int64(), 2);
  EXPECT_EQ(Read(t), 200);
  EXPECT_EQ(Read(t), 200);  // the last use: the token is revoked after it
  EXPECT_EQ(Read(t), 403);
  EXPECT_EQ(Read(t), 403);
}

TEST_F(AuthCacheTest, ExpiryIsCheckedOnEveryUse) {
  object req;
  req["policies"] = core::ToArray(std::vector<std::string>{"reader"});
  req["ttl"] = "60s";
  Reply created = Root(Operation::kUpdate, "auth/token/create", std::move(req));
  ASSERT_TRUE(created.status.ok()) << created.status;
  const std::string t(created.response.auth->at("client_token").as_string());
  ASSERT_EQ(ReadTwice(t), 200);
  now_ += absl::Seconds(59);
  EXPECT_EQ(Read(t), 200);
  now_ += absl::Seconds(1);
  EXPECT_EQ(Read(t), 403);
}

TEST_F(AuthCacheTest, ARevocationReplicatedFromTheLeaderIsSeen) {
  const std::string t = TokenWith({"reader"});
  ASSERT_EQ(ReadTwice(t), 200);
  // The leader's revocation, as a follower applies it: the key deleted below the token store.
  ASSERT_TRUE(physical_.Delete(TokenKey(t)).ok());
  EXPECT_EQ(Read(t), 403);
}

TEST_F(AuthCacheTest, AChangedEntryReplicatedFromTheLeaderIsSeen) {
  const std::string t = TokenWith({"reader"});
  ASSERT_EQ(ReadTwice(t), 200);
  // The leader rewrote the entry (its policies changed): new ciphertext lands below the store.
  object e = Entry(t);
  e["policies"] = core::ToArray(std::vector<std::string>{"default"});
  ASSERT_TRUE(core_->barrier()->Put(TokenKey(t), core::Serialize(e)).ok());
  EXPECT_EQ(Read(t), 403);
  // And a use count spent on the leader: one use left there, so one request here.
  e["policies"] = core::ToArray(std::vector<std::string>{"reader"});
  e["num_uses"] = 1;
  ASSERT_TRUE(core_->barrier()->Put(TokenKey(t), core::Serialize(e)).ok());
  EXPECT_EQ(Read(t), 200);
  EXPECT_EQ(Read(t), 403);
}

TEST_F(AuthCacheTest, AnInstalledSnapshotIsSeen) {
  const std::string t = TokenWith({"reader"});
  ASSERT_EQ(ReadTwice(t), 200);
  const auto with_token = Capture({TokenKey(t), "sys/policy/reader"});
  ASSERT_TRUE(Root(Operation::kUpdate, "auth/token/revoke", {{"token", t}}).status.ok());
  ASSERT_TRUE(Root(Operation::kDelete, "sys/policies/acl/reader").status.ok());
  EXPECT_EQ(Read(t), 403);
  // A snapshot taken before the revocation brings the token and its policy back...
  Install(with_token);
  EXPECT_EQ(ReadTwice(t), 200);
  // ...and one taken without them takes them away again.
  std::map<std::string, std::optional<std::string>> without;
  for (const auto& [k, v] : with_token) without[k] = std::nullopt;
  Install(without);
  EXPECT_EQ(Read(t), 403);
}

TEST_F(AuthCacheTest, APolicyWriteOrDeleteDecidesTheNextRequest) {
  const std::string t = TokenWith({"reader"});
  ASSERT_EQ(ReadTwice(t), 200);
  ASSERT_TRUE(PutPolicy("reader", kElsewhere).status.ok());
  EXPECT_EQ(Read(t), 403);
  ASSERT_TRUE(PutPolicy("reader", kReader).status.ok());
  EXPECT_EQ(Read(t), 200);
  ASSERT_TRUE(Root(Operation::kDelete, "sys/policies/acl/reader").status.ok());
  EXPECT_EQ(Read(t), 403);
  ASSERT_TRUE(PutPolicy("reader", kReader).status.ok());
  EXPECT_EQ(Read(t), 200);
}

TEST_F(AuthCacheTest, APolicyReplicatedFromTheLeaderIsSeen) {
  const std::string t = TokenWith({"reader"});
  ASSERT_EQ(ReadTwice(t), 200);
  storage::Storage* barrier = core_->barrier();
  ASSERT_TRUE(barrier->Put("sys/policy/reader", kElsewhere).ok());
  EXPECT_EQ(Read(t), 403);
  ASSERT_TRUE(barrier->Put("sys/policy/reader", kReader).ok());
  EXPECT_EQ(ReadTwice(t), 200);
  ASSERT_TRUE(physical_.Delete("sys/policy/reader").ok());
  EXPECT_EQ(Read(t), 403);
  // The default policy: built in while nothing is stored, the stored text once there is one.
  const std::string d = TokenWith({"default"});
  ASSERT_EQ(ReadTwice(d), 403);
  ASSERT_TRUE(barrier->Put("sys/policy/default", kReader).ok());
  EXPECT_EQ(Read(d), 200);
  ASSERT_TRUE(physical_.Delete("sys/policy/default").ok());
  EXPECT_EQ(Read(d), 403);
}

TEST_F(AuthCacheTest, AnEntitysPoliciesAreSeenByItsTokens) {
  ASSERT_TRUE(Root(Operation::kUpdate, "sys/auth/userpass", {{"type", "userpass"}}).status.ok());
  ASSERT_TRUE(Root(Operation::kUpdate, "auth/userpass/users/ann", {{"password", "pw-ann-1234"}})
                  .status.ok());
  Reply login =
      Do("", Operation::kUpdate, "auth/userpass/login/ann", {{"password", "pw-ann-1234"}});
  ASSERT_TRUE(login.status.ok()) << login.status;
  const std::string t(login.response.auth->at("client_token").as_string());
  const std::string entity(login.response.auth->at("entity_id").as_string());
  ASSERT_EQ(ReadTwice(t), 403);
  object grant;
  grant["policies"] = core::ToArray(std::vector<std::string>{"reader"});
  ASSERT_TRUE(
      Root(Operation::kUpdate, "identity/entity/id/" + entity, std::move(grant)).status.ok());
  EXPECT_EQ(ReadTwice(t), 200);
  ASSERT_TRUE(
      Root(Operation::kUpdate, "identity/entity/id/" + entity, {{"disabled", true}}).status.ok());
  EXPECT_EQ(Read(t), 403);
  ASSERT_TRUE(
      Root(Operation::kUpdate, "identity/entity/id/" + entity, {{"disabled", false}}).status.ok());
  EXPECT_EQ(Read(t), 200);
  object none;
  none["policies"] = core::json::array();
  ASSERT_TRUE(
      Root(Operation::kUpdate, "identity/entity/id/" + entity, std::move(none)).status.ok());
  EXPECT_EQ(Read(t), 403);
}

TEST_F(AuthCacheTest, TheCachesAreBounded) {
  const size_t tokens = core::TokenStore::kCacheShards * core::TokenStore::kCachePerShard + 200;
  for (size_t i = 0; i < tokens; ++i) {
    // Each with a policy name of its own: a new compiled ACL each.
    const std::string t = TokenWith({"p" + std::to_string(i)});
    ASSERT_FALSE(t.empty());
    ASSERT_EQ(Read(t), 403);
  }
  EXPECT_LE(core_->tokens().CachedEntries(),
            core::TokenStore::kCacheShards * core::TokenStore::kCachePerShard);
  EXPECT_GT(core_->tokens().CachedEntries(), 0u);
  EXPECT_LE(core_->policies().compiled_acls(), core::PolicyStore::kMaxCompiledAcls);
  EXPECT_GT(core_->policies().compiled_acls(), 0u);
}

TEST_F(AuthCacheTest, SealingEmptiesTheCaches) {
  const std::string t = TokenWith({"reader"});
  ASSERT_EQ(ReadTwice(t), 200);
  ASSERT_GT(core_->tokens().CachedEntries(), 0u);
  ASSERT_GT(core_->policies().compiled_acls(), 0u);
  ASSERT_TRUE(core_->SealNow("test").ok());
  EXPECT_EQ(core_->tokens().CachedEntries(), 0u);
  EXPECT_EQ(core_->policies().compiled_acls(), 0u);
  EXPECT_EQ(Read(t), 503);
}

}  // namespace
}  // namespace strongroom::testing
