#include "hsm/token.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/fork_generation.h"
#include "base/log.h"
#include "base/metrics_catalog.h"
#include "base/status_macros.h"
#include "hsm/op_metrics.h"
#include "hsm/rv.h"
#include "hsm/token_internal.h"

namespace strongroom::hsm {
namespace {

using internal::Check;
using internal::FindGuard;
using internal::In;
using internal::kFalse;
using internal::kTrue;
using internal::ObjectGuard;
using internal::Sv;
using internal::WrapObjectOn;

constexpr std::string_view kEnvPrefix = "env://";
constexpr std::string_view kFilePrefix = "file://";

// A PIN file is read whole up to this size; a longer first line is refused rather than
// truncated, since a truncated PIN would fail login with a misleading CKR_PIN_INCORRECT.
constexpr size_t kMaxPinFileBytes = 4096;

// Idle sessions kept open for reuse. More concurrent users than this still get sessions; the
// extras are closed when returned instead of piling up after a burst.
constexpr size_t kMaxIdleSessions = 16;

// What gets wrapped is the secret framed to a multiple of 8 bytes (see FrameSecret). RFC 5649
// (SoftHSM2's CKM_AES_KEY_WRAP_PAD) adds an 8-byte integrity block; the PKCS#11 2.40 reading
// (PKCS#7 padding + RFC 3394) adds a full padding block as well, hence +16 at the top.
constexpr size_t kFrameBlock = 8;
constexpr uint8_t kFrameMarker = 0x80;
constexpr size_t kMaxFrameSize = (kMaxWrapSecretSize / kFrameBlock + 1) * kFrameBlock;
constexpr size_t kMinWrappedSize = kFrameBlock + 8;
constexpr size_t kMaxWrappedSize = kMaxFrameSize + 16;

constexpr CK_ULONG kKekBytes = 32;

// strerror_r (GNU form): std::strerror may share one buffer between threads.
std::string ErrnoText(int err) {
  char buf[128];
  return strerror_r(err, buf, sizeof buf);
}

absl::StatusCode CodeForErrno(int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return absl::StatusCode::kNotFound;
    case EACCES:
    case EPERM:
      return absl::StatusCode::kPermissionDenied;
    default:
      return absl::StatusCode::kFailedPrecondition;
  }
}

absl::StatusOr<SecureBytes> PinFromEnv(std::string_view var) {
  if (var.empty()) return absl::InvalidArgumentError("PIN spec \"env://\" names no variable");
  const std::string name(var);
  // NOLINTNEXTLINE(concurrency-mt-unsafe): read once at startup; nothing here calls setenv.
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) {
    return absl::NotFoundError(absl::StrCat("PIN environment variable ", name, " is not set"));
  }
  const size_t len = std::strlen(value);
  if (len == 0) {
    return absl::InvalidArgumentError(absl::StrCat("PIN environment variable ", name, " is empty"));
  }
  return SecureBytes(reinterpret_cast<const uint8_t*>(value), len);
}

absl::StatusOr<SecureBytes> PinFromFile(std::string_view path_view) {
  const std::string path(path_view);
  if (path.empty()) return absl::InvalidArgumentError("PIN spec \"file://\" names no file");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    const int err = errno;
    return absl::Status(CodeForErrno(err),
                        absl::StrCat("cannot open PIN file ", path, ": ", ErrnoText(err)));
  }
  // Read into locked, zeroed-on-release memory: the file holds the PIN in the clear.
  SecureBytes buf(kMaxPinFileBytes);
  size_t have = 0;
  bool eof = false;
  while (have < buf.size()) {
    const ssize_t n = ::read(fd, buf.data() + have, buf.size() - have);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return absl::Status(CodeForErrno(err),
                          absl::StrCat("cannot read PIN file ", path, ": ", ErrnoText(err)));
    }
    if (n == 0) {
      eof = true;
      break;
    }
    have += static_cast<size_t>(n);
  }
  ::close(fd);

  const uint8_t* begin = buf.data();
  const uint8_t* end = begin + have;
  const uint8_t* newline = std::find(begin, end, static_cast<uint8_t>('\n'));
  if (newline == end && !eof) {
    return absl::InvalidArgumentError(absl::StrCat(
        "PIN file ", path, ": first line is longer than ", kMaxPinFileBytes, " bytes"));
  }
  size_t len = static_cast<size_t>(newline - begin);
  // Files edited on Windows end lines with CRLF; the CR is never part of the PIN.
  if (len > 0 && begin[len - 1] == '\r') --len;
  if (len == 0) return absl::InvalidArgumentError(absl::StrCat("PIN file ", path, " is empty"));
  return SecureBytes(begin, len);
}

// Closes a dlopen handle unless released; keeps Load's error paths from leaking the library.
struct DlCloser {
  void operator()(void* handle) const {
    if (handle != nullptr) dlclose(handle);
  }
};
using DlHandle = std::unique_ptr<void, DlCloser>;

std::string TrimLabel(const unsigned char (&label)[32]) {
  std::string out(reinterpret_cast<const char*>(label), sizeof label);
  while (!out.empty() && (out.back() == ' ' || out.back() == '\0')) out.pop_back();
  return out;
}

constexpr CK_OBJECT_CLASS kSecretKeyClass = CKO_SECRET_KEY;
constexpr CK_KEY_TYPE kGenericSecret = CKK_GENERIC_SECRET;
constexpr CK_OBJECT_CLASS kPrivateKeyClass = CKO_PRIVATE_KEY;
constexpr CK_OBJECT_CLASS kPublicKeyClass = CKO_PUBLIC_KEY;
constexpr CK_KEY_TYPE kEcKey = CKK_EC;
// DER of OID 1.2.840.10045.3.1.7 (prime256v1 / secp256r1), the value of CKA_EC_PARAMS.
constexpr uint8_t kP256Params[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
// DER SubjectPublicKeyInfo prefix for a P-256 key: SEQUENCE { SEQUENCE { id-ecPublicKey,
// prime256v1 }, BIT STRING (0 unused bits) } followed by the 65-byte uncompressed point.
constexpr uint8_t kP256SpkiPrefix[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
                                       0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                       0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00};
constexpr size_t kP256PointBytes = 65;  // 0x04 || X || Y

// Finds exactly one object of `object_class` labelled `label`. `what` names it in errors.
absl::StatusOr<CK_OBJECT_HANDLE> FindObjectOn(Token::Lease& lease, CK_OBJECT_CLASS object_class,
                                              std::string_view label, std::string_view what) {
  CK_ATTRIBUTE tmpl[] = {
      In(CKA_CLASS, object_class),
      In(CKA_LABEL, label.data(), label.size()),
  };
  RETURN_IF_ERROR(Check(lease, lease.fn()->C_FindObjectsInit(lease.handle(), tmpl, std::size(tmpl)),
                        "C_FindObjectsInit"));
  FindGuard guard(lease);
  CK_OBJECT_HANDLE found[2] = {CK_INVALID_HANDLE, CK_INVALID_HANDLE};
  CK_ULONG count = 0;
  RETURN_IF_ERROR(Check(lease,
                        lease.fn()->C_FindObjects(lease.handle(), found, std::size(found), &count),
                        "C_FindObjects"));
  if (count == 0) {
    return absl::NotFoundError(absl::StrCat("no ", Sv(what), " labelled \"", Sv(label), "\""));
  }
  if (count > 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("more than one ", Sv(what), " labelled \"", Sv(label), "\""));
  }
  return found[0];
}

