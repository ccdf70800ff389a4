// The userpass auth method (engines/userpass_backend.cc) through the real pipeline: users with
// Argon2id hashes in barrier storage, token_* parameters, login's auth block and its refusals.
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "appliance/engines/password_hash.h"
#include "tests/unit/engines/core_fixture.h"

namespace strongroom::testing {
namespace {

using core::Operation;
using core::json::object;

class UserpassTest : public CoreFixture {
 protected:
  void SetUp() override {
    CoreFixture::SetUp();
    ASSERT_TRUE(Root(Operation::kUpdate, "sys/auth/userpass", {{"type", "userpass"}}).status.ok());
    ASSERT_TRUE(Root(Operation::kUpdate, "sys/policies/acl/reader",
                     {{"policy", "path \"secret/*\" { capabilities = [\"read\"] }"}})
                    .status.ok());
  }
  Reply Login(const std::string& user, const std::string& password) {
    return Do("", Operation::kUpdate, "auth/userpass/login/" + user, {{"password", password}});
  }
  // The stored record of `user` as the backend wrote it (below the barrier's encryption).
  object Stored(const std::string& user) {
    std::string uuid;
    for (const auto& m : core_->Mounts()) {
      if (m.path == "auth/userpass/") uuid = m.uuid;
    }
    auto raw = core_->barrier()->Get("logical/" + uuid + "/user/" + user);
    EXPECT_TRUE(raw.ok() && raw->has_value());
    if (!raw.ok() || !raw->has_value()) return {};
    return core::ParseObject(**raw).value_or(object());
  }
};

TEST_F(UserpassTest, CreateReadListLoginAndUseTheToken) {
  Reply w =
      Root(Operation::kUpdate, "auth/userpass/users/Alice",
           {{"password", "correct horse"}, {"token_policies", "reader"}, {"token_ttl", "1h"}});
  ASSERT_TRUE(w.status.ok()) << w.status;
  EXPECT_EQ(w.code(), 204);

  Reply r = Root(Operation::kRead, "auth/userpass/users/alice");
  ASSERT_TRUE(r.status.ok()) << r.status;
  const object& d = *r.response.data;
  EXPECT_EQ(d.at("token_ttl").as_int64(), 3600);
  EXPECT_EQ(d.at("token_policies").as_array().size(), 1u);
  EXPECT_FALSE(d.contains("password"));
  EXPECT_FALSE(d.contains("password_hash"));
  EXPECT_FALSE(absl::StrContains(core::Serialize(d), "argon2"));

  Reply list = Root(Operation::kList, "auth/userpass/users");
  ASSERT_TRUE(list.status.ok()) << list.status;
  EXPECT_EQ(core::Serialize(list.response.data->at("keys")), R"(["alice"])");

  Reply login = Login("ALICE", "correct horse");  // names are case-insensitive
  ASSERT_TRUE(login.status.ok()) << login.status;
  ASSERT_TRUE(login.response.auth.has_value());
  const object& auth = *login.response.auth;
  EXPECT_TRUE(std::string(auth.at("client_token").as_string()).starts_with("hvs."));
  EXPECT_EQ(auth.at("lease_duration").as_int64(), 3600);
  EXPECT_EQ(core::Serialize(auth.at("policies")), R"(["default","reader"])");
  EXPECT_EQ(auth.at("metadata").as_object().at("username").as_string(), "alice");
  EXPECT_FALSE(auth.at("entity_id").as_string().empty());

  const std::string token(auth.at("client_token").as_string());
  Reply self = Do(token, Operation::kRead, "auth/token/lookup-self");
  ASSERT_TRUE(self.status.ok()) << self.status;
  EXPECT_EQ(self.response.data->at("display_name").as_string(), "userpass-alice");
  EXPECT_EQ(self.response.data->at("path").as_string(), "auth/userpass/login/alice");
  // The reader policy applies; nothing else does.
  EXPECT_EQ(Do(token, Operation::kRead, "sys/policies/acl/reader").code(), 403);

  // The entity behind the alias counts.
  Reply entities = Root(Operation::kRead, "sys/internal/counters/entities");
  ASSERT_TRUE(entities.status.ok());
  EXPECT_EQ(core::Serialize(*entities.response.data), R"({"counters":{"entities":{"total":1}}})");
}

TEST_F(UserpassTest, StoresAnArgon2idHashWithItsParameters) {
  ASSERT_TRUE(
      Root(Operation::kUpdate, "auth/userpass/users/bob", {{"password", "pw-1"}}).status.ok());
  object s = Stored("bob");
  ASSERT_TRUE(s.contains("password_hash"));
  const object& h = s.at("password_hash").as_object();
  EXPECT_EQ(h.at("algorithm").as_string(), "argon2id");
  EXPECT_EQ(h.at("m").as_int64(), 19 * 1024);
  EXPECT_EQ(h.at("t").as_int64(), 2);
  EXPECT_EQ(h.at("p").as_int64(), 1);
  EXPECT_FALSE(absl::StrContains(core::Serialize(s), "pw-1"));
  // Hashes made with other parameters still verify (the parameters are read from the record).
  engines::Argon2Params cheap;
  cheap.memory_kib = 64;
  cheap.iterations = 1;
  auto other = engines::HashPassword("pw-2", cheap);
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(*engines::VerifyPassword("pw-2", *other));
  EXPECT_FALSE(*engines::VerifyPassword("pw-1", *other));
  // Out-of-bounds parameters in a record are refused before any work.
  object hostile = *other;
  hostile["m"] = int64_t{1} << 40;
  EXPECT_EQ(engines::VerifyPassword("pw-2", hostile).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(UserpassTest, WrongPasswordAndUnknownUserGetTheSameAnswer) {
  ASSERT_TRUE(
      Root(Operation::kUpdate, "auth/userpass/users/carol", {{"password", "right"}}).status.ok());
  // Both make exactly one Argon2id computation with the default parameters (the unknown name
  // against a dummy hash), so an unknown name is not answered sooner.
  const engines::Argon2Count before = engines::Argon2Evaluations();
  const Reply wrong = Login("carol", "wrong");
  const engines::Argon2Count middle = engines::Argon2Evaluations();
  const Reply unknown = Login("nobody", "wrong");
  const engines::Argon2Count after = engines::Argon2Evaluations();
  for (const Reply* r : {&wrong, &unknown}) {
    EXPECT_EQ(r->code(), 400);
    EXPECT_EQ(r->status.message(), "invalid username or password");
  }
  EXPECT_EQ(middle.all - before.all, 1u);
  EXPECT_EQ(middle.with_defaults - before.with_defaults, 1u);
  EXPECT_EQ(after.all - middle.all, 1u);
  EXPECT_EQ(after.with_defaults - middle.with_defaults, 1u);
  EXPECT_EQ(Login("carol", "").code(), 400);
  EXPECT_EQ(Login("carol", std::string(engines::kMaxPasswordBytes + 1, 'a')).code(), 400);
}

TEST_F(UserpassTest, PasswordAndPolicyUpdates) {
  ASSERT_TRUE(
      Root(Operation::kUpdate, "auth/userpass/users/dave", {{"password", "old"}}).status.ok());
  ASSERT_TRUE(Root(Operation::kUpdate, "auth/userpass/users/dave/password", {{"password", "new"}})
                  .status.ok());
  EXPECT_EQ(Login("dave", "old").code(), 400);
  ASSERT_TRUE(Login("dave", "new").status.ok());
  ASSERT_TRUE(Root(Operation::kUpdate, "auth/userpass/users/dave/policies",
                   {{"token_policies", "reader,other"}})
                  .status.ok());
  Reply login = Login("dave", "new");
  ASSERT_TRUE(login.status.ok());
  EXPECT_EQ(core::Serialize(login.response.auth->at("token_policies")),
            R"(["default","other","reader"])");
  // Updating a user without a password keeps the password.
  ASSERT_TRUE(
      Root(Operation::kUpdate, "auth/userpass/users/dave", {{"token_ttl", "2h"}}).status.ok());
  ASSERT_TRUE(Login("dave", "new").status.ok());
  // Password and policy updates of a user that does not exist are refused.
  EXPECT_EQ(
      Root(Operation::kUpdate, "auth/userpass/users/nobody/password", {{"password", "x"}}).code(),
      400);
  EXPECT_EQ(
      Root(Operation::kUpdate, "auth/userpass/users/nobody/policies", {{"policies", "x"}}).code(),
      400);
  // Deleted users cannot log in.
  ASSERT_TRUE(Root(Operation::kDelete, "auth/userpass/users/dave").status.ok());
  EXPECT_EQ(Login("dave", "new").code(), 400);
  EXPECT_EQ(Root(Operation::kRead, "auth/userpass/users/dave").code(), 404);
}

TEST_F(UserpassTest, RefusesBadInput) {
  // A new user needs a password.
  EXPECT_EQ(Root(Operation::kUpdate, "auth/userpass/users/erin", {{"token_ttl", "1h"}}).code(),
            400);
  // Auth methods never mint root tokens.
  EXPECT_EQ(Root(Operation::kUpdate, "auth/userpass/users/erin",
                 {{"password", "x"}, {"token_policies", "root"}})
                .code(),
            400);
  EXPECT_EQ(Root(Operation::kUpdate, "auth/userpass/users/erin",
                 {{"password", std::string(engines::kMaxPasswordBytes + 1, 'p')}})
                .code(),
            400);
  EXPECT_EQ(Root(Operation::kUpdate, "auth/userpass/users/bad%name", {{"password", "x"}}).code(),
            400);
  EXPECT_EQ(Root(Operation::kUpdate, "auth/userpass/users/erin",
                 {{"password", "x"}, {"token_bound_cidrs", "10.0.0.0/8"}})
                .code(),
            400);
  // Not a route of the method: refused before the backend runs.
  EXPECT_EQ(Root(Operation::kRead, "auth/userpass/users/erin/other").code(), 404);
  EXPECT_EQ(Root(Operation::kRead, "auth/userpass/login/erin").code(), 405);
  // Login needs no token, but user management does.
  EXPECT_EQ(Do("", Operation::kList, "auth/userpass/users").code(), 403);
}

}  // namespace
}  // namespace strongroom::testing
