// Transit: the key model (types, versions, their stored JSON) and Vault's key read object.
// No key value appears here: a version holds blobs wrapped by the Transit KEK, or the CKA_ID of a
// private key kept as a token object, and the handles of the objects in use inside the token.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "appliance/core/json.h"
#include "hsm/pkcs11.h"
#include "hsm/token.h"

namespace strongroom::engines::transit {

using PairType = hsm::Token::PairType;

struct KeyType {
  std::string_view name;
  CK_KEY_TYPE kind;  // CKK_AES, CKK_GENERIC_SECRET ("hmac"), CKK_EC, CKK_EC_EDWARDS or CKK_RSA
  size_t bytes;      // symmetric key size
  PairType pair;     // asymmetric types
  std::string_view public_name;  // the "name" Vault shows for a public key
};
// nullptr for a type this engine does not make.
const KeyType* FindKeyType(std::string_view name);
bool IsAsymmetric(const KeyType& t);
inline constexpr std::string_view kSupportedTypes =
    "aes256-gcm96, aes128-gcm96, hmac, ecdsa-p256, ecdsa-p384, ecdsa-p521, ed25519, rsa-2048, "
    "rsa-3072, rsa-4096";

// Each version's HMAC key (types other than "hmac"). Vault uses 32 bytes; SoftHSM2 requires an
// HMAC key at least as long as the digest, so 64 bytes lets every algorithm up to sha2-512 run
// in the token.
inline constexpr size_t kHmacKeyBytes = 64;
// Vault's bounds for the "hmac" type's key_size, and its default.
inline constexpr int64_t kMinHmacKeySize = 32;
inline constexpr int64_t kMaxHmacKeySize = 512;
inline constexpr int64_t kDefaultHmacKeySize = 32;

// A key object inside the token that operations use: a session object unwrapped from a version's
// blob, destroyed (C_DestroyObject) when the last holder lets go of it, or a private key kept as a
// token object (a type the token cannot wrap), which only its version's removal destroys.
//
// Operations copy the shared_ptr under the Key's mu and call the token after letting go of the
// mutex. A version deleted or trimmed meanwhile therefore keeps its object until the operations
// already using it are done: a handle is never used after its object was destroyed (an error, or
// with a token that reuses handle numbers, another key).
class TokenKey {
 public:
  enum class Kind { kSessionObject, kTokenObject };
  // `id`: the CKA_ID of a token object ("" for a session object).
  TokenKey(hsm::Token& token, CK_OBJECT_HANDLE handle, Kind kind, std::string id = "");
  ~TokenKey();
  TokenKey(const TokenKey&) = delete;
  TokenKey& operator=(const TokenKey&) = delete;

  CK_OBJECT_HANDLE handle() const { return handle_; }
  const std::string& id() const { return id_; }
  // A token object whose version was removed while requests still used it: the last of them
  // destroys it.
  void DestroyWhenReleased() { doomed_.store(true); }

 private:
  hsm::Token& token_;
  const CK_OBJECT_HANDLE handle_;
  const Kind kind_;
  const std::string id_;
  std::atomic<bool> doomed_{false};
};

struct Version {
  int64_t created = 0;     // Unix seconds
  std::string key_blob;    // wrapped AES key or private key (absent for "hmac", stored keys)
  std::string public_key;  // asymmetric types: DER SubjectPublicKeyInfo (public)
  std::string hmac_blob;   // wrapped HMAC key
  // A private key the token could not wrap, kept as a token object: its CKA_ID (16 random
  // bytes), and the Raft node whose token made it ("" on a single node).
  std::string token_object;
  std::string holder;
  uint64_t reserved = 0;  // encryptions durably reserved for this version (the nonce budget)
  uint64_t used = 0;      // encryptions made; after a load it starts at `reserved`
  // In use inside the token, made on first use (KeyStore::Handle). `key` is a session object
  // (unwrapped from key_blob) or, for a version with token_object, the token object itself.
  std::shared_ptr<TokenKey> key;
  std::shared_ptr<TokenKey> hmac;
};

struct Key {
  std::mutex mu;
  std::string name;
  std::string type;
  bool deletion_allowed = false;
  int64_t min_decryption_version = 1;
  int64_t min_encryption_version = 0;
  int64_t min_available_version = 0;
  int64_t latest_version = 0;
  int64_t auto_rotate_period = 0;  // seconds
  int64_t last_rotated = 0;        // Unix seconds
  size_t key_size = 0;             // hmac keys
  std::map<int64_t, Version> versions;
};

std::string KeyToJson(const Key& k);
absl::StatusOr<std::shared_ptr<Key>> KeyFromJson(std::string_view text);

// Lets go of the objects a version holds in the token: its session objects are destroyed once no
// request uses them any more (never a token object: that is the key itself, destroyed only when
// the version goes).
void DropHandles(Version& v);

// Vault's key read object. `rsa_encryption`: whether this token can do Vault's RSA encryption
// (RSA-OAEP with SHA-256), so whether an RSA key says it supports encryption.
core::json::object KeyObject(const Key& k, bool rsa_encryption);

// Vault's public_key field: PEM for ECDSA and RSA, base64 of the raw 32 bytes for Ed25519.
std::string PublicKeyText(const KeyType& t, const std::string& der);

}  // namespace strongroom::engines::transit
