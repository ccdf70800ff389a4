// login_bench: a pod's cycle, Kubernetes login then one KV v2 read with the token it got, with
// service tokens (stored: a token entry and accessor written per login) and with batch tokens
// (sealed by the barrier keyring, nothing written), through the whole stack. The raw limits of
// the same run: a KV v2 read alone with an existing token (what the read costs; the rest is the
// login), and a bare RS256 verification of the same JWT (the check every login must make).
// The JWTs are verified locally (pem_keys), so no TokenReview round trip is measured.
// Not a test: run bench/run.sh.
//
// Usage: login_bench [--seconds=N] [--clients=N] [--bin=DIR]
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>
#include <thread>

#include "bench/bench_util.h"

namespace {

using strongroom::bench::Conn;
using strongroom::bench::Print;
using strongroom::bench::Result;
using strongroom::bench::RunLoad;

std::string B64Url(const unsigned char* p, size_t n) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  for (size_t i = 0; i < n; i += 3) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (i + 1 < n ? uint32_t{p[i + 1]} << 8 : 0) |
                       (i + 2 < n ? uint32_t{p[i + 2]} : 0);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    if (i + 1 < n) out += kAlphabet[(v >> 6) & 63];
    if (i + 2 < n) out += kAlphabet[v & 63];
  }
  return out;
}
std::string B64Url(const std::string& s) {
  return B64Url(reinterpret_cast<const unsigned char*>(s.data()), s.size());
}

bool Sign(EVP_PKEY* key, const std::string& input, std::string* sig) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  bool ok = ctx != nullptr && EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
            EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                           input.size()) == 1;
  std::string out(len, '\0');
  ok =
      ok && EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(out.data()), &len,
                           reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  out.resize(len);
  *sig = std::move(out);
  return ok;
}

// A projected service account token for apps/app, valid for an hour.
std::string ServiceAccountJwt(EVP_PKEY* key) {
  const long now = static_cast<long>(std::time(nullptr));
  const std::string header = R"({"alg":"RS256","typ":"JWT"})";
  const std::string claims =
      R"({"aud":["https://kubernetes.default.svc.cluster.local"],"exp":)" +
      std::to_string(now + 3600) + R"(,"iat":)" + std::to_string(now) +
      R"(,"iss":"https://kubernetes.default.svc.cluster.local","kubernetes.io":{"namespace":"apps",)"
      R"("serviceaccount":{"name":"app","uid":"5b6c7d8e-0000-4000-8000-000000000001"}},"nbf":)" +
      std::to_string(now) + R"(,"sub":"system:serviceaccount:apps:app"})";
  const std::string input = B64Url(header) + "." + B64Url(claims);
  std::string sig;
  if (!Sign(key, input, &sig)) return "";
  return input + "." + B64Url(sig);
}

std::string PublicPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  std::string out;
  if (bio != nullptr && PEM_write_bio_PUBKEY(bio, key) == 1) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    out.assign(data, static_cast<size_t>(n));
  }
  BIO_free(bio);
  return out;
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// The client_token of a login response ("" when absent).
std::string ClientToken(const std::string& body) {
  const std::string key = "\"client_token\":\"";
  const size_t at = body.find(key);
  if (at == std::string::npos) return "";
  const size_t start = at + key.size();
  const size_t end = body.find('"', start);
  return end == std::string::npos ? "" : body.substr(start, end - start);
}

}  // namespace

