// Token store: service tokens are random ("hvs." + 24 base62), stored only under a salted hash
// (HMAC-SHA256 with a per-cluster salt kept in barrier storage), each with an accessor. Batch
// tokens ("hvb.") are not stored: the token is its entry, sealed (AES-256-GCM) by the barrier
// keyring under its own associated data, so only this cluster can make or read one. Each service
// token has a cubbyhole, stored beside it and deleted with it.
#pragma once

#include <openssl/types.h>

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "appliance/core/barrier.h"
#include "appliance/core/json.h"
#include "appliance/storage/storage.h"
#include "base/secure_bytes.h"

namespace strongroom::core {

struct TokenEntry {
  std::string id_hash;  // salted hash of the token (storage key)
  std::string accessor;
  std::vector<std::string> policies;
  std::string display_name;
  std::string path;  // "auth/token/root", "auth/token/create", ...
  std::string parent_hash;
  int64_t creation_unix = 0;
  int64_t ttl = 0;               // seconds; 0 = no expiry (root)
  int64_t expire_unix = 0;       // 0 = never
  int64_t num_uses = 0;          // 0 = unlimited; otherwise uses left
  int64_t explicit_max_ttl = 0;  // seconds; 0 = none
  int64_t period = 0;            // seconds; periodic tokens renew to this
  int64_t creation_ttl = 0;
  int64_t last_renewal_unix = 0;
  int64_t max_expire_unix = 0;  // hard limit from explicit_max_ttl / system max; 0 = none
  bool renewable = false;
  bool orphan = false;
  std::string type = "service";
  std::string entity_id;
  std::string role;
  // Batch tokens only: the accessor of the auth mount that issued it. The token is valid only
  // while that mount is (a batch token cannot be revoked, so disabling its method must end it).
  std::string mount_accessor;
  json::object meta;

  // A response-wrapping token: set only by Core::Wrap (a token merely given the
  // "response-wrapping" policy is not one).
  bool wrapping = false;

  bool IsBatch() const { return type == "batch"; }

  bool IsRoot() const;
  json::object ToJson() const;
  static absl::StatusOr<TokenEntry> FromJson(const json::object& o);
};

// The one check every auth method's role write and login makes (Vault: "auth methods cannot
// create root tokens"): InvalidArgument when `policies` (already lower-cased) contain "root", or
// "response-wrapping" (only Core::Wrap gives that one).
absl::Status CheckLoginPolicies(const std::vector<std::string>& policies);

// The "auth" object of a response that hands out a token (token create, logins), Vault's shape.
// `policies` = token policies + `identity_policies`, as Vault reports them.
json::object TokenAuthResponse(const TokenEntry& e, const std::string& token,
                               int64_t lease_duration,
                               const std::vector<std::string>& identity_policies = {});

// Lookups keep what they decrypted and parsed (a token's entry) in a cache that is checked
// against the stored bytes on every use (Barrier::GetStored): an entry is used only while its
// key holds the very bytes it was decrypted from, under the same keyring, so a revocation, a
// use, a renewal, a Raft entry applied on a follower or an installed snapshot is seen by the
// next lookup, with no invalidation to miss. Expiry is checked on every lookup as before; uses
// are still spent under the token's lock from freshly read bytes.
class TokenStore {
 public:
  // `sealer` seals batch tokens (nullptr: batch tokens are refused). When it is also `barrier`
  // (as in the core), entries are cached as above.
  TokenStore(storage::Storage* barrier, std::function<absl::Time()> clock,
             Barrier* sealer = nullptr)
      : storage_(barrier), clock_(std::move(clock)), sealer_(sealer) {}
  ~TokenStore();
  TokenStore(const TokenStore&) = delete;
  TokenStore& operator=(const TokenStore&) = delete;

  // Longest token accepted (batch tokens carry their entry; service tokens are 28 characters).
  static constexpr size_t kMaxTokenSize = 2048;
  // A cubbyhole holds at most this many keys written through cubbyhole/, each value at most
  // kMaxCubbyholeValue bytes (4 MiB per token); a wrapped response may be up to
  // kMaxWrappedResponse bytes.
  static constexpr size_t kMaxCubbyholeKeys = 64;
  static constexpr size_t kMaxCubbyholeValue = 64 << 10;
  static constexpr size_t kMaxWrappedResponse = 1 << 20;

