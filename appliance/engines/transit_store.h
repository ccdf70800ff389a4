// Transit: the keys of one mount and their life inside the token. It caches loaded keys (an
// LRU bounded by Vault's cache-config size), makes new versions (keys generated in the token and
// kept wrapped by the Transit KEK, or, for a type the token cannot wrap, kept as a token object),
// hands out the token handles the crypto operations use, and destroys what a deleted or trimmed
// version leaves in the token.
//
// Token objects (ed25519 on SoftHSM2 2.6.1) are tracked in a registry in the mount's storage,
// "token-objects/<hex CKA_ID>" -> {holder, key, version, label}, written before the object is
// made and removed once it is destroyed. So every object strongroom made is on record even if
// the broker stops half-way, and only recorded objects that no key version refers to any more
// are ever destroyed (never an object the current state does not know, such as one a newer
// snapshot refers to). In a Raft cluster whose nodes have their own tokens an object exists only
// in the token of the node that made it (its holder); a node destroys its own objects when it is
// the active node (docs/operations.md, "Transit", on this trade-off).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "appliance/engines/transit_keys.h"
#include "appliance/storage/storage.h"
#include "hsm/token.h"

namespace strongroom::core {
class Core;
}

namespace strongroom::engines::transit {

inline constexpr char kKeyPrefix[] = "policy/";
inline constexpr char kRegistryPrefix[] = "token-objects/";
inline constexpr char kCacheConfigKey[] = "config/cache";
// Vault's smallest cache size other than 0 (unlimited).
inline constexpr int64_t kMinCacheSize = 10;
// Our largest: each cached key may hold session objects in the token.
inline constexpr int64_t kMaxCacheSize = 1000000;

class KeyStore {
 public:
  KeyStore(core::Core* core, std::string mount_uuid);
  ~KeyStore();  // destroys the session objects of every cached key
  KeyStore(const KeyStore&) = delete;
  KeyStore& operator=(const KeyStore&) = delete;

  // The token and the Transit KEK, asked of the seal once: the seal serialises its calls under
  // one mutex (also held while it signs audit checkpoints), which encrypt/decrypt need not take.
  absl::StatusOr<hsm::Token*> Token();
  absl::StatusOr<CK_OBJECT_HANDLE> Kek();

  // The cached key, loaded from storage on first use; nullptr when it does not exist.
  absl::StatusOr<std::shared_ptr<Key>> Find(storage::Storage& storage, const std::string& name);
  // Puts a key just created into the cache.
  void Insert(std::shared_ptr<Key> key);
  // Drops a deleted key from the cache (its handles go when the last user lets go of it).
  void Forget(const std::string& name);
  std::vector<std::shared_ptr<Key>> Cached();
  // Serialises key creation (check, then create) across requests.
  std::mutex& create_mu() { return create_mu_; }

  absl::Status Save(storage::Storage& storage, const Key& k);

  // Vault's cache-config: the stored size (0 = unlimited) and a new one (kMinCacheSize or more).
  absl::StatusOr<int64_t> CacheSize(storage::Storage& storage);
  absl::Status SetCacheSize(storage::Storage& storage, int64_t size);

  // The object in the token of version `n` of `k` (its key, or its HMAC key), made on first use.
  // Call with k.mu held; use its handle while holding the returned pointer (TokenKey). A version
  // kept as a token object that this node's token does not hold is FailedPrecondition, saying
  // which node holds it.
  absl::StatusOr<std::shared_ptr<TokenKey>> Handle(const Key& k, int64_t n, Version& v, bool hmac);

  // A new version of `k`, saved (k.mu held). `warnings` gets what the caller should be told
  // (a version only this node's token holds, in a cluster).
  absl::Status RotateLocked(storage::Storage& storage, Key& k, std::vector<std::string>* warnings);

  // After storage stopped referring to `removed` (key deleted, versions trimmed; call with the
  // key's mu held, the versions already out of it): destroys what they hold in the token, each
  // object once no request uses it any more. Token objects held by another node's token stay on
  // record for it.
  void ReleaseVersions(storage::Storage& storage, std::map<int64_t, Version>& removed);

  // Destroys this node's recorded token objects that no key version refers to any more (left by
  // a delete or trim done while another node was active, or by a version whose save failed).
  // Run by Periodic on the active node.
  void Sweep(storage::Storage& storage);
  // The mount is being disabled: destroys every recorded token object this token holds and logs
  // the ones other nodes' tokens hold.
  void Unmounting(storage::Storage& storage);

  // Whether this token does Vault's RSA encryption (RSA-OAEP with SHA-256); `spki` is a public
  // key to probe with when that is not known yet. Learned once.
  bool RsaOaepSha256(const std::string& spki);
  // Records what an RSA-OAEP attempt learned (Unimplemented: not available).
  void NoteRsaOaepSha256(bool available);

  // The Raft node id of this node ("" on a single node).
  std::string SelfNode();

 private:
  struct CacheEntry {
    std::shared_ptr<Key> key;
    uint64_t last_use = 0;
  };
  // Evicts least recently used keys nobody else holds until the cache fits (mu_ held). Returns
  // the evicted keys so their handles are dropped outside the lock.
  std::vector<std::shared_ptr<Key>> EvictLocked();
  void DropAll(std::vector<std::shared_ptr<Key>> keys);
  absl::Status LoadCacheSize(storage::Storage& storage);
  // Makes the private key of a new ed25519 (or any non-wrappable) version as a token object.
  absl::Status MakeStoredVersion(storage::Storage& storage, const Key& k, int64_t n,
                                 const KeyType& type, Version& v);
  void ForgetObject(storage::Storage& storage, const std::string& id);

  core::Core* core_;
  std::string mount_uuid_;
  std::atomic<hsm::Token*> token_{nullptr};
  std::atomic<CK_OBJECT_HANDLE> kek_{CK_INVALID_HANDLE};
  std::mutex mu_;  // guards keys_, tick_, cache_size_*
  std::map<std::string, CacheEntry> keys_;
  uint64_t tick_ = 0;
  int64_t cache_size_ = 0;  // 0 = unlimited
  bool cache_size_loaded_ = false;
  std::mutex create_mu_;
  // Held from a token object's registry entry to its key's save, and by Sweep: a sweep never
  // sees a recorded object whose version is still being saved. Taken after a Key's mu, never
  // before it.
  std::mutex objects_mu_;
  // Token objects of removed versions that requests still used when their version went
  // (TokenKey::DestroyWhenReleased), by CKA_ID: Sweep leaves them to their last user (guarded by
  // objects_mu_; an entry whose object is gone is dropped by the next Sweep).
  std::map<std::string, std::weak_ptr<TokenKey>> released_in_use_;
  enum Tri : int { kUnknown = 0, kYes = 1, kNo = 2 };
  std::atomic<int> ed25519_wrappable_{kUnknown};
  std::atomic<int> rsa_oaep_sha256_{kUnknown};
};

// The registry key of a token object's CKA_ID.
std::string RegistryKey(const std::string& id);

}  // namespace strongroom::engines::transit
