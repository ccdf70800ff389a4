// The Transit engine's routes and key lifecycle (create, read, list, delete, config, rotate,
// trim, cache-config, auto-rotation), random and hash. The key model is transit_keys.h, the
// keys' custody transit_store.h, the operations that use a key transit_ops.h.
#include "appliance/engines/transit_backend.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "appliance/core/core.h"
#include "appliance/engines/routes.h"
#include "appliance/engines/transit_crypto.h"
#include "appliance/engines/transit_keys.h"
#include "appliance/engines/transit_ops.h"
#include "appliance/engines/transit_store.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "hsm/token.h"

namespace strongroom::engines {
namespace {

using core::Bad;
using core::Operation;
using core::Request;
using core::Response;
using core::json::array;
using core::json::object;
using transit::Av;
using transit::DecodeB64;
using transit::FindHash;
using transit::FindKeyType;
using transit::HashAlg;
using transit::Key;
using transit::KeyFromJson;
using transit::KeyObject;
using transit::KeyStore;
using transit::KeyType;
using transit::kKeyPrefix;
using transit::Operations;
using transit::Version;

constexpr int64_t kMaxRandomBytes = 128 * 1024;
// Vault's key names are words; ours are bounded so a name fits a token object's label and a
// storage key comfortably.
constexpr size_t kMaxKeyNameBytes = 256;
// How often Periodic reads every stored key for auto-rotation (cached keys: every call), and
// how often it looks for token objects nothing refers to any more.
constexpr absl::Duration kScanEvery = absl::Seconds(60);
constexpr absl::Duration kSweepEvery = absl::Hours(1);

absl::Status ValidName(const std::string& name) {
  if (name.empty() || name.size() > kMaxKeyNameBytes || absl::StrContains(name, "/")) {
    return Bad("invalid key name");
  }
  return absl::OkStatus();
}

class TransitBackend final : public core::Backend {
 public:
  TransitBackend(core::Core* core, const core::MountEntry& entry)
      : core_(core), store_(core, entry.uuid), ops_(core, &store_) {}

  std::span<const core::Route> Routes() const override { return TransitRoutes(); }

  absl::StatusOr<bool> Exists(const Request& req) override {
    const std::string& p = req.rel_path;
    for (const char* prefix : {"keys/", "encrypt/"}) {
      if (absl::StartsWith(p, prefix)) {
        const std::string name = p.substr(std::string_view(prefix).size());
        if (name.empty() || absl::StrContains(name, "/") || !ValidName(name).ok()) return true;
        ASSIGN_OR_RETURN(auto k, store_.Find(*req.storage, name));
        return k != nullptr;
      }
    }
    return true;
  }

