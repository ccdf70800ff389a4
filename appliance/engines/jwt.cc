#include "appliance/engines/jwt.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <climits>
#include <cmath>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/strings.h"

namespace strongroom::engines::jwt {
namespace {

namespace json = core::json;

// ---- OpenSSL ownership -------------------------------------------------------------------------

template <auto kFree>
struct Free {
  template <typename T>
  void operator()(T* p) const {
    kFree(p);
  }
};
void OpensslFree(void* p) { OPENSSL_free(p); }

using BioPtr = std::unique_ptr<BIO, Free<BIO_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, Free<EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Free<X509_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Free<EVP_MD_CTX_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Free<BN_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, Free<ECDSA_SIG_free>>;
template <typename T>
using OsslBuf = std::unique_ptr<T, Free<OpensslFree>>;

// OpenSSL reports failures on a thread-local queue; leave it empty for whoever runs next.
struct ClearErrorsOnExit {
  ~ClearErrorsOnExit() { ERR_clear_error(); }
};

// ---- base64url ---------------------------------------------------------------------------------

int Base64UrlValue(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

// ---- Parse -------------------------------------------------------------------------------------

absl::Status Malformed(std::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("malformed JWT: ", Av(why)));
}

bool IsBlank(std::string_view s) {
  for (char c : s) {
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return false;
  }
  return true;
}

// `what` is "header" or "payload"; the decoded text is never quoted back.
absl::StatusOr<json::object> DecodeObject(std::string_view part, std::string_view what) {
  std::optional<std::string> text = Base64UrlDecode(part);
  if (!text) return Malformed(absl::StrCat(Av(what), " is not unpadded base64url"));
  // ParseObject reads blank input as {}; a JWT part must be an actual object.
  if (IsBlank(*text)) return Malformed(absl::StrCat(Av(what), " is not a JSON object"));
  absl::StatusOr<json::object> o = core::ParseObject(*text, kMaxJsonDepth);
  if (!o.ok()) return Malformed(absl::StrCat(Av(what), " is not a JSON object"));
  return o;
}

// ---- Verify ------------------------------------------------------------------------------------

struct Algorithm {
  const EVP_MD* md;
  bool rsa;       // PKCS#1 v1.5 with an RSA key; else ECDSA
  int curve_nid;  // ECDSA only
  size_t coordinate_size;
};

std::optional<Algorithm> SupportedAlgorithm(std::string_view alg) {
  if (alg == "RS256") return Algorithm{EVP_sha256(), true, NID_undef, 0};
  if (alg == "RS384") return Algorithm{EVP_sha384(), true, NID_undef, 0};
  if (alg == "RS512") return Algorithm{EVP_sha512(), true, NID_undef, 0};
  if (alg == "ES256") return Algorithm{EVP_sha256(), false, NID_X9_62_prime256v1, 32};
  if (alg == "ES384") return Algorithm{EVP_sha384(), false, NID_secp384r1, 48};
  if (alg == "ES512") return Algorithm{EVP_sha512(), false, NID_secp521r1, 66};
  return std::nullopt;
}

// Why a known algorithm is refused; the alg text itself is only echoed from this fixed list.
absl::Status RefusedAlgorithm(std::string_view alg) {
  if (alg == "none") return absl::PermissionDeniedError("JWT algorithm none is not accepted");
  for (std::string_view hs : {"HS256", "HS384", "HS512"}) {
    if (alg == hs) {
      return absl::PermissionDeniedError(
          absl::StrCat("JWT algorithm ", Av(hs),
                       " is not accepted: HMAC tokens cannot be verified with public keys"));
    }
  }
  for (std::string_view ps : {"PS256", "PS384", "PS512"}) {
    if (alg == ps) {
      return absl::PermissionDeniedError(
          absl::StrCat("JWT algorithm ", Av(ps), " is not accepted: RSA-PSS is not supported"));
    }
  }
  return absl::PermissionDeniedError(
      "JWT algorithm is not supported (accepted: RS256, RS384, RS512, ES256, ES384, ES512)");
}

// JOSE's raw r||s (RFC 7518 section 3.4) as the DER ECDSA-Sig-Value EVP_DigestVerify takes.
std::optional<std::string> EcdsaRawToDer(std::string_view raw) {
  const size_t n = raw.size() / 2;
  const auto* bytes = reinterpret_cast<const unsigned char*>(raw.data());
  BnPtr r(BN_bin2bn(bytes, static_cast<int>(n), nullptr));
  BnPtr s(BN_bin2bn(bytes + n, static_cast<int>(n), nullptr));
  EcdsaSigPtr sig(ECDSA_SIG_new());
  if (!r || !s || !sig || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) return std::nullopt;
  // ECDSA_SIG_set0 took ownership of r and s.
  static_cast<void>(r.release());
  static_cast<void>(s.release());
  const int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0) return std::nullopt;
  std::string der(static_cast<size_t>(len), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_ECDSA_SIG(sig.get(), &out) != len) return std::nullopt;
  return der;
}

// True only when the signature verifies; any failure to check counts as not verified.
bool VerifyWith(EVP_PKEY* key, const Algorithm& alg, std::string_view input, std::string_view sig) {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), &pctx, alg.md, nullptr, key) != 1) return false;
  if (alg.rsa && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                          reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
}

