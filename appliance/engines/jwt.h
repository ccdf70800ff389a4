// JSON Web Tokens for the Kubernetes auth method: compact JWS parsing, signature verification
// against the configured pem_keys (RS256/384/512, ES256/384/512), registered-claim validation
// with go-jose's leeway rules, and the service-account identity claims Kubernetes puts in its
// tokens. Tokens are hostile input: size and depth are capped, error messages never echo the
// token text, and only the algorithms listed here are accepted (never "none", HMAC or PSS).
// Embedded keys (jwk, jku, x5c, x5u headers) are ignored; only configured keys verify.
#pragma once

#include <openssl/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "appliance/core/json.h"

namespace strongroom::engines::jwt {

inline constexpr size_t kMaxTokenSize = 64 * 1024;
inline constexpr unsigned kMaxJsonDepth = 16;

struct Jwt {
  std::string alg, kid;  // from the header; kid is empty when absent
  core::json::object header, claims;
  std::string signing_input;  // base64url(header) "." base64url(payload), as received
  std::string signature;      // raw bytes (base64url-decoded)
};

// Compact JWS: exactly three unpadded base64url parts (Go's RawURLEncoding, and canonical: the
// unused bits of the last character must be zero), header and payload JSON objects (depth limit
// kMaxJsonDepth), the whole token at most kMaxTokenSize bytes, header "alg" a string and "kid" a
// string when present. InvalidArgument ("malformed JWT: ...") for anything else; messages never
// contain the token text.
absl::StatusOr<Jwt> Parse(std::string_view compact);

// Strict unpadded base64url (RFC 4648 section 5 without '='): no padding, no whitespace,
// canonical trailing bits. nullopt on anything else.
std::optional<std::string> Base64UrlDecode(std::string_view text);

// The pem_keys of the Kubernetes auth config. Immutable once built; cheap to copy (keys are
// shared) and safe to use from several threads at once.
class KeySet {
 public:
  KeySet() = default;

  // Each entry: PEM "PUBLIC KEY" (SPKI, RSA or EC on P-256/P-384/P-521) or "CERTIFICATE" (public
  // key taken from it, validity and issuer not checked). An entry may hold several blocks; blocks
  // of other types are skipped. InvalidArgument naming the index of an entry with a block that
  // does not parse, a key of another type or curve, an RSA key below 2048 bits, a private key,
  // or no usable key at all.
  static absl::StatusOr<KeySet> FromPem(const std::vector<std::string>& pems);

  size_t size() const { return keys_.size(); }

  // OK if any key verifies the signature for j.alg. Supported: RS256/RS384/RS512 (PKCS#1 v1.5)
  // and ES256/ES384/ES512 (raw r||s of the curve's size; the key's curve must match the alg).
  // Everything else, a header with "crit", no key of the right type, or a signature that does not
  // verify -> PermissionDenied saying why. The kid header is not used to select keys (every key
  // of the right type is tried, as Vault does).
  absl::Status Verify(const Jwt& j) const;

 private:
  enum class KeyType { kRsa, kEcP256, kEcP384, kEcP521 };
  struct Key {
    std::shared_ptr<EVP_PKEY> pkey;
    KeyType type;
  };
  std::vector<Key> keys_;
};

struct ClaimRules {
  std::string issuer;                  // empty: iss not checked
  std::vector<std::string> audiences;  // empty: aud not checked; else aud must contain one of them
  int64_t now_unix = 0;
  int64_t leeway_seconds = 60;  // for exp/nbf/iat, like go-jose's DefaultLeeway
};

// exp (if present) must be > now - leeway; nbf (if present) <= now + leeway; iat, if present and
// later than now + leeway, refused. NumericDates are JSON numbers (fractions truncated, as
// go-jose does); iss, sub and jti must be strings and aud a string or an array of strings when
// present, whether or not they are checked. PermissionDenied: "JWT has expired", "JWT is not
// valid yet", "JWT was issued in the future", "JWT issuer does not match", "JWT audience does not
// match", "JWT claim exp is not a valid NumericDate", ...
absl::Status ValidateClaims(const Jwt& j, const ClaimRules& rules);

struct ServiceAccount {
  std::string namespace_, name, uid, secret_name, pod_name;
};

// Kubernetes identity claims: projected tokens {"kubernetes.io":{"namespace":..,
// "serviceaccount":{"name":..,"uid":..},"pod":{"name":..,"uid":..}}} or, when "kubernetes.io" is
// absent, legacy tokens' "kubernetes.io/serviceaccount/namespace",
// "kubernetes.io/serviceaccount/service-account.name", "kubernetes.io/serviceaccount/
// service-account.uid" and "kubernetes.io/serviceaccount/secret.name". `sub`, when present, must
// be "system:serviceaccount:<namespace>:<name>". PermissionDenied when namespace, name or uid is
// missing or empty, a claim has the wrong type, or sub does not match.
absl::StatusOr<ServiceAccount> ServiceAccountFromClaims(const core::json::object& claims);

}  // namespace strongroom::engines::jwt
