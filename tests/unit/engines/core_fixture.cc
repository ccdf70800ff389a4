#include "tests/unit/engines/core_fixture.h"

namespace strongroom::testing {

int Reply::code() const {
  if (status.ok()) return response.http_status;
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
      return 400;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kUnimplemented:
      return 405;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

void CoreFixture::SetUp() {
  core::CoreOptions options;
  options.engines = Engines();
  options.clock = [this] { return now_; };
  core_ = std::make_unique<core::Core>(std::move(options), &physical_,
                                       std::make_unique<PassThroughSeal>());
  core_->Start();
  core::InitRequest init;
  init.recovery_shares = 1;
  init.recovery_threshold = 1;
  auto result = core_->Initialize(init);
  ASSERT_TRUE(result.ok()) << result.status();
  root_ = result->root_token;
}

Reply CoreFixture::Do(const std::string& token, core::Operation op, const std::string& path,
                      core::json::object data) {
  core::Request req;
  req.operation = op;
  req.path = path;
  req.has_data = !data.empty();
  req.data = std::move(data);
  req.client_token = token;
  req.remote_address = "127.0.0.1";
  req.request_id = core::NewUuid();
  auto r = core_->Handle(req);
  Reply out;
  if (r.ok()) {
    out.response = std::move(*r);
  } else {
    out.status = r.status();
  }
  return out;
}

std::string CoreFixture::TokenWith(const std::vector<std::string>& policies) {
  core::json::object d;
  d["policies"] = core::ToArray(policies);
  Reply r = Root(core::Operation::kUpdate, "auth/token/create", std::move(d));
  EXPECT_TRUE(r.status.ok()) << r.status;
  if (!r.status.ok() || !r.response.auth) return "";
  return std::string(r.response.auth->at("client_token").as_string());
}

}  // namespace strongroom::testing