// ---- FromPem -----------------------------------------------------------------------------------

int CurveNid(EVP_PKEY* key) {
  char name[80];
  size_t len = 0;
  if (EVP_PKEY_get_group_name(key, name, sizeof name, &len) != 1) return NID_undef;
  int nid = OBJ_sn2nid(name);
  if (nid == NID_undef) nid = EC_curve_nist2nid(name);
  return nid;
}

// ---- claims ------------------------------------------------------------------------------------

absl::Status Denied(std::string_view why) { return absl::PermissionDeniedError(Av(why)); }

const json::value* Find(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return nullptr;
  return &it->value();
}

// A NumericDate (RFC 7519 section 2): a JSON number of seconds, fractions truncated as go-jose's
// NumericDate does. nullopt when absent or null.
absl::StatusOr<std::optional<int64_t>> NumericDate(const json::object& claims,
                                                   std::string_view key) {
  const json::value* v = Find(claims, key);
  if (v == nullptr) return std::optional<int64_t>();
  if (v->is_int64()) return std::optional<int64_t>(v->as_int64());
  if (v->is_uint64() && v->as_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    return std::optional<int64_t>(static_cast<int64_t>(v->as_uint64()));
  }
  // [-2^63, 2^63): every double in this range truncates to a representable int64.
  if (v->is_double() && std::isfinite(v->as_double()) && v->as_double() >= -0x1p63 &&
      v->as_double() < 0x1p63) {
    return std::optional<int64_t>(static_cast<int64_t>(v->as_double()));
  }
  return Denied(absl::StrCat("JWT claim ", Av(key), " is not a valid NumericDate"));
}

absl::Status CheckString(const json::object& claims, std::string_view key) {
  const json::value* v = Find(claims, key);
  if (v != nullptr && !v->is_string()) {
    return Denied(absl::StrCat("JWT claim ", Av(key), " is not a string"));
  }
  return absl::OkStatus();
}

int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) return b > 0 ? INT64_MAX : INT64_MIN;
  return r;
}

int64_t SaturatingSub(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_sub_overflow(a, b, &r)) return b < 0 ? INT64_MAX : INT64_MIN;
  return r;
}

// Absent or null: "". A value of another type is refused, naming the claim (path) only.
absl::StatusOr<std::string> StringClaim(const json::object& o, std::string_view key,
                                        std::string_view path) {
  const json::value* v = Find(o, key);
  if (v == nullptr) return std::string();
  if (!v->is_string()) return Denied(absl::StrCat("JWT claim ", Av(path), " is not a string"));
  return std::string(v->as_string());
}

// Absent or null: nullptr.
absl::StatusOr<const json::object*> ObjectClaim(const json::object& o, std::string_view key,
                                                std::string_view path) {
  const json::value* v = Find(o, key);
  if (v == nullptr) return nullptr;
  if (!v->is_object()) return Denied(absl::StrCat("JWT claim ", Av(path), " is not an object"));
  return &v->as_object();
}

}  // namespace