absl::StatusOr<CK_OBJECT_HANDLE> FindSecretKeyOn(Token::Lease& lease, std::string_view label) {
  return FindObjectOn(lease, kSecretKeyClass, label, "secret key");
}

// AlreadyExists when a secret key labelled `label` exists on the token (one or several).
absl::Status LabelIsFree(Token::Lease& lease, std::string_view label,
                         std::string_view token_label) {
  absl::StatusOr<CK_OBJECT_HANDLE> existing = FindSecretKeyOn(lease, label);
  if (existing.ok() || absl::IsFailedPrecondition(existing.status())) {
    return absl::AlreadyExistsError(absl::StrCat("a secret key labelled \"", Sv(label),
                                                 "\" already exists on token \"", Sv(token_label),
                                                 "\""));
  }
  if (!absl::IsNotFound(existing.status())) return existing.status();
  return absl::OkStatus();
}

absl::StatusOr<KeyAttributes> ReadKeyAttributes(Token::Lease& lease, CK_OBJECT_HANDLE key) {
  KeyAttributes out;
  CK_OBJECT_CLASS object_class = 0;
  CK_KEY_TYPE key_type = 0;
  CK_ULONG value_len = 0;
  CK_BBOOL token = CK_FALSE, sensitive = CK_FALSE, extractable = CK_FALSE,
           always_sensitive = CK_FALSE, never_extractable = CK_FALSE, encrypt = CK_FALSE,
           decrypt = CK_FALSE, wrap = CK_FALSE, unwrap = CK_FALSE, sign = CK_FALSE,
           verify = CK_FALSE;
  CK_ATTRIBUTE tmpl[] = {
      {CKA_CLASS, &object_class, sizeof object_class},
      {CKA_KEY_TYPE, &key_type, sizeof key_type},
      {CKA_VALUE_LEN, &value_len, sizeof value_len},
      {CKA_TOKEN, &token, sizeof token},
      {CKA_SENSITIVE, &sensitive, sizeof sensitive},
      {CKA_EXTRACTABLE, &extractable, sizeof extractable},
      {CKA_ALWAYS_SENSITIVE, &always_sensitive, sizeof always_sensitive},
      {CKA_NEVER_EXTRACTABLE, &never_extractable, sizeof never_extractable},
      {CKA_ENCRYPT, &encrypt, sizeof encrypt},
      {CKA_DECRYPT, &decrypt, sizeof decrypt},
      {CKA_WRAP, &wrap, sizeof wrap},
      {CKA_UNWRAP, &unwrap, sizeof unwrap},
      {CKA_SIGN, &sign, sizeof sign},
      {CKA_VERIFY, &verify, sizeof verify},
  };
  const CK_RV rv = lease.fn()->C_GetAttributeValue(lease.handle(), key, tmpl, std::size(tmpl));
  // Attributes that do not apply to this object (CKA_VALUE_LEN of an EC key, say) make the call
  // return CKR_ATTRIBUTE_TYPE_INVALID while still filling in the rest; those keep their defaults.
  if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_ATTRIBUTE_SENSITIVE) {
    return Check(lease, rv, "C_GetAttributeValue(key attributes)");
  }
  auto available = [&](size_t i) { return tmpl[i].ulValueLen != CK_UNAVAILABLE_INFORMATION; };
  auto flag = [&](size_t i, CK_BBOOL v) { return available(i) && v == CK_TRUE; };
  if (available(0)) out.object_class = object_class;
  if (available(1)) out.key_type = key_type;
  if (available(2)) out.value_len = value_len;
  out.token = flag(3, token);
  out.sensitive = flag(4, sensitive);
  out.extractable = flag(5, extractable);
  out.always_sensitive = flag(6, always_sensitive);
  out.never_extractable = flag(7, never_extractable);
  out.encrypt = flag(8, encrypt);
  out.decrypt = flag(9, decrypt);
  out.wrap = flag(10, wrap);
  out.unwrap = flag(11, unwrap);
  out.sign = flag(12, sign);
  out.verify = flag(13, verify);
  return out;
}

// The key's CKA_LABEL for messages; a handle number when it has none.
std::string DescribeKey(Token::Lease& lease, CK_OBJECT_HANDLE key) {
  CK_ATTRIBUTE attr = {CKA_LABEL, nullptr, 0};
  if (lease.fn()->C_GetAttributeValue(lease.handle(), key, &attr, 1) == CKR_OK &&
      attr.ulValueLen != CK_UNAVAILABLE_INFORMATION && attr.ulValueLen > 0 &&
      attr.ulValueLen <= 256) {
    std::string label(attr.ulValueLen, '\0');
    attr.pValue = label.data();
    if (lease.fn()->C_GetAttributeValue(lease.handle(), key, &attr, 1) == CKR_OK) {
      label.resize(attr.ulValueLen);
      return absl::StrCat("\"", label, "\"");
    }
  }
  return absl::StrCat("(handle ", key, ")");
}

// SoftHSM2 2.6.1 implements CKM_AES_KEY_WRAP_PAD as RFC 5649 but its C_UnwrapKey ignores the
// length stored in the RFC 5649 header and returns the zero padding as part of the value (a
// 1-byte secret comes back as 8 bytes). Other tokens implement CKM_AES_KEY_WRAP_PAD as PKCS#11
// 2.40 defines it (PKCS#7 padding + RFC 3394). So the exact length cannot be left to the token:
// the secret is framed with ISO/IEC 7816-4 padding (0x80, then zeros up to a multiple of 8).
// The frame's length is already a multiple of 8, so whatever padding the token adds it also
// removes (or, like SoftHSM2, adds none), and the marker delimits any secret bytes exactly.
SecureBytes FrameSecret(std::span<const uint8_t> secret) {
  const size_t framed = (secret.size() / kFrameBlock + 1) * kFrameBlock;
  SecureBytes out(framed);  // zero-filled
  std::memcpy(out.data(), secret.data(), secret.size());
  out.data()[secret.size()] = kFrameMarker;
  return out;
}

// Inverse of FrameSecret; also tolerates trailing zero bytes a token may have added.
absl::StatusOr<SecureBytes> UnframeSecret(const SecureBytes& framed) {
  size_t end = framed.size();
  while (end > 0 && framed.data()[end - 1] == 0) --end;
  if (end < 2 || framed.data()[end - 1] != kFrameMarker) {
    return absl::InvalidArgumentError(
        "unwrap failed: the unwrapped value is not a framed secret (not written by WrapSecret)");
  }
  return SecureBytes(framed.data(), end - 1);
}

