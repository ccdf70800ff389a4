// The route tables (core/route.h): the matcher, and the router's check before a backend runs —
// a request no route matches never reaches the backend.
#include "appliance/core/route.h"

#include <gtest/gtest.h>

#include <atomic>

#include "tests/unit/engines/core_fixture.h"

namespace strongroom::core {
namespace {

constexpr Route kTable[] = {
    {"", kRouteList, "root"},
    {"users", kRouteList, "users"},
    {"users/{name}", kRouteRead | kRouteWrite | kRouteDelete, "user"},
    {"users/{name}/password", kRouteWrite, "password"},
    {"mounts/{path*}/tune", kRouteRead, "tune"},
    {"mounts/{path*}", kRouteRead | kRouteDelete, "mount"},
};

std::string Which(std::string_view path) {
  const Route* r = FindRoute(kTable, path);
  return r == nullptr ? "-" : std::string(r->summary);
}

TEST(RouteTest, MatchesLiteralsParamsAndRestParams) {
  EXPECT_EQ(Which(""), "root");
  EXPECT_EQ(Which("users"), "users");
  EXPECT_EQ(Which("users/"), "users");  // Vault's LIST spelling
  EXPECT_EQ(Which("users/alice"), "user");
  EXPECT_EQ(Which("users/alice/"), "user");
  EXPECT_EQ(Which("users/alice/password"), "password");
  EXPECT_EQ(Which("users/alice/other"), "-");
  EXPECT_EQ(Which("users/alice/password/x"), "-");
  EXPECT_EQ(Which("userss"), "-");
  EXPECT_EQ(Which("mounts/secret/tune"), "tune");
  EXPECT_EQ(Which("mounts/a/b/c/tune"), "tune");
  EXPECT_EQ(Which("mounts/tune"), "mount");  // the rest parameter needs one segment
  EXPECT_EQ(Which("mounts/a/b"), "mount");
  EXPECT_EQ(Which("mounts"), "-");
  EXPECT_EQ(Which("/users"), "-");
}

TEST(RouteTest, ChecksTheOperation) {
  EXPECT_TRUE(CheckRoute(kTable, "users/a", Operation::kRead).ok());
  EXPECT_TRUE(CheckRoute(kTable, "users/a", Operation::kHead).ok());
  EXPECT_TRUE(CheckRoute(kTable, "users/a", Operation::kCreate).ok());
  EXPECT_TRUE(CheckRoute(kTable, "users/a", Operation::kUpdate).ok());
  EXPECT_EQ(CheckRoute(kTable, "users/a", Operation::kList).code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(CheckRoute(kTable, "users/a", Operation::kPatch).code(),
            absl::StatusCode::kUnimplemented);
  absl::Status missing = CheckRoute(kTable, "nope", Operation::kRead);
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.message(), "unsupported path");
}

TEST(RouteTest, ParamsAndOpenApiPaths) {
  EXPECT_EQ(RouteParams("users/{name}/password"), std::vector<std::string>{"name"});
  EXPECT_EQ(RouteParams("mounts/{path*}/tune"), std::vector<std::string>{"path"});
  EXPECT_EQ(RouteOpenApiPath("mounts/{path*}/tune"), "mounts/{path}/tune");
  EXPECT_EQ(RouteOpenApiPath("data/{path*}"), "data/{path}");
  EXPECT_EQ(RouteOpenApiPath(""), "");
}

// A backend that counts the requests reaching Handle.
class SpyBackend final : public Backend {
 public:
  explicit SpyBackend(std::atomic<int>* calls) : calls_(calls) {}
  std::span<const Route> Routes() const override {
    static constexpr Route kSpy[] = {{"known", kRouteRead, "known"}};
    return kSpy;
  }
  absl::StatusOr<Response> Handle(Request&) override {
    ++*calls_;
    return Response::Data(json::object{{"ok", true}});
  }

 private:
  std::atomic<int>* calls_;
};

class RouterGateTest : public testing::CoreFixture {
 protected:
  std::vector<EngineType> Engines() override {
    auto engines = engines::EngineTable();
    engines.push_back(
        {"spy", "spy",
         [this](const MountEntry&, Core*) -> absl::StatusOr<std::unique_ptr<Backend>> {
           return std::unique_ptr<Backend>(std::make_unique<SpyBackend>(&calls_));
         },
         nullptr});
    return engines;
  }
  std::atomic<int> calls_{0};
};

TEST_F(RouterGateTest, RequestsNoRouteMatchesNeverReachTheBackend) {
  ASSERT_TRUE(Root(Operation::kUpdate, "sys/mounts/spy", {{"type", "spy"}}).status.ok());
  testing::Reply ok = Root(Operation::kRead, "spy/known");
  ASSERT_TRUE(ok.status.ok()) << ok.status;
  EXPECT_EQ(calls_.load(), 1);
  testing::Reply unknown = Root(Operation::kRead, "spy/unknown");
  EXPECT_EQ(unknown.code(), 404);
  EXPECT_EQ(unknown.status.message(), "unsupported path");
  testing::Reply wrong_op = Root(Operation::kUpdate, "spy/known", {{"a", 1}});
  EXPECT_EQ(wrong_op.code(), 405);
  testing::Reply deeper = Root(Operation::kRead, "spy/known/deeper");
  EXPECT_EQ(deeper.code(), 404);
  EXPECT_EQ(calls_.load(), 1) << "only the matching request reached Handle";
  // The ACL still comes first: a token without access gets 403, not the route's 404.
  const std::string weak = TokenWith({"default"});
  EXPECT_EQ(Do(weak, Operation::kRead, "spy/unknown").code(), 403);
}

}  // namespace
}  // namespace strongroom::core