  absl::StatusOr<Response> Handle(Request& req) override {
    const std::string& p = req.rel_path;
    const bool write = core::IsWrite(req);
    if (p == "keys" || p == "keys/") {
      if (req.operation != Operation::kList) return core::UnsupportedOperation();
      return ListKeys(req);
    }
    if (absl::StartsWith(p, "keys/")) {
      std::vector<std::string> parts = absl::StrSplit(p.substr(5), '/');
      if (parts.size() == 1) return OneKey(req, parts[0]);
      if (parts.size() == 2 && write) {
        if (parts[1] == "config") return Config(req, parts[0]);
        if (parts[1] == "rotate") return RotateEndpoint(req, parts[0]);
        if (parts[1] == "trim") return Trim(req, parts[0]);
      }
      return absl::NotFoundError("");
    }
    if (p == "cache-config") return CacheConfig(req);
    if (absl::StartsWith(p, "export/") || absl::StartsWith(p, "backup/") ||
        absl::StartsWith(p, "restore")) {
      return Bad(
          "exporting or backing up keys is not supported: Transit keys never leave the PKCS#11 "
          "token");
    }
    if (!write && !absl::StartsWith(p, "random") && !absl::StartsWith(p, "hash")) {
      return core::UnsupportedOperation();
    }
    auto rest = [&](std::string_view prefix) { return p.substr(prefix.size()); };
    using Op = Operations::Op;
    const Operations::CreateFn create = [this](Request& r, const std::string& name) {
      bool existed = false;
      std::vector<std::string> warnings;
      return Create(r, name, r.data, &existed, &warnings);
    };
    if (absl::StartsWith(p, "encrypt/"))
      return ops_.Batch(req, rest("encrypt/"), Op::kEncrypt, create);
    if (absl::StartsWith(p, "decrypt/"))
      return ops_.Batch(req, rest("decrypt/"), Op::kDecrypt, create);
    if (absl::StartsWith(p, "rewrap/"))
      return ops_.Batch(req, rest("rewrap/"), Op::kRewrap, create);
    if (absl::StartsWith(p, "hmac/")) return ops_.Batch(req, rest("hmac/"), Op::kHmac, create);
    if (absl::StartsWith(p, "verify/"))
      return ops_.Batch(req, rest("verify/"), Op::kVerify, create);
    if (absl::StartsWith(p, "sign/")) return ops_.Batch(req, rest("sign/"), Op::kSign, create);
    if (absl::StartsWith(p, "datakey/")) return ops_.Datakey(req, rest("datakey/"));
    if (p == "random" || absl::StartsWith(p, "random/")) return Random(req);
    if (p == "hash" || absl::StartsWith(p, "hash/")) return Hash(req);
    return absl::NotFoundError("");
  }

  void Periodic(storage::Storage& storage, absl::Time now) override {
    // Keys in the cache are checked on every call; every stored key once a minute (the cache
    // may hold only some of them).
    std::vector<std::shared_ptr<Key>> due;
    for (auto& k : store_.Cached()) {
      std::lock_guard<std::mutex> lock(k->mu);
      if (Due(*k, now)) due.push_back(k);
    }
    if (now >= next_scan_) {
      next_scan_ = now + kScanEvery;
      auto names = storage.List(kKeyPrefix);
      if (names.ok()) {
        for (const auto& n : *names) {
          auto raw = storage.Get(kKeyPrefix + n);
          if (!raw.ok() || !raw->has_value()) continue;
          auto k = KeyFromJson(**raw);
          if (!k.ok() || !Due(**k, now)) continue;
          auto cached = store_.Find(storage, n);
          if (cached.ok() && *cached) due.push_back(*cached);
        }
      }
    }
    for (auto& k : due) {
      std::lock_guard<std::mutex> lock(k->mu);
      if (!Due(*k, now)) continue;  // rotated meanwhile (or found twice)
      if (absl::Status s = store_.RotateLocked(storage, *k, nullptr); !s.ok()) {
        LogError("transit: auto-rotation of key %s failed: %s", k->name, s.message());
      } else {
        LogInfo("transit: key %s auto-rotated to version %d", k->name,
                static_cast<int>(k->latest_version));
      }
    }
    if (now >= next_sweep_) {
      next_sweep_ = now + kSweepEvery;
      store_.Sweep(storage);
    }
  }

  void Unmounting(storage::Storage& storage) override { store_.Unmounting(storage); }

 private:
  static bool Due(const Key& k, absl::Time now) {
    return k.auto_rotate_period > 0 && k.latest_version > 0 &&
           absl::ToUnixSeconds(now) - k.last_rotated >= k.auto_rotate_period;
  }

  object KeyData(const Key& k) {
    bool rsa_encryption = false;
    if (const KeyType* t = FindKeyType(k.type); t != nullptr && t->kind == CKK_RSA) {
      auto latest = k.versions.find(k.latest_version);
      rsa_encryption =
          latest != k.versions.end() && store_.RsaOaepSha256(latest->second.public_key);
    }
    return KeyObject(k, rsa_encryption);
  }

