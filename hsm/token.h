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

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
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
//
// At most one Module per library may be alive in a process: PKCS#11 state is per process, so a
// second Load of the same library fails with FailedPrecondition (CKR_CRYPTOKI_ALREADY_INITIALIZED)
// instead of silently sharing (and later finalising) the first one's state.
// Module remembers which copy of the process loaded it (hsm/fork_generation.h); a forked child
// must not use or finalise it.
class Module {
 public:
  // Errors: NotFound / PermissionDenied when `path` does not exist / cannot be read,
  // FailedPrecondition when dlopen fails (dlerror text included), InvalidArgument when it has no
  // C_GetFunctionList, the CKR_ code of C_Initialize otherwise.
  static absl::StatusOr<std::unique_ptr<Module>> Load(const std::string& path);
  ~Module();
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  CK_FUNCTION_LIST* fn() const { return fn_; }
  // The slot whose token label (blank-padded, 32 chars) equals `label`.
  // NotFound when no initialised token carries it.
  // Message: `no token labelled "x" in <path>`.
  absl::StatusOr<CK_SLOT_ID> FindSlotByTokenLabel(std::string_view label) const;

  const std::string& path() const { return path_; }
  // True in the process that loaded the module; false in a forked child.
  bool InLoadingProcess() const;

 private:
  Module(void* handle, CK_FUNCTION_LIST* fn, std::string path, uint64_t fork_generation)
      : handle_(handle), fn_(fn), path_(std::move(path)), fork_generation_(fork_generation) {}
  void* handle_;
  CK_FUNCTION_LIST* fn_;
  std::string path_;
  uint64_t fork_generation_;  // ForkGeneration() at Load
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