// The status with `prefix` put in front of its message, code unchanged.
absl::Status Prefixed(const absl::Status& status, std::string_view prefix) {
  return absl::Status(status.code(), absl::StrCat(Sv(prefix), status.message()));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// PIN

absl::StatusOr<SecureBytes> ResolvePin(std::string_view spec) {
  if (spec.substr(0, kEnvPrefix.size()) == kEnvPrefix) {
    return PinFromEnv(spec.substr(kEnvPrefix.size()));
  }
  if (spec.substr(0, kFilePrefix.size()) == kFilePrefix) {
    return PinFromFile(spec.substr(kFilePrefix.size()));
  }
  if (spec.empty()) return absl::InvalidArgumentError("no PIN given");
  return SecureBytes(reinterpret_cast<const uint8_t*>(spec.data()), spec.size());
}

// ---------------------------------------------------------------------------------------------
// Module

absl::StatusOr<std::unique_ptr<Module>> Module::Load(const std::string& path) {
  const uint64_t fork_generation = ForkGeneration();  // before any PKCS#11 state exists
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    return absl::Status(CodeForErrno(err),
                        absl::StrCat("PKCS#11 module ", path, ": ", ErrnoText(err)));
  }
  // glibc keeps dlerror state per thread, so the dlerror calls below are thread-safe here.
  dlerror();  // NOLINT(concurrency-mt-unsafe): clear a stale error so ours is reported
  // RTLD_LOCAL: the module's symbols (and the crypto library it drags in) must not interpose on
  // ours. RTLD_NOW: a module with missing symbols fails here, not in the middle of a request.
  // RTLD_NODELETE: a module stays mapped after the last close. Modules keep process-wide state
  // (crypto library providers, exit handlers) that unloading would leave dangling, and a leak
  // report can still name the module (tests/lsan.supp).
  DlHandle handle(dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE));
  if (handle == nullptr) {
    const char* err = dlerror();  // NOLINT(concurrency-mt-unsafe): per-thread in glibc
    return absl::FailedPreconditionError(absl::StrCat("cannot load PKCS#11 module ", path, ": ",
                                                      err != nullptr ? err : "dlopen failed"));
  }
  auto get_function_list =
      reinterpret_cast<CK_C_GetFunctionList>(dlsym(handle.get(), "C_GetFunctionList"));
  if (get_function_list == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is not a PKCS#11 module (no C_GetFunctionList)"));
  }
  CK_FUNCTION_LIST* fn = nullptr;
  RETURN_IF_ERROR(RvToStatus(get_function_list(&fn), absl::StrCat("C_GetFunctionList in ", path)));
  if (fn == nullptr) {
    return absl::InternalError(absl::StrCat("C_GetFunctionList in ", path, " returned no list"));
  }

  // Let the library use its own OS mutexes: we call it from several threads (one session each).
  CK_C_INITIALIZE_ARGS args;
  std::memset(&args, 0, sizeof args);
  args.flags = CKF_OS_LOCKING_OK;
  const CK_RV rv = fn->C_Initialize(&args);
  if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
    // Someone else in this process initialised the library. Sharing it would let whichever
    // owner finishes first C_Finalize it under the other, so this is refused as misuse.
    return absl::FailedPreconditionError(absl::StrCat(
        "C_Initialize on ", path,
        ": CKR_CRYPTOKI_ALREADY_INITIALIZED (the module is already initialised in this "
        "process; only one Module per library may exist)"));
  }
  RETURN_IF_ERROR(RvToStatus(rv, absl::StrCat("C_Initialize on ", path)));
  return std::unique_ptr<Module>(new Module(handle.release(), fn, path, fork_generation));
}

Module::~Module() {
  if (!InLoadingProcess()) {
    // A forked child inherited our pages but not the library's threads, locks or device
    // state: finalising here could corrupt the parent's token state. Leave it alone.
    return;
  }
  if (fn_ != nullptr) {
    const CK_RV rv = fn_->C_Finalize(nullptr);
    if (rv != CKR_OK) LogWarn("C_Finalize on %s: %s", path_, std::string(RvName(rv)));
  }
  if (handle_ != nullptr) dlclose(handle_);
}

// Asked on every Acquire: ForkGeneration costs no system call, getpid() would.
bool Module::InLoadingProcess() const { return ForkGeneration() == fork_generation_; }

absl::StatusOr<CK_SLOT_ID> Module::FindSlotByTokenLabel(std::string_view label) const {
  // Slots come and go (SoftHSM2 adds a fresh empty slot after each token init), so the list is
  // read with the usual two calls and re-read if it grew in between.
  std::vector<CK_SLOT_ID> slots;
  for (int attempt = 0;; ++attempt) {
    CK_ULONG count = 0;
    RETURN_IF_ERROR(RvToStatus(fn_->C_GetSlotList(CK_TRUE, nullptr, &count), "C_GetSlotList"));
    slots.resize(count);
    if (count == 0) break;
    const CK_RV rv = fn_->C_GetSlotList(CK_TRUE, slots.data(), &count);
    if (rv == CKR_BUFFER_TOO_SMALL && attempt < 3) continue;
    RETURN_IF_ERROR(RvToStatus(rv, "C_GetSlotList"));
    slots.resize(count);
    break;
  }
  for (CK_SLOT_ID slot : slots) {
    CK_TOKEN_INFO info;
    const CK_RV rv = fn_->C_GetTokenInfo(slot, &info);
    // A token removed between the two calls is not an error, just not a match.
    if (rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_TOKEN_NOT_RECOGNIZED) continue;
    RETURN_IF_ERROR(RvToStatus(rv, absl::StrCat("C_GetTokenInfo on slot ", slot)));
    if ((info.flags & CKF_TOKEN_INITIALIZED) == 0) continue;
    if (TrimLabel(info.label) == label) return slot;
  }
  return absl::NotFoundError(absl::StrCat("no token labelled \"", Sv(label), "\" in ", path_));
}

// ---------------------------------------------------------------------------------------------
// Session

absl::StatusOr<Session> Session::Open(const Module& module, CK_SLOT_ID slot) {
  CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
  RETURN_IF_ERROR(RvToStatus(
      module.fn()->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &h),
      absl::StrCat("C_OpenSession on slot ", slot)));
  return Session(module.fn(), h);
}

Session::Session(Session&& other) noexcept
    : fn_(std::exchange(other.fn_, nullptr)),
      handle_(std::exchange(other.handle_, CK_INVALID_HANDLE)) {}

Session& Session::operator=(Session&& other) noexcept {
  if (this != &other) {
    if (handle_ != CK_INVALID_HANDLE) fn_->C_CloseSession(handle_);
    fn_ = std::exchange(other.fn_, nullptr);
    handle_ = std::exchange(other.handle_, CK_INVALID_HANDLE);
  }
  return *this;
}

Session::~Session() {
  if (handle_ != CK_INVALID_HANDLE && fn_ != nullptr) {
    const CK_RV rv = fn_->C_CloseSession(handle_);
    if (rv != CKR_OK) LogWarn("C_CloseSession: %s", std::string(RvName(rv)));
  }
}

// ---------------------------------------------------------------------------------------------
// Token

absl::StatusOr<std::unique_ptr<Token>> Token::Open(const TokenConfig& config) {
  if (config.token_label.empty() && !config.slot.has_value()) {
    return absl::InvalidArgumentError("token config needs a token label or a slot");
  }
  // Resolve the PIN before touching the library: a missing secret should fail fast and plainly.
  ASSIGN_OR_RETURN(SecureBytes pin, ResolvePin(config.pin_spec));

  std::unique_ptr<Token> token(new Token());
  ASSIGN_OR_RETURN(token->module_, Module::Load(config.lib));
  const CK_FUNCTION_LIST* fn = token->module_->fn();

  if (config.slot.has_value()) {
    token->slot_ = *config.slot;
    CK_TOKEN_INFO info;
    RETURN_IF_ERROR(
        RvToStatus(fn->C_GetTokenInfo(token->slot_, &info),
                   absl::StrCat("C_GetTokenInfo on slot ", token->slot_, " in ", config.lib)));
    token->label_ = TrimLabel(info.label);
    if (!config.token_label.empty() && token->label_ != config.token_label) {
      return absl::FailedPreconditionError(absl::StrCat("slot ", token->slot_, " in ", config.lib,
                                                        " holds token \"", token->label_,
                                                        "\", not \"", config.token_label, "\""));
    }
  } else {
    ASSIGN_OR_RETURN(token->slot_, token->module_->FindSlotByTokenLabel(config.token_label));
    token->label_ = config.token_label;
  }
  const std::string on_token = absl::StrCat(" on token \"", token->label_, "\"");

  absl::StatusOr<Session> session = Session::Open(*token->module_, token->slot_);
  if (!session.ok()) {
    return Prefixed(session.status(), absl::StrCat("token \"", token->label_, "\": "));
  }

  const CK_RV rv =
      fn->C_Login(session->handle(), CKU_USER, pin.data(), static_cast<CK_ULONG>(pin.size()));
  pin.Wipe();  // the token has it now; keep our copy's lifetime as short as possible
  // Login state is per application and token, so CKR_USER_ALREADY_LOGGED_IN means we are in.
  if (rv != CKR_USER_ALREADY_LOGGED_IN) {
    RETURN_IF_ERROR(RvToStatus(rv, absl::StrCat("C_Login", on_token)));
  }
  token->login_holder_.emplace(std::move(*session));
  token->login_session_ = &*token->login_holder_;
  return token;
}

