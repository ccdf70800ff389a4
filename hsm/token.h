// PKCS#11 custody layer (Botan-style three layers, our own code):
//   1. rv.h      : CK_RV -> absl::Status with the readable CKR_ name (the only CK_RV translator).
//   2. Module / Session : move-only RAII owners for the loaded library and for sessions.
//   3. Token     : one logged-in token with a session pool and the key-custody operations the
//                  broker needs. No function here returns the value of a KEK or Transit key;
//                  UnwrapSecret returns only data that was wrapped as a generic secret (the
//                  barrier keyring), in a SecureBytes.
//
// PKCS#11 must never be used across fork(): load the module in the broker only after workers
// are spawned (they are fork+exec'd through posix_spawn, so no PKCS#11 code runs in a child).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/secure_bytes.h"
#include "hsm/pkcs11.h"

namespace strongroom::hsm {

// Resolves a PIN specification as Vault's seal stanza does, extended for secret stores:
//   "env://VAR"  -> value of environment variable VAR (error if unset or empty)
//   "file://PATH"-> first line of PATH (trailing newline stripped; error if unreadable or empty)
//   anything else -> the literal PIN.
absl::StatusOr<SecureBytes> ResolvePin(std::string_view spec);

// Loaded PKCS#11 library: dlopen + C_GetFunctionList + C_Initialize(CKF_OS_LOCKING_OK).
// Destruction calls C_Finalize and dlclose.
class Module {
 public:
  static absl::StatusOr<std::unique_ptr<Module>> Load(const std::string& path);
  ~Module();
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  CK_FUNCTION_LIST* fn() const { return fn_; }
  // The slot whose token label (blank-padded, 32 chars) equals `label`.
  // NotFound when no initialised token carries it.
  absl::StatusOr<CK_SLOT_ID> FindSlotByTokenLabel(std::string_view label) const;

 private:
  Module(void* handle, CK_FUNCTION_LIST* fn) : handle_(handle), fn_(fn) {}
  void* handle_;
  CK_FUNCTION_LIST* fn_;
};

// One PKCS#11 session (C_OpenSession RW|SERIAL / C_CloseSession). Move-only.
class Session {
 public:
  static absl::StatusOr<Session> Open(const Module& module, CK_SLOT_ID slot);
  Session(Session&& other) noexcept;
  Session& operator=(Session&& other) noexcept;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session();

  CK_SESSION_HANDLE handle() const { return handle_; }
  CK_FUNCTION_LIST* fn() const { return fn_; }

 private:
  Session(CK_FUNCTION_LIST* fn, CK_SESSION_HANDLE h) : fn_(fn), handle_(h) {}
  CK_FUNCTION_LIST* fn_ = nullptr;
  CK_SESSION_HANDLE handle_ = CK_INVALID_HANDLE;
};

struct TokenConfig {
  std::string lib;                 // path of the PKCS#11 module
  std::string token_label;         // token to use (required unless slot is set)
  std::optional<CK_SLOT_ID> slot;  // explicit slot, optional
  std::string pin_spec;            // literal, env://VAR or file://PATH
};

struct KeyAttributes {
  CK_OBJECT_CLASS object_class = 0;
  CK_KEY_TYPE key_type = 0;
  CK_ULONG value_len = 0;  // 0 when the attribute does not apply
  bool token = false;
  bool sensitive = false;
  bool extractable = false;
  bool always_sensitive = false;
  bool never_extractable = false;
  bool encrypt = false;
  bool decrypt = false;
  bool wrap = false;
  bool unwrap = false;
  bool sign = false;
  bool verify = false;
};

// A logged-in token with a pool of sessions (one session per concurrent user; SoftHSM2 is
// slower with two threads on one session, see DESIGN.md).
class Token {
 public:
  // Loads the module, selects the slot (by label, or the explicit slot), opens a session and
  // logs in as CKU_USER (CKR_USER_ALREADY_LOGGED_IN is fine). Errors name the CKR_ code, e.g.
  // "C_Login on token \"strongroom\": CKR_PIN_INCORRECT".
  static absl::StatusOr<std::unique_ptr<Token>> Open(const TokenConfig& config);
  ~Token();

  // Borrowed session, returned to the pool when the lease is destroyed.
  class Lease {
   public:
    Lease(Token* token, Session session) : token_(token), session_(std::move(session)) {}
    Lease(Lease&&) noexcept = default;
    Lease& operator=(Lease&&) noexcept = default;
    ~Lease();
    CK_SESSION_HANDLE handle() const { return session_->handle(); }
    CK_FUNCTION_LIST* fn() const { return session_->fn(); }

   private:
    Token* token_;
    std::optional<Session> session_;
  };
  absl::StatusOr<Lease> Acquire();

  // Finds exactly one secret-key object with CKA_LABEL == label.
  // NotFound if none, FailedPrecondition if several.
  absl::StatusOr<CK_OBJECT_HANDLE> FindSecretKey(std::string_view label);

  // Creates the cluster KEK as a token object: CKK_AES, 32 bytes, CKA_SENSITIVE=true,
  // CKA_EXTRACTABLE=false, CKA_WRAP/CKA_UNWRAP=true, CKA_ENCRYPT/CKA_DECRYPT/CKA_SIGN/CKA_VERIFY
  // =false, CKA_PRIVATE=true, CKA_MODIFIABLE=false. AlreadyExists if a key with the label exists.
  absl::StatusOr<CK_OBJECT_HANDLE> GenerateKek(std::string_view label);

  absl::StatusOr<KeyAttributes> GetKeyAttributes(CK_OBJECT_HANDLE key);

  // Refuses (FailedPrecondition with a readable reason) a KEK that is not an AES-256 secret key,
  // is extractable, is not sensitive, or may encrypt/decrypt data directly.
  absl::Status CheckKekPolicy(CK_OBJECT_HANDLE kek);

  // Wraps `secret` (1..65536 bytes) under `kek` with CKM_AES_KEY_WRAP_PAD (RFC 5649): the bytes
  // become a temporary session object (CKK_GENERIC_SECRET, extractable, sensitive=false) that is
  // wrapped and destroyed. Returns the wrapped blob.
  absl::StatusOr<std::vector<uint8_t>> WrapSecret(CK_OBJECT_HANDLE kek, std::span<const uint8_t> secret);

  // Inverse of WrapSecret: C_UnwrapKey into a temporary generic-secret session object, reads its
  // value, destroys it. A blob wrapped by another key or altered fails (InvalidArgument).
  absl::StatusOr<SecureBytes> UnwrapSecret(CK_OBJECT_HANDLE kek, std::span<const uint8_t> blob);

  // C_GenerateRandom.
  absl::Status GenerateRandom(std::span<uint8_t> out);

  const std::string& label() const { return label_; }

 private:
  Token() = default;
  void Release(Session session);

  std::unique_ptr<Module> module_;
  CK_SLOT_ID slot_ = 0;
  std::string label_;
  std::mutex mu_;
  std::vector<Session> idle_;
  Session* login_session_ = nullptr;
  std::optional<Session> login_holder_;  // keeps the login alive for the token's lifetime
};

}  // namespace strongroom::hsm