  // Forgets the handle without C_CloseSession. Only for a forked child tearing down inherited
  // state: with a networked HSM, the child's close would end the parent's session.
  void Abandon() { handle_ = CK_INVALID_HANDLE; }

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

// An EC key pair in the token (the audit signing key): both halves are token objects with the
// same label.
struct SigningKey {
  CK_OBJECT_HANDLE private_key = CK_INVALID_HANDLE;
  CK_OBJECT_HANDLE public_key = CK_INVALID_HANDLE;
};

// Largest secret WrapSecret accepts (its blob is at most 65552 bytes on SoftHSM2). The cap is
// ours, to bound what one request can make the token do: SoftHSM2 2.6.1 has no practical limit
// of its own (64 MiB generic secrets wrap and unwrap), but a wrap+unwrap round trip there moves
// only about 1.5 MB/s, so a 64 KiB round trip already costs ~45 ms of token time on 2 vCPUs.
inline constexpr size_t kMaxWrapSecretSize = 65536;

// A logged-in token with a pool of sessions (one session per concurrent user; SoftHSM2 is
// slower with two threads on one session, see DESIGN.md).
//
// Thread-safe: every operation borrows its own session from the pool. All Leases must be
// destroyed before the Token (a Lease outliving its Token is a bug and aborts).
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
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&& other) noexcept;  // returns the session it held to the pool first
    ~Lease();
    CK_SESSION_HANDLE handle() const { return session_->handle(); }
    CK_FUNCTION_LIST* fn() const { return session_->fn(); }

    // Close the session instead of pooling it when the lease ends: for a session an error may
    // have left in an unknown state (an operation still active, a temporary object that could
    // not be destroyed).
    void Discard() { discard_ = true; }

   private:
    void Return();

    Token* token_;
    std::optional<Session> session_;
    bool discard_ = false;
  };
  absl::StatusOr<Lease> Acquire();

  // Finds exactly one secret-key object with CKA_LABEL == label.
  // NotFound if none, FailedPrecondition if several.
  absl::StatusOr<CK_OBJECT_HANDLE> FindSecretKey(std::string_view label);

  // Whether a KEK may leave this token, wrapped, for another node's token (a Raft cluster's
  // join). kNodeOnly: CKA_EXTRACTABLE=false, no way out at all. kTransferable:
  // CKA_EXTRACTABLE=true but still CKA_SENSITIVE (its value is never readable), so C_WrapKey is
  // its only way out; strongroom wraps it only under a one-time ECDH key agreed with a cluster
  // member (WrapKeysForPeer). PKCS#11 cannot restrict which wrapping key a user-created key
  // accepts without the SO (CKA_WRAP_WITH_TRUSTED needs a CKA_TRUSTED wrapping key, which only
  // the SO can mark), so anyone holding the user PIN could wrap it out too.
  enum class KekMode { kNodeOnly, kTransferable };

  // Creates a KEK as a token object: CKK_AES, 32 bytes, CKA_SENSITIVE=true, CKA_EXTRACTABLE per
  // `mode`, CKA_WRAP/CKA_UNWRAP=true, CKA_ENCRYPT/CKA_DECRYPT/CKA_SIGN/CKA_VERIFY=false,
  // CKA_PRIVATE=true, CKA_MODIFIABLE=false. AlreadyExists if a key with the label exists.
  absl::StatusOr<CK_OBJECT_HANDLE> GenerateKek(std::string_view label,
                                               KekMode mode = KekMode::kNodeOnly);

  // Creates an HMAC key as a token object: CKK_GENERIC_SECRET, 32 bytes, CKA_SENSITIVE=true,
  // CKA_EXTRACTABLE=false, CKA_SIGN/CKA_VERIFY=true and nothing else, CKA_PRIVATE=true,
  // CKA_MODIFIABLE=false (the audit MAC key). AlreadyExists if a key with the label exists.
  absl::StatusOr<CK_OBJECT_HANDLE> GenerateMacKey(std::string_view label);

  absl::StatusOr<KeyAttributes> GetKeyAttributes(CK_OBJECT_HANDLE key);

  // Refuses (FailedPrecondition with a readable reason) a KEK that is not an AES-256 secret key,
  // is extractable (kNodeOnly) or not (kTransferable), is not sensitive, or may encrypt/decrypt
  // data directly.
  absl::Status CheckKekPolicy(CK_OBJECT_HANDLE kek, KekMode mode = KekMode::kNodeOnly);

  // ---- Moving KEKs to a joining node's token (Raft join) -----------------------------------
  // ECDH P-256, then a KDF inside each token (SoftHSM2 2.6 refuses ECDH's own KDFs): the shared
  // x-coordinate becomes a derive-only AES-256 session key Z, and the one-time wrapping key is
  // CKM_AES_ECB_ENCRYPT_DATA under Z of SHA-256(label, joiner's point, leader's ephemeral point,
  // `context` = the joining node's id); one CKM_AES_KEY_WRAP_PAD per KEK. Both sides must pass
  // the same context. The joining side refuses a transport key that was not generated in its
  // token (CKA_LOCAL, CKA_NEVER_EXTRACTABLE, CKA_SENSITIVE). Points are uncompressed
  // (0x04 || X || Y, 65 bytes).

  // Joining side: a P-256 pair of session objects whose private half can only derive.
  struct TransportKey {
    CK_OBJECT_HANDLE private_key = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE public_key = CK_INVALID_HANDLE;
    std::string public_point;
  };
  absl::StatusOr<TransportKey> GenerateTransportKey();
  // Leading side: an ephemeral P-256 pair, the one-time wrapping key agreed with `peer_point`,
  // and one blob per key of `keys` (each a kTransferable KEK); every temporary object destroyed.
  struct WrappedForPeer {
    std::string ephemeral_point;
    std::vector<std::vector<uint8_t>> blobs;
  };
  absl::StatusOr<WrappedForPeer> WrapKeysForPeer(std::span<const CK_OBJECT_HANDLE> keys,
                                                 std::string_view peer_point,
                                                 std::string_view context = "");
  // Joining side: agrees the same wrapping key from `transport` and `ephemeral_point` and
  // unwraps `blob` into a token object labelled `label` with a kTransferable KEK's attributes.
  // AlreadyExists when a key has the label; InvalidArgument for a blob that does not unwrap.
  absl::StatusOr<CK_OBJECT_HANDLE> UnwrapKekFromPeer(const TransportKey& transport,
                                                     std::string_view ephemeral_point,
                                                     std::span<const uint8_t> blob,
                                                     std::string_view label,
                                                     std::string_view context = "");

  // Wraps `secret` (1..kMaxWrapSecretSize bytes) under `kek` with CKM_AES_KEY_WRAP_PAD: the
  // bytes become a temporary session object (CKK_GENERIC_SECRET, extractable, sensitive=false)
  // that is wrapped and destroyed. Returns the wrapped blob.
  //
  // Blob format: the object's value is the secret framed with ISO/IEC 7816-4 padding (secret,
  // 0x80, zeros up to a multiple of 8 bytes), so the blob is 9..16 bytes longer than the secret.
  // Why: SoftHSM2 2.6.1's C_UnwrapKey returns RFC 5649's zero padding as part of the value (a
  // 1-byte secret unwraps to 8 bytes), so the exact length must travel inside the wrapped data.
  // Note that SoftHSM2 implements CKM_AES_KEY_WRAP_PAD as RFC 5649 (what PKCS#11 3.0 calls
  // CKM_AES_KEY_WRAP_KWP) while PKCS#11 2.40 defines it as PKCS#7 padding + RFC 3394; blobs
  // therefore do not move between SoftHSM2 and tokens that follow the spec literally.
  absl::StatusOr<std::vector<uint8_t>> WrapSecret(CK_OBJECT_HANDLE kek,
                                                  std::span<const uint8_t> secret);

  // Inverse of WrapSecret: C_UnwrapKey into a temporary generic-secret session object, reads its
  // value, destroys it. A blob wrapped by another key or altered fails with InvalidArgument
  // ("unwrap failed: ..."; SoftHSM2 reports the failed integrity check as CKR_GENERAL_ERROR,
  // which is therefore treated as bad input here).
  absl::StatusOr<SecureBytes> UnwrapSecret(CK_OBJECT_HANDLE kek, std::span<const uint8_t> blob);

  // C_GenerateRandom.
  absl::Status GenerateRandom(std::span<uint8_t> out);

  // ---- Keys kept in the token and persisted only wrapped (Transit) ------------------------

  // Generates a secret key inside the token (a session object: CKA_SENSITIVE, extractable only
  // so that it can be wrapped), wraps it under `kek` with CKM_AES_KEY_WRAP_PAD, destroys the
  // object and returns the blob. `kind`: CKK_AES (16 or 32 bytes) or CKK_GENERIC_SECRET (HMAC
  // keys, 16..512 bytes). The key's value is never read.
  absl::StatusOr<std::vector<uint8_t>> GenerateWrappedKey(CK_OBJECT_HANDLE kek, CK_KEY_TYPE kind,
                                                          size_t bytes);
  // Unwraps a GenerateWrappedKey blob into a session object that is sensitive, not extractable
  // and limited to its use (AES: encrypt/decrypt; generic secret: sign/verify). It belongs to
  // the token's long-lived login session: valid until DestroyObject or the token closes.
  absl::StatusOr<CK_OBJECT_HANDLE> UnwrapKey(CK_OBJECT_HANDLE kek, std::span<const uint8_t> blob,
                                             CK_KEY_TYPE kind, size_t bytes);
  absl::Status DestroyObject(CK_OBJECT_HANDLE object);
  // CKM_AES_GCM with a 96-bit IV and a 128-bit tag; returns ciphertext || tag. `aad` must not be
  // empty (SoftHSM2 2.6.1 mishandles GCM without AAD).
  absl::StatusOr<std::vector<uint8_t>> AesGcmEncrypt(CK_OBJECT_HANDLE key,
                                                     std::span<const uint8_t> iv,
                                                     std::span<const uint8_t> aad,
                                                     std::span<const uint8_t> plaintext);
  // Inverse of AesGcmEncrypt; InvalidArgument "cipher: message authentication failed" when the
  // tag does not verify. The plaintext is client data on its way back to the client (a plain
  // vector: Transit keys never come out of the token, so there is nothing here to lock).
  absl::StatusOr<std::vector<uint8_t>> AesGcmDecrypt(CK_OBJECT_HANDLE key,
                                                     std::span<const uint8_t> iv,
                                                     std::span<const uint8_t> aad,
                                                     std::span<const uint8_t> ciphertext_and_tag);
  // C_Sign with an HMAC mechanism (CKM_SHA256_HMAC, CKM_SHA_1_HMAC, ...). Unimplemented when
  // the token has no such mechanism (SoftHSM2 2.6.1 has no SHA-3 at all).
  absl::StatusOr<std::vector<uint8_t>> Hmac(CK_OBJECT_HANDLE key, CK_MECHANISM_TYPE mechanism,
                                            std::span<const uint8_t> data);

  // Asymmetric Transit keys: a pair generated inside the token; the private half is wrapped
  // (PKCS#8 under CKM_AES_KEY_WRAP_PAD) by `kek` and both objects are destroyed.
  enum class PairType { kEcP256, kEcP384, kEcP521, kEd25519, kRsa2048, kRsa3072, kRsa4096 };
  struct WrappedPair {
    std::vector<uint8_t> private_blob;
    std::string public_spki;  // DER SubjectPublicKeyInfo (public: stored and served in clear)
  };
  absl::StatusOr<WrappedPair> GenerateWrappedPair(CK_OBJECT_HANDLE kek, PairType type);
  // Unwraps a private key blob into a sensitive, non-extractable session object of the login
  // session that can sign (and, for RSA, decrypt) and nothing else.
  absl::StatusOr<CK_OBJECT_HANDLE> UnwrapPrivateKey(CK_OBJECT_HANDLE kek,
                                                    std::span<const uint8_t> blob, PairType type);
  // C_Sign with `mechanism` (CKM_ECDSA over a digest, CKM_EDDSA over the message, CKM_RSA_PKCS
  // over a DigestInfo, CKM_RSA_PKCS_PSS over a digest with `pss`). Unimplemented when the token
  // refuses the mechanism or its parameters (SoftHSM2 2.6.1: RSA-PSS with a SHA-3 hash).
  absl::StatusOr<std::vector<uint8_t>> SignWith(CK_OBJECT_HANDLE key, CK_MECHANISM_TYPE mechanism,
                                                const CK_RSA_PKCS_PSS_PARAMS* pss,
                                                std::span<const uint8_t> data);

  // ---- Key pairs the token cannot wrap, kept as token objects ------------------------------
  // SoftHSM2 2.6.1 generates Ed25519 pairs but cannot wrap (C_WrapKey: CKR_KEY_NOT_WRAPPABLE)
  // or unwrap their private keys, so such a key cannot be stored wrapped like the other Transit
  // keys. Instead its private half is a token object that nothing can take out of the token.

  // Generates a pair inside the token. The private half is a token object: CKA_TOKEN,
  // CKA_PRIVATE, CKA_SENSITIVE, CKA_EXTRACTABLE=false (no C_WrapKey either, not even under a
  // KEK), CKA_SIGN (and CKA_DECRYPT for RSA) and nothing else, CKA_MODIFIABLE=false, with
  // CKA_ID = `id` (1..kMaxStoredKeyId bytes: the caller's unique name for it) and CKA_LABEL =
  // `label` (1..kMaxStoredKeyLabel bytes, for operators). The public half is a session object,
  // read and destroyed. Returns its DER SubjectPublicKeyInfo. AlreadyExists when a private key
  // with this CKA_ID exists.
  static constexpr size_t kMaxStoredKeyId = 64;
  static constexpr size_t kMaxStoredKeyLabel = 256;
  absl::StatusOr<std::string> GenerateStoredPair(PairType type, std::span<const uint8_t> id,
                                                 std::string_view label);
  // The private key token object with CKA_ID == `id`. NotFound if none, FailedPrecondition if
  // several.
  absl::StatusOr<CK_OBJECT_HANDLE> FindStoredKey(std::span<const uint8_t> id);
  // Destroys the private key token object with CKA_ID == `id`. NotFound if there is none.
  absl::Status DestroyStoredKey(std::span<const uint8_t> id);
  struct StoredKeyInfo {
    std::vector<uint8_t> id;
    std::string label;
  };
  // Every private key token object whose CKA_LABEL starts with `label_prefix` (at most
  // kMaxListedKeys are examined; more is ResourceExhausted rather than a partial answer).
  static constexpr size_t kMaxListedKeys = 100000;
  absl::StatusOr<std::vector<StoredKeyInfo>> ListStoredKeys(std::string_view label_prefix);

  // ---- RSA-OAEP inside the token ------------------------------------------------------------
  // `hash` is CKM_SHA_1 or CKM_SHA256 (MGF1 with the same hash; empty label). Unimplemented when
  // the token does not do OAEP with that hash (SoftHSM2 2.6.1 accepts SHA-1 only and answers
  // CKR_ARGUMENTS_BAD for SHA-256).
  // Encrypts with the public key `public_spki` (DER SubjectPublicKeyInfo of an RSA key), made a
  // temporary session object. InvalidArgument when the plaintext is longer than OAEP allows
  // (modulus bytes - 2 * hash bytes - 2).
  absl::StatusOr<std::vector<uint8_t>> RsaOaepEncrypt(std::string_view public_spki,
                                                      CK_MECHANISM_TYPE hash,
                                                      std::span<const uint8_t> plaintext);
  // Decrypts with an RSA private key object (UnwrapPrivateKey or a stored key). InvalidArgument
  // "RSA-OAEP decryption failed" for a ciphertext that does not decrypt.
  absl::StatusOr<std::vector<uint8_t>> RsaOaepDecrypt(CK_OBJECT_HANDLE private_key,
                                                      CK_MECHANISM_TYPE hash,
                                                      std::span<const uint8_t> ciphertext);

  // Whether the token's slot offers `mechanism` with all of `flags` (CKF_SIGN, CKF_DIGEST, ...).
  // Answers are cached: a token's mechanism list does not change while it is open.
  bool HasMechanism(CK_MECHANISM_TYPE mechanism, CK_FLAGS flags);

  // The audit signing key: an ECDSA P-256 pair generated inside the token (C_GenerateKeyPair).
  // The private half is CKA_SENSITIVE, not extractable, sign-only and not modifiable; the public
  // half is a public token object. AlreadyExists if a private key with the label exists.
  absl::StatusOr<SigningKey> GenerateSigningKey(std::string_view label);
  // Both halves by label. NotFound if either is missing, FailedPrecondition if ambiguous.
  absl::StatusOr<SigningKey> FindSigningKey(std::string_view label);
  // DER SubjectPublicKeyInfo of a P-256 public key object (from CKA_EC_PARAMS/CKA_EC_POINT).
  absl::StatusOr<std::string> EcPublicKeySpki(CK_OBJECT_HANDLE public_key);
  // CKM_ECDSA over a digest computed by the caller; returns r || s as the token gives it.
  absl::StatusOr<std::string> SignEcdsa(CK_OBJECT_HANDLE private_key,
                                        std::span<const uint8_t> digest);

  const std::string& label() const { return label_; }

 private:
  Token() = default;
  void Release(Session session, bool reuse);

  std::unique_ptr<Module> module_;
  CK_SLOT_ID slot_ = 0;
  std::string label_;
  std::mutex mu_;
  std::vector<Session> idle_;  // guarded by mu_
  size_t leased_ = 0;          // guarded by mu_; sessions out on Leases
  std::mutex create_mu_;       // serialises GenerateKek's check-then-create
  std::mutex login_mu_;        // serialises use of the login session (UnwrapKey, DestroyObject)
  Session* login_session_ = nullptr;
  std::optional<Session> login_holder_;  // keeps the login alive for the token's lifetime
  std::mutex mechanisms_mu_;
  std::map<std::pair<CK_MECHANISM_TYPE, CK_FLAGS>, bool> mechanisms_;  // guarded by mechanisms_mu_
};

}  // namespace strongroom::hsm
