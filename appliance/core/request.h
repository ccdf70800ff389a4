// The broker's typed request and response, what every backend sees.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "appliance/core/json.h"
#include "appliance/storage/storage.h"

namespace strongroom::core {

enum class Operation { kRead, kList, kCreate, kUpdate, kPatch, kDelete, kHead };
std::string_view OperationName(Operation op);

struct MountEntry;
struct TokenEntry;

struct Request {
  Operation operation = Operation::kRead;
  std::string path;  // full logical path, e.g. "secret/data/app"
  json::object data;
  bool has_data = false;
  std::string client_token;  // never logged
  std::string remote_address;
  uint32_t remote_port = 0;
  std::string request_id;
  // X-Vault-Wrap-TTL in seconds; 0 = the response is not to be wrapped.
  int64_t wrap_ttl = 0;

  // Filled by the pipeline before the backend runs.
  const TokenEntry* token = nullptr;
  bool token_is_root = false;   // holds the root policy
  bool token_has_sudo = false;  // root, or sudo on this path (Vault's RootPrivs)
  const MountEntry* mount = nullptr;
  std::string mount_path;               // "secret/"
  std::string mount_type;               // "kv"
  std::string rel_path;                 // path below the mount: "data/app"
  storage::Storage* storage = nullptr;  // the mount's barrier view
};

struct Response {
  enum class Kind { kLogical, kRaw, kEmpty };
  Kind kind = Kind::kLogical;
  int http_status = 200;
  std::optional<json::object> data;  // logical data (null when absent); for kRaw the body
  std::optional<json::object> auth;
  std::vector<std::string> warnings;
  std::string lease_id;
  bool renewable = false;
  int64_t lease_duration = 0;
  bool inject_data = false;  // Vault's legacy top-level copy of data keys
  bool head_only = false;
  // Set when the response is wrapped: Vault's wrap_info (the data and auth are then null).
  std::optional<json::object> wrap_info;
  // kRaw with a body that is not JSON (sys/metrics?format=prometheus): sent as it is, with
  // this Content-Type; `data` is then unused.
  std::string content_type;
  std::string body;

  static Response Empty() {
    Response r;
    r.kind = Kind::kEmpty;
    r.http_status = 204;
    return r;
  }
  static Response Data(json::object d) {
    Response r;
    r.data = std::move(d);
    return r;
  }
  static Response RawText(std::string content_type, std::string text, int status = 200) {
    Response r;
    r.kind = Kind::kRaw;
    r.content_type = std::move(content_type);
    r.body = std::move(text);
    r.http_status = status;
    return r;
  }
  static Response Raw(json::object body, int status = 200) {
    Response r;
    r.kind = Kind::kRaw;
    r.data = std::move(body);
    r.http_status = status;
    return r;
  }
};

// Vault's removed token-store path forms carried a token or accessor in the URL
// (auth/token/lookup/<token>, renew/, revoke/, revoke-orphan/, lookup-accessor/<accessor>,
// renew-accessor/, revoke-accessor/). strongroom serves none of them, but a client may still send
// one: the offset in `path` where that credential starts (the prefix matched in any letter case),
// or npos. Audit records show it as a digest and the broker log as "***".
size_t CredentialOffsetInPath(std::string_view path);
// `path` as the broker log may show it: such a credential replaced by "***".
std::string LoggablePath(std::string_view path);

// Create or update: what Vault's POST and PUT become.
inline bool IsWrite(const Request& req) {
  return req.operation == Operation::kCreate || req.operation == Operation::kUpdate;
}

// Vault's 400 with `msg` as its error.
inline absl::Status Bad(std::string_view msg) {
  return absl::InvalidArgumentError(absl::string_view(msg.data(), msg.size()));
}

// Vault's 405 "unsupported operation": the path exists but not for this operation.
inline absl::Status UnsupportedOperation() {
  return absl::Status(absl::StatusCode::kUnimplemented, "unsupported operation");
}

// A 500 whose message the client may see (after Vault's "internal error"): for failures the
// operator must be told about plainly, such as the audit log refusing a request. Other internal
// errors keep their detail in the broker log only.
inline constexpr std::string_view kPublicDetailPayload = "strongroom/public-detail";
inline absl::Status InternalErrorWithPublicDetail(std::string_view message) {
  absl::Status s(absl::StatusCode::kInternal, absl::string_view(message.data(), message.size()));
  s.SetPayload(absl::string_view(kPublicDetailPayload.data(), kPublicDetailPayload.size()),
               absl::Cord("1"));
  return s;
}

// Errors backends return (absl codes; the worker's encoder is the only map to HTTP):
//   InvalidArgument -> 400, PermissionDenied -> 403, NotFound -> 404 (empty errors list when the
//   message is empty), Unimplemented -> 405 "unsupported operation", Unavailable -> 503,
//   ResourceExhausted -> 429, FailedPrecondition -> 400, anything else -> 500 "internal error".

}  // namespace strongroom::core