Token::~Token() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (leased_ != 0) {
      // A Lease would call back into freed memory; fail loudly now rather than corrupt later.
      LogError("Token \"%s\" destroyed with %d session lease(s) outstanding", label_,
               static_cast<int>(leased_));
      std::abort();
    }
    if (module_ != nullptr && !module_->InLoadingProcess()) {
      // A forked child tearing down what it inherited: the sessions belong to the parent.
      for (Session& s : idle_) s.Abandon();
      if (login_session_ != nullptr) login_session_->Abandon();
    }
    metrics::Get().hsm_sessions_idle.Add(-static_cast<double>(idle_.size()));
    idle_.clear();  // closes the pooled sessions before logging out
  }
  if (login_session_ != nullptr && module_ != nullptr && module_->InLoadingProcess()) {
    const CK_RV rv = module_->fn()->C_Logout(login_session_->handle());
    if (rv != CKR_OK && rv != CKR_USER_NOT_LOGGED_IN) {
      LogWarn("C_Logout on token \"%s\": %s", label_, std::string(RvName(rv)));
    }
  }
  login_session_ = nullptr;
  login_holder_.reset();
  // module_ is destroyed last (C_Finalize, dlclose).
}

Token::Lease::Lease(Lease&& other) noexcept
    : token_(std::exchange(other.token_, nullptr)),
      session_(std::move(other.session_)),
      discard_(std::exchange(other.discard_, false)) {
  other.session_.reset();
}

Token::Lease& Token::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    Return();
    token_ = std::exchange(other.token_, nullptr);
    session_ = std::move(other.session_);
    other.session_.reset();
    discard_ = std::exchange(other.discard_, false);
  }
  return *this;
}

Token::Lease::~Lease() { Return(); }

void Token::Lease::Return() {
  if (token_ != nullptr && session_.has_value()) {
    token_->Release(std::move(*session_), !discard_);
  }
  session_.reset();
  token_ = nullptr;
  discard_ = false;
}

void Token::Release(Session session, bool reuse) {
  std::optional<Session> to_close;  // closed after the lock is dropped
  {
    std::lock_guard<std::mutex> lock(mu_);
    --leased_;
    metrics::Get().hsm_sessions_in_use.Add(-1);
    if (reuse && idle_.size() < kMaxIdleSessions) {
      idle_.push_back(std::move(session));
      metrics::Get().hsm_sessions_idle.Add(1);
    } else {
      to_close.emplace(std::move(session));
    }
  }
}

absl::StatusOr<Token::Lease> Token::Acquire() {
  if (!module_->InLoadingProcess()) {
    return absl::FailedPreconditionError(
        "PKCS#11 used after fork(): the token must be opened in the process that uses it");
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++leased_;  // counted before any session exists, so ~Token sees in-flight opens too
    metrics::Get().hsm_sessions_in_use.Add(1);
    if (!idle_.empty()) {
      Session session = std::move(idle_.back());
      idle_.pop_back();
      metrics::Get().hsm_sessions_idle.Add(-1);
      return Lease(this, std::move(session));
    }
  }
  metrics::Get().hsm_sessions_opened.Add();
  absl::StatusOr<Session> session = Session::Open(*module_, slot_);
  if (!session.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    --leased_;
    metrics::Get().hsm_sessions_in_use.Add(-1);
    return Prefixed(session.status(), absl::StrCat("token \"", label_, "\": "));
  }
  return Lease(this, std::move(*session));
}

absl::StatusOr<CK_OBJECT_HANDLE> Token::FindSecretKey(std::string_view label) {
  ASSIGN_OR_RETURN(Lease lease, Acquire());
  return FindSecretKeyOn(lease, label);
}

absl::StatusOr<CK_OBJECT_HANDLE> Token::GenerateKek(std::string_view label, KekMode mode) {
  if (label.empty()) return absl::InvalidArgumentError("KEK label is empty");
  // Check-then-create must not interleave with another GenerateKek in this process, or two
  // KEKs with one label could appear and every later FindSecretKey would fail.
  std::lock_guard<std::mutex> create_lock(create_mu_);
  ASSIGN_OR_RETURN(Lease lease, Acquire());
  RETURN_IF_ERROR(LabelIsFree(lease, label, label_));

  const CK_ULONG value_len = kKekBytes;
  CK_ATTRIBUTE tmpl[] = {
      In(CKA_VALUE_LEN, value_len),
      In(CKA_TOKEN, kTrue),      // survives restarts: it is the cluster's root of custody
      In(CKA_PRIVATE, kTrue),    // invisible without login
      In(CKA_SENSITIVE, kTrue),  // CKA_VALUE can never be read in the clear
      // kNodeOnly: never wrapped out by anyone; kTransferable: wrapped out only (KekMode).
      In(CKA_EXTRACTABLE, mode == KekMode::kTransferable ? kTrue : kFalse),
      In(CKA_WRAP, kTrue),
      In(CKA_UNWRAP, kTrue),
      // Wrapping only: a key that also encrypts data could be used to decrypt wrapped blobs
      // fed to it as ciphertext, bypassing the unwrap-into-object path.
      In(CKA_ENCRYPT, kFalse),
      In(CKA_DECRYPT, kFalse),
      In(CKA_SIGN, kFalse),
      In(CKA_VERIFY, kFalse),
      In(CKA_MODIFIABLE, kFalse),  // nobody can later flip the flags above
      In(CKA_LABEL, label.data(), label.size()),
  };
  CK_MECHANISM mech = {CKM_AES_KEY_GEN, nullptr, 0};
  CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
  RETURN_IF_ERROR(
      Check(lease, lease.fn()->C_GenerateKey(lease.handle(), &mech, tmpl, std::size(tmpl), &key),
            absl::StrCat("C_GenerateKey(KEK) on token \"", label_, "\"")));
  return key;
}