  // Loads (or on first use creates) the salt. Must be called after unseal.
  absl::Status Load();
  void Unload();

  // Creates a root token; `id` may name it (dev mode), else it is random.
  absl::StatusOr<std::string> CreateRoot(std::string_view id, std::string_view path);

  // Stores a new token for `entry` (id_hash/accessor are filled in) and returns the token.
  // `id` may name it (root/sudo callers only; checked by the caller).
  absl::StatusOr<std::string> Create(TokenEntry& entry, std::string_view id);
  // As Create, with the token's cubbyhole holding `cubbyhole` (key -> value) from the start, in
  // the same write: a response-wrapping token never exists without its response.
  absl::StatusOr<std::string> CreateWithCubbyhole(
      TokenEntry& entry, const std::vector<std::pair<std::string, std::string>>& cubbyhole);
  // A batch token for `entry` (type "batch", no accessor, not renewable, no uses limit, not
  // root). A non-orphan one lives only while its parent does. InvalidArgument when the sealed
  // token would be longer than kMaxTokenSize.
  absl::StatusOr<std::string> CreateBatch(TokenEntry& entry);
  // A single-use token's last use and its cubbyhole's `key`, taken together under its lock:
  // nullopt when the token is unknown, expired, not single-use or already used (so of any number
  // of concurrent calls exactly one gets the value). `before_delete` runs under the lock with the
  // value; when it fails nothing is spent. Then the token and its cubbyhole are deleted in one
  // write.
  absl::StatusOr<std::optional<std::string>> TakeCubbyhole(
      std::string_view token, std::string_view key,
      const std::function<absl::Status(const TokenEntry&, const std::string&)>& before_delete);
  // Batch tokens are valid only while `alive` says their issuing mount exists (set by Core).
  void SetBatchIssuerCheck(std::function<bool(const std::string& mount_accessor)> alive) {
    issuer_alive_ = std::move(alive);
  }
  absl::StatusOr<std::optional<TokenEntry>> LookupByAccessor(std::string_view accessor);
  // Applies `change` to the stored entry of `id_hash`, read afresh under that token's lock, and
  // stores it: renewals go through here, so a concurrent revocation or use is never undone.
  // NotFound when the token is gone (revoked) or is making its last use.
  absl::Status Modify(const std::string& id_hash,
                      const std::function<absl::Status(TokenEntry&)>& change);
  // Revokes the token and every token created from it. The token itself is unusable as soon as
  // this starts (revocation wins over any concurrent renewal, use or child creation); the
  // descendants follow parent first, iteratively, so the depth of a chain costs no stack.
  absl::Status RevokeTree(const TokenEntry& e);
  // Revokes only this token; its children become orphans.
  absl::Status RevokeOrphan(const TokenEntry& e);
  // Consumes one use of a limited-use token, atomically: under any concurrency a token created
  // with num_uses=N admits exactly N requests. Returns false when no use is left (the request
  // must be refused as with an invalid token). `*revoke_after` is set for the last use: the
  // token is then marked (num_uses = -1, invisible to Lookup) and must be revoked after the
  // request. `e` is refreshed from storage.
  absl::StatusOr<bool> Use(TokenEntry& e, bool* revoke_after);
  // The accessors of every stored token (auth/token/accessors).
  absl::StatusOr<std::vector<std::string>> ListAccessors();
  // Revokes (with their children) the tokens `predicate` selects, e.g. all tokens issued by an
  // auth method that is being disabled. Returns how many trees were revoked.
  absl::StatusOr<size_t> RevokeWhere(const std::function<bool(const TokenEntry&)>& predicate);
  // Deletes expired tokens, tokens left on their last use, and tokens whose parent is gone (a
  // revocation interrupted by a crash), with their descendants. Returns how many trees.
  absl::StatusOr<size_t> Tidy();

