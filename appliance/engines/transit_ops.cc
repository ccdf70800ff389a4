#include "appliance/engines/transit_ops.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <optional>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "appliance/core/core.h"
#include "audit/keys.h"
#include "base/log.h"
#include "base/status_macros.h"

namespace strongroom::engines::transit {
namespace {

using core::Bad;
using core::Operation;
using core::Request;
using core::Response;
using core::json::array;
using core::json::object;

constexpr uint64_t kReserveBlock = 65536;  // nonce budget reserved durably at a time

// A request that found the key just before it was deleted.
constexpr std::string_view kKeyGone = "encryption key not found";
constexpr std::string_view kAuthFailed = "cipher: message authentication failed";
constexpr std::string_view kTooOld =
    "ciphertext or signature version is disallowed by policy (too old)";
// Vault encrypts with RSA keys using RSA-OAEP with SHA-256. The private key may not leave the
// token to decrypt elsewhere, so where the token cannot do OAEP with SHA-256 (SoftHSM2 2.6.1
// does it with SHA-1 only) RSA keys sign and verify only.
constexpr std::string_view kNoRsaEncryption =
    "rsa keys sign and verify only here: Vault's RSA encryption (RSA-OAEP with SHA-256) has to "
    "run inside the PKCS#11 token, and ";

// The token's errors are ours, not the client's: all but the verdicts on the client's own input
// (a ciphertext that does not authenticate or decrypt, a plaintext too long for RSA-OAEP) become
// an internal error (500; the detail stays in the broker log).
absl::Status FromToken(const absl::Status& s) {
  if (s.ok()) return s;
  if (absl::IsInvalidArgument(s)) {
    for (std::string_view verdict : {kAuthFailed, std::string_view("RSA-OAEP decryption failed"),
                                     std::string_view("plaintext too long for RSA-OAEP")}) {
      if (absl::StartsWith(s.message(), Av(verdict))) return s;
    }
  }
  return absl::InternalError(absl::StrCat("PKCS#11: ", s.message()));
}

std::string Versioned(int64_t version, std::string_view raw, bool url_safe = false) {
  return absl::StrCat(kVersionPrefix, version, ":",
                      url_safe ? absl::WebSafeBase64Escape(Av(raw)) : absl::Base64Escape(Av(raw)));
}

}  // namespace

absl::StatusOr<int64_t> Operations::PickVersion(const Key& k, int64_t key_version,
                                                std::string_view what) {
  if (k.latest_version == 0) return Bad(kKeyGone);
  const int64_t version = key_version == 0 ? k.latest_version : key_version;
  if (version < 0) return Bad(absl::StrCat("requested version for ", Av(what), " is negative"));
  if (version > k.latest_version) return Bad("invalid key version");
  if (version < k.min_encryption_version) {
    return Bad(absl::StrCat("requested version for ", Av(what),
                            " is less than the minimum encryption key version"));
  }
  if (version < k.min_available_version || k.versions.count(version) == 0) {
    return Bad("invalid key version");
  }
  return version;
}

absl::StatusOr<std::pair<std::string, int64_t>> Operations::EncryptOne(Request& req, Key& k,
                                                                       std::string_view plaintext,
                                                                       std::string_view aad,
                                                                       int64_t key_version) {
  const KeyType* kt = FindKeyType(k.type);
  if (kt == nullptr || (kt->kind != CKK_AES && kt->kind != CKK_RSA)) {
    return Bad(absl::StrCat("key type ", k.type, " does not support encryption"));
  }
  ASSIGN_OR_RETURN(hsm::Token * token, store_->Token());
  if (kt->kind == CKK_RSA) {
    if (!aad.empty()) {
      return Bad(absl::StrCat("associated_data is not supported for key type ", k.type));
    }
    std::string spki;
    int64_t version = 0;
    {
      std::lock_guard<std::mutex> lock(k.mu);
      ASSIGN_OR_RETURN(version, PickVersion(k, key_version, "encryption"));
      spki = k.versions[version].public_key;
    }
    auto ct = token->RsaOaepEncrypt(spki, CKM_SHA256, Bytes(plaintext));
    if (absl::IsUnimplemented(ct.status())) {
      store_->NoteRsaOaepSha256(false);
      return Bad(absl::StrCat(Av(kNoRsaEncryption), ct.status().message()));
    }
    RETURN_IF_ERROR(FromToken(ct.status()));
    store_->NoteRsaOaepSha256(true);
    return std::make_pair(Versioned(version, Str(*ct)), version);
  }

  std::shared_ptr<TokenKey> key;  // keeps the object alive while the token uses it
  int64_t version = 0;
  {
    std::lock_guard<std::mutex> lock(k.mu);
    ASSIGN_OR_RETURN(version, PickVersion(k, key_version, "encryption"));
    const uint64_t limit = core_->options().transit_max_encryptions;
    if (k.versions[version].used >= limit) {
      if (key_version != 0) {
        return Bad(
            "this key version has reached its encryption limit (random 96-bit nonces); "
            "encrypt with the latest version");
      }
      // Rotate before the bound: a fresh version starts a fresh nonce budget.
      RETURN_IF_ERROR(store_->RotateLocked(*req.storage, k, nullptr));
      LogInfo("transit: key %s rotated to version %d: the previous version reached %d encryptions",
              k.name, static_cast<int>(k.latest_version), static_cast<int>(limit));
      version = k.latest_version;
    }
    Version& v = k.versions[version];
    if (v.used >= v.reserved) {
      const uint64_t before = v.reserved;
      v.reserved = std::min(limit, v.reserved + kReserveBlock);
      if (absl::Status s = store_->Save(*req.storage, k); !s.ok()) {
        v.reserved = before;
        return s;
      }
    }
    ++v.used;
    ASSIGN_OR_RETURN(key, store_->Handle(k, version, v, /*hmac=*/false));
  }
  uint8_t nonce[kNonceBytes];
  RETURN_IF_ERROR(NextNonce(nonce));
  const std::string bound = BoundAad(k.name, version, aad);
  auto ct = token->AesGcmEncrypt(key->handle(), nonce, Bytes(bound), Bytes(plaintext));
  RETURN_IF_ERROR(FromToken(ct.status()));
  std::string raw(reinterpret_cast<const char*>(nonce), sizeof nonce);
  raw.append(reinterpret_cast<const char*>(ct->data()), ct->size());
  return std::make_pair(Versioned(version, raw), version);
}

absl::StatusOr<std::string> Operations::DecryptOne(Key& k, std::string_view ciphertext,
                                                   std::string_view aad) {
  const KeyType* kt = FindKeyType(k.type);
  if (kt == nullptr || (kt->kind != CKK_AES && kt->kind != CKK_RSA)) {
    return Bad(absl::StrCat("key type ", k.type, " does not support decryption"));
  }
  if (kt->kind == CKK_RSA && !aad.empty()) {
    return Bad(absl::StrCat("associated_data is not supported for key type ", k.type));
  }
  ASSIGN_OR_RETURN(auto parsed, ParseVersioned(ciphertext, "ciphertext"));
  auto& [version, raw] = parsed;
  std::shared_ptr<TokenKey> key;  // keeps the object alive while the token uses it
  {
    std::lock_guard<std::mutex> lock(k.mu);
    if (k.latest_version == 0) return Bad(kKeyGone);
    if (version > k.latest_version) return Bad("invalid ciphertext: version is too new");
    if (version < k.min_decryption_version || k.versions.count(version) == 0) return Bad(kTooOld);
    ASSIGN_OR_RETURN(key, store_->Handle(k, version, k.versions[version], /*hmac=*/false));
  }
  ASSIGN_OR_RETURN(hsm::Token * token, store_->Token());
  if (kt->kind == CKK_RSA) {
    auto plain = token->RsaOaepDecrypt(key->handle(), CKM_SHA256, Bytes(raw));
    if (absl::IsUnimplemented(plain.status())) {
      store_->NoteRsaOaepSha256(false);
      return Bad(absl::StrCat(Av(kNoRsaEncryption), plain.status().message()));
    }
    RETURN_IF_ERROR(FromToken(plain.status()));
    return Str(*plain);
  }
  if (raw.size() < kNonceBytes + 16) return Bad("invalid ciphertext: ciphertext too short");
  const std::string bound = BoundAad(k.name, version, aad);
  auto plain =
      token->AesGcmDecrypt(key->handle(), Bytes(std::string_view(raw).substr(0, kNonceBytes)),
                           Bytes(bound), Bytes(std::string_view(raw).substr(kNonceBytes)));
  RETURN_IF_ERROR(FromToken(plain.status()));
  return Str(*plain);
}

absl::StatusOr<std::string> Operations::HmacOne(Key& k, std::string_view input,
                                                std::string_view alg, int64_t key_version,
                                                bool verifying, int64_t* used_version) {
  const std::string name = alg.empty() ? std::string("sha2-256") : std::string(alg);
  const HashAlg* h = FindHash(name);
  if (h == nullptr) return Bad(absl::StrCat("unsupported algorithm ", name));
  ASSIGN_OR_RETURN(hsm::Token * token, store_->Token());
  if (!token->HasMechanism(h->hmac, CKF_SIGN)) {
    return Bad(absl::StrCat("HMAC with ", name,
                            " is not available: this PKCS#11 token has no mechanism for it",
                            IsSha3(*h) ? " (SoftHSM2 2.6 has no SHA-3)" : "",
                            ", and Transit keys are used only inside the token"));
  }
  if (k.type == "hmac" && k.key_size < h->size) {
    return Bad(absl::StrCat("key_size ", k.key_size, " is too small for ", name,
                            " in the token; it needs a key of at least ", h->size, " bytes"));
  }
  std::shared_ptr<TokenKey> key;  // keeps the object alive while the token uses it
  {
    std::lock_guard<std::mutex> lock(k.mu);
    int64_t version = key_version == 0 && !verifying ? k.latest_version : key_version;
    if (verifying) {
      if (version > k.latest_version) return Bad("invalid HMAC: version is too new");
      if (version < k.min_decryption_version) {
        return Bad("cannot verify HMAC: version is too old (disallowed by policy)");
      }
    } else {
      if (version < 0) return Bad("key version does not exist (cannot be negative)");
      if (version > k.latest_version) {
        return Bad(
            absl::StrCat("key version does not exist; latest key version is ", k.latest_version));
      }
      if (version != k.latest_version && k.min_encryption_version > 0 &&
          version < k.min_encryption_version) {
        return Bad("cannot generate HMAC: version is too old (disallowed by policy)");
      }
    }
    if (k.versions.count(version) == 0) return Bad("invalid key version");
    *used_version = version;
    ASSIGN_OR_RETURN(key, store_->Handle(k, version, k.versions[version], /*hmac=*/true));
  }
  auto mac = token->Hmac(key->handle(), h->hmac, Bytes(input));
  if (absl::IsUnimplemented(mac.status())) {
    return Bad(absl::StrCat("HMAC with ", name, " is not available in this PKCS#11 token (",
                            mac.status().message(), ")"));
  }
  RETURN_IF_ERROR(FromToken(mac.status()));
  return Str(*mac);
}

absl::StatusOr<std::pair<std::string, int64_t>> Operations::SignOne(Key& k, std::string_view input,
                                                                    const SignOptions& opts,
                                                                    int64_t key_version) {
  const KeyType* kt = FindKeyType(k.type);
  if (kt == nullptr || !IsAsymmetric(*kt)) {
    return Bad(absl::StrCat("key type ", k.type, " does not support signing"));
  }
  if (kt->kind == CKK_EC_EDWARDS && opts.prehashed) {
    return Bad("prehashed is not supported for ed25519 keys: Ed25519 signs the input itself");
  }
  std::shared_ptr<TokenKey> key;  // keeps the object alive while the token uses it
  int64_t version = 0;
  size_t modulus_bytes = 0;
  {
    std::lock_guard<std::mutex> lock(k.mu);
    version = key_version == 0 ? k.latest_version : key_version;
    if (version < 0) return Bad("requested version for signing is negative");
    if (version > k.latest_version) {
      return Bad("requested version for signing is higher than the latest key version");
    }
    if (k.min_encryption_version > 0 && version < k.min_encryption_version) {
      return Bad("requested version for signing is less than the minimum encryption key version");
    }
    if (k.versions.count(version) == 0) return Bad("invalid key version");
    Version& v = k.versions[version];
    if (kt->kind == CKK_RSA) {
      ASSIGN_OR_RETURN(modulus_bytes, RsaModulusBytes(v.public_key));
    }
    ASSIGN_OR_RETURN(key, store_->Handle(k, version, v, /*hmac=*/false));
  }
  ASSIGN_OR_RETURN(hsm::Token * token, store_->Token());
  CK_MECHANISM_TYPE mech = CKM_EDDSA;
  std::optional<CK_RSA_PKCS_PSS_PARAMS> pss;
  std::string data;
  if (kt->kind == CKK_EC_EDWARDS) {
    data = std::string(input);  // Ed25519 signs the message; hash_algorithm does not apply
  } else if (opts.hash == nullptr) {
    data = std::string(input);  // "none": prehashed, pkcs1v15 (ReadSignOptions checked)
  } else {
    ASSIGN_OR_RETURN(data, DigestFor(*opts.hash, input, opts.prehashed));
  }
  if (kt->kind == CKK_EC) {
    mech = CKM_ECDSA;
  } else if (kt->kind == CKK_RSA && opts.signature_algorithm == "pss") {
    ASSIGN_OR_RETURN(int salt, PssSaltLength(opts.salt_length, *opts.hash, modulus_bytes, false));
    mech = CKM_RSA_PKCS_PSS;
    pss.emplace();
    pss->hash_alg = opts.hash->digest;
    pss->mgf = opts.hash->mgf;
    pss->s_len = static_cast<unsigned long>(salt);
  } else if (kt->kind == CKK_RSA) {
    mech = CKM_RSA_PKCS;
    if (opts.hash != nullptr) data = absl::StrCat(Av(opts.hash->digest_info), data);
  }
  auto raw = token->SignWith(key->handle(), mech, pss ? &*pss : nullptr, Bytes(data));
  if (absl::IsUnimplemented(raw.status())) {
    if (pss) {
      return Bad(absl::StrCat("RSA-PSS signatures with ", opts.hash_name,
                              " are not available: they have to be made inside the PKCS#11 token, "
                              "and ",
                              raw.status().message(), "; pkcs1v15 signatures with ", opts.hash_name,
                              " are"));
    }
    return Bad(absl::StrCat("signing with ", k.type,
                            " is not available: it has to be done inside the PKCS#11 token, and ",
                            raw.status().message()));
  }
  RETURN_IF_ERROR(FromToken(raw.status()));
  std::string sig = Str(*raw);
  if (kt->kind == CKK_EC && !opts.jws) {
    auto der = audit::EcdsaRawToDer(sig);  // the token gives r || s; Vault's asn1 is DER
    if (!der.ok()) return absl::InternalError(der.message());
    sig = *der;
  }
  return std::make_pair(Versioned(version, sig, opts.jws), version);
}

absl::StatusOr<bool> Operations::VerifyOne(Key& k, std::string_view input,
                                           std::string_view signature, const SignOptions& opts) {
  const KeyType* kt = FindKeyType(k.type);
  if (kt == nullptr || !IsAsymmetric(*kt)) {
    return Bad(absl::StrCat("key type ", k.type, " does not support verification"));
  }
  if (kt->kind == CKK_EC_EDWARDS && opts.prehashed) {
    return Bad("prehashed is not supported for ed25519 keys: Ed25519 signs the input itself");
  }
  ASSIGN_OR_RETURN(auto parsed, ParseVersioned(signature, "signature", opts.jws));
  auto& [version, sig] = parsed;
  std::string spki;
  {
    std::lock_guard<std::mutex> lock(k.mu);
    if (version > k.latest_version) return Bad("invalid signature: version is too new");
    if (version < k.min_decryption_version || k.versions.count(version) == 0) return Bad(kTooOld);
    spki = k.versions[version].public_key;
  }
  return VerifyWithPublicKey(*kt, spki, input, std::move(sig), opts);
}

absl::StatusOr<object> Operations::Item(Request& req, Key& k, Op op, const object& in,
                                        std::string_view url_alg) {
  ASSIGN_OR_RETURN(auto kv, core::GetInt(in, "key_version"));
  const int64_t key_version = kv.value_or(0);
  ASSIGN_OR_RETURN(std::string aad, DecodeB64(in, "associated_data", false, ""));
  object out;
  switch (op) {
    case Op::kEncrypt: {
      ASSIGN_OR_RETURN(std::string pt,
                       DecodeB64(in, "plaintext", true, "missing plaintext to encrypt"));
      ASSIGN_OR_RETURN(auto ct, EncryptOne(req, k, pt, aad, key_version));
      out["ciphertext"] = ct.first;
      out["key_version"] = ct.second;
      return out;
    }
    case Op::kDecrypt: {
      ASSIGN_OR_RETURN(auto ct, core::GetString(in, "ciphertext"));
      if (!ct || ct->empty()) return Bad("missing ciphertext to decrypt");
      ASSIGN_OR_RETURN(std::string pt, DecryptOne(k, *ct, aad));
      out["plaintext"] = absl::Base64Escape(pt);
      OPENSSL_cleanse(pt.data(), pt.size());
      return out;
    }
    case Op::kRewrap: {
      ASSIGN_OR_RETURN(auto ct, core::GetString(in, "ciphertext"));
      if (!ct || ct->empty()) return Bad("missing ciphertext to rewrap");
      ASSIGN_OR_RETURN(std::string pt, DecryptOne(k, *ct, aad));
      auto next = EncryptOne(req, k, pt, aad, key_version);
      OPENSSL_cleanse(pt.data(), pt.size());
      if (!next.ok()) return next.status();
      out["ciphertext"] = next->first;
      out["key_version"] = next->second;
      return out;
    }
    case Op::kHmac:
    case Op::kVerify: {
      // Options are the request's (as in Vault), not the batch item's.
      ASSIGN_OR_RETURN(auto alg_field, core::GetString(req.data, "algorithm"));
      const std::string alg(url_alg.empty() ? alg_field.value_or("") : std::string(url_alg));
      if (op == Op::kHmac) {
        ASSIGN_OR_RETURN(std::string input, DecodeB64(in, "input", true, "missing input for HMAC"));
        int64_t used = 0;
        ASSIGN_OR_RETURN(std::string mac, HmacOne(k, input, alg, key_version, false, &used));
        out["hmac"] = Versioned(used, mac);
        out["key_version"] = used;
        return out;
      }
      ASSIGN_OR_RETURN(auto given, core::GetString(in, "hmac"));
      ASSIGN_OR_RETURN(auto sig, core::GetString(in, "signature"));
      if (sig && given) return Bad("provide one of 'signature' or 'hmac'");
      if (!sig && !given) return Bad("neither a 'signature' nor an 'hmac' were given to verify");
      ASSIGN_OR_RETURN(std::string input, DecodeB64(in, "input", true, "missing input"));
      if (sig) {
        ASSIGN_OR_RETURN(SignOptions opts, ReadSignOptions(req.data, url_alg));
        ASSIGN_OR_RETURN(bool valid, VerifyOne(k, input, *sig, opts));
        out["valid"] = valid;
        return out;
      }
      ASSIGN_OR_RETURN(auto parsed, ParseVersioned(*given, "HMAC"));
      int64_t used = 0;
      ASSIGN_OR_RETURN(std::string mac, HmacOne(k, input, alg, parsed.first, true, &used));
      out["valid"] = mac.size() == parsed.second.size() &&
                     CRYPTO_memcmp(mac.data(), parsed.second.data(), mac.size()) == 0;
      return out;
    }
    case Op::kSign: {
      ASSIGN_OR_RETURN(std::string input, DecodeB64(in, "input", true, "missing input to sign"));
      ASSIGN_OR_RETURN(SignOptions opts, ReadSignOptions(req.data, url_alg));
      ASSIGN_OR_RETURN(auto signed_, SignOne(k, input, opts, key_version));
      out["signature"] = signed_.first;
      out["key_version"] = signed_.second;
      return out;
    }
  }
  return absl::InternalError("unreachable");
}

absl::StatusOr<Response> Operations::Batch(Request& req, const std::string& rest, Op op,
                                           const CreateFn& create) {
  std::vector<std::string> parts = absl::StrSplit(rest, '/');
  if (parts.empty() || parts.size() > 2 || parts[0].empty()) return absl::NotFoundError("");
  if (parts.size() == 2 && op != Op::kHmac && op != Op::kVerify && op != Op::kSign) {
    return absl::NotFoundError("");
  }
  const std::string& name = parts[0];
  const std::string url_alg = parts.size() == 2 ? parts[1] : "";
  if (name.empty() || name.find('/') != std::string::npos) return Bad("invalid key name");
  if (op == Op::kSign) {
    // Request-wide options: a bad one fails the request, not each item.
    RETURN_IF_ERROR(ReadSignOptions(req.data, url_alg).status());
  }
  ASSIGN_OR_RETURN(auto k, store_->Find(*req.storage, name));
  if (!k) {
    if (op == Op::kEncrypt && req.operation == Operation::kCreate) {
      ASSIGN_OR_RETURN(k, create(req, name));  // Vault's upsert, with the create capability
    } else if (op == Op::kSign) {
      return Bad("signing key not found");
    } else if (op == Op::kVerify && !req.data.contains("hmac")) {
      return Bad("signature verification key not found");
    } else {
      return Bad("encryption key not found");
    }
  }
  const auto* batch = req.data.if_contains("batch_input");
  if (batch == nullptr || batch->is_null()) {
    ASSIGN_OR_RETURN(object out, Item(req, *k, op, req.data, url_alg));
    return Response::Data(std::move(out));
  }
  if (!batch->is_array()) return Bad("batch_input must be an array of objects");
  if (batch->as_array().empty()) return Bad("missing batch input to process");
  ASSIGN_OR_RETURN(auto partial, core::GetInt(req.data, "partial_failure_response_code"));
  array results;
  bool any_error = false, any_ok = false, only_internal = true;
  for (const auto& item : batch->as_array()) {
    object result;
    absl::StatusOr<object> r = item.is_object()
                                   ? Item(req, *k, op, item.as_object(), url_alg)
                                   : absl::StatusOr<object>(Bad("batch item is not an object"));
    if (r.ok()) {
      result = std::move(*r);
      any_ok = true;
    } else {
      any_error = true;
      const bool internal = r.status().code() != absl::StatusCode::kInvalidArgument &&
                            r.status().code() != absl::StatusCode::kFailedPrecondition;
      if (!internal) only_internal = false;
      result["error"] = internal ? "internal error" : std::string(r.status().message());
      if (internal) LogError("transit batch item failed: %s", r.status().message());
    }
    if (item.is_object()) {
      if (const auto* ref = item.as_object().if_contains("reference"); ref && ref->is_string()) {
        result["reference"] = ref->as_string();
      }
    }
    results.emplace_back(std::move(result));
  }
  object d;
  d["batch_results"] = std::move(results);
  Response resp = Response::Data(std::move(d));
  if (any_error) {
    resp.http_status = only_internal ? 500 : 400;
    if (any_ok && partial && *partial >= 200 && *partial < 600) {
      resp.http_status = static_cast<int>(*partial);
    }
  }
  return resp;
}

absl::StatusOr<Response> Operations::Datakey(Request& req, const std::string& rest) {
  std::vector<std::string> parts = absl::StrSplit(rest, '/');
  if (parts.size() != 2) return absl::NotFoundError("");
  const std::string& kind = parts[0];
  if (kind != "plaintext" && kind != "wrapped") {
    return Bad("invalid type: must be \"plaintext\" or \"wrapped\"");
  }
  if (parts[1].empty()) return Bad("invalid key name");
  ASSIGN_OR_RETURN(auto k, store_->Find(*req.storage, parts[1]));
  if (!k) return Bad("encryption key not found");
  ASSIGN_OR_RETURN(auto bits, core::GetInt(req.data, "bits"));
  const int64_t b = bits.value_or(256);
  if (b != 128 && b != 256 && b != 512) return Bad("invalid bits: must be 128, 256 or 512");
  ASSIGN_OR_RETURN(std::string aad, DecodeB64(req.data, "associated_data", false, ""));
  ASSIGN_OR_RETURN(auto kv, core::GetInt(req.data, "key_version"));
  std::string dk(static_cast<size_t>(b / 8), '\0');
  if (RAND_bytes(reinterpret_cast<uint8_t*>(dk.data()), static_cast<int>(dk.size())) != 1) {
    return absl::InternalError("random generator failed");
  }
  auto ct = EncryptOne(req, *k, dk, aad, kv.value_or(0));
  if (!ct.ok()) {
    OPENSSL_cleanse(dk.data(), dk.size());
    return ct.status();
  }
  object d;
  d["ciphertext"] = ct->first;
  d["key_version"] = ct->second;
  if (kind == "plaintext") d["plaintext"] = absl::Base64Escape(dk);
  OPENSSL_cleanse(dk.data(), dk.size());
  return Response::Data(std::move(d));
}

}  // namespace strongroom::engines::transit