absl::StatusOr<CK_OBJECT_HANDLE> Token::GenerateMacKey(std::string_view label) {
  if (label.empty()) return absl::InvalidArgumentError("MAC key label is empty");
  std::lock_guard<std::mutex> create_lock(create_mu_);
  ASSIGN_OR_RETURN(Lease lease, Acquire());
  RETURN_IF_ERROR(LabelIsFree(lease, label, label_));
  const CK_ULONG value_len = 32;
  const CK_KEY_TYPE key_type = CKK_GENERIC_SECRET;
  CK_ATTRIBUTE tmpl[] = {
      In(CKA_KEY_TYPE, key_type),
      In(CKA_VALUE_LEN, value_len),
      In(CKA_TOKEN, kTrue),
      In(CKA_PRIVATE, kTrue),
      In(CKA_SENSITIVE, kTrue),
      In(CKA_EXTRACTABLE, kFalse),
      In(CKA_SIGN, kTrue),
      In(CKA_VERIFY, kTrue),
      In(CKA_ENCRYPT, kFalse),
      In(CKA_DECRYPT, kFalse),
      In(CKA_WRAP, kFalse),
      In(CKA_UNWRAP, kFalse),
      In(CKA_DERIVE, kFalse),
      In(CKA_MODIFIABLE, kFalse),
      In(CKA_LABEL, label.data(), label.size()),
  };
  CK_MECHANISM mech = {CKM_GENERIC_SECRET_KEY_GEN, nullptr, 0};
  CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
  RETURN_IF_ERROR(
      Check(lease, lease.fn()->C_GenerateKey(lease.handle(), &mech, tmpl, std::size(tmpl), &key),
            absl::StrCat("C_GenerateKey(MAC key) on token \"", label_, "\"")));
  return key;
}

absl::StatusOr<KeyAttributes> Token::GetKeyAttributes(CK_OBJECT_HANDLE key) {
  ASSIGN_OR_RETURN(Lease lease, Acquire());
  return ReadKeyAttributes(lease, key);
}

absl::Status Token::CheckKekPolicy(CK_OBJECT_HANDLE kek, KekMode mode) {
  ASSIGN_OR_RETURN(Lease lease, Acquire());
  ASSIGN_OR_RETURN(KeyAttributes a, ReadKeyAttributes(lease, kek));
  std::vector<std::string> reasons;
  if (a.object_class != CKO_SECRET_KEY) {
    reasons.push_back(absl::StrFormat("is not a secret key (CKA_CLASS=0x%x)", a.object_class));
  } else {
    if (a.key_type != CKK_AES) {
      reasons.push_back(absl::StrFormat("is not an AES key (CKA_KEY_TYPE=0x%x)", a.key_type));
    }
    // SoftHSM2 leaves CKA_VALUE_LEN at 0 on an unwrapped key: a KEK received from a peer
    // (kTransferable) is checked for 256 bits by its blob's length in UnwrapKekFromPeer instead.
    if (a.value_len != kKekBytes && !(mode == KekMode::kTransferable && a.value_len == 0)) {
      reasons.push_back(absl::StrFormat("is not 256 bits long (CKA_VALUE_LEN=%d)", a.value_len));
    }
  }
  if (mode == KekMode::kNodeOnly && a.extractable) {
    reasons.push_back("is extractable (CKA_EXTRACTABLE=true)");
  }
  if (mode == KekMode::kTransferable && !a.extractable) {
    reasons.push_back(
        "cannot be wrapped for another node (CKA_EXTRACTABLE=false: it was made for a single "
        "node, not for a Raft cluster)");
  }
  if (!a.sensitive) reasons.push_back("is not sensitive (CKA_SENSITIVE=false)");
  if (a.encrypt) reasons.push_back("may encrypt data directly (CKA_ENCRYPT=true)");
  if (a.decrypt) reasons.push_back("may decrypt data directly (CKA_DECRYPT=true)");
  if (!a.wrap) reasons.push_back("cannot wrap (CKA_WRAP=false)");
  if (!a.unwrap) reasons.push_back("cannot unwrap (CKA_UNWRAP=false)");
  if (reasons.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "KEK ", DescribeKey(lease, kek), " ", absl::StrJoin(reasons, ", "), "; refusing to use it"));
}

absl::StatusOr<std::vector<uint8_t>> Token::WrapSecret(CK_OBJECT_HANDLE kek,
                                                       std::span<const uint8_t> secret) {
  if (secret.empty() || secret.size() > kMaxWrapSecretSize) {
    return absl::InvalidArgumentError(absl::StrCat("secret to wrap must be 1..", kMaxWrapSecretSize,
                                                   " bytes, got ", secret.size()));
  }
  const SecureBytes framed = FrameSecret(secret);
  const metrics::ScopedTimer timer(OperationHistogram("wrap", CKM_AES_KEY_WRAP_PAD));
  ASSIGN_OR_RETURN(Lease lease, Acquire());
  // A session object, extractable and not sensitive, so the KEK may wrap it; it lives only
  // for this call.
  CK_ATTRIBUTE tmpl[] = {
      In(CKA_CLASS, kSecretKeyClass), In(CKA_KEY_TYPE, kGenericSecret),
      In(CKA_TOKEN, kFalse),          In(CKA_EXTRACTABLE, kTrue),
      In(CKA_SENSITIVE, kFalse),      In(CKA_VALUE, framed.data(), framed.size()),
  };
  CK_OBJECT_HANDLE object = CK_INVALID_HANDLE;
  RETURN_IF_ERROR(Check(lease,
                        lease.fn()->C_CreateObject(lease.handle(), tmpl, std::size(tmpl), &object),
                        "wrap failed: C_CreateObject(temporary secret)"));
  ObjectGuard guard(lease, object);
  return WrapObjectOn(lease, kek, object, "wrap failed: ");
}

absl::StatusOr<SecureBytes> Token::UnwrapSecret(CK_OBJECT_HANDLE kek,
                                                std::span<const uint8_t> blob) {
  if (blob.size() < kMinWrappedSize || blob.size() > kMaxWrappedSize || blob.size() % 8 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("unwrap failed: a wrapped secret is a multiple of 8 bytes in ",
                     kMinWrappedSize, "..", kMaxWrappedSize, ", got ", blob.size()));
  }
  const metrics::ScopedTimer timer(OperationHistogram("unwrap", CKM_AES_KEY_WRAP_PAD));
  ASSIGN_OR_RETURN(Lease lease, Acquire());
  CK_ATTRIBUTE tmpl[] = {
      In(CKA_CLASS, kSecretKeyClass), In(CKA_KEY_TYPE, kGenericSecret), In(CKA_TOKEN, kFalse),
      In(CKA_SENSITIVE, kFalse),  // so CKA_VALUE can be read back below
      In(CKA_EXTRACTABLE, kTrue),
  };
  CK_MECHANISM mech = {CKM_AES_KEY_WRAP_PAD, nullptr, 0};
  CK_OBJECT_HANDLE object = CK_INVALID_HANDLE;
  const CK_RV rv =
      lease.fn()->C_UnwrapKey(lease.handle(), &mech, kek, const_cast<CK_BYTE*>(blob.data()),
                              static_cast<CK_ULONG>(blob.size()), tmpl, std::size(tmpl), &object);
  if (rv != CKR_OK) {
    absl::Status status = Check(lease, rv, "unwrap failed: C_UnwrapKey");
    // RFC 5649's integrity check fails the same way for an altered blob and for the wrong KEK;
    // SoftHSM2 reports it as a generic failure. Both mean "this blob does not open under this
    // key", i.e. bad input. Handle and login problems keep their own codes.
    switch (rv) {
      case CKR_WRAPPED_KEY_INVALID:
      case CKR_WRAPPED_KEY_LEN_RANGE:
      case CKR_ENCRYPTED_DATA_INVALID:
      case CKR_ENCRYPTED_DATA_LEN_RANGE:
      case CKR_DATA_INVALID:
      case CKR_DATA_LEN_RANGE:
      case CKR_GENERAL_ERROR:
      case CKR_FUNCTION_FAILED:
        return absl::InvalidArgumentError(status.message());
      default:
        return status;
    }
  }
  ObjectGuard guard(lease, object);

  CK_ATTRIBUTE value = {CKA_VALUE, nullptr, 0};
  RETURN_IF_ERROR(Check(lease, lease.fn()->C_GetAttributeValue(lease.handle(), object, &value, 1),
                        "unwrap failed: C_GetAttributeValue(CKA_VALUE size)"));
  if (value.ulValueLen == CK_UNAVAILABLE_INFORMATION || value.ulValueLen == 0 ||
      value.ulValueLen > kMaxFrameSize) {
    return absl::InternalError("unwrap failed: the token reported no usable CKA_VALUE length");
  }
  SecureBytes framed(value.ulValueLen);
  value.pValue = framed.data();
  RETURN_IF_ERROR(Check(lease, lease.fn()->C_GetAttributeValue(lease.handle(), object, &value, 1),
                        "unwrap failed: C_GetAttributeValue(CKA_VALUE)"));
  if (value.ulValueLen != framed.size()) {
    return absl::InternalError("unwrap failed: CKA_VALUE changed length between reads");
  }
  return UnframeSecret(framed);
}

