#include "appliance/core/shamir.h"

extern "C" {
#include <libgfshare.h>
}
#include <openssl/rand.h>

#include <cstdlib>
#include <memory>
#include <mutex>
#include <set>

#include "absl/status/status.h"

namespace strongroom::core {
namespace {

// libgfshare leaves its random source to the caller; never use its random()-based default.
void FillFromOpenSsl(unsigned char* buf, unsigned int n) {
  if (RAND_priv_bytes(buf, static_cast<int>(n)) != 1) std::abort();  // no safe fallback exists
}

// libgfshare also calls the hook when it frees a context (to scrub it), so every path that makes
// one (combining in a process that never split included) must set it first. A global: set once.
void UseOpenSslRandom() {
  static std::once_flag once;
  std::call_once(once, [] { gfshare_fill_rand = FillFromOpenSsl; });
}

struct CtxFree {
  void operator()(gfshare_ctx* c) const { gfshare_ctx_free(c); }
};

}  // namespace

absl::StatusOr<std::vector<std::vector<uint8_t>>> ShamirSplit(std::span<const uint8_t> secret,
                                                              int shares, int threshold) {
  if (shares < 1 || shares > 255) return absl::InvalidArgumentError("shares must be 1..255");
  if (threshold < 1 || threshold > shares) {
    return absl::InvalidArgumentError("threshold must be between 1 and the number of shares");
  }
  if (shares > 1 && threshold < 2) {
    return absl::InvalidArgumentError("threshold must be at least 2 when there are several shares");
  }
  if (secret.empty()) return absl::InvalidArgumentError("empty secret");
  UseOpenSslRandom();
  // Distinct random non-zero x-coordinates.
  std::set<uint8_t> used;
  std::vector<unsigned char> xs;
  while (xs.size() < static_cast<size_t>(shares)) {
    uint8_t x = 0;
    FillFromOpenSsl(&x, 1);
    if (x != 0 && used.insert(x).second) xs.push_back(x);
  }
  const auto size = static_cast<unsigned int>(secret.size());
  std::unique_ptr<gfshare_ctx, CtxFree> ctx(gfshare_ctx_init_enc(
      xs.data(), static_cast<unsigned int>(shares), static_cast<unsigned char>(threshold), size));
  if (!ctx) return absl::InternalError("gfshare_ctx_init_enc failed");
  SecureBytes copy(secret.data(), secret.size());
  gfshare_ctx_enc_setsecret(ctx.get(), copy.data());
  std::vector<std::vector<uint8_t>> out;
  for (int i = 0; i < shares; ++i) {
    std::vector<uint8_t> share(secret.size() + 1);
    gfshare_ctx_enc_getshare(ctx.get(), static_cast<unsigned char>(i), share.data());
    share.back() = xs[static_cast<size_t>(i)];
    out.push_back(std::move(share));
  }
  return out;
}

absl::StatusOr<SecureBytes> ShamirCombine(const std::vector<std::vector<uint8_t>>& shares) {
  if (shares.empty()) return absl::InvalidArgumentError("no shares");
  const size_t len = shares.front().size();
  if (len < 2) return absl::InvalidArgumentError("share too short");
  std::vector<unsigned char> xs;
  std::set<uint8_t> used;
  for (const auto& s : shares) {
    if (s.size() != len) return absl::InvalidArgumentError("shares have different lengths");
    if (s.back() == 0 || !used.insert(s.back()).second) {
      return absl::InvalidArgumentError("duplicate or invalid share");
    }
    xs.push_back(s.back());
  }
  const auto size = static_cast<unsigned int>(len - 1);
  UseOpenSslRandom();
  std::unique_ptr<gfshare_ctx, CtxFree> ctx(
      gfshare_ctx_init_dec(xs.data(), static_cast<unsigned int>(xs.size()), size));
  if (!ctx) return absl::InternalError("gfshare_ctx_init_dec failed");
  for (size_t i = 0; i < shares.size(); ++i) {
    std::vector<uint8_t> y(shares[i].begin(), shares[i].end() - 1);
    gfshare_ctx_dec_giveshare(ctx.get(), static_cast<unsigned char>(i), y.data());
  }
  SecureBytes secret(size);
  gfshare_ctx_dec_extract(ctx.get(), secret.data());
  return secret;
}

}  // namespace strongroom::core
