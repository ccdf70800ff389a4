#include "appliance/engines/kv_backend.h"

#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace strongroom::engines {
namespace {

using core::json::array;
using core::json::object;
using core::json::value;
using core::Operation;
using core::Request;
using core::Response;

constexpr int64_t kDefaultMaxVersions = 10;

absl::Status Unsupported() { return absl::UnimplementedError("unsupported operation"); }
absl::Status NotFoundEmpty() { return absl::NotFoundError(""); }

bool IsWrite(Operation op) { return op == Operation::kCreate || op == Operation::kUpdate; }

absl::StatusOr<std::optional<object>> GetJson(storage::Storage& s, const std::string& key) {
  ASSIGN_OR_RETURN(auto raw, s.Get(key));
  if (!raw) return std::optional<object>();
  ASSIGN_OR_RETURN(auto o, core::ParseObject(*raw));
  return std::optional<object>(std::move(o));
}

std::string Now(const Request&) { return core::FormatRfc3339Nano(absl::Now()); }

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
        return Unsupported();
    }
  }
};

// KV version 2. Storage below the mount view:
//   config                   {"max_versions","cas_required","delete_version_after"}
//   metadata/<path>          key metadata with the per-version table
//   versions/<path>/<n>      the data of version n
class KvV2 final : public core::Backend {
 public:
  absl::StatusOr<bool> Exists(const Request& req) override {
    const std::string& p = req.rel_path;
    for (std::string prefix : {"data/", "metadata/"}) {
      if (absl::StartsWith(p, prefix)) {
        ASSIGN_OR_RETURN(auto v, req.storage->Get(absl::StrCat("metadata/", p.substr(prefix.size()))));
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
    Response r;
    r.http_status = 404;
    r.warnings.push_back(
        "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API "
        "endpoints to use. If using the Vault CLI, use 'vault kv get' for this operation.");
    return r;
  }

 private:
  struct MountConfig {
    int64_t max_versions = 0;
    bool cas_required = false;
    int64_t delete_version_after = 0;
  };

  absl::StatusOr<MountConfig> LoadConfig(storage::Storage& s) {
    MountConfig c;
    ASSIGN_OR_RETURN(auto o, GetJson(s, "config"));
    if (o) {
      c.max_versions = GetInt(*o, "max_versions").value_or(std::nullopt).value_or(0);
      c.cas_required = core::GetBool(*o, "cas_required").value_or(std::nullopt).value_or(false);
      c.delete_version_after = GetInt(*o, "delete_version_after").value_or(std::nullopt).value_or(0);
    }
    return c;
  }
  static absl::StatusOr<std::optional<int64_t>> GetInt(const object& o, std::string_view k) {
    return core::GetInt(o, k);
  }

  absl::StatusOr<Response> Config(Request& req) {
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(auto c, LoadConfig(*req.storage));
    if (req.operation == Operation::kRead) {
      object d;
      d["cas_required"] = c.cas_required;
      d["delete_version_after"] = core::FormatGoDuration(c.delete_version_after);
      d["max_versions"] = c.max_versions;
      return Response::Data(std::move(d));
    }
    if (!IsWrite(req.operation)) return Unsupported();
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

  static object VersionMeta(const object& meta, int64_t version) {
    object out;
    const object& versions = meta.at("versions").as_object();
    const object& v = versions.at(std::to_string(version)).as_object();
    out["created_time"] = v.at("created_time");
    out["custom_metadata"] = meta.contains("custom_metadata") ? meta.at("custom_metadata") : value(nullptr);
    out["deletion_time"] = v.at("deletion_time");
    out["destroyed"] = v.at("destroyed");
    out["version"] = version;
    return out;
  }

  static bool IsDeleted(const object& v) {
    const auto& dt = v.at("deletion_time").as_string();
    if (dt.empty()) return false;
    absl::Time t;
    std::string err;
    if (!absl::ParseTime(absl::RFC3339_full, std::string(dt), &t, &err)) return true;
    return t <= absl::Now();
  }

  absl::StatusOr<Response> Data(Request& req, const std::string& path) {
    if (path.empty()) return absl::InvalidArgumentError("missing path");
    std::lock_guard<std::mutex> lock(mu_);
    const std::string meta_key = absl::StrCat("metadata/", path);
    ASSIGN_OR_RETURN(auto meta, GetJson(*req.storage, meta_key));
    switch (req.operation) {
      case Operation::kRead: {
        if (!meta) return NotFoundEmpty();
        int64_t version = meta->at("current_version").as_int64();
        ASSIGN_OR_RETURN(auto want, core::GetInt(req.data, "version"));
        if (want && *want != 0) version = *want;
        const object& versions = meta->at("versions").as_object();
        auto it = versions.find(std::to_string(version));
        if (it == versions.end()) return NotFoundEmpty();
        object d;
        d["metadata"] = VersionMeta(*meta, version);
        const object& v = it->value().as_object();
        if (v.at("destroyed").as_bool() || IsDeleted(v)) {
          d["data"] = nullptr;
          Response r = Response::Data(std::move(d));
          r.http_status = 404;
          return r;
        }
        ASSIGN_OR_RETURN(auto data, GetJson(*req.storage, absl::StrCat("versions/", path, "/", version)));
        d["data"] = data ? value(std::move(*data)) : value(nullptr);
        return Response::Data(std::move(d));
      }
      case Operation::kCreate:
      case Operation::kUpdate: {
        auto dit = req.data.find("data");
        if (dit == req.data.end() || !dit->value().is_object()) {
          return absl::InvalidArgumentError("no data provided");
        }
        ASSIGN_OR_RETURN(auto config, LoadConfig(*req.storage));
        std::optional<int64_t> cas;
        if (auto oit = req.data.find("options"); oit != req.data.end() && oit->value().is_object()) {
          ASSIGN_OR_RETURN(cas, core::GetInt(oit->value().as_object(), "cas"));
        }
        const int64_t current = meta ? meta->at("current_version").as_int64() : 0;
        const bool key_cas_required = meta && meta->at("cas_required").as_bool();
        if ((config.cas_required || key_cas_required) && !cas) {
          return absl::InvalidArgumentError("check-and-set parameter required for this call");
        }
        if (cas && *cas != current) {
          return absl::InvalidArgumentError("check-and-set parameter did not match the current version");
        }
        const std::string now = Now(req);
        if (!meta) {
          meta.emplace();
          (*meta)["created_time"] = now;
          (*meta)["current_version"] = 0;
          (*meta)["oldest_version"] = 0;
          (*meta)["max_versions"] = 0;
          (*meta)["cas_required"] = false;
          (*meta)["delete_version_after"] = 0;
          (*meta)["custom_metadata"] = nullptr;
          (*meta)["versions"] = object();
        }
        const int64_t version = current + 1;
        object v;
        v["created_time"] = now;
        v["deletion_time"] = "";
        v["destroyed"] = false;
        (*meta)["versions"].as_object()[std::to_string(version)] = std::move(v);
        (*meta)["current_version"] = version;
        (*meta)["updated_time"] = now;
        if ((*meta)["oldest_version"].as_int64() == 0) (*meta)["oldest_version"] = 1;
        std::vector<storage::BatchOp> ops;
        ops.push_back(storage::BatchOp::Put(absl::StrCat("versions/", path, "/", version),
                                            core::Serialize(dit->value())));
        // Prune versions beyond max_versions (key setting, else mount setting, else 10).
        int64_t max = (*meta)["max_versions"].as_int64();
        if (max == 0) max = config.max_versions;
        if (max == 0) max = kDefaultMaxVersions;
        auto& versions = (*meta)["versions"].as_object();
        for (int64_t old = (*meta)["oldest_version"].as_int64(); old <= version - max; ++old) {
          versions.erase(std::to_string(old));
          ops.push_back(storage::BatchOp::Delete(absl::StrCat("versions/", path, "/", old)));
          (*meta)["oldest_version"] = old + 1;
        }
        ops.push_back(storage::BatchOp::Put(meta_key, core::Serialize(*meta)));
        RETURN_IF_ERROR(req.storage->Apply(ops));
        object out = VersionMeta(*meta, version);
        return Response::Data(std::move(out));
      }
      case Operation::kDelete: {
        if (!meta) return Response::Empty();
        const int64_t current = meta->at("current_version").as_int64();
        auto& versions = (*meta)["versions"].as_object();
        auto it = versions.find(std::to_string(current));
        if (it == versions.end()) return Response::Empty();
        auto& v = it->value().as_object();
        if (v.at("destroyed").as_bool() || IsDeleted(v)) return Response::Empty();
        v["deletion_time"] = Now(req);
        RETURN_IF_ERROR(req.storage->Put(meta_key, core::Serialize(*meta)));
        return Response::Empty();
      }
      default:
        return Unsupported();
    }
  }

  absl::StatusOr<Response> Metadata(Request& req, const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    if (req.operation == Operation::kList) return ListKeys(*req.storage, absl::StrCat("metadata/", path));
    if (path.empty()) return absl::InvalidArgumentError("missing path");
    const std::string meta_key = absl::StrCat("metadata/", path);
    ASSIGN_OR_RETURN(auto meta, GetJson(*req.storage, meta_key));
    switch (req.operation) {
      case Operation::kRead: {
        if (!meta) return NotFoundEmpty();
        object d;
        d["cas_required"] = meta->at("cas_required");
        d["created_time"] = meta->at("created_time");
        d["current_version"] = meta->at("current_version");
        d["custom_metadata"] = meta->at("custom_metadata");
        d["delete_version_after"] = core::FormatGoDuration(meta->at("delete_version_after").as_int64());
        d["max_versions"] = meta->at("max_versions");
        d["oldest_version"] = meta->at("oldest_version");
        d["updated_time"] = meta->contains("updated_time") ? meta->at("updated_time") : meta->at("created_time");
        d["versions"] = meta->at("versions");
        return Response::Data(std::move(d));
      }
      case Operation::kDelete: {
        if (!meta) return Response::Empty();
        std::vector<storage::BatchOp> ops;
        for (const auto& [k, v] : meta->at("versions").as_object()) {
          ops.push_back(storage::BatchOp::Delete(absl::StrCat("versions/", path, "/", std::string(k))));
        }
        ops.push_back(storage::BatchOp::Delete(meta_key));
        RETURN_IF_ERROR(req.storage->Apply(ops));
        return Response::Empty();
      }
      default:
        return Unsupported();
    }
  }

  std::mutex mu_;  // read-modify-write of a key's metadata is serialised (CAS correctness)
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
  if (version == "1" || version.empty()) return std::unique_ptr<core::Backend>(std::make_unique<KvV1>());
  return absl::InvalidArgumentError(absl::StrCat("unsupported KV version \"", version, "\""));
}

}  // namespace strongroom::engines
