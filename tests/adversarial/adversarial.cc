#include "tests/adversarial/adversarial.h"

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace strongroom::testing {

void RunConcurrently(int threads, const std::function<void(int)>& body) {
  std::mutex mu;
  std::condition_variable cv;
  int ready = 0;
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(threads));
  for (int i = 0; i < threads; ++i) {
    pool.emplace_back([&, i] {
      {
        std::unique_lock lock(mu);
        ++ready;
        cv.notify_all();
        cv.wait(lock, [&] { return ready == threads; });
      }
      body(i);
    });
  }
  for (auto& t : pool) t.join();
}

void AdversarialTest::SetUp() {
  ASSERT_TRUE(d_.Start()) << d_.Log();
  d_.Init();
  ASSERT_EQ(
      d_.Root("POST", "/v1/sys/mounts/secret", {{"type", "kv"}, {"options", {{"version", "2"}}}})
          .status,
      204);
}

HttpResponse AdversarialTest::As(const std::string& token, const std::string& method,
                                 const std::string& path, const nlohmann::json& body) {
  std::vector<std::pair<std::string, std::string>> headers;
  if (!token.empty()) headers.emplace_back("X-Vault-Token", token);
  return d_.Call(method, path, body.is_null() ? "" : body.dump(), headers);
}

std::string AdversarialTest::CreateToken(const nlohmann::json& body, const std::string& parent) {
  auto r = As(parent.empty() ? d_.root_token() : parent, "POST", "/v1/auth/token/create", body);
  if (r.status != 200) return "";
  return r.Json()["auth"]["client_token"].get<std::string>();
}

HttpResponse AdversarialTest::AppRoleLogin(const std::string& role) {
  const std::string base = "/v1/auth/approle/role/" + role;
  auto rid = d_.Root("GET", base + "/role-id").Json()["data"]["role_id"];
  auto sid = d_.Root("POST", base + "/secret-id").Json()["data"]["secret_id"];
  return d_.Call("POST", "/v1/auth/approle/login",
                 nlohmann::json({{"role_id", rid}, {"secret_id", sid}}).dump());
}

}  // namespace strongroom::testing
