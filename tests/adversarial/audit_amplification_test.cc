// Issue 23 item 8: an anonymous client cannot make the broker's audit do many times the work of
// what it sent. Vault API sections: audit devices (file), listener max_request_size.
#include <gmock/gmock.h>

#include <fstream>
#include <sstream>

#include "tests/adversarial/adversarial.h"

namespace strongroom::testing {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

class AuditAmplificationTest : public AdversarialTest {
 protected:
  void SetUp() override {
    AdversarialTest::SetUp();
    log_ = d_.dir() + "/audit.log";
    ASSERT_EQ(
        d_.Root("PUT", "/v1/sys/audit/file", {{"type", "file"}, {"options", {{"file_path", log_}}}})
            .status,
        204);
  }
  std::string log_;
};

// A body of 90,000 short strings (900 KB, within the JSON limits: arrays of 10,000, fewer than
// 100,000 strings) with no token (and with a forged one) is refused and recorded without its
// body. Before the fix each string became a 76-character digest in the record: about 7 MB of
// audit log here (and 25 s and 2 GB of broker memory for a 32 MiB body, which the worker's JSON
// limits now refuse before it reaches the broker: json_limits_test.cc).
TEST_F(AuditAmplificationTest, AnonymousBodyIsNotAuditedAtAmplifiedCost) {
  std::string inner = "[";
  for (int i = 0; i < 10000; ++i) inner += i ? R"(,"aaaaaaa")" : R"("aaaaaaa")";
  inner += "]";
  std::string body = R"({"k":[)" + inner;
  for (int i = 1; i < 9; ++i) body += "," + inner;
  body += "]}";
  for (const std::string& token : {std::string(), std::string("hvs.forged-token")}) {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!token.empty()) headers.emplace_back("X-Vault-Token", token);
    HttpRequest req{"PUT", "/v1/secret/data/x", body, headers};
    auto r = SendHttp("127.0.0.1", d_.port(), req, 120000);
    EXPECT_EQ(r.status, 403) << r.body.substr(0, 200);
  }
  EXPECT_EQ(d_.Call("GET", "/v1/sys/health").status, 200);
  ASSERT_EQ(d_.Stop(), 0);
  std::ifstream in(log_);
  std::stringstream all;
  all << in.rdbuf();
  EXPECT_THAT(all.str(), HasSubstr("secret/data/x"));  // the refusals are recorded
  EXPECT_LT(all.str().size(), 64u << 10) << "the refused bodies reached the audit log";
}

// The other side: a legitimate large request (a Transit batch of 10,000 items) is audited whole.
TEST_F(AuditAmplificationTest, LargeAuthenticatedBatchIsAuditedWhole) {
  ASSERT_EQ(d_.Root("POST", "/v1/sys/mounts/transit", {{"type", "transit"}}).status, 204);
  ASSERT_EQ(d_.Root("POST", "/v1/transit/keys/k").status / 100, 2);
  json items = json::array();
  for (int i = 0; i < 10000; ++i) items.push_back({{"plaintext", "aGVsbG8="}});
  auto r = d_.Root("POST", "/v1/transit/encrypt/k", {{"batch_input", items}});
  ASSERT_EQ(r.status, 200) << r.body.substr(0, 300);
  EXPECT_EQ(r.Json()["data"]["batch_results"].size(), 10000u);
  ASSERT_EQ(d_.Stop(), 0);
  std::ifstream in(log_);
  size_t batch_records = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.find("transit/encrypt/k") == std::string::npos) continue;
    json j = json::parse(line);
    if (j["request"]["data"]["batch_input"].size() == 10000u) ++batch_records;
  }
  EXPECT_EQ(batch_records, 2u);  // the request record and the response record
}

}  // namespace
}  // namespace strongroom::testing
