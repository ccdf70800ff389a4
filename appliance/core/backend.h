// The one interface every secrets engine, auth method and the system backend implements, and
// the engine table ({type, factory}) the router builds mounts from. No engine includes another.
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "appliance/core/request.h"
#include "appliance/core/route.h"

namespace strongroom::core {

class Core;

struct MountConfig {
  int64_t default_lease_ttl = 0;  // seconds; 0 = system default
  int64_t max_lease_ttl = 0;
  bool force_no_cache = false;
  std::vector<std::string> audit_non_hmac_request_keys;
  std::vector<std::string> audit_non_hmac_response_keys;
  std::string listing_visibility;
  std::vector<std::string> passthrough_request_headers;
  std::vector<std::string> allowed_response_headers;
};

struct MountEntry {
  std::string path;  // "secret/" (relative to the table: auth mounts omit "auth/")
  std::string type;  // "kv", "system", ...
  std::string description;
  std::string uuid;
  std::string accessor;  // "kv_1a2b3c4d"
  bool local = false;
  bool seal_wrap = false;
  bool external_entropy_access = false;
  std::map<std::string, std::string> options;  // e.g. version = "2"
  MountConfig config;
  int64_t created_unix = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  // The canonical spelling of a path relative to the mount: the names this backend treats
  // case-insensitively (policy names, AppRole and Kubernetes role names) lower-cased. Core applies
  // it once, right after routing and before Exists, the ACL, the audit log and Handle, so all of
  // them see one name. It may change letter case only (Core refuses anything else).
  virtual std::string NormalizePath(const std::string& rel_path) const { return rel_path; }
  // For update requests: does the target exist? Returning false turns the operation into
  // create (ACL then needs "create"). Backends without the notion return true.
  virtual absl::StatusOr<bool> Exists(const Request& req) {
    (void)req;
    return true;
  }
  virtual absl::StatusOr<Response> Handle(Request& req) = 0;
  // The paths this backend serves (core/route.h). The core answers a request no route matches
  // (or with an operation its route does not take) before Handle runs, and the OpenAPI document
  // is generated from this table. Empty: the backend declares none (every path reaches Handle,
  // and the OpenAPI document has nothing for it).
  virtual std::span<const Route> Routes() const { return {}; }
  // The answer to a request no route matches (Vault's 404 "unsupported path" by default; KV v2
  // answers with its "invalid path" warning, as Vault does).
  virtual absl::StatusOr<Response> UnmatchedRoute(const Request& req) {
    (void)req;
    return absl::NotFoundError("unsupported path");
  }
  // Called once when the mount is created for the first time (not on every load).
  virtual absl::Status Initialize(storage::Storage& view) {
    (void)view;
    return absl::OkStatus();
  }
  // Root-protected ("sudo") paths of this backend, relative to the mount.
  virtual bool IsRootPath(const std::string& rel_path) const {
    (void)rel_path;
    return false;
  }
  // Paths reached without a token (an auth method's login). The request is still audited.
  virtual bool IsUnauthenticatedPath(const std::string& rel_path) const {
    (void)rel_path;
    return false;
  }
  // The mount is being disabled (sys/mounts DELETE): its storage view is still readable and is
  // deleted right after. For what lives outside storage (Transit's token objects).
  virtual void Unmounting(storage::Storage& view) { (void)view; }
  // Background work (e.g. Transit's auto-rotation), called about once a second while unsealed
  // with the mount's storage view.
  virtual void Periodic(storage::Storage& view, absl::Time now) {
    (void)view;
    (void)now;
  }
};

// The router's entry to a backend: Handle behind the route table (Routes, UnmatchedRoute).
absl::StatusOr<Response> HandleRouted(Backend& backend, Request& req);

// For NormalizePath: `rel_path` with the one path segment that follows `prefix` lower-cased
// ("role/WEB/secret-id" -> "role/web/secret-id" for prefix "role/"); unchanged otherwise.
inline std::string LowerSegmentAfter(const std::string& rel_path, std::string_view prefix) {
  if (!rel_path.starts_with(prefix)) return rel_path;
  std::string out = rel_path;
  const size_t end = std::min(out.find('/', prefix.size()), out.size());
  for (size_t i = prefix.size(); i < end; ++i) {
    if (out[i] >= 'A' && out[i] <= 'Z') out[i] = static_cast<char>(out[i] - 'A' + 'a');
  }
  return out;
}

// `core` gives engines that need them the seal (Transit's keys) and the options.
using BackendFactory =
    std::function<absl::StatusOr<std::unique_ptr<Backend>>(const MountEntry& entry, Core* core)>;

struct EngineType {
  std::string type;
  std::string accessor_prefix;  // "kv" -> "kv_1a2b3c4d"
  BackendFactory factory;
  // Normalises the mount request (e.g. "kv-v2" -> kv + version 2). Optional.
  std::function<void(MountEntry&)> normalize;
  // An auth method (mounted through sys/auth under auth/), not a secrets engine.
  bool auth = false;
};

}  // namespace strongroom::core