std::optional<std::string> Base64UrlDecode(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;  // no whole byte in the last group
  for (char c : text) {
    if (Base64UrlValue(c) < 0) return std::nullopt;  // includes '=' and whitespace
  }
  // Canonical: the bits below the last whole byte are zero, so one byte string has one spelling.
  if (!text.empty()) {
    const int last = Base64UrlValue(text.back());
    if (text.size() % 4 == 2 && (last & 0x0f) != 0) return std::nullopt;
    if (text.size() % 4 == 3 && (last & 0x03) != 0) return std::nullopt;
  }
  std::string out;
  if (!absl::WebSafeBase64Unescape(Av(text), &out)) return std::nullopt;
  return out;
}

absl::StatusOr<Jwt> Parse(std::string_view compact) {
  if (compact.empty()) return Malformed("empty token");
  if (compact.size() > kMaxTokenSize) return Malformed("token is larger than 64 KiB");
  const size_t dot1 = compact.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : compact.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || compact.find('.', dot2 + 1) != std::string_view::npos) {
    return Malformed("expected three dot-separated parts (compact JWS)");
  }
  const std::string_view header_part = compact.substr(0, dot1);
  const std::string_view payload_part = compact.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view signature_part = compact.substr(dot2 + 1);
  if (header_part.empty()) return Malformed("header is empty");
  if (payload_part.empty()) return Malformed("payload is empty");

  Jwt j;
  absl::StatusOr<json::object> header = DecodeObject(header_part, "header");
  if (!header.ok()) return header.status();
  j.header = *std::move(header);
  const json::value* alg = Find(j.header, "alg");
  if (alg == nullptr || !alg->is_string() || alg->as_string().empty()) {
    return Malformed("header has no alg string");
  }
  j.alg = std::string(alg->as_string());
  if (const json::value* kid = Find(j.header, "kid"); kid != nullptr) {
    if (!kid->is_string()) return Malformed("header kid is not a string");
    j.kid = std::string(kid->as_string());
  }

  absl::StatusOr<json::object> claims = DecodeObject(payload_part, "payload");
  if (!claims.ok()) return claims.status();
  j.claims = *std::move(claims);

  std::optional<std::string> signature = Base64UrlDecode(signature_part);
  if (!signature) return Malformed("signature is not unpadded base64url");
  j.signature = *std::move(signature);
  j.signing_input = std::string(compact.substr(0, dot2));
  return j;
}

absl::StatusOr<KeySet> KeySet::FromPem(const std::vector<std::string>& pems) {
  ClearErrorsOnExit clear_errors;
  KeySet set;
  for (size_t i = 0; i < pems.size(); ++i) {
    auto bad = [i](std::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat("pem_keys[", i, "]: ", Av(why)));
    };
    const std::string& pem = pems[i];
    if (pem.size() > INT_MAX) return bad("too large");
    BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio) return absl::InternalError("out of memory");
    size_t found = 0;
    for (;;) {
      char* name_raw = nullptr;
      char* headers_raw = nullptr;
      unsigned char* data_raw = nullptr;
      long len = 0;
      ERR_clear_error();
      const int ok = PEM_read_bio(bio.get(), &name_raw, &headers_raw, &data_raw, &len);
      OsslBuf<char> name(name_raw), headers(headers_raw);
      OsslBuf<unsigned char> data(data_raw);
      if (ok != 1) {
        // No further "-----BEGIN" line is the normal end; anything else is a broken block.
        if (ERR_GET_LIB(ERR_peek_last_error()) == ERR_LIB_PEM &&
            ERR_GET_REASON(ERR_peek_last_error()) == PEM_R_NO_START_LINE) {
          break;
        }
        return bad("PEM block does not parse");
      }
      const std::string_view type(name.get());
      const unsigned char* p = data.get();
      PkeyPtr key;
      if (type == "PUBLIC KEY") {
        key.reset(d2i_PUBKEY(nullptr, &p, len));
        if (!key || p != data.get() + len) return bad("PUBLIC KEY block is not a valid SPKI key");
      } else if (type == "CERTIFICATE") {
        X509Ptr cert(d2i_X509(nullptr, &p, len));
        if (!cert || p != data.get() + len) return bad("CERTIFICATE block does not parse");
        key.reset(X509_get_pubkey(cert.get()));
        if (!key) return bad("certificate has no usable public key");
      } else if (type.find("PRIVATE KEY") != std::string_view::npos) {
        return bad("holds a private key; pem_keys takes public keys or certificates");
      } else {
        continue;  // other block types carry no verification key
      }
      KeyType kt;
      if (EVP_PKEY_is_a(key.get(), "RSA")) {
        const int bits = EVP_PKEY_get_bits(key.get());
        if (bits < 2048) {
          return bad(absl::StrCat("RSA key of ", bits, " bits is too small (minimum 2048)"));
        }
        kt = KeyType::kRsa;
      } else if (EVP_PKEY_is_a(key.get(), "EC")) {
        switch (CurveNid(key.get())) {
          case NID_X9_62_prime256v1:
            kt = KeyType::kEcP256;
            break;
          case NID_secp384r1:
            kt = KeyType::kEcP384;
            break;
          case NID_secp521r1:
            kt = KeyType::kEcP521;
            break;
          default:
            return bad("EC key is not on P-256, P-384 or P-521");
        }
      } else {
        return bad("key is neither RSA nor EC");
      }
      set.keys_.push_back(Key{std::shared_ptr<EVP_PKEY>(key.release(), EVP_PKEY_free), kt});
      ++found;
    }
    if (found == 0) return bad("no PUBLIC KEY or CERTIFICATE block");
  }
  return set;
}

