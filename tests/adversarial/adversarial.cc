#include "tests/adversarial/adversarial.h"

#include <openssl/pem.h>

#include <condition_variable>
#include <ctime>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace strongroom::testing {

std::string Base64Url(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

std::string PublicKeyPem(EVP_PKEY* key) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) return "";
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return len > 0 ? std::string(data, static_cast<size_t>(len)) : "";
}

std::string ServiceAccountJwt(EVP_PKEY* key, const std::string& issuer,
                              const std::string& audience) {
  using json = nlohmann::json;
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  const json claims = {
      {"iss", issuer},
      {"aud", json::array({audience})},
      {"sub", "system:serviceaccount:apps:web"},
      {"iat", now - 10},
      {"nbf", now - 10},
      {"exp", now + 3600},
      {"kubernetes.io",
       {{"namespace", "apps"},
        {"serviceaccount", {{"name", "web"}, {"uid", "2d6a0c4e-5b0e-4c1e-9f3a-1f2e3d4c5b6a"}}}}}};
  const std::string input =
      Base64Url(json({{"alg", "RS256"}, {"typ", "JWT"}}).dump()) + "." + Base64Url(claims.dump());
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  size_t len = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(input.data());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, in, input.size()) != 1) {
    ADD_FAILURE() << "cannot sign a JWT";
    return "";
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in,
                     input.size()) != 1) {
    ADD_FAILURE() << "cannot sign a JWT";
    return "";
  }
  sig.resize(len);
  return input + "." + Base64Url(sig);
}

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