absl::Status Token::GenerateRandom(std::span<uint8_t> out) {
  if (out.empty()) return absl::OkStatus();
  const metrics::ScopedTimer timer(RandomHistogram());
  ASSIGN_OR_RETURN(Lease lease, Acquire());
  return Check(
      lease,
      lease.fn()->C_GenerateRandom(lease.handle(), out.data(), static_cast<CK_ULONG>(out.size())),
      "C_GenerateRandom");
}

absl::StatusOr<SigningKey> Token::FindSigningKey(std::string_view label) {
  ASSIGN_OR_RETURN(Lease lease, Acquire());
  SigningKey key;
  ASSIGN_OR_RETURN(key.private_key, FindObjectOn(lease, kPrivateKeyClass, label, "private key"));
  ASSIGN_OR_RETURN(key.public_key, FindObjectOn(lease, kPublicKeyClass, label, "public key"));
  return key;
}

absl::StatusOr<SigningKey> Token::GenerateSigningKey(std::string_view label) {
  if (label.empty()) return absl::InvalidArgumentError("signing key label is empty");
  std::lock_guard<std::mutex> create_lock(create_mu_);
  ASSIGN_OR_RETURN(Lease lease, Acquire());
  absl::StatusOr<CK_OBJECT_HANDLE> existing =
      FindObjectOn(lease, kPrivateKeyClass, label, "private key");
  if (existing.ok() || absl::IsFailedPrecondition(existing.status())) {
    return absl::AlreadyExistsError(absl::StrCat("a private key labelled \"", Sv(label),
                                                 "\" already exists on token \"", label_, "\""));
  }
  if (!absl::IsNotFound(existing.status())) return existing.status();
  // One random CKA_ID on both halves: what ties a private key to its public key for other
  // PKCS#11 consumers (pkcs11-provider finds the public half by it).
  uint8_t id[16];
  RETURN_IF_ERROR(Check(lease, lease.fn()->C_GenerateRandom(lease.handle(), id, sizeof id),
                        "C_GenerateRandom"));
  CK_ATTRIBUTE pub_tmpl[] = {
      In(CKA_ID, id, sizeof id),
      In(CKA_EC_PARAMS, kP256Params, sizeof kP256Params),
      In(CKA_TOKEN, kTrue),
      In(CKA_PRIVATE, kFalse),  // public: readable before login, e.g. by the CLI
      In(CKA_VERIFY, kTrue),
      In(CKA_ENCRYPT, kFalse),
      In(CKA_WRAP, kFalse),
      In(CKA_MODIFIABLE, kFalse),
      In(CKA_LABEL, label.data(), label.size()),
  };
  CK_ATTRIBUTE priv_tmpl[] = {
      In(CKA_ID, id, sizeof id),
      In(CKA_TOKEN, kTrue),
      In(CKA_PRIVATE, kTrue),
      In(CKA_SENSITIVE, kTrue),     // never readable in the clear
      In(CKA_EXTRACTABLE, kFalse),  // never wrapped out
      In(CKA_SIGN, kTrue),          // and used for nothing but signing
      In(CKA_DECRYPT, kFalse),
      In(CKA_UNWRAP, kFalse),
      In(CKA_DERIVE, kFalse),
      In(CKA_MODIFIABLE, kFalse),
      In(CKA_LABEL, label.data(), label.size()),
  };
  CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, nullptr, 0};
  SigningKey key;
  RETURN_IF_ERROR(Check(
      lease,
      lease.fn()->C_GenerateKeyPair(lease.handle(), &mech, pub_tmpl, std::size(pub_tmpl), priv_tmpl,
                                    std::size(priv_tmpl), &key.public_key, &key.private_key),
      absl::StrCat("C_GenerateKeyPair(EC P-256) on token \"", label_, "\"")));
  return key;
}

absl::StatusOr<std::string> Token::EcPublicKeySpki(CK_OBJECT_HANDLE public_key) {
  ASSIGN_OR_RETURN(Lease lease, Acquire());
  uint8_t params[32];
  uint8_t point[80];
  CK_ATTRIBUTE attrs[] = {
      {CKA_EC_PARAMS, params, sizeof params},
      {CKA_EC_POINT, point, sizeof point},
  };
  RETURN_IF_ERROR(Check(
      lease, lease.fn()->C_GetAttributeValue(lease.handle(), public_key, attrs, std::size(attrs)),
      "C_GetAttributeValue(CKA_EC_POINT)"));
  if (attrs[0].ulValueLen != sizeof kP256Params ||
      std::memcmp(params, kP256Params, sizeof kP256Params) != 0) {
    return absl::FailedPreconditionError("the signing key is not an EC P-256 key");
  }
  // CKA_EC_POINT is the DER OCTET STRING holding the point (PKCS#11 2.40); accept the bare
  // point too, as some modules return it.
  std::string_view raw(reinterpret_cast<const char*>(point), attrs[1].ulValueLen);
  if (raw.size() == kP256PointBytes + 2 && raw[0] == 0x04 && raw[1] == kP256PointBytes) {
    raw.remove_prefix(2);
  }
  if (raw.size() != kP256PointBytes || raw[0] != 0x04) {
    return absl::FailedPreconditionError(
        "the signing key's EC point is not an uncompressed P-256 point");
  }
  std::string spki(reinterpret_cast<const char*>(kP256SpkiPrefix), sizeof kP256SpkiPrefix);
  spki.append(raw);
  return spki;
}

absl::StatusOr<std::string> Token::SignEcdsa(CK_OBJECT_HANDLE private_key,
                                             std::span<const uint8_t> digest) {
  const metrics::ScopedTimer timer(OperationHistogram("sign", CKM_ECDSA));
  ASSIGN_OR_RETURN(Lease lease, Acquire());
  CK_MECHANISM mech = {CKM_ECDSA, nullptr, 0};
  RETURN_IF_ERROR(Check(lease, lease.fn()->C_SignInit(lease.handle(), &mech, private_key),
                        "C_SignInit(CKM_ECDSA)"));
  uint8_t sig[132];  // r || s; 64 bytes for P-256, room for P-521
  CK_ULONG sig_len = sizeof sig;
  const CK_RV rv = lease.fn()->C_Sign(lease.handle(), const_cast<uint8_t*>(digest.data()),
                                      static_cast<CK_ULONG>(digest.size()), sig, &sig_len);
  if (rv != CKR_OK) lease.Discard();  // a failed C_Sign may leave the operation active
  RETURN_IF_ERROR(Check(lease, rv, "C_Sign(CKM_ECDSA)"));
  return std::string(reinterpret_cast<const char*>(sig), sig_len);
}