  absl::StatusOr<std::shared_ptr<Key>> Create(Request& req, const std::string& name,
                                              const object& params, bool* existed,
                                              std::vector<std::string>* warnings) {
    RETURN_IF_ERROR(ValidName(name));
    ASSIGN_OR_RETURN(auto type, core::GetString(params, "type"));
    const std::string t = type.value_or("aes256-gcm96");
    const KeyType* kt = FindKeyType(t);
    if (kt == nullptr) {
      static constexpr std::string_view kLater[] = {"chacha20-poly1305", "xchacha20-poly1305"};
      for (auto l : kLater) {
        if (t == l) {
          return Bad(absl::StrCat("key type ", t,
                                  " is not supported by this strongroom version (supported: ",
                                  Av(transit::kSupportedTypes), ")"));
        }
      }
      return Bad(absl::StrCat("unknown key type ", t));
    }
    for (const char* refused : {"derived", "convergent_encryption"}) {
      ASSIGN_OR_RETURN(auto b, core::GetBool(params, refused));
      if (b.value_or(false)) {
        return Bad(absl::StrCat(refused,
                                " keys are not supported: key derivation would need the key value "
                                "outside the PKCS#11 token"));
      }
    }
    for (const char* refused : {"exportable", "allow_plaintext_backup"}) {
      ASSIGN_OR_RETURN(auto b, core::GetBool(params, refused));
      if (b.value_or(false)) {
        return Bad(absl::StrCat(refused, " is not supported: Transit keys never leave the token"));
      }
    }
    ASSIGN_OR_RETURN(auto period, core::GetDurationSeconds(params, "auto_rotate_period"));
    RETURN_IF_ERROR(CheckRotatePeriod(period.value_or(0)));
    ASSIGN_OR_RETURN(auto ks, core::GetInt(params, "key_size"));
    size_t key_size = 0;
    if (ks && *ks != 0) {
      if (t != "hmac") return Bad(absl::StrCat("key_size is not valid for algorithm ", t));
      if (*ks < transit::kMinHmacKeySize || *ks > transit::kMaxHmacKeySize) {
        return Bad(absl::StrCat("invalid key_size ", *ks));
      }
      key_size = static_cast<size_t>(*ks);
    } else if (t == "hmac") {
      key_size = transit::kDefaultHmacKeySize;
    }
    std::lock_guard<std::mutex> create_lock(store_.create_mu());
    ASSIGN_OR_RETURN(auto existing, store_.Find(*req.storage, name));
    if (existing) {
      *existed = true;
      return existing;
    }
    auto k = std::make_shared<Key>();
    k->name = name;
    k->type = t;
    k->auto_rotate_period = period.value_or(0);
    k->key_size = key_size;
    {
      std::lock_guard<std::mutex> lock(k->mu);
      RETURN_IF_ERROR(store_.RotateLocked(*req.storage, *k, warnings));
    }
    store_.Insert(k);
    return k;
  }