int main(int argc, char** argv) {
  const strongroom::bench::Options opt =
      strongroom::bench::ParseOptions(argc, argv, STRONGROOM_BIN_DIR);
  signal(SIGPIPE, SIG_IGN);
  const std::string dir = strongroom::bench::MakeTempDir();
  if (dir.empty()) return 1;
  std::printf("login_bench: %.0f s per phase, %d clients, %u cores\n\n", opt.seconds, opt.clients,
              std::thread::hardware_concurrency());

  EVP_PKEY* key = EVP_RSA_gen(2048);
  if (key == nullptr) return 1;
  const std::string jwt = ServiceAccountJwt(key);
  if (jwt.empty()) return 1;

  // --- raw limit: the RS256 verification a login makes.
  Result verify;
  {
    const size_t dot = jwt.rfind('.');
    const std::string input = jwt.substr(0, dot);
    std::string sig;
    if (!Sign(key, input, &sig)) return 1;
    verify = RunLoad(opt.clients, opt.seconds, [&](int) {
      return [&] {
        EVP_MD_CTX* ctx = EVP_MD_CTX_new();
        const bool ok =
            EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
            EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                             reinterpret_cast<const unsigned char*>(input.data()),
                             input.size()) == 1;
        EVP_MD_CTX_free(ctx);
        return ok;
      };
    });
  }

  strongroom::bench::Daemon daemon;
  if (!daemon.StartDev(opt.bin, dir)) {
    return 1;
  }
  const int port = daemon.port();
  {
    Conn c(port);
    bool ok = c.Do("POST", "/v1/sys/auth/kubernetes", "bench", R"({"type":"kubernetes"})") == 204;
    ok = ok && c.Do("POST", "/v1/auth/kubernetes/config", "bench",
                    "{\"issuer\":\"https://kubernetes.default.svc.cluster.local\",\"pem_keys\":[" +
                        JsonString(PublicPem(key)) + "]}") == 204;
    ok = ok &&
         c.Do("PUT", "/v1/sys/policies/acl/read", "bench",
              R"({"policy":"path \"secret/data/bench\" { capabilities = [\"read\"] }"})") == 204;
    for (const char* type : {"service", "batch"}) {
      ok = ok && c.Do("POST", std::string("/v1/auth/kubernetes/role/") + type, "bench",
                      std::string(R"({"bound_service_account_names":"app",)") +
                          R"("bound_service_account_namespaces":"apps","token_policies":"read",)" +
                          R"("audience":"https://kubernetes.default.svc.cluster.local",)" +
                          R"("token_ttl":"10m","token_type":")" + type + "\"}") == 204;
    }
    ok = ok && c.Do("POST", "/v1/secret/data/bench", "bench", R"({"data":{"v":"x"}})") == 200;
    if (!ok) {
      std::fprintf(stderr, "login_bench: set-up failed; see %s/daemon.log\n", dir.c_str());
      return 1;
    }
  }
  // One cycle: log in with `role`, read with the token.
  const auto cycle = [&](const char* role) {
    return [&, role](int) {
      auto c = std::make_shared<Conn>(port);
      const std::string body = std::string("{\"role\":\"") + role + "\",\"jwt\":\"" + jwt + "\"}";
      return [c, body] {
        std::string resp;
        const int status = c->Do("POST", "/v1/auth/kubernetes/login", "", body, &resp);
        if (status != 200) {
          static std::atomic<bool> told{false};
          if (!told.exchange(true)) std::fprintf(stderr, "login: %d %s\n", status, resp.c_str());
          return false;
        }
        const std::string token = ClientToken(resp);
        return !token.empty() && c->Do("GET", "/v1/secret/data/bench", token, "") == 200;
      };
    };
  };
  const Result read_only = RunLoad(opt.clients, opt.seconds, [&](int) {
    auto c = std::make_shared<Conn>(port);
    return [c] { return c->Do("GET", "/v1/secret/data/bench", "bench", "") == 200; };
  });
  const Result service = RunLoad(opt.clients, opt.seconds, cycle("service"));
  const Result batch = RunLoad(opt.clients, opt.seconds, cycle("batch"));
  daemon.Stop();

  std::printf("raw limits (same machine, same run)\n");
  Print("RS256 verify of the login JWT", verify, nullptr);
  Print("KV v2 read alone, existing token", read_only, nullptr);
  std::printf("\nKubernetes login + one KV v2 read (vs the read alone)\n");
  Print("service tokens", service, &read_only, "read alone");
  Print("batch tokens", batch, &read_only, "read alone");
  std::printf("\nbatch vs service\n");
  Print("batch tokens", batch, &service, "service tokens");
  std::printf("\n");
  EVP_PKEY_free(key);
  return strongroom::bench::RemoveTree(dir) ? 0 : 1;
}
