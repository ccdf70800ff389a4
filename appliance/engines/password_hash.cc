#include "appliance/engines/password_hash.h"

#include <botan/pwdhash.h>
#include <openssl/crypto.h>

#include <atomic>
#include <exception>
#include <memory>
#include <semaphore>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status_macros.h"

namespace strongroom::engines {
namespace {

constexpr char kAlgorithm[] = "argon2id";
constexpr size_t kSaltBytes = 16;
constexpr size_t kHashBytes = 32;
// Bounds on stored parameters (a corrupt or hostile record must not make a login take a GiB or
// an hour).
constexpr int64_t kMaxMemoryKib = 1 << 20;  // 1 GiB
constexpr int64_t kMaxIterations = 16;
constexpr int64_t kMaxParallelism = 16;

// Each Argon2id computation holds its memory (19 MiB by default) for its duration: at most this
// many run at once, whatever the number of concurrent logins (unauthenticated requests).
std::counting_semaphore<64>& HashSlots() {
  static auto* slots = new std::counting_semaphore<64>(2);
  return *slots;
}

std::atomic<uint64_t> g_evaluations{0};
std::atomic<uint64_t> g_default_evaluations{0};

// Argon2id of `password` into `out`; false (logged) when Botan throws.
bool Derive(std::string_view password, const std::string& salt, size_t m, size_t t, size_t p,
            uint8_t* out, size_t out_len) {
  g_evaluations.fetch_add(1, std::memory_order_relaxed);
  const Argon2Params d;
  if (m == d.memory_kib && t == d.iterations && p == d.parallelism) {
    g_default_evaluations.fetch_add(1, std::memory_order_relaxed);
  }
  HashSlots().acquire();
  bool ok = true;
  try {
    auto family = Botan::PasswordHashFamily::create("Argon2id");
    if (family == nullptr) {
      ok = false;
    } else {
      auto hash = family->from_params(m, t, p);
      hash->derive_key(out, out_len, password.data(), password.size(),
                       reinterpret_cast<const uint8_t*>(salt.data()), salt.size());
    }
  } catch (const std::exception& e) {
    LogError("argon2id: %s", e.what());
    ok = false;
  }
  HashSlots().release();
  return ok;
}

}  // namespace

Argon2Count Argon2Evaluations() { return {g_evaluations.load(), g_default_evaluations.load()}; }

absl::StatusOr<core::json::object> HashPassword(std::string_view password,
                                                const Argon2Params& params) {
  if (password.size() > kMaxPasswordBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("password is longer than ", kMaxPasswordBytes, " bytes"));
  }
  std::string salt(kSaltBytes, '\0');
  core::RandomBytesOrAbort(reinterpret_cast<uint8_t*>(salt.data()), salt.size());
  uint8_t out[kHashBytes];
  if (!Derive(password, salt, params.memory_kib, params.iterations, params.parallelism, out,
              sizeof out)) {
    return absl::InternalError("password hashing failed");
  }
  core::json::object o;
  o["algorithm"] = kAlgorithm;
  o["m"] = params.memory_kib;
  o["t"] = params.iterations;
  o["p"] = params.parallelism;
  o["salt"] = absl::Base64Escape(salt);
  o["hash"] = absl::Base64Escape(absl::string_view(reinterpret_cast<const char*>(out), sizeof out));
  OPENSSL_cleanse(out, sizeof out);
  return o;
}

absl::StatusOr<bool> VerifyPassword(std::string_view password, const core::json::object& stored) {
  if (password.size() > kMaxPasswordBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("password is longer than ", kMaxPasswordBytes, " bytes"));
  }
  auto str = [&](const char* k) {
    return core::GetString(stored, k).value_or(std::nullopt).value_or("");
  };
  auto num = [&](const char* k) {
    return core::GetInt(stored, k).value_or(std::nullopt).value_or(0);
  };
  const int64_t m = num("m"), t = num("t"), p = num("p");
  std::string salt, want;
  if (str("algorithm") != kAlgorithm || p < 1 || p > kMaxParallelism || m < 8 * p ||
      m > kMaxMemoryKib || t < 1 || t > kMaxIterations ||
      !absl::Base64Unescape(str("salt"), &salt) || salt.size() < 8 || salt.size() > 64 ||
      !absl::Base64Unescape(str("hash"), &want) || want.size() < 16 || want.size() > 64) {
    return absl::DataLossError("stored password hash is malformed");
  }
  std::vector<uint8_t> got(want.size());
  if (!Derive(password, salt, static_cast<size_t>(m), static_cast<size_t>(t),
              static_cast<size_t>(p), got.data(), got.size())) {
    return absl::InternalError("password hashing failed");
  }
  const bool match = CRYPTO_memcmp(got.data(), want.data(), want.size()) == 0;
  OPENSSL_cleanse(got.data(), got.size());
  return match;
}

void VerifyAgainstDummy(std::string_view password) {
  static const std::string kDummySalt(kSaltBytes, 'x');
  const Argon2Params d;
  uint8_t out[kHashBytes];
  (void)Derive(password.substr(0, kMaxPasswordBytes), kDummySalt, d.memory_kib, d.iterations,
               d.parallelism, out, sizeof out);
  OPENSSL_cleanse(out, sizeof out);
}

}  // namespace strongroom::engines
