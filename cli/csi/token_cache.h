// The provider's Vault tokens, one per pod (its service account, the SecretProviderClass's Vault
// settings and role), kept between mounts so that every rotation poll does not log in again.
// Bounded: at most `capacity` entries, the least recently used dropped first (capacity 0 keeps
// nothing: every mount logs in). Thread-safe. Holds tokens, so nothing here is ever logged.
#pragma once

#include <cstddef>
#include <functional>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace strongroom::csi {

struct CachedToken {
  std::string token;
  bool renewable = false;
  // When to renew it (or replace it, when it cannot be renewed): client::RenewAfter into its
  // lease. InfiniteFuture for a token without a lease.
  absl::Time renew_at = absl::InfiniteFuture();
  // When it dies. InfiniteFuture for a token without a lease.
  absl::Time expires_at = absl::InfiniteFuture();
};

class TokenCache {
 public:
  using Clock = std::function<absl::Time()>;
  explicit TokenCache(
      size_t capacity, Clock clock = [] { return absl::Now(); })
      : capacity_(capacity), clock_(std::move(clock)) {}

  // The entry for `key`, made most recently used; nullopt when absent.
  std::optional<CachedToken> Get(const std::string& key) ABSL_LOCKS_EXCLUDED(mu_);
  // Adds or replaces; drops the least recently used entries beyond the capacity.
  void Put(const std::string& key, CachedToken token) ABSL_LOCKS_EXCLUDED(mu_);
  // Removes the entry if it still holds `token` (a newer one put meanwhile is kept).
  void Erase(const std::string& key, const std::string& token) ABSL_LOCKS_EXCLUDED(mu_);
  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);
  size_t capacity() const { return capacity_; }
  absl::Time Now() const { return clock_(); }

  // The entry for a token obtained now with a lease of `lease_seconds` (0: no lease).
  CachedToken Make(std::string token, int64_t lease_seconds, bool renewable) const;

 private:
  struct Entry {
    CachedToken token;
    std::list<std::string>::iterator lru;  // position in lru_ (front: most recent)
  };
  const size_t capacity_;
  const Clock clock_;
  mutable absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> lru_ ABSL_GUARDED_BY(mu_);
};

}  // namespace strongroom::csi
