#include "appliance/engines/kv_backend.h"

#include <pthread.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "appliance/engines/routes.h"
#include "base/status_macros.h"
#include "base/strings.h"

namespace strongroom::engines {
namespace {

using core::Operation;
using core::Request;
using core::Response;
using core::json::array;
using core::json::object;
using core::json::value;

constexpr int64_t kDefaultMaxVersions = 10;

// A reader-writer lock that lets a waiting writer in before new readers (glibc's default lets
// readers keep coming, so a key read without pause would keep its writers out for good). For
// the per-key stripes of KV v2: reads share a stripe, writes hold it alone.
class StripeLock {
 public:
  StripeLock() {
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&lock_, &attr);
    pthread_rwlockattr_destroy(&attr);
  }
  ~StripeLock() { pthread_rwlock_destroy(&lock_); }
  StripeLock(const StripeLock&) = delete;
  StripeLock& operator=(const StripeLock&) = delete;
  // Lockable and SharedLockable, for std::unique_lock / std::shared_lock. The calls cannot fail
  // here (no recursion, no timeouts, the lock is initialised), so their results are not used.
  void lock() { (void)pthread_rwlock_wrlock(&lock_); }
  void unlock() { (void)pthread_rwlock_unlock(&lock_); }
  void lock_shared() { (void)pthread_rwlock_rdlock(&lock_); }
  void unlock_shared() { (void)pthread_rwlock_unlock(&lock_); }

