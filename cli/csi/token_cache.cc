#include "cli/csi/token_cache.h"

#include <utility>

#include "client/client.h"

namespace strongroom::csi {

std::optional<CachedToken> TokenCache::Get(const std::string& key) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.token;
}

void TokenCache::Put(const std::string& key, CachedToken token) {
  if (capacity_ == 0) return;
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    it->second.token = std::move(token);
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return;
  }
  lru_.push_front(key);
  entries_.emplace(key, Entry{std::move(token), lru_.begin()});
  while (entries_.size() > capacity_) {
    entries_.erase(lru_.back());
    lru_.pop_back();
  }
}

void TokenCache::Erase(const std::string& key, const std::string& token) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.token.token != token) return;
  lru_.erase(it->second.lru);
  entries_.erase(it);
}

size_t TokenCache::size() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

CachedToken TokenCache::Make(std::string token, int64_t lease_seconds, bool renewable) const {
  CachedToken t;
  t.token = std::move(token);
  t.renewable = renewable;
  if (lease_seconds > 0) {
    const absl::Time now = clock_();
    t.renew_at = now + client::RenewAfter(lease_seconds);
    t.expires_at = now + absl::Seconds(lease_seconds);
  }
  return t;
}

}  // namespace strongroom::csi
