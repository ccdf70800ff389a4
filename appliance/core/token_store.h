// Token store: tokens are random ("hvs." + 24 base62), stored only under a salted hash
// (HMAC-SHA256 with a per-cluster salt kept in barrier storage), each with an accessor.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "appliance/core/json.h"
#include "appliance/storage/storage.h"
#include "base/secure_bytes.h"

namespace strongroom::core {

struct TokenEntry {
  std::string id_hash;          // salted hash of the token (storage key)
  std::string accessor;
  std::vector<std::string> policies;
  std::string display_name;
  std::string path;             // "auth/token/root", "auth/token/create", ...
  std::string parent_hash;
  int64_t creation_unix = 0;
  int64_t ttl = 0;              // seconds; 0 = no expiry (root)
  int64_t expire_unix = 0;      // 0 = never
  int64_t num_uses = 0;
  bool renewable = false;
  bool orphan = false;
  std::string type = "service";
  std::string entity_id;
  json::object meta;

  bool IsRoot() const;
  json::object ToJson() const;
  static absl::StatusOr<TokenEntry> FromJson(const json::object& o);
};

class TokenStore {
 public:
  TokenStore(storage::Storage* barrier, std::function<absl::Time()> clock)
      : storage_(barrier), clock_(std::move(clock)) {}

  // Loads (or on first use creates) the salt. Must be called after unseal.
  absl::Status Load();
  void Unload();

  // Creates a root token; `id` may name it (dev mode), else it is random.
  absl::StatusOr<std::string> CreateRoot(std::string_view id, std::string_view path);

  // The entry for a token, or nullopt when unknown or expired (expired ones are deleted).
  absl::StatusOr<std::optional<TokenEntry>> Lookup(std::string_view token);

  std::string Hash(std::string_view token) const;

 private:
  absl::Status Store(const TokenEntry& e);
  storage::Storage* storage_;
  std::function<absl::Time()> clock_;
  SecureBytes salt_;
};

}  // namespace strongroom::core