// ---- Moving KEKs to a joining node's token ------------------------------------------------

namespace {

// The raw uncompressed point of a P-256 public key object (CKA_EC_POINT may be the bare point
// or its DER OCTET STRING).
absl::StatusOr<std::string> RawP256Point(CK_FUNCTION_LIST* fn, CK_SESSION_HANDLE session,
                                         CK_OBJECT_HANDLE public_key) {
  uint8_t point[80];
  CK_ATTRIBUTE attr = {CKA_EC_POINT, point, sizeof point};
  RETURN_IF_ERROR(RvToStatus(fn->C_GetAttributeValue(session, public_key, &attr, 1),
                             "C_GetAttributeValue(CKA_EC_POINT)"));
  std::string_view raw(reinterpret_cast<const char*>(point), attr.ulValueLen);
  if (raw.size() == kP256PointBytes + 2 && raw[0] == 0x04 && raw[1] == kP256PointBytes) {
    raw.remove_prefix(2);
  }
  if (raw.size() != kP256PointBytes || raw[0] != 0x04) {
    return absl::FailedPreconditionError("the EC point is not an uncompressed P-256 point");
  }
  return std::string(raw);
}

absl::Status CheckPeerPoint(std::string_view point) {
  if (point.size() != kP256PointBytes || point[0] != 0x04) {
    return absl::InvalidArgumentError("the peer's key is not an uncompressed P-256 point");
  }
  return absl::OkStatus();
}

// A P-256 pair of session objects on `session`; the private half derives and does nothing else.
absl::StatusOr<Token::TransportKey> GenerateEcdhPair(CK_FUNCTION_LIST* fn,
                                                     CK_SESSION_HANDLE session) {
  CK_ATTRIBUTE pub_tmpl[] = {
      In(CKA_EC_PARAMS, kP256Params, sizeof kP256Params),
      In(CKA_TOKEN, kFalse),
      In(CKA_DERIVE, kTrue),
      In(CKA_VERIFY, kFalse),
      In(CKA_ENCRYPT, kFalse),
      In(CKA_WRAP, kFalse),
  };
  CK_ATTRIBUTE priv_tmpl[] = {
      In(CKA_TOKEN, kFalse),       In(CKA_PRIVATE, kTrue), In(CKA_SENSITIVE, kTrue),
      In(CKA_EXTRACTABLE, kFalse), In(CKA_DERIVE, kTrue),  In(CKA_SIGN, kFalse),
      In(CKA_DECRYPT, kFalse),     In(CKA_UNWRAP, kFalse),
  };
  CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, nullptr, 0};
  Token::TransportKey key;
  RETURN_IF_ERROR(
      RvToStatus(fn->C_GenerateKeyPair(session, &mech, pub_tmpl, std::size(pub_tmpl), priv_tmpl,
                                       std::size(priv_tmpl), &key.public_key, &key.private_key),
                 "C_GenerateKeyPair(EC P-256, transport)"));
  auto point = RawP256Point(fn, session, key.public_key);
  if (!point.ok()) {
    fn->C_DestroyObject(session, key.private_key);
    fn->C_DestroyObject(session, key.public_key);
    return point.status();
  }
  key.public_point = std::move(*point);
  return key;
}

// What the transfer key is derived for: SHA-256 over a label, the joining node's transport point,
// the leader's ephemeral point and `context` (the joining node's id), so that a key agreed for
// one join, one pair of keys or one node id is never the key of another.
std::string TransferInfo(std::string_view joiner_point, std::string_view leader_point,
                         std::string_view context) {
  static constexpr char kLabel[] = "strongroom kek transfer v1";
  std::string in(kLabel, sizeof kLabel);  // with its NUL: the label ends unambiguously
  in.append(joiner_point);
  in.append(leader_point);
  in.append(context);
  std::string md(SHA256_DIGEST_LENGTH, '\0');
  SHA256(reinterpret_cast<const uint8_t*>(in.data()), in.size(),
         reinterpret_cast<uint8_t*>(md.data()));
  return md;
}

// The one-time AES-256 key agreed between `own_private` and `peer_point` for `info` (32 bytes,
// TransferInfo), a session object that can only wrap (`wrap`) or only unwrap. Two steps inside
// the token, as SoftHSM2 2.6 refuses every ECDH KDF but CKD_NULL (CKR_MECHANISM_PARAM_INVALID
// for CKD_SHA256_KDF): ECDH with CKD_NULL gives the shared x-coordinate as a derive-only AES-256
// key Z; CKM_AES_ECB_ENCRYPT_DATA then derives the transfer key AES-256_Z(info) (a PRF of Z over
// the bound context), so the raw shared secret is never the wrapping key. Z is destroyed.
absl::StatusOr<CK_OBJECT_HANDLE> AgreeWrappingKey(CK_FUNCTION_LIST* fn, CK_SESSION_HANDLE session,
                                                  CK_OBJECT_HANDLE own_private,
                                                  std::string_view peer_point, bool wrap,
                                                  std::string_view info) {
  RETURN_IF_ERROR(CheckPeerPoint(peer_point));
  if (info.size() != SHA256_DIGEST_LENGTH) return absl::InternalError("bad transfer info");
  CK_ECDH1_DERIVE_PARAMS params{};
  params.kdf = CKD_NULL;
  params.pPublicData = reinterpret_cast<CK_BYTE_PTR>(const_cast<char*>(peer_point.data()));
  params.ulPublicDataLen = static_cast<CK_ULONG>(peer_point.size());
  CK_MECHANISM mech = {CKM_ECDH1_DERIVE, &params, sizeof params};
  const CK_ULONG len = kKekBytes;
  const CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
  const CK_KEY_TYPE type = CKK_AES;
  CK_ATTRIBUTE base_tmpl[] = {
      In(CKA_CLASS, cls),          In(CKA_KEY_TYPE, type),  In(CKA_VALUE_LEN, len),
      In(CKA_TOKEN, kFalse),       In(CKA_PRIVATE, kTrue),  In(CKA_SENSITIVE, kTrue),
      In(CKA_EXTRACTABLE, kFalse), In(CKA_DERIVE, kTrue),   In(CKA_WRAP, kFalse),
      In(CKA_UNWRAP, kFalse),      In(CKA_ENCRYPT, kFalse), In(CKA_DECRYPT, kFalse),
      In(CKA_SIGN, kFalse),        In(CKA_VERIFY, kFalse),
  };
  CK_OBJECT_HANDLE shared = CK_INVALID_HANDLE;
  RETURN_IF_ERROR(RvToStatus(
      fn->C_DeriveKey(session, &mech, own_private, base_tmpl, std::size(base_tmpl), &shared),
      "C_DeriveKey(CKM_ECDH1_DERIVE)"));
  CK_KEY_DERIVATION_STRING_DATA data = {
      reinterpret_cast<CK_BYTE_PTR>(const_cast<char*>(info.data())),
      static_cast<CK_ULONG>(info.size())};
  CK_MECHANISM kdf = {CKM_AES_ECB_ENCRYPT_DATA, &data, sizeof data};
  CK_ATTRIBUTE tmpl[] = {
      In(CKA_CLASS, cls),
      In(CKA_KEY_TYPE, type),
      In(CKA_VALUE_LEN, len),
      In(CKA_TOKEN, kFalse),
      In(CKA_PRIVATE, kTrue),
      In(CKA_SENSITIVE, kTrue),
      In(CKA_EXTRACTABLE, kFalse),
      In(CKA_WRAP, wrap ? kTrue : kFalse),
      In(CKA_UNWRAP, wrap ? kFalse : kTrue),
      In(CKA_ENCRYPT, kFalse),
      In(CKA_DECRYPT, kFalse),
      In(CKA_SIGN, kFalse),
      In(CKA_VERIFY, kFalse),
      In(CKA_DERIVE, kFalse),
  };
  CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
  const CK_RV rv = fn->C_DeriveKey(session, &kdf, shared, tmpl, std::size(tmpl), &key);
  if (const CK_RV drv = fn->C_DestroyObject(session, shared); drv != CKR_OK) {
    // A session object: it goes with the session at the latest.
    LogWarn("C_DestroyObject on the ECDH shared secret: %s; it is gone when the session closes",
            RvToStatus(drv, "C_DestroyObject").message());
  }
  RETURN_IF_ERROR(RvToStatus(rv, "C_DeriveKey(CKM_AES_ECB_ENCRYPT_DATA)"));
  return key;
}