absl::Status KeySet::Verify(const Jwt& j) const {
  ClearErrorsOnExit clear_errors;
  std::optional<Algorithm> alg = SupportedAlgorithm(j.alg);
  if (!alg) return RefusedAlgorithm(j.alg);
  // RFC 7515 section 4.1.11: extensions marked critical must be understood; we support none.
  if (j.header.contains("crit")) {
    return absl::PermissionDeniedError(
        "JWT has critical header parameters, which are not supported");
  }
  if (keys_.empty()) return absl::PermissionDeniedError("no JWT verification keys are configured");

  std::string der_signature;
  KeyType want = KeyType::kRsa;
  if (!alg->rsa) {
    if (j.signature.size() != 2 * alg->coordinate_size) {
      return absl::PermissionDeniedError(
          absl::StrCat("JWT signature has the wrong length for ", Av(j.alg)));
    }
    std::optional<std::string> der = EcdsaRawToDer(j.signature);
    if (!der) return absl::InternalError("could not encode ECDSA signature");
    der_signature = *std::move(der);
    want = alg->curve_nid == NID_X9_62_prime256v1 ? KeyType::kEcP256
           : alg->curve_nid == NID_secp384r1      ? KeyType::kEcP384
                                                  : KeyType::kEcP521;
  }
  const std::string_view signature = alg->rsa ? j.signature : der_signature;

  bool any_key = false;
  for (const Key& k : keys_) {
    if (k.type != want) continue;
    any_key = true;
    if (VerifyWith(k.pkey.get(), *alg, j.signing_input, signature)) return absl::OkStatus();
  }
  if (!any_key) {
    return absl::PermissionDeniedError(absl::StrCat(
        "JWT algorithm ", Av(j.alg), " does not match the type or curve of any configured key"));
  }
  return absl::PermissionDeniedError("JWT signature did not verify with any configured key");
}