  // The entry for a token, or nullopt when unknown or expired (expired ones are deleted).
  absl::StatusOr<std::optional<TokenEntry>> Lookup(std::string_view token);

  // The cubbyhole of a service token (batch tokens have none: InvalidArgument). Each call holds
  // the token's lock and finds it still stored, so nothing is written into the cubbyhole of a
  // revoked token (revocation deletes the cubbyhole with the token, in one write). Keys are
  // paths ("a/b"); List gives the names directly below `prefix`, folders with a trailing '/'.
  absl::StatusOr<std::optional<std::string>> CubbyholeGet(const TokenEntry& e,
                                                          std::string_view key);
  absl::Status CubbyholePut(const TokenEntry& e, std::string_view key, std::string_view value);
  absl::Status CubbyholeDelete(const TokenEntry& e, std::string_view key);
  absl::StatusOr<std::vector<std::string>> CubbyholeList(const TokenEntry& e,
                                                         std::string_view prefix);

  std::string Hash(std::string_view token) const;

  // Entries decrypted and kept (tests: the cache stays bounded).
  size_t CachedEntries() const;
  // At most this many entries are kept (about 1-2 KiB each).
  static constexpr size_t kCacheShards = 16;
  static constexpr size_t kCachePerShard = 256;

 private:
  // An entry as decrypted from `stored` under keyring generation `generation`.
  struct Cached {
    std::string stored;
    uint64_t generation = 0;
    TokenEntry entry;
  };
  struct CacheShard {
    mutable std::mutex mu;
    std::unordered_map<std::string, Cached> entries;  // by id_hash
  };
  CacheShard& ShardFor(std::string_view id_hash);
  void Forget(const std::string& id_hash);
  void ForgetAll();
  // The salt's HMAC-SHA256 state after the key (inner and outer pads), made once at Load so that
  // Hash costs two hash finalisations and no key set-up.
  void ResetHmac();

  absl::Status Store(const TokenEntry& e);
  absl::StatusOr<std::optional<TokenEntry>> LoadByHash(const std::string& id_hash);
  bool Expired(const TokenEntry& e) const;
  // Deletes one token's own keys (entry, accessor index, its entry in its parent's index, its
  // cubbyhole).
  absl::Status DeleteOne(const TokenEntry& e);
  // The batch operations deleting the cubbyhole of the token stored under `id_hash`.
  absl::Status AppendCubbyholeDeletes(const std::string& id_hash,
                                      std::vector<storage::BatchOp>* ops);
  // False when a token's parent chain is broken (a parent revoked or expired). An expired
  // parent is revoked; a service token with a missing parent is revoked (`revoke_self`).
  absl::StatusOr<bool> ParentChainAlive(const TokenEntry& e, bool revoke_self);
  absl::StatusOr<std::optional<TokenEntry>> LookupBatch(std::string_view token);
  // The token's cubbyhole key for `key`, after checking the token may have one.
  absl::StatusOr<std::string> CubbyholeKey(const TokenEntry& e, std::string_view key) const;
  // Every read-modify-write of a token entry holds the lock of its stripe: one at a time, except
  // RevokeTree, which takes a chunk's stripes in ascending order (so no two paths can deadlock). In
  // a Raft cluster only the active node handles requests, so in-process locks serialise all of
  // them.
  std::mutex& LockFor(std::string_view id_hash);
  static size_t StripeOf(std::string_view id_hash);
  static constexpr size_t kStripes = 64;
  std::array<std::mutex, kStripes> stripes_;
  storage::Storage* storage_;
  std::function<absl::Time()> clock_;
  Barrier* sealer_;
  std::function<bool(const std::string&)> issuer_alive_;
  SecureBytes salt_;
  mutable std::shared_mutex hmac_mu_;  // Load/Unload against Hash
  EVP_MD_CTX* hmac_inner_ = nullptr;   // under hmac_mu_
  EVP_MD_CTX* hmac_outer_ = nullptr;   // under hmac_mu_
  std::array<CacheShard, kCacheShards> cache_;
};

}  // namespace strongroom::core