// The joining side's transport key must have been generated in this token and never have left
// it: CKA_LOCAL (made by C_GenerateKeyPair here, not imported with C_CreateObject or unwrapped),
// CKA_NEVER_EXTRACTABLE, CKA_SENSITIVE and not CKA_EXTRACTABLE. What the token says is all
// there is: SoftHSM2 keeps these attributes honestly but offers no attestation a leader could
// check, so the check is the joining node's own (a node running altered code could skip it).
absl::Status CheckTransportKeyIsLocal(CK_FUNCTION_LIST* fn, CK_SESSION_HANDLE session,
                                      CK_OBJECT_HANDLE private_key) {
  CK_BBOOL local = CK_FALSE, never_extractable = CK_FALSE, sensitive = CK_FALSE,
           extractable = CK_TRUE;
  CK_ATTRIBUTE q[] = {
      {CKA_LOCAL, &local, sizeof local},
      {CKA_NEVER_EXTRACTABLE, &never_extractable, sizeof never_extractable},
      {CKA_SENSITIVE, &sensitive, sizeof sensitive},
      {CKA_EXTRACTABLE, &extractable, sizeof extractable},
  };
  RETURN_IF_ERROR(RvToStatus(fn->C_GetAttributeValue(session, private_key, q, std::size(q)),
                             "C_GetAttributeValue(transport key)"));
  std::vector<std::string> reasons;
  if (local != CK_TRUE) reasons.push_back("was not generated in this token (CKA_LOCAL=false)");
  if (never_extractable != CK_TRUE) reasons.push_back("was extractable once");
  if (sensitive != CK_TRUE) reasons.push_back("is not sensitive");
  if (extractable != CK_FALSE) reasons.push_back("is extractable");
  if (!reasons.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to receive the KEKs: the transport key ", absl::StrJoin(reasons, ", ")));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Token::TransportKey> Token::GenerateTransportKey() {
  std::lock_guard<std::mutex> lock(login_mu_);
  if (login_session_ == nullptr) return absl::FailedPreconditionError("the token is closed");
  return GenerateEcdhPair(login_session_->fn(), login_session_->handle());
}

absl::StatusOr<Token::WrappedForPeer> Token::WrapKeysForPeer(std::span<const CK_OBJECT_HANDLE> keys,
                                                             std::string_view peer_point,
                                                             std::string_view context) {
  RETURN_IF_ERROR(CheckPeerPoint(peer_point));
  ASSIGN_OR_RETURN(Lease lease, Acquire());
  CK_FUNCTION_LIST* fn = lease.fn();
  ASSIGN_OR_RETURN(TransportKey eph, GenerateEcdhPair(fn, lease.handle()));
  ObjectGuard eph_private(lease, eph.private_key);
  ObjectGuard eph_public(lease, eph.public_key);
  ASSIGN_OR_RETURN(CK_OBJECT_HANDLE wrapping,
                   AgreeWrappingKey(fn, lease.handle(), eph.private_key, peer_point, true,
                                    TransferInfo(peer_point, eph.public_point, context)));
  ObjectGuard wrapping_guard(lease, wrapping);
  WrappedForPeer out;
  out.ephemeral_point = eph.public_point;
  for (CK_OBJECT_HANDLE key : keys) {
    ASSIGN_OR_RETURN(auto blob, WrapObjectOn(lease, wrapping, key, "wrapping a KEK for a peer: "));
    out.blobs.push_back(std::move(blob));
  }
  return out;
}

absl::StatusOr<CK_OBJECT_HANDLE> Token::UnwrapKekFromPeer(const TransportKey& transport,
                                                          std::string_view ephemeral_point,
                                                          std::span<const uint8_t> blob,
                                                          std::string_view label,
                                                          std::string_view context) {
  if (label.empty()) return absl::InvalidArgumentError("KEK label is empty");
  std::lock_guard<std::mutex> create_lock(create_mu_);
  ASSIGN_OR_RETURN(Lease lease, Acquire());
  RETURN_IF_ERROR(LabelIsFree(lease, label, label_));
  // RFC 5649 wraps a 32-byte key into 40 bytes: the length of the KEK is fixed here.
  if (blob.size() != kKekBytes + 8) {
    return absl::InvalidArgumentError("unwrap failed: the blob is not a wrapped 256-bit key");
  }
  CK_FUNCTION_LIST* fn = lease.fn();
  RETURN_IF_ERROR(CheckTransportKeyIsLocal(fn, lease.handle(), transport.private_key));
  ASSIGN_OR_RETURN(
      CK_OBJECT_HANDLE unwrapping,
      AgreeWrappingKey(fn, lease.handle(), transport.private_key, ephemeral_point, false,
                       TransferInfo(transport.public_point, ephemeral_point, context)));
  ObjectGuard unwrapping_guard(lease, unwrapping);
  const CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
  const CK_KEY_TYPE type = CKK_AES;
  // The attributes GenerateKek(kTransferable) gives (SoftHSM2 refuses CKA_VALUE_LEN here; the
  // blob's length fixed the key's above).
  CK_ATTRIBUTE tmpl[] = {
      In(CKA_CLASS, cls),
      In(CKA_KEY_TYPE, type),
      In(CKA_TOKEN, kTrue),
      In(CKA_PRIVATE, kTrue),
      In(CKA_SENSITIVE, kTrue),
      In(CKA_EXTRACTABLE, kTrue),
      In(CKA_WRAP, kTrue),
      In(CKA_UNWRAP, kTrue),
      In(CKA_ENCRYPT, kFalse),
      In(CKA_DECRYPT, kFalse),
      In(CKA_SIGN, kFalse),
      In(CKA_VERIFY, kFalse),
      In(CKA_LABEL, label.data(), label.size()),
  };
  CK_MECHANISM mech = {CKM_AES_KEY_WRAP_PAD, nullptr, 0};
  CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
  const CK_RV rv =
      fn->C_UnwrapKey(lease.handle(), &mech, unwrapping, const_cast<uint8_t*>(blob.data()),
                      static_cast<CK_ULONG>(blob.size()), tmpl, std::size(tmpl), &key);
  if (rv == CKR_GENERAL_ERROR || rv == CKR_WRAPPED_KEY_INVALID || rv == CKR_WRAPPED_KEY_LEN_RANGE) {
    return absl::InvalidArgumentError(
        absl::StrCat("unwrap failed: ", Sv(RvName(rv)), " (wrong key agreement or altered blob)"));
  }
  RETURN_IF_ERROR(Check(lease, rv, "C_UnwrapKey(KEK from peer)"));
  return key;
}

}  // namespace strongroom::hsm