  absl::Status CheckRotatePeriod(int64_t period) const {
    const int64_t min = core_->options().transit_min_auto_rotate_period;
    if (period != 0 && (period < min || period < 0)) {
      return Bad("auto rotate period must be 0 to disable or at least an hour");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<Response> ListKeys(Request& req) {
    ASSIGN_OR_RETURN(auto names, req.storage->List(kKeyPrefix));
    if (names.empty()) return absl::NotFoundError("");
    array keys;
    for (const auto& n : names) keys.emplace_back(n);
    object d;
    d["keys"] = std::move(keys);
    return Response::Data(std::move(d));
  }

  absl::StatusOr<Response> OneKey(Request& req, const std::string& name) {
    RETURN_IF_ERROR(ValidName(name));
    switch (req.operation) {
      case Operation::kRead: {
        ASSIGN_OR_RETURN(auto k, store_.Find(*req.storage, name));
        if (!k) return absl::NotFoundError("");
        std::lock_guard<std::mutex> lock(k->mu);
        return Response::Data(KeyData(*k));
      }
      case Operation::kCreate:
      case Operation::kUpdate: {
        bool existed = false;
        std::vector<std::string> warnings;
        ASSIGN_OR_RETURN(auto k, Create(req, name, req.data, &existed, &warnings));
        std::lock_guard<std::mutex> lock(k->mu);
        Response r = Response::Data(KeyData(*k));
        if (existed) r.warnings.push_back(absl::StrCat("key ", name, " already existed"));
        for (auto& w : warnings) r.warnings.push_back(std::move(w));
        return r;
      }
      case Operation::kDelete: {
        ASSIGN_OR_RETURN(auto k, store_.Find(*req.storage, name));
        if (!k) {
          return Bad(
              absl::StrCat("error deleting policy ", name, ": could not delete key; not found"));
        }
        std::lock_guard<std::mutex> lock(k->mu);
        if (!k->deletion_allowed) {
          return Bad(absl::StrCat("error deleting policy ", name,
                                  ": deletion is not allowed for this key"));
        }
        RETURN_IF_ERROR(req.storage->Delete(kKeyPrefix + name));
        store_.Forget(name);
        // Whoever still holds this Key finds no versions in it.
        std::map<int64_t, Version> removed = std::move(k->versions);
        k->versions.clear();
        k->latest_version = 0;
        store_.ReleaseVersions(*req.storage, removed);
        return Response::Empty();
      }
      default:
        return core::UnsupportedOperation();
    }
  }

  absl::StatusOr<Response> Config(Request& req, const std::string& name) {
    RETURN_IF_ERROR(ValidName(name));
    ASSIGN_OR_RETURN(auto k, store_.Find(*req.storage, name));
    if (!k) return Bad(absl::StrCat("no existing key named ", name, " could be found"));
    ASSIGN_OR_RETURN(auto mdv, core::GetInt(req.data, "min_decryption_version"));
    ASSIGN_OR_RETURN(auto mev, core::GetInt(req.data, "min_encryption_version"));
    ASSIGN_OR_RETURN(auto del, core::GetBool(req.data, "deletion_allowed"));
    ASSIGN_OR_RETURN(auto period, core::GetDurationSeconds(req.data, "auto_rotate_period"));
    for (const char* refused : {"exportable", "allow_plaintext_backup"}) {
      ASSIGN_OR_RETURN(auto b, core::GetBool(req.data, refused));
      if (b.value_or(false)) {
        return Bad(absl::StrCat(refused, " is not supported: Transit keys never leave the token"));
      }
    }
    if (period) RETURN_IF_ERROR(CheckRotatePeriod(*period));
    std::lock_guard<std::mutex> lock(k->mu);
    std::vector<std::string> warnings;
    int64_t next_mdv = k->min_decryption_version;
    int64_t next_mev = k->min_encryption_version;
    if (mdv) {
      if (*mdv < 0) return Bad("min decryption version cannot be negative");
      int64_t want = *mdv;
      if (want == 0) {
        want = 1;
        warnings.push_back("transit key numbering starts at 1; forcing minimum to 1");
      }
      if (want != next_mdv && want > k->latest_version) {
        return Bad(absl::StrCat("cannot set min decryption version of ", want,
                                ", latest key version is ", k->latest_version));
      }
      next_mdv = want;
    }
    if (mev) {
      if (*mev < 0) return Bad("min encryption version cannot be negative");
      if (*mev != next_mev && *mev > k->latest_version) {
        return Bad(absl::StrCat("cannot set min encryption version of ", *mev,
                                ", latest key version is ", k->latest_version));
      }
      next_mev = *mev;
    }
    if (next_mev > 0 && next_mev < next_mdv) {
      return Bad(absl::StrCat(
          "cannot set min encryption/decryption values; min encryption "
          "version of ",
          next_mev, " must be greater than or equal to min decryption version of ", next_mdv));
    }
    if (next_mev > 0 && next_mev < k->min_available_version) {
      return Bad("min encryption version should not be less than min available version");
    }
    if (next_mdv < k->min_available_version) {
      return Bad("min decryption version should not be less then min available version");
    }
    const int64_t before_mdv = k->min_decryption_version, before_mev = k->min_encryption_version,
                  before_period = k->auto_rotate_period;
    const bool before_del = k->deletion_allowed;
    k->min_decryption_version = next_mdv;
    k->min_encryption_version = next_mev;
    if (del) k->deletion_allowed = *del;
    if (period) k->auto_rotate_period = *period;
    if (absl::Status s = store_.Save(*req.storage, *k); !s.ok()) {
      k->min_decryption_version = before_mdv;
      k->min_encryption_version = before_mev;
      k->deletion_allowed = before_del;
      k->auto_rotate_period = before_period;
      return s;
    }
    Response r = Response::Data(KeyData(*k));
    r.warnings = std::move(warnings);
    return r;
  }

  absl::StatusOr<Response> RotateEndpoint(Request& req, const std::string& name) {
    RETURN_IF_ERROR(ValidName(name));
    ASSIGN_OR_RETURN(auto k, store_.Find(*req.storage, name));
    if (!k) return Bad("encryption key not found");
    std::lock_guard<std::mutex> lock(k->mu);
    std::vector<std::string> warnings;
    RETURN_IF_ERROR(store_.RotateLocked(*req.storage, *k, &warnings));
    Response r = Response::Data(KeyData(*k));
    r.warnings = std::move(warnings);
    return r;
  }

  absl::StatusOr<Response> Trim(Request& req, const std::string& name) {
    RETURN_IF_ERROR(ValidName(name));
    ASSIGN_OR_RETURN(auto k, store_.Find(*req.storage, name));
    if (!k) return Bad("invalid key name");
    ASSIGN_OR_RETURN(auto mav, core::GetInt(req.data, "min_available_version"));
    if (!mav) return Bad("missing min_available_version");
    std::lock_guard<std::mutex> lock(k->mu);
    if (*mav < k->min_available_version) {
      return Bad("minimum available version cannot be decremented");
    }
    if (*mav < 0) return Bad("minimum available version cannot be negative");
    if (*mav > k->min_decryption_version) {
      return Bad("minimum available version cannot be greater than minimum decryption version");
    }
    if (k->min_encryption_version > 0 && *mav > k->min_encryption_version) {
      return Bad("minimum available version cannot be greater than minimum encryption version");
    }
    std::map<int64_t, Version> removed;
    for (auto it = k->versions.begin(); it != k->versions.end() && it->first < *mav;) {
      removed.insert(k->versions.extract(it++));
    }
    const int64_t before = k->min_available_version;
    k->min_available_version = *mav;
    if (absl::Status s = store_.Save(*req.storage, *k); !s.ok()) {
      k->versions.merge(removed);
      k->min_available_version = before;
      return s;
    }
    store_.ReleaseVersions(*req.storage, removed);
    return Response::Data(KeyData(*k));
  }

  // Vault's cache-config: GET gives the stored size, POST/PUT sets it (0 = unlimited, else at
  // least 10). The cache holds loaded keys with their session objects in the token; a smaller
  // one evicts the least recently used keys not in use.
  absl::StatusOr<Response> CacheConfig(Request& req) {
    object d;
    if (req.operation == Operation::kRead) {
      ASSIGN_OR_RETURN(int64_t size, store_.CacheSize(*req.storage));
      d["size"] = size;
      return Response::Data(std::move(d));
    }
    if (!core::IsWrite(req)) return core::UnsupportedOperation();
    ASSIGN_OR_RETURN(auto size, core::GetInt(req.data, "size"));
    RETURN_IF_ERROR(store_.SetCacheSize(*req.storage, size.value_or(0)));
    d["size"] = size.value_or(0);
    return Response::Data(std::move(d));
  }

  absl::StatusOr<Response> Random(Request& req) {
    if (!core::IsWrite(req)) return core::UnsupportedOperation();
    std::vector<std::string> parts = absl::StrSplit(req.rel_path, '/', absl::SkipEmpty());
    std::string source = "platform";
    int64_t bytes = 32;
    ASSIGN_OR_RETURN(auto body_bytes, core::GetInt(req.data, "bytes"));
    if (body_bytes) bytes = *body_bytes;
    ASSIGN_OR_RETURN(auto body_source, core::GetString(req.data, "source"));
    if (body_source) source = *body_source;
    for (size_t i = 1; i < parts.size(); ++i) {
      int64_t n = 0;
      if (absl::SimpleAtoi(parts[i], &n)) {
        bytes = n;
      } else {
        source = parts[i];
      }
    }
    if (source != "platform" && source != "seal" && source != "all") {
      return Bad("unsupported entropy source; must be \"platform\", \"seal\", or \"all\"");
    }
    if (bytes < 1 || bytes > kMaxRandomBytes) {
      return Bad(absl::StrCat("number of bytes must be between 1 and ", kMaxRandomBytes));
    }
    ASSIGN_OR_RETURN(auto format, core::GetString(req.data, "format"));
    const std::string f = format.value_or("base64");
    if (f != "base64" && f != "hex")
      return Bad("unsupported encoding format; must be \"hex\" or \"base64\"");
    std::string out(static_cast<size_t>(bytes), '\0');
    auto* data = reinterpret_cast<uint8_t*>(out.data());
    if (source != "seal" && RAND_bytes(data, static_cast<int>(out.size())) != 1) {
      return absl::InternalError("random generator failed");
    }
    if (source != "platform") {
      std::string token_bytes(out.size(), '\0');
      ASSIGN_OR_RETURN(hsm::Token * token, store_.Token());
      if (absl::Status s = token->GenerateRandom(
              {reinterpret_cast<uint8_t*>(token_bytes.data()), token_bytes.size()});
          !s.ok()) {
        return absl::InternalError(absl::StrCat("PKCS#11: ", s.message()));
      }
      for (size_t i = 0; i < out.size(); ++i) out[i] ^= token_bytes[i];  // "all": both sources
    }
    object d;
    d["random_bytes"] = f == "hex" ? absl::BytesToHexString(out) : absl::Base64Escape(out);
    return Response::Data(std::move(d));
  }

  // Unkeyed: OpenSSL does it (nothing secret is involved).
  absl::StatusOr<Response> Hash(Request& req) {
    if (!core::IsWrite(req)) return core::UnsupportedOperation();
    std::string alg;
    if (absl::StartsWith(req.rel_path, "hash/")) alg = req.rel_path.substr(5);
    ASSIGN_OR_RETURN(auto body_alg, core::GetString(req.data, "algorithm"));
    if (alg.empty() && body_alg) alg = *body_alg;
    if (alg.empty()) alg = "sha2-256";
    const HashAlg* h = FindHash(alg);
    if (h == nullptr || !h->in_hash_endpoint) {
      return Bad(absl::StrCat("unsupported algorithm ", alg));
    }
    ASSIGN_OR_RETURN(std::string input, DecodeB64(req.data, "input", true, "missing input"));
    ASSIGN_OR_RETURN(auto format, core::GetString(req.data, "format"));
    const std::string f = format.value_or("hex");
    if (f != "base64" && f != "hex")
      return Bad("unsupported encoding format; must be \"hex\" or \"base64\"");
    unsigned char sum[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(input.data(), input.size(), sum, &len, h->md(), nullptr) != 1) {
      return absl::InternalError("digest failed");
    }
    const std::string s(reinterpret_cast<char*>(sum), len);
    object d;
    d["sum"] = f == "hex" ? absl::BytesToHexString(s) : absl::Base64Escape(s);
    return Response::Data(std::move(d));
  }

  core::Core* core_;
  KeyStore store_;
  Operations ops_;
  absl::Time next_scan_ = absl::InfinitePast();
  absl::Time next_sweep_ = absl::InfinitePast();
};

}  // namespace

absl::StatusOr<std::unique_ptr<core::Backend>> MakeTransitBackend(const core::MountEntry& entry,
                                                                  core::Core* core) {
  return std::unique_ptr<core::Backend>(std::make_unique<TransitBackend>(core, entry));
}

}  // namespace strongroom::engines
