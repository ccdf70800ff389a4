#include "hsm/rv.h"

#include <cstdio>
#include <mutex>

#include "absl/strings/str_cat.h"

namespace strongroom::hsm {
namespace {

// PKCS#11 3.0 return values that Debian 12's p11-kit (0.24.1, a 2.40 header) does not define.
// A 3.0 module can still return them, so they get names too. Values: PKCS#11 3.0 base spec.
constexpr CK_RV kTokenResourceExceeded = 0x201UL;  // CKR_TOKEN_RESOURCE_EXCEEDED
constexpr CK_RV kOperationCancelFailed = 0x202UL;  // CKR_OPERATION_CANCEL_FAILED

// p11-kit 0.24.1 numbers five 2.40 codes 0x1c0..0x1c4, while the OASIS 2.40 headers (which
// SoftHSM2 and most vendors compile against) number them 0x1b5..0x1b9. A module built with
// OASIS headers therefore returns the OASIS value; name both so neither shows up as unknown.
constexpr CK_RV kOasisExceededMaxIterations = 0x1b5UL;
constexpr CK_RV kOasisFipsSelfTestFailed = 0x1b6UL;
constexpr CK_RV kOasisLibraryLoadFailed = 0x1b7UL;
constexpr CK_RV kOasisPinTooWeak = 0x1b8UL;
constexpr CK_RV kOasisPublicKeyInvalid = 0x1b9UL;

// Every CKR_ name defined by p11-kit's pkcs11.h, in header order. A switch (rather than a table)
// makes the compiler reject two names with the same value.
#define SR_CKR_NAMES(X)                   \
  X(CKR_OK)                               \
  X(CKR_CANCEL)                           \
  X(CKR_HOST_MEMORY)                      \
  X(CKR_SLOT_ID_INVALID)                  \
  X(CKR_GENERAL_ERROR)                    \
  X(CKR_FUNCTION_FAILED)                  \
  X(CKR_ARGUMENTS_BAD)                    \
  X(CKR_NO_EVENT)                         \
  X(CKR_NEED_TO_CREATE_THREADS)           \
  X(CKR_CANT_LOCK)                        \
  X(CKR_ATTRIBUTE_READ_ONLY)              \
  X(CKR_ATTRIBUTE_SENSITIVE)              \
  X(CKR_ATTRIBUTE_TYPE_INVALID)           \
  X(CKR_ATTRIBUTE_VALUE_INVALID)          \
  X(CKR_ACTION_PROHIBITED)                \
  X(CKR_DATA_INVALID)                     \
  X(CKR_DATA_LEN_RANGE)                   \
  X(CKR_DEVICE_ERROR)                     \
  X(CKR_DEVICE_MEMORY)                    \
  X(CKR_DEVICE_REMOVED)                   \
  X(CKR_ENCRYPTED_DATA_INVALID)           \
  X(CKR_ENCRYPTED_DATA_LEN_RANGE)         \
  X(CKR_FUNCTION_CANCELED)                \
  X(CKR_FUNCTION_NOT_PARALLEL)            \
  X(CKR_FUNCTION_NOT_SUPPORTED)           \
  X(CKR_KEY_HANDLE_INVALID)               \
  X(CKR_KEY_SIZE_RANGE)                   \
  X(CKR_KEY_TYPE_INCONSISTENT)            \
  X(CKR_KEY_NOT_NEEDED)                   \
  X(CKR_KEY_CHANGED)                      \
  X(CKR_KEY_NEEDED)                       \
  X(CKR_KEY_INDIGESTIBLE)                 \
  X(CKR_KEY_FUNCTION_NOT_PERMITTED)       \
  X(CKR_KEY_NOT_WRAPPABLE)                \
  X(CKR_KEY_UNEXTRACTABLE)                \
  X(CKR_MECHANISM_INVALID)                \
  X(CKR_MECHANISM_PARAM_INVALID)          \
  X(CKR_OBJECT_HANDLE_INVALID)            \
  X(CKR_OPERATION_ACTIVE)                 \
  X(CKR_OPERATION_NOT_INITIALIZED)        \
  X(CKR_PIN_INCORRECT)                    \
  X(CKR_PIN_INVALID)                      \
  X(CKR_PIN_LEN_RANGE)                    \
  X(CKR_PIN_EXPIRED)                      \
  X(CKR_PIN_LOCKED)                       \
  X(CKR_SESSION_CLOSED)                   \
  X(CKR_SESSION_COUNT)                    \
  X(CKR_SESSION_HANDLE_INVALID)           \
  X(CKR_SESSION_PARALLEL_NOT_SUPPORTED)   \
  X(CKR_SESSION_READ_ONLY)                \
  X(CKR_SESSION_EXISTS)                   \
  X(CKR_SESSION_READ_ONLY_EXISTS)         \
  X(CKR_SESSION_READ_WRITE_SO_EXISTS)     \
  X(CKR_SIGNATURE_INVALID)                \
  X(CKR_SIGNATURE_LEN_RANGE)              \
  X(CKR_TEMPLATE_INCOMPLETE)              \
  X(CKR_TEMPLATE_INCONSISTENT)            \
  X(CKR_TOKEN_NOT_PRESENT)                \
  X(CKR_TOKEN_NOT_RECOGNIZED)             \
  X(CKR_TOKEN_WRITE_PROTECTED)            \
  X(CKR_UNWRAPPING_KEY_HANDLE_INVALID)    \
  X(CKR_UNWRAPPING_KEY_SIZE_RANGE)        \
  X(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT) \
  X(CKR_USER_ALREADY_LOGGED_IN)           \
  X(CKR_USER_NOT_LOGGED_IN)               \
  X(CKR_USER_PIN_NOT_INITIALIZED)         \
  X(CKR_USER_TYPE_INVALID)                \
  X(CKR_USER_ANOTHER_ALREADY_LOGGED_IN)   \
  X(CKR_USER_TOO_MANY_TYPES)              \
  X(CKR_WRAPPED_KEY_INVALID)              \
  X(CKR_WRAPPED_KEY_LEN_RANGE)            \
  X(CKR_WRAPPING_KEY_HANDLE_INVALID)      \
  X(CKR_WRAPPING_KEY_SIZE_RANGE)          \
  X(CKR_WRAPPING_KEY_TYPE_INCONSISTENT)   \
  X(CKR_RANDOM_SEED_NOT_SUPPORTED)        \
  X(CKR_RANDOM_NO_RNG)                    \
  X(CKR_DOMAIN_PARAMS_INVALID)            \
  X(CKR_CURVE_NOT_SUPPORTED)              \
  X(CKR_BUFFER_TOO_SMALL)                 \
  X(CKR_SAVED_STATE_INVALID)              \
  X(CKR_INFORMATION_SENSITIVE)            \
  X(CKR_STATE_UNSAVEABLE)                 \
  X(CKR_CRYPTOKI_NOT_INITIALIZED)         \
  X(CKR_CRYPTOKI_ALREADY_INITIALIZED)     \
  X(CKR_MUTEX_BAD)                        \
  X(CKR_MUTEX_NOT_LOCKED)                 \
  X(CKR_NEW_PIN_MODE)                     \
  X(CKR_NEXT_OTP)                         \
  X(CKR_EXCEEDED_MAX_ITERATIONS)          \
  X(CKR_FIPS_SELF_TEST_FAILED)            \
  X(CKR_LIBRARY_LOAD_FAILED)              \
  X(CKR_PIN_TOO_WEAK)                     \
  X(CKR_PUBLIC_KEY_INVALID)               \
  X(CKR_FUNCTION_REJECTED)                \
  X(CKR_VENDOR_DEFINED)

std::string_view KnownName(CK_RV rv) {
  switch (rv) {
#define SR_CKR_CASE(name) \
  case name:              \
    return #name;
    SR_CKR_NAMES(SR_CKR_CASE)
#undef SR_CKR_CASE
    case kTokenResourceExceeded:
      return "CKR_TOKEN_RESOURCE_EXCEEDED";
    case kOperationCancelFailed:
      return "CKR_OPERATION_CANCEL_FAILED";
    case kOasisExceededMaxIterations:
      return "CKR_EXCEEDED_MAX_ITERATIONS";
    case kOasisFipsSelfTestFailed:
      return "CKR_FIPS_SELF_TEST_FAILED";
    case kOasisLibraryLoadFailed:
      return "CKR_LIBRARY_LOAD_FAILED";
    case kOasisPinTooWeak:
      return "CKR_PIN_TOO_WEAK";
    case kOasisPublicKeyInvalid:
      return "CKR_PUBLIC_KEY_INVALID";
    default:
      return {};
  }
}

// Unknown codes are formatted once and kept for the life of the process so RvName can hand out
// a string_view without a caller-owned buffer. The storage is a trivially destructible static
// array (no destructor runs at exit, so views stay valid even during static teardown). The cap
// keeps a misbehaving module from filling it; past it, one shared fallback name is returned.
struct UnknownName {
  CK_RV rv;
  char text[24];  // "CKR_0x" + up to 16 hex digits + NUL
};
constexpr size_t kMaxInternedUnknown = 64;
std::mutex g_unknown_mu;
UnknownName g_unknown[kMaxInternedUnknown];
size_t g_unknown_count = 0;

std::string_view InternUnknown(CK_RV rv) {
  std::lock_guard<std::mutex> lock(g_unknown_mu);
  for (size_t i = 0; i < g_unknown_count; ++i) {
    if (g_unknown[i].rv == rv) return g_unknown[i].text;
  }
  if (g_unknown_count == kMaxInternedUnknown) return "CKR_(unknown)";
  UnknownName& slot = g_unknown[g_unknown_count++];
  slot.rv = rv;
  (void)std::snprintf(slot.text, sizeof slot.text, "CKR_0x%08lX", static_cast<unsigned long>(rv));
  return slot.text;
}

absl::StatusCode CodeFor(CK_RV rv) {
  switch (rv) {
    case CKR_OK:
      return absl::StatusCode::kOk;

    // The caller (or the user at a PIN pad) gave up.
    case CKR_CANCEL:
    case CKR_FUNCTION_CANCELED:
      return absl::StatusCode::kCancelled;

    // PIN and login problems, and operations the key's or token's policy forbids.
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
    case CKR_PIN_EXPIRED:
    case CKR_PIN_LOCKED:
    case CKR_PIN_TOO_WEAK:
    case kOasisPinTooWeak:
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_USER_PIN_NOT_INITIALIZED:
    case CKR_USER_TYPE_INVALID:
    case CKR_USER_ANOTHER_ALREADY_LOGGED_IN:
    case CKR_USER_TOO_MANY_TYPES:
    case CKR_ATTRIBUTE_SENSITIVE:
    case CKR_INFORMATION_SENSITIVE:
    case CKR_KEY_UNEXTRACTABLE:
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
    case CKR_ACTION_PROHIBITED:
    case CKR_SESSION_READ_ONLY:
    case CKR_TOKEN_WRITE_PROTECTED:
    case CKR_FUNCTION_REJECTED:
      return absl::StatusCode::kPermissionDenied;

    // Bad arguments, templates, mechanisms, data or key material handed to the token.
    case CKR_ARGUMENTS_BAD:
    case CKR_ATTRIBUTE_READ_ONLY:
    case CKR_ATTRIBUTE_TYPE_INVALID:
    case CKR_ATTRIBUTE_VALUE_INVALID:
    case CKR_DATA_INVALID:
    case CKR_DATA_LEN_RANGE:
    case CKR_ENCRYPTED_DATA_INVALID:
    case CKR_ENCRYPTED_DATA_LEN_RANGE:
    case CKR_KEY_SIZE_RANGE:
    case CKR_KEY_TYPE_INCONSISTENT:
    case CKR_KEY_NOT_NEEDED:
    case CKR_KEY_NEEDED:
    case CKR_KEY_INDIGESTIBLE:
    case CKR_KEY_NOT_WRAPPABLE:
    case CKR_MECHANISM_INVALID:
    case CKR_MECHANISM_PARAM_INVALID:
    case CKR_SIGNATURE_INVALID:
    case CKR_SIGNATURE_LEN_RANGE:
    case CKR_TEMPLATE_INCOMPLETE:
    case CKR_TEMPLATE_INCONSISTENT:
    case CKR_UNWRAPPING_KEY_SIZE_RANGE:
    case CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT:
    case CKR_WRAPPED_KEY_INVALID:
    case CKR_WRAPPED_KEY_LEN_RANGE:
    case CKR_WRAPPING_KEY_SIZE_RANGE:
    case CKR_WRAPPING_KEY_TYPE_INCONSISTENT:
    case CKR_DOMAIN_PARAMS_INVALID:
    case CKR_BUFFER_TOO_SMALL:
    case CKR_SAVED_STATE_INVALID:
    case CKR_PUBLIC_KEY_INVALID:
    case kOasisPublicKeyInvalid:
      return absl::StatusCode::kInvalidArgument;

    // Missing slots, tokens, sessions and objects.
    case CKR_SLOT_ID_INVALID:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_KEY_HANDLE_INVALID:
    case CKR_OBJECT_HANDLE_INVALID:
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_CLOSED:
    case CKR_UNWRAPPING_KEY_HANDLE_INVALID:
    case CKR_WRAPPING_KEY_HANDLE_INVALID:
      return absl::StatusCode::kNotFound;

    // The call is fine but the library, session or token is in the wrong state for it.
    case CKR_NO_EVENT:
    case CKR_NEED_TO_CREATE_THREADS:
    case CKR_KEY_CHANGED:
    case CKR_OPERATION_ACTIVE:
    case CKR_OPERATION_NOT_INITIALIZED:
    case CKR_SESSION_EXISTS:
    case CKR_SESSION_READ_ONLY_EXISTS:
    case CKR_SESSION_READ_WRITE_SO_EXISTS:
    case CKR_TOKEN_NOT_RECOGNIZED:
    case CKR_USER_ALREADY_LOGGED_IN:
    case CKR_STATE_UNSAVEABLE:
    case CKR_CRYPTOKI_NOT_INITIALIZED:
    case CKR_CRYPTOKI_ALREADY_INITIALIZED:
    case CKR_MUTEX_NOT_LOCKED:
    case CKR_NEW_PIN_MODE:
    case CKR_NEXT_OTP:
    case kOperationCancelFailed:
      return absl::StatusCode::kFailedPrecondition;

    // Capacity: host or token memory, session slots, token storage.
    case CKR_HOST_MEMORY:
    case CKR_DEVICE_MEMORY:
    case CKR_SESSION_COUNT:
    case kTokenResourceExceeded:
      return absl::StatusCode::kResourceExhausted;

    // The device itself failed or went away; retrying later (or elsewhere) may work.
    case CKR_DEVICE_ERROR:
    case CKR_DEVICE_REMOVED:
      return absl::StatusCode::kUnavailable;

    // Features this library does not offer.
    case CKR_CANT_LOCK:
    case CKR_FUNCTION_NOT_PARALLEL:
    case CKR_FUNCTION_NOT_SUPPORTED:
    case CKR_SESSION_PARALLEL_NOT_SUPPORTED:
    case CKR_RANDOM_SEED_NOT_SUPPORTED:
    case CKR_RANDOM_NO_RNG:
    case CKR_CURVE_NOT_SUPPORTED:
      return absl::StatusCode::kUnimplemented;

    // Failures inside the library that say nothing about our input.
    case CKR_GENERAL_ERROR:
    case CKR_FUNCTION_FAILED:
    case CKR_MUTEX_BAD:
    case CKR_EXCEEDED_MAX_ITERATIONS:
    case kOasisExceededMaxIterations:
    case CKR_FIPS_SELF_TEST_FAILED:
    case kOasisFipsSelfTestFailed:
    case CKR_LIBRARY_LOAD_FAILED:
    case kOasisLibraryLoadFailed:
      return absl::StatusCode::kInternal;

    default:
      // Vendor-defined and future codes: we cannot know what they mean.
      return absl::StatusCode::kUnknown;
  }
}

}  // namespace

std::string_view RvName(CK_RV rv) {
  std::string_view known = KnownName(rv);
  if (!known.empty()) return known;
  return InternUnknown(rv);
}

absl::Status RvToStatus(CK_RV rv, std::string_view what) {
  if (rv == CKR_OK) return absl::OkStatus();
  // Debian 12's Abseil has its own string_view type, hence the explicit conversions.
  const std::string_view name = RvName(rv);
  return absl::Status(CodeFor(rv), absl::StrCat(absl::string_view(what.data(), what.size()), ": ",
                                                absl::string_view(name.data(), name.size())));
}

}  // namespace strongroom::hsm
