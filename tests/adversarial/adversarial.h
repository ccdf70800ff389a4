// Shared pieces of the adversarial tests: a started, initialised daemon and real concurrency.
#pragma once

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/daemon.h"

namespace strongroom::testing {

// Runs `body(i)` on `threads` threads at once (released together by a start barrier) and waits
// for all of them.
void RunConcurrently(int threads, const std::function<void(int)>& body);

// RFC 4648 base64url without padding (JWT segments).
std::string Base64Url(const std::string& in);
// The public half of `key` as PEM SubjectPublicKeyInfo (auth/kubernetes/config pem_keys).
std::string PublicKeyPem(EVP_PKEY* key);
// A projected service-account token for apps/web (kubernetes.io claims), valid for an hour,
// signed RS256 with `key`.
std::string ServiceAccountJwt(EVP_PKEY* key, const std::string& issuer,
                              const std::string& audience);

// A started and initialised daemon with a KV v2 mount at "secret/".
class AdversarialTest : public ::testing::Test {
 protected:
  void SetUp() override;
  // A request with `token` in X-Vault-Token (no token header when empty).
  HttpResponse As(const std::string& token, const std::string& method, const std::string& path,
                  const nlohmann::json& body = nullptr);
  // POST auth/token/create as root (or as `parent`); the new token, empty on failure.
  std::string CreateToken(const nlohmann::json& body, const std::string& parent = "");
  // Logs in through the AppRole role `role` (at auth/approle/) with a fresh secret ID.
  HttpResponse AppRoleLogin(const std::string& role);
  Daemon d_;
};

}  // namespace strongroom::testing