absl::Status ValidateClaims(const Jwt& j, const ClaimRules& rules) {
  const json::object& c = j.claims;
  // Registered claims have fixed types whether or not this call checks them.
  for (std::string_view key : {"iss", "sub", "jti"}) {
    absl::Status s = CheckString(c, key);
    if (!s.ok()) return s;
  }
  std::vector<std::string_view> aud;
  if (const json::value* v = Find(c, "aud"); v != nullptr) {
    if (v->is_string()) {
      aud.emplace_back(v->as_string());
    } else if (v->is_array()) {
      for (const json::value& e : v->as_array()) {
        if (!e.is_string()) return Denied("JWT claim aud is not a string or a list of strings");
        aud.emplace_back(e.as_string());
      }
    } else {
      return Denied("JWT claim aud is not a string or a list of strings");
    }
  }
  absl::StatusOr<std::optional<int64_t>> exp = NumericDate(c, "exp");
  if (!exp.ok()) return exp.status();
  absl::StatusOr<std::optional<int64_t>> nbf = NumericDate(c, "nbf");
  if (!nbf.ok()) return nbf.status();
  absl::StatusOr<std::optional<int64_t>> iat = NumericDate(c, "iat");
  if (!iat.ok()) return iat.status();

  if (!rules.issuer.empty()) {
    const json::value* iss = Find(c, "iss");
    if (iss == nullptr || std::string_view(iss->as_string()) != rules.issuer) {
      return Denied("JWT issuer does not match");
    }
  }
  if (!rules.audiences.empty()) {
    bool match = false;
    for (std::string_view a : aud) {
      for (const std::string& want : rules.audiences) match = match || a == want;
    }
    if (!match) return Denied("JWT audience does not match");
  }
  const int64_t later = SaturatingAdd(rules.now_unix, rules.leeway_seconds);
  const int64_t earlier = SaturatingSub(rules.now_unix, rules.leeway_seconds);
  if (nbf->has_value() && **nbf > later) return Denied("JWT is not valid yet");
  if (exp->has_value() && **exp <= earlier) return Denied("JWT has expired");
  if (iat->has_value() && **iat > later) return Denied("JWT was issued in the future");
  return absl::OkStatus();
}

absl::StatusOr<ServiceAccount> ServiceAccountFromClaims(const json::object& claims) {
  ServiceAccount sa;
  absl::StatusOr<const json::object*> k8s = ObjectClaim(claims, "kubernetes.io", "kubernetes.io");
  if (!k8s.ok()) return k8s.status();
  // Projected tokens win when both forms are present, as in Vault's Kubernetes auth method.
  if (*k8s != nullptr) {
    const json::object& k = **k8s;
    absl::StatusOr<std::string> ns = StringClaim(k, "namespace", "kubernetes.io.namespace");
    if (!ns.ok()) return ns.status();
    sa.namespace_ = *std::move(ns);
    absl::StatusOr<const json::object*> acct =
        ObjectClaim(k, "serviceaccount", "kubernetes.io.serviceaccount");
    if (!acct.ok()) return acct.status();
    if (*acct != nullptr) {
      absl::StatusOr<std::string> name =
          StringClaim(**acct, "name", "kubernetes.io.serviceaccount.name");
      if (!name.ok()) return name.status();
      sa.name = *std::move(name);
      absl::StatusOr<std::string> uid =
          StringClaim(**acct, "uid", "kubernetes.io.serviceaccount.uid");
      if (!uid.ok()) return uid.status();
      sa.uid = *std::move(uid);
    }
    absl::StatusOr<const json::object*> pod = ObjectClaim(k, "pod", "kubernetes.io.pod");
    if (!pod.ok()) return pod.status();
    if (*pod != nullptr) {
      absl::StatusOr<std::string> name = StringClaim(**pod, "name", "kubernetes.io.pod.name");
      if (!name.ok()) return name.status();
      sa.pod_name = *std::move(name);
    }
  } else {
    struct {
      std::string_view claim;
      std::string* out;
    } const legacy[] = {
        {"kubernetes.io/serviceaccount/namespace", &sa.namespace_},
        {"kubernetes.io/serviceaccount/service-account.name", &sa.name},
        {"kubernetes.io/serviceaccount/service-account.uid", &sa.uid},
        {"kubernetes.io/serviceaccount/secret.name", &sa.secret_name},
    };
    for (const auto& [claim, out] : legacy) {
      absl::StatusOr<std::string> v = StringClaim(claims, claim, claim);
      if (!v.ok()) return v.status();
      *out = *std::move(v);
    }
  }
  if (sa.namespace_.empty() || sa.name.empty() || sa.uid.empty()) {
    return Denied(
        "JWT has no Kubernetes service account claims (namespace, name and uid are required)");
  }
  absl::StatusOr<std::string> sub = StringClaim(claims, "sub", "sub");
  if (!sub.ok()) return sub.status();
  const json::value* sub_value = Find(claims, "sub");
  if (sub_value != nullptr &&
      *sub != absl::StrCat("system:serviceaccount:", sa.namespace_, ":", sa.name)) {
    return Denied("JWT subject does not match its service account claims");
  }
  return sa;
}

}  // namespace strongroom::engines::jwt