 private:
  pthread_rwlock_t lock_;
};

absl::Status NotFoundEmpty() { return absl::NotFoundError(""); }
// Vault's RespondWithStatusCode(nil, 404): a bare 404 with no body at all (PATCH on a missing key).
Response NotFoundNoBody() {
  Response r;
  r.kind = Response::Kind::kRaw;
  r.http_status = 404;
  return r;
}

bool IsWrite(Operation op) { return op == Operation::kCreate || op == Operation::kUpdate; }

// `latest`: through Storage::GetLatest, for the read half of a write (see KvV2::Commit).
absl::StatusOr<std::optional<object>> GetJson(storage::Storage& s, const std::string& key,
                                              bool latest = false) {
  ASSIGN_OR_RETURN(auto raw, latest ? s.GetLatest(key) : s.Get(key));
  if (!raw) return std::optional<object>();
  ASSIGN_OR_RETURN(auto o, core::ParseObject(*raw));
  return std::optional<object>(std::move(o));
}

// A LIST answer: {"keys": [...]}, or Vault's empty 404 when there is nothing below `prefix`.
absl::StatusOr<Response> ListKeys(storage::Storage& s, const std::string& prefix) {
  ASSIGN_OR_RETURN(auto keys, s.List(prefix));
  if (keys.empty()) return NotFoundEmpty();
  array a;
  for (auto& k : keys) a.emplace_back(k);
  object d;
  d["keys"] = std::move(a);
  return Response::Data(std::move(d));
}

// KV version 1: the stored JSON object is the secret.
class KvV1 final : public core::Backend {
 public:
  std::span<const core::Route> Routes() const override { return KvV1Routes(); }
  absl::StatusOr<bool> Exists(const Request& req) override {
    ASSIGN_OR_RETURN(auto v, req.storage->Get(req.rel_path));
    return v.has_value();
  }
  absl::StatusOr<Response> Handle(Request& req) override {
    const std::string& p = req.rel_path;
    switch (req.operation) {
      case Operation::kRead: {
        if (p.empty()) return NotFoundEmpty();
        ASSIGN_OR_RETURN(auto v, GetJson(*req.storage, p));
        if (!v) return NotFoundEmpty();
        Response r = Response::Data(std::move(*v));
        r.lease_duration = 768 * 3600;
        return r;
      }
      case Operation::kList:
        return ListKeys(*req.storage, p);
      case Operation::kCreate:
      case Operation::kUpdate:
        if (p.empty() || p.back() == '/') return absl::InvalidArgumentError("missing path");
        if (req.data.empty()) return absl::InvalidArgumentError("missing data fields");
        RETURN_IF_ERROR(req.storage->Put(p, core::Serialize(req.data)));
        return Response::Empty();
      case Operation::kDelete:
        RETURN_IF_ERROR(req.storage->Delete(p));
        return Response::Empty();
      default:
        return core::UnsupportedOperation();
    }
  }
};

// Vault's JSON merge patch (RFC 7386): objects merge key by key, null removes a key, anything
// else replaces the target wholesale.
value MergePatch(const value& target, const value& patch) {
  if (!patch.is_object()) return patch;
  object out = target.is_object() ? target.as_object() : object();
  for (const auto& [k, v] : patch.as_object()) {
    if (v.is_null()) {
      out.erase(k);
    } else {
      auto it = out.find(k);
      out[k] = MergePatch(it == out.end() ? value(nullptr) : it->value(), v);
    }
  }
  return out;
}

// The subkeys view: the structure of a secret with every leaf replaced by null. `depth` 0 means
// unlimited; at the last allowed level even objects become null.
value Subkeys(const object& data, int64_t depth, int64_t level) {
  object out;
  for (const auto& [k, v] : data) {
    // An empty object is a leaf too: there is no structure below it to show.
    if (v.is_object() && !v.as_object().empty() && (depth == 0 || level < depth)) {
      out[k] = Subkeys(v.as_object(), depth, level + 1);
    } else {
      out[k] = nullptr;
    }
  }
  return out;
}

// Go's %q for the strings custom_metadata errors quote; keys are mostly plain ASCII.
std::string GoQuote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          absl::StrAppend(&out, "\\x", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

// Vault renders a list of validation errors with hashicorp/go-multierror's format.
std::string MultiError(const std::vector<std::string>& errs) {
  std::string out =
      errs.size() == 1 ? "1 error occurred:\n" : absl::StrCat(errs.size(), " errors occurred:\n");
  for (const auto& e : errs) absl::StrAppend(&out, "\t* ", e, "\n");
  out.push_back('\n');
  return out;
}

constexpr size_t kMaxCustomMetadataKeys = 64;
constexpr size_t kMaxCustomMetadataKeyLength = 128;
constexpr size_t kMaxCustomMetadataValueLength = 512;
constexpr char kCustomMetadataPrefix[] = "custom_metadata validation failed";

// Go's strutil.Printable, for the ASCII range: no control characters.
bool Printable(std::string_view s) {
  return std::none_of(s.begin(), s.end(),
                      [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

absl::Status ValidateCustomMetadata(const object& cm) {
  std::vector<std::string> errs;
  if (cm.size() > kMaxCustomMetadataKeys) {
    errs.push_back(absl::StrCat(kCustomMetadataPrefix, ": payload must contain at most ",
                                kMaxCustomMetadataKeys, " keys, provided ", cm.size()));
  } else {
    for (const auto& [k, v] : cm) {
      const size_t klen = k.size();
      const size_t vlen = v.as_string().size();
      if (klen == 0 || klen > kMaxCustomMetadataKeyLength) {
        errs.push_back(absl::StrCat(kCustomMetadataPrefix, ": length of key ", GoQuote(k), " is ",
                                    klen,
                                    " but must be 0 < len(key) <= ", kMaxCustomMetadataKeyLength));
      }
      if (vlen == 0 || vlen > kMaxCustomMetadataValueLength) {
        errs.push_back(
            absl::StrCat(kCustomMetadataPrefix, ": length of value for key ", GoQuote(k), " is ",
                         vlen, " but must be 0 < len(value) <= ", kMaxCustomMetadataValueLength));
      }
      if (!Printable(k)) {
        errs.push_back(absl::StrCat(kCustomMetadataPrefix, ": key ", GoQuote(k), " (",
                                    std::string(k), ") contains unprintable characters"));
      }
      if (!Printable(v.as_string())) {
        errs.push_back(absl::StrCat(kCustomMetadataPrefix, ": value for key ", GoQuote(k),
                                    " contains unprintable characters"));
      }
    }
  }
  if (errs.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(MultiError(errs));
}

// custom_metadata values are weakly decoded into strings, as mapstructure does in Vault
// (numbers keep their JSON text, booleans become "1"/"0").
absl::StatusOr<std::string> KvPairValue(const value& v) {
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_bool()) return std::string(v.as_bool() ? "1" : "0");
  if (v.is_number()) return core::Serialize(v);
  return absl::InvalidArgumentError(
      absl::StrCat(kCustomMetadataPrefix, ": '' expected type 'string', got unconvertible type"));
}

// The request's custom_metadata as strings, validated. `drop_nulls` (PATCH) skips null values,
// which mean "remove this key"; Vault validates only what the request brings.
absl::StatusOr<object> ParseCustomMetadata(const value& raw, bool drop_nulls) {
  if (!raw.is_object()) {
    return absl::InvalidArgumentError(
        "Field validation failed: custom_metadata must be a map of strings");
  }
  object cm;
  for (const auto& [k, v] : raw.as_object()) {
    if (v.is_null() && drop_nulls) continue;
    std::string s;
    if (!v.is_null()) {
      ASSIGN_OR_RETURN(s, KvPairValue(v));
    }
    cm[k] = s;
  }
  RETURN_IF_ERROR(ValidateCustomMetadata(cm));
  return cm;
}

// mapstructure.WeakDecode into an int, as Vault decodes options.cas.
absl::StatusOr<int64_t> WeakInt(const value& v) {
  if (v.is_null()) return 0;
  if (v.is_int64()) return v.as_int64();
  if (v.is_uint64()) {
    if (v.as_uint64() > static_cast<uint64_t>(INT64_MAX)) {
      return absl::InvalidArgumentError("error parsing check-and-set parameter");
    }
    return static_cast<int64_t>(v.as_uint64());
  }
  // Truncates like Go's float-to-int conversion; out-of-range values are refused rather than UB.
  if (v.is_double() && std::abs(v.as_double()) < 9.2e18) return static_cast<int64_t>(v.as_double());
  if (v.is_bool()) return v.as_bool() ? 1 : 0;
  if (v.is_string()) {
    if (v.as_string().empty()) return 0;
    int64_t n = 0;
    if (absl::SimpleAtoi(std::string(v.as_string()), &n)) return n;
  }
  return absl::InvalidArgumentError("error parsing check-and-set parameter");
}

// options.cas, present or not.
absl::StatusOr<std::optional<int64_t>> ParseCas(const object& data) {
  auto oit = data.find("options");
  if (oit == data.end() || !oit->value().is_object()) return std::optional<int64_t>();
  const object& options = oit->value().as_object();
  auto cit = options.find("cas");
  if (cit == options.end()) return std::optional<int64_t>();
  ASSIGN_OR_RETURN(int64_t cas, WeakInt(cit->value()));
  return std::optional<int64_t>(cas);
}

// An integer query/body field with Vault's framework validation error.
absl::StatusOr<int64_t> IntField(const object& data, std::string_view key) {
  auto r = core::GetInt(data, key);
  if (!r.ok()) {
    // The field is named, the value is not: it may be a secret pasted into the wrong place, and
    // the error reaches the client, the log and (un-HMAC'd) the audit trail.
    return absl::InvalidArgumentError(
        absl::StrCat("Field validation failed: error converting input for field \"", Av(key),
                     "\"; expected an integer"));
  }
  return r->value_or(0);
}

// Vault's TypeCommaIntSlice: a JSON array of numbers/numeric strings, a number, or "1,2,3".
absl::StatusOr<std::vector<int64_t>> ParseVersions(const object& data) {
  std::vector<int64_t> out;
  auto it = data.find("versions");
  if (it == data.end() || it->value().is_null()) return out;
  auto bad = [] {
    return absl::InvalidArgumentError(
        "Field validation failed: error converting input for field \"versions\"");
  };
  std::vector<value> items;
  const value& v = it->value();
  if (v.is_array()) {
    items.assign(v.as_array().begin(), v.as_array().end());
  } else if (v.is_string()) {
    for (absl::string_view part : absl::StrSplit(Av(v.as_string()), ',', absl::SkipWhitespace())) {
      items.emplace_back(std::string(absl::StripAsciiWhitespace(part)));
    }
  } else {
    items.push_back(v);
  }
  for (const value& item : items) {
    int64_t n = 0;
    if (item.is_int64()) {
      n = item.as_int64();
    } else if (item.is_uint64()) {
      n = static_cast<int64_t>(item.as_uint64());
    } else if (item.is_double() && std::abs(item.as_double()) < 9.2e18 &&
               item.as_double() == static_cast<double>(static_cast<int64_t>(item.as_double()))) {
      n = static_cast<int64_t>(item.as_double());
    } else if (!item.is_string() || !absl::SimpleAtoi(std::string(item.as_string()), &n)) {
      return bad();
    }
    out.push_back(n);
  }
  return out;
}

// KV version 2. Storage below the mount view:
//   config                   {"max_versions","cas_required","delete_version_after"(seconds)}
//   metadata/<path>          key metadata: current/oldest version, per-key settings,
//                            custom_metadata and the per-version table {created_time,
//                            deletion_time, destroyed}
//   versions/<path>/<n>      the data of version n (absent once destroyed or pruned)
class KvV2 final : public core::Backend {
 public:
  std::span<const core::Route> Routes() const override { return KvV2Routes(); }
  // A path outside the versioned layout: Vault's 404 with the `vault kv` hint.
  absl::StatusOr<Response> UnmatchedRoute(const Request& req) override {
    return InvalidPath(req.operation);
  }
  absl::StatusOr<bool> Exists(const Request& req) override {
    const std::string& p = req.rel_path;
    for (std::string prefix : {"data/", "metadata/"}) {
      if (absl::StartsWith(p, prefix)) {
        ASSIGN_OR_RETURN(auto v,
                         req.storage->Get(absl::StrCat("metadata/", p.substr(prefix.size()))));
        return v.has_value();
      }
    }
    return true;
  }

  absl::StatusOr<Response> Handle(Request& req) override {
    const std::string& p = req.rel_path;
    if (p == "config") return Config(req);
    if (absl::StartsWith(p, "data/")) return Data(req, p.substr(5));
    if (absl::StartsWith(p, "metadata/") || p == "metadata") {
      return Metadata(req, p.size() > 9 ? p.substr(9) : std::string());
    }
    if (absl::StartsWith(p, "subkeys/")) return SubkeysRead(req, p.substr(8));
    for (std::string_view verb : {"delete/", "undelete/", "destroy/"}) {
      if (absl::StartsWith(p, Av(verb)))
        return VersionsOp(req, std::string(verb.substr(0, verb.size() - 1)), p.substr(verb.size()));
    }
    return InvalidPath(req.operation);
  }

 private:
  struct MountConfig {
    int64_t max_versions = 0;
    bool cas_required = false;
    int64_t delete_version_after = 0;
  };

  // Vault answers paths outside the versioned layout with a 404 envelope whose warning names the
  // `vault kv` subcommand that does what the caller probably meant.
  static Response InvalidPath(Operation op) {
    std::string sub;
    switch (op) {
      case Operation::kCreate:
      case Operation::kUpdate:
        sub = "put";
        break;
      case Operation::kRead:
        sub = "get";
        break;
      case Operation::kList:
        sub = "list";
        break;
      case Operation::kDelete:
        sub = "delete";
        break;
      default:
        break;
    }
    Response r;
    r.http_status = 404;
    r.warnings.push_back(absl::StrCat(
        "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API "
        "endpoints to use. If using the Vault CLI, use 'vault kv ",
        sub, "' for this operation."));
    return r;
  }

  absl::StatusOr<MountConfig> LoadConfig(storage::Storage& s) {
    MountConfig c;
    ASSIGN_OR_RETURN(auto o, GetJson(s, "config"));
    if (o) {
      c.max_versions = core::GetInt(*o, "max_versions").value_or(std::nullopt).value_or(0);
      c.cas_required = core::GetBool(*o, "cas_required").value_or(std::nullopt).value_or(false);
      c.delete_version_after =
          core::GetInt(*o, "delete_version_after").value_or(std::nullopt).value_or(0);
    }
    return c;
  }

  absl::StatusOr<Response> Config(Request& req) {
    std::lock_guard<std::mutex> lock(config_mu_);
    ASSIGN_OR_RETURN(auto c, LoadConfig(*req.storage));
    if (req.operation == Operation::kRead) {
      object d;
      d["cas_required"] = c.cas_required;
      d["delete_version_after"] = core::FormatGoDuration(c.delete_version_after);
      d["max_versions"] = c.max_versions;
      return Response::Data(std::move(d));
    }
    if (!IsWrite(req.operation)) return core::UnsupportedOperation();
    ASSIGN_OR_RETURN(auto mv, core::GetInt(req.data, "max_versions"));
    if (mv) {
      if (*mv < 0) return absl::InvalidArgumentError("max_versions must not be negative");
      c.max_versions = *mv;
    }
    ASSIGN_OR_RETURN(auto cas, core::GetBool(req.data, "cas_required"));
    if (cas) c.cas_required = *cas;
    ASSIGN_OR_RETURN(auto dva, core::GetDurationSeconds(req.data, "delete_version_after"));
    if (dva) c.delete_version_after = *dva;
    object o;
    o["max_versions"] = c.max_versions;
    o["cas_required"] = c.cas_required;
    o["delete_version_after"] = c.delete_version_after;
    RETURN_IF_ERROR(req.storage->Put("config", core::Serialize(o)));
    return Response::Empty();
  }

  // Metadata written by older code may lack newer fields; every reader goes through these.
  static int64_t MetaInt(const object& meta, std::string_view k) {
    auto it = meta.find(k);
    return it != meta.end() && it->value().is_int64() ? it->value().as_int64() : 0;
  }
  static bool MetaBool(const object& meta, std::string_view k) {
    auto it = meta.find(k);
    return it != meta.end() && it->value().is_bool() && it->value().as_bool();
  }
  static value MetaValue(const object& meta, std::string_view k) {
    auto it = meta.find(k);
    return it == meta.end() ? value(nullptr) : it->value();
  }

  static object NewMeta(const std::string& now) {
    object m;
    m["created_time"] = now;
    m["updated_time"] = now;
    m["current_version"] = 0;
    m["oldest_version"] = 0;
    m["max_versions"] = 0;
    m["cas_required"] = false;
    m["delete_version_after"] = 0;
    m["custom_metadata"] = nullptr;
    m["versions"] = object();
    return m;
  }

  // The shorter non-zero of the mount's and the key's delete_version_after (0 = keep forever).
  // Values stored before durations were bounded are clamped to the longest Go duration, so
  // created_time + delete_version_after is always a real time (never "infinite-future").
  static int64_t EffectiveDva(const MountConfig& c, const object& meta) {
    const int64_t k = std::min(MetaInt(meta, "delete_version_after"), core::kMaxDurationSeconds);
    const int64_t m = std::min(c.delete_version_after, core::kMaxDurationSeconds);
    if (m <= 0) return std::max<int64_t>(k, 0);
    if (k <= 0) return m;
    return std::min(k, m);
  }

  static object VersionMeta(const object& meta, int64_t version) {
    object out;
    const object& versions = meta.at("versions").as_object();
    const object& v = versions.at(std::to_string(version)).as_object();
    out["created_time"] = v.at("created_time");
    out["custom_metadata"] = MetaValue(meta, "custom_metadata");
    out["deletion_time"] = v.at("deletion_time");
    out["destroyed"] = v.at("destroyed");
    out["version"] = version;
    return out;
  }

  // A deletion_time in the past means soft-deleted; one in the future (delete_version_after)
  // is only a schedule and the version still reads normally.
  static bool IsDeleted(const object& v, absl::Time now) {
    const auto& dt = v.at("deletion_time").as_string();
    if (dt.empty()) return false;
    absl::Time t;
    std::string err;
    if (!absl::ParseTime(absl::RFC3339_full, std::string(dt), &t, &err)) return true;
    return t <= now;
  }
  static bool Unreadable(const object& v, absl::Time now) {
    return v.at("destroyed").as_bool() || IsDeleted(v, now);
  }

  // Resolves ?version= (0/absent = current); nullopt when that version does not exist (anymore).
  static absl::StatusOr<std::optional<int64_t>> ResolveVersion(const Request& req,
                                                               const object& meta) {
    ASSIGN_OR_RETURN(int64_t want, IntField(req.data, "version"));
    const int64_t version =
        want > 0 ? want : MetaInt(meta, "current_version");  // Vault: only > 0 selects
    if (!meta.at("versions").as_object().contains(std::to_string(version)))
      return std::optional<int64_t>();
    return std::optional<int64_t>(version);
  }

  // 404 whose body still carries the version metadata: how Vault reports a deleted or destroyed
  // version (the Go client returns it as a secret because data is not empty).
  // The version a data read or a subkeys read names (`version` parameter, else the current one).
  // nullopt: the key or the version does not exist (Vault's bare 404). Otherwise its metadata,
  // and its data when it is neither deleted nor destroyed.
  struct VersionRead {
    object metadata;
    bool readable = false;
    std::optional<object> data;
  };
  absl::StatusOr<std::optional<VersionRead>> ReadVersion(const Request& req,
                                                         const std::string& path,
                                                         const std::optional<object>& meta,
                                                         absl::Time now) {
    if (!meta) {
      RETURN_IF_ERROR(IntField(req.data, "version").status());  // a bad parameter is still a 400
      return std::optional<VersionRead>();
    }
    ASSIGN_OR_RETURN(auto version, ResolveVersion(req, *meta));
    if (!version) return std::optional<VersionRead>();
    VersionRead read;
    read.metadata = VersionMeta(*meta, *version);
    const object& v = meta->at("versions").as_object().at(std::to_string(*version)).as_object();
    if (!Unreadable(v, now)) {
      read.readable = true;
      ASSIGN_OR_RETURN(read.data,
                       GetJson(*req.storage, absl::StrCat("versions/", path, "/", *version)));
    }
    return std::optional<VersionRead>(std::move(read));
  }

  static Response NotFoundWith(object d) {
    Response r = Response::Data(std::move(d));
    r.http_status = 404;
    return r;
  }

  static absl::Status CheckCas(const MountConfig& config, const std::optional<object>& meta,
                               std::optional<int64_t> cas) {
    const bool required = config.cas_required || (meta && MetaBool(*meta, "cas_required"));
    if (required && !cas)
      return absl::InvalidArgumentError("check-and-set parameter required for this call");
    const int64_t current = meta ? MetaInt(*meta, "current_version") : 0;
    if (cas && *cas != current) {
      return absl::InvalidArgumentError(
          "check-and-set parameter did not match the current version");
    }
    return absl::OkStatus();
  }

  // Appends a version holding `data`, prunes beyond max_versions and stores everything in one
  // batch, so a crash never leaves metadata pointing at missing data.
  absl::StatusOr<Response> PutVersion(Request& req, const std::string& path,
                                      std::optional<object> meta, const MountConfig& config,
                                      value data, absl::Time now_t,
                                      std::unique_lock<StripeLock>& lock) {
    const std::string now = core::FormatRfc3339Nano(now_t);
    if (!meta) meta = NewMeta(now);
    const int64_t version = MetaInt(*meta, "current_version") + 1;
    object v;
    v["created_time"] = now;
    const int64_t dva = EffectiveDva(config, *meta);
    v["deletion_time"] =
        dva > 0 ? core::FormatRfc3339Nano(now_t + absl::Seconds(dva)) : std::string();
    v["destroyed"] = false;
    (*meta)["versions"].as_object()[std::to_string(version)] = std::move(v);
    (*meta)["current_version"] = version;
    (*meta)["updated_time"] = now;
    std::vector<storage::BatchOp> ops;
    ops.push_back(storage::BatchOp::Put(absl::StrCat("versions/", path, "/", version),
                                        core::Serialize(data)));
    int64_t max = MetaInt(*meta, "max_versions");
    if (max <= 0) max = config.max_versions;
    if (max <= 0) max = kDefaultMaxVersions;
    // Vault's sliding window: once the span current - oldest reaches max_versions, everything
    // up to current - max goes and oldest_version moves to the first kept version (so it is 0
    // until the window first fills, and never moves backwards when max_versions is raised).
    const int64_t oldest = MetaInt(*meta, "oldest_version");
    if (version - oldest >= max) {
      auto& versions = (*meta)["versions"].as_object();
      for (int64_t old = std::max<int64_t>(oldest, 1); old <= version - max; ++old) {
        versions.erase(std::to_string(old));
        ops.push_back(storage::BatchOp::Delete(absl::StrCat("versions/", path, "/", old)));
      }
      (*meta)["oldest_version"] = version - max + 1;
    }
    ops.push_back(storage::BatchOp::Put(absl::StrCat("metadata/", path), core::Serialize(*meta)));
    RETURN_IF_ERROR(Commit(lock, path, *req.storage, std::move(ops)));
    return Response::Data(VersionMeta(*meta, version));
  }

  absl::StatusOr<Response> Data(Request& req, const std::string& path) {
    if (path.empty()) return absl::InvalidArgumentError("missing path");
    // A read shares the key's stripe (its metadata and version stay consistent with each other)
    // once the stripe's last submitted write is durable; anything else reads and rewrites the
    // metadata, alone.
    const bool write = req.operation != Operation::kRead;
    std::shared_lock<StripeLock> read_lock(LockFor(path), std::defer_lock);
    std::unique_lock<StripeLock> lock(LockFor(path), std::defer_lock);
    if (write) {
      lock.lock();
    } else {
      read_lock.lock();
      AwaitWrites(path);
    }
    const absl::Time now = absl::Now();
    const std::string meta_key = absl::StrCat("metadata/", path);
    ASSIGN_OR_RETURN(auto meta, GetJson(*req.storage, meta_key, write));
    switch (req.operation) {
      case Operation::kRead: {
        ASSIGN_OR_RETURN(auto read, ReadVersion(req, path, meta, now));
        if (!read) return NotFoundEmpty();
        object d;
        d["metadata"] = std::move(read->metadata);
        if (!read->readable) {
          d["data"] = nullptr;
          return NotFoundWith(std::move(d));
        }
        d["data"] = read->data ? value(std::move(*read->data)) : value(nullptr);
        return Response::Data(std::move(d));
      }
      case Operation::kCreate:
      case Operation::kUpdate: {
        auto dit = req.data.find("data");
        if (dit == req.data.end() || !dit->value().is_object()) {
          return absl::InvalidArgumentError("no data provided");
        }
        ASSIGN_OR_RETURN(auto config, LoadConfig(*req.storage));
        ASSIGN_OR_RETURN(auto cas, ParseCas(req.data));
        RETURN_IF_ERROR(CheckCas(config, meta, cas));
        return PutVersion(req, path, std::move(meta), config, dit->value(), now, lock);
      }
      case Operation::kPatch: {
        auto dit = req.data.find("data");
        if (dit == req.data.end() || !dit->value().is_object()) {
          return absl::InvalidArgumentError("no data provided");
        }
        if (!meta) return NotFoundNoBody();
        ASSIGN_OR_RETURN(auto config, LoadConfig(*req.storage));
        ASSIGN_OR_RETURN(auto cas, ParseCas(req.data));
        RETURN_IF_ERROR(CheckCas(config, meta, cas));
        const int64_t current = MetaInt(*meta, "current_version");
        const object& versions = meta->at("versions").as_object();
        auto vit = versions.find(std::to_string(current));
        if (vit == versions.end()) return NotFoundNoBody();
        // A deleted or destroyed latest version cannot be patched: there is nothing to merge into.
        if (Unreadable(vit->value().as_object(), now))
          return NotFoundWith(VersionMeta(*meta, current));
        ASSIGN_OR_RETURN(auto stored, GetJson(*req.storage,
                                              absl::StrCat("versions/", path, "/", current), true));
        if (!stored) return NotFoundEmpty();
        value merged = MergePatch(value(std::move(*stored)), dit->value());
        return PutVersion(req, path, std::move(meta), config, std::move(merged), now, lock);
      }
      case Operation::kDelete: {
        if (!meta) return Response::Empty();
        const int64_t current = MetaInt(*meta, "current_version");
        auto& versions = (*meta)["versions"].as_object();
        auto it = versions.find(std::to_string(current));
        if (it == versions.end()) return Response::Empty();
        auto& v = it->value().as_object();
        if (Unreadable(v, now)) return Response::Empty();
        v["deletion_time"] = core::FormatRfc3339Nano(now);
        RETURN_IF_ERROR(Commit(lock, path, *req.storage,
                               {storage::BatchOp::Put(meta_key, core::Serialize(*meta))}));
        return Response::Empty();
      }
      default:
        return core::UnsupportedOperation();
    }
  }

  // delete/, undelete/ and destroy/: the same {"versions":[…]} body acting on listed versions;
  // versions that do not exist are skipped silently, as in Vault.
  absl::StatusOr<Response> VersionsOp(Request& req, const std::string& verb,
                                      const std::string& path) {
    if (!IsWrite(req.operation)) return core::UnsupportedOperation();
    if (path.empty()) return absl::InvalidArgumentError("missing path");
    ASSIGN_OR_RETURN(auto list, ParseVersions(req.data));
    if (list.empty()) {
      return absl::InvalidArgumentError(verb == "destroy" ? "no version number provided"
                                                          : "No version number provided");
    }
    std::unique_lock<StripeLock> lock(LockFor(path));
    const absl::Time now = absl::Now();
    const std::string meta_key = absl::StrCat("metadata/", path);
    ASSIGN_OR_RETURN(auto meta, GetJson(*req.storage, meta_key, true));
    if (!meta) return Response::Empty();
    ASSIGN_OR_RETURN(auto config, LoadConfig(*req.storage));
    const int64_t dva = EffectiveDva(config, *meta);
    auto& versions = (*meta)["versions"].as_object();
    std::vector<storage::BatchOp> ops;
    for (int64_t n : list) {
      auto it = versions.find(std::to_string(n));
      if (it == versions.end()) continue;
      auto& v = it->value().as_object();
      if (verb == "destroy") {
        v["destroyed"] = true;
        ops.push_back(storage::BatchOp::Delete(absl::StrCat("versions/", path, "/", n)));
      } else if (v.at("destroyed").as_bool()) {
        continue;
      } else if (verb == "delete") {
        if (!IsDeleted(v, now)) v["deletion_time"] = core::FormatRfc3339Nano(now);
      } else {
        // Undelete restores the version and restarts its delete_version_after clock.
        v["deletion_time"] =
            dva > 0 ? core::FormatRfc3339Nano(now + absl::Seconds(dva)) : std::string();
      }
    }
    ops.push_back(storage::BatchOp::Put(meta_key, core::Serialize(*meta)));
    RETURN_IF_ERROR(Commit(lock, path, *req.storage, std::move(ops)));
    return Response::Empty();
  }

  absl::StatusOr<Response> SubkeysRead(Request& req, const std::string& path) {
    if (req.operation != Operation::kRead) return core::UnsupportedOperation();
    if (path.empty()) return absl::InvalidArgumentError("missing path");
    ASSIGN_OR_RETURN(int64_t depth, IntField(req.data, "depth"));
    if (depth < 0) return absl::InvalidArgumentError("depth must be a non-negative integer");
    std::shared_lock<StripeLock> lock(LockFor(path));
    AwaitWrites(path);
    const absl::Time now = absl::Now();
    ASSIGN_OR_RETURN(auto meta, GetJson(*req.storage, absl::StrCat("metadata/", path)));
    ASSIGN_OR_RETURN(auto read, ReadVersion(req, path, meta, now));
    if (!read) return NotFoundEmpty();
    object d;
    d["metadata"] = std::move(read->metadata);
    if (!read->readable) {
      d["subkeys"] = nullptr;
      return NotFoundWith(std::move(d));
    }
    d["subkeys"] = Subkeys(read->data ? *read->data : object(), depth, 1);
    return Response::Data(std::move(d));
  }

  // Applies max_versions / cas_required / delete_version_after from the request; `patch` gives
  // JSON merge patch meaning to nulls (a null resets the setting). custom_metadata is handled by
  // the caller, which validates it before anything is read.
  static absl::Status ApplyMetadataSettings(const object& in, object& meta, bool patch) {
    auto present = [&](std::string_view k) {
      auto it = in.find(k);
      return it != in.end() && (patch || !it->value().is_null());
    };
    auto is_null = [&](std::string_view k) { return in.at(k).is_null(); };
    if (present("max_versions")) {
      int64_t mv = 0;
      if (!is_null("max_versions")) {
        ASSIGN_OR_RETURN(auto v, core::GetInt(in, "max_versions"));
        mv = v.value_or(0);
      }
      if (mv < 0) return absl::InvalidArgumentError("max_versions must not be negative");
      meta["max_versions"] = mv;
    }
    if (present("cas_required")) {
      bool cas = false;
      if (!is_null("cas_required")) {
        ASSIGN_OR_RETURN(auto v, core::GetBool(in, "cas_required"));
        cas = v.value_or(false);
      }
      meta["cas_required"] = cas;
    }
    if (present("delete_version_after")) {
      int64_t dva = 0;
      if (!is_null("delete_version_after")) {
        ASSIGN_OR_RETURN(auto v, core::GetDurationSeconds(in, "delete_version_after"));
        dva = v.value_or(0);
      }
      meta["delete_version_after"] = dva;
    }
    return absl::OkStatus();
  }

  // metadata/:path POST (replace the given settings, create the entry if needed) and PATCH
  // (merge into an existing entry). Neither creates a version nor moves updated_time, which in
  // Vault only follows data writes.
  absl::StatusOr<Response> MetadataWrite(Request& req, const std::string& path,
                                         std::optional<object> meta,
                                         std::unique_lock<StripeLock>& lock) {
    const bool patch = req.operation == Operation::kPatch;
    const object& in = req.data;
    auto given = [&](std::string_view k) {
      auto it = in.find(k);
      return it != in.end() && (patch || !it->value().is_null());
    };
    // custom_metadata is validated first: a bad map is a 400 even for a key that does not exist.
    std::optional<object> cm_in;
    bool cm_clear = false;
    if (given("custom_metadata")) {
      const value& raw = in.at("custom_metadata");
      if (raw.is_null()) {
        cm_clear = true;
      } else {
        ASSIGN_OR_RETURN(cm_in, ParseCustomMetadata(raw, patch));
      }
    }
    if (!patch && !given("max_versions") && !given("cas_required") &&
        !given("delete_version_after") && !cm_in) {
      return Response::Empty();  // Vault's fast path: nothing to set, nothing created
    }
    ASSIGN_OR_RETURN(auto config, LoadConfig(*req.storage));
    if (patch && !meta) return NotFoundNoBody();
    if (!meta) meta = NewMeta(core::FormatRfc3339Nano(absl::Now()));
    RETURN_IF_ERROR(ApplyMetadataSettings(in, *meta, patch));
    if (cm_clear) {
      (*meta)["custom_metadata"] = nullptr;
    } else if (cm_in) {
      object cm;
      if (patch) {
        // Merge: null values in the request remove keys, others are set.
        value current = MetaValue(*meta, "custom_metadata");
        if (current.is_object()) cm = current.as_object();
        for (const auto& [k, v] : in.at("custom_metadata").as_object()) {
          if (v.is_null()) cm.erase(k);
        }
      }
      for (const auto& [k, v] : *cm_in) cm[k] = v;
      // An empty map reads back as null in Vault (its storage does not keep empty maps).
      (*meta)["custom_metadata"] = cm.empty() ? value(nullptr) : value(std::move(cm));
    }
    RETURN_IF_ERROR(
        Commit(lock, path, *req.storage,
               {storage::BatchOp::Put(absl::StrCat("metadata/", path), core::Serialize(*meta))}));
    Response r = Response::Empty();
    auto cit = in.find("cas_required");
    if (config.cas_required && cit != in.end() && !cit->value().is_null()) {
      auto cas = core::GetBool(in, "cas_required");
      if (cas.ok() && *cas && !**cas) {
        r = Response();
        r.warnings.push_back(
            "\"cas_required\" set to false, but is mandated by backend config. This value will be "
            "ignored.");
      }
    }
    return r;
  }

  absl::StatusOr<Response> Metadata(Request& req, const std::string& path) {
    std::shared_lock<StripeLock> read_lock(LockFor(path), std::defer_lock);
    std::unique_lock<StripeLock> lock(LockFor(path), std::defer_lock);
    if (req.operation == Operation::kRead || req.operation == Operation::kList) {
      read_lock.lock();
    } else {
      lock.lock();
    }
    if (req.operation == Operation::kList)
      return ListKeys(*req.storage, absl::StrCat("metadata/", path));
    if (path.empty()) return absl::InvalidArgumentError("missing path");
    const bool write = req.operation != Operation::kRead;
    if (!write) AwaitWrites(path);
    const std::string meta_key = absl::StrCat("metadata/", path);
    ASSIGN_OR_RETURN(auto meta, GetJson(*req.storage, meta_key, write));
    switch (req.operation) {
      case Operation::kRead: {
        if (!meta) return NotFoundEmpty();
        object d;
        d["cas_required"] = MetaBool(*meta, "cas_required");
        d["created_time"] = meta->at("created_time");
        d["current_version"] = MetaInt(*meta, "current_version");
        d["custom_metadata"] = MetaValue(*meta, "custom_metadata");
        d["delete_version_after"] = core::FormatGoDuration(MetaInt(*meta, "delete_version_after"));
        d["max_versions"] = MetaInt(*meta, "max_versions");
        d["oldest_version"] = MetaInt(*meta, "oldest_version");
        d["updated_time"] =
            meta->contains("updated_time") ? meta->at("updated_time") : meta->at("created_time");
        d["versions"] = meta->at("versions");
        return Response::Data(std::move(d));
      }
      case Operation::kCreate:
      case Operation::kUpdate:
      case Operation::kPatch:
        return MetadataWrite(req, path, std::move(meta), lock);
      case Operation::kDelete: {
        if (!meta) return Response::Empty();
        std::vector<storage::BatchOp> ops;
        for (const auto& [k, v] : meta->at("versions").as_object()) {
          ops.push_back(
              storage::BatchOp::Delete(absl::StrCat("versions/", path, "/", std::string(k))));
        }
        ops.push_back(storage::BatchOp::Delete(meta_key));
        RETURN_IF_ERROR(Commit(lock, path, *req.storage, std::move(ops)));
        return Response::Empty();
      }
      default:
        return core::UnsupportedOperation();
    }
  }

  // Read-modify-write of one key's metadata is serialised (CAS correctness) by the stripe its path
  // hashes to; writes to different keys run concurrently.
  static constexpr size_t kLockStripes = 64;
  static size_t StripeOf(const std::string& path) {
    return std::hash<std::string>{}(path) % kLockStripes;
  }
  // Reads of a key share its stripe (StripeLock).
  StripeLock& LockFor(const std::string& path) { return stripes_[StripeOf(path)]; }
  std::array<StripeLock, kLockStripes> stripes_;

  // The write half of a read-modify-write of `path`, whose stripe `lock` holds: submits `ops` in
  // the storage's commit order while the stripe is held, releases the stripe, then waits until
  // they are durable (the answer is sent only then). So the stripe is not held across the sync:
  // the next writer of the path reads this write (GetJson with `latest`: GetLatest) and queues
  // its own behind it, and writers of one path share a sync instead of taking one each. If this
  // write fails, the storage fails every later one with it, so nothing built on it survives.
  absl::Status Commit(std::unique_lock<StripeLock>& lock, const std::string& path,
                      storage::Storage& s, std::vector<storage::BatchOp> ops) {
    std::shared_ptr<storage::PendingWrite> pending = s.Submit(std::move(ops));
    {
      StripeWrites& w = writes_[StripeOf(path)];
      std::lock_guard<std::mutex> wl(w.mu);
      w.last = pending;
    }
    lock.unlock();
    return pending->Wait();
  }
  // A reader, holding the stripe of `path`, first waits for the stripe's last submitted write:
  // it then reads only durable state, which does not change while it holds the stripe (no write
  // is submitted under it, and writes commit in submission order). A failed write leaves the
  // committed state, which the storage then no longer changes.
  void AwaitWrites(const std::string& path) {
    std::shared_ptr<storage::PendingWrite> last;
    {
      StripeWrites& w = writes_[StripeOf(path)];
      std::lock_guard<std::mutex> wl(w.mu);
      last = w.last;
    }
    if (last != nullptr && !last->Done()) last->Wait().IgnoreError();
  }
  struct StripeWrites {
    std::mutex mu;
    std::shared_ptr<storage::PendingWrite> last;  // the stripe's last submitted write
  };
  std::array<StripeWrites, kLockStripes> writes_;
  std::mutex config_mu_;
};

}  // namespace

void NormalizeKvMount(core::MountEntry& entry) {
  if (entry.type == "kv-v2") {
    entry.type = "kv";
    entry.options["version"] = "2";
  }
  if (entry.options.find("version") == entry.options.end()) entry.options["version"] = "1";
}

absl::StatusOr<std::unique_ptr<core::Backend>> MakeKvBackend(const core::MountEntry& entry) {
  auto it = entry.options.find("version");
  const std::string version = it == entry.options.end() ? "1" : it->second;
  if (version == "2") return std::unique_ptr<core::Backend>(std::make_unique<KvV2>());
  if (version == "1" || version.empty())
    return std::unique_ptr<core::Backend>(std::make_unique<KvV1>());
  return absl::InvalidArgumentError(absl::StrCat("unsupported KV version \"", version, "\""));
}

}  // namespace strongroom::engines
