// The worker's translation between HTTP and the broker protocol, free of any socket code so it
// can be unit-tested and fuzzed. DecodeRequest turns an HTTP request into a typed ipc::Request
// (or answers at once for what the worker itself rejects: bad method, bad JSON, a body over the
// JSON limits, bad query, PATCH without merge-patch). EncodeResponse is the one place where an
// error status becomes an HTTP status and where the Vault envelope is built.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "appliance/core/json_limits.h"
#include "appliance/ipc/protocol.h"

namespace strongroom::worker {

struct HttpIn {
  std::string method;
  std::string target;         // path and query
  std::string vault_token;    // X-Vault-Token
  std::string authorization;  // Authorization
  std::string content_type;
  std::string accept;           // Accept (sys/metrics: the Prometheus format by content type)
  std::string wrap_ttl;         // X-Vault-Wrap-TTL
  std::string vault_namespace;  // X-Vault-Namespace
  bool no_request_forwarding = false;
  std::string body;
  std::string remote_address;
  uint16_t remote_port = 0;
};

struct HttpOut {
  unsigned status = 200;
  std::string body;  // empty for 204 and HEAD
  bool head_only = false;
  std::string redirect_to;   // Location = redirect_to + the request target (307 from a standby)
  std::string content_type;  // empty: application/json
  std::string content_disposition;  // e.g. a snapshot's attachment; empty: none
};

using Decoded = std::variant<ipc::Request, HttpOut>;

// Vault's sys/metrics answers in the Prometheus format when asked by the Accept header (the
// first value starts with application/openmetrics-text, or any names prometheus/telemetry), as
// Prometheus' scrapes do; DecodeRequest then adds format=prometheus to a read of sys/metrics
// that has no format parameter.
bool AcceptsPrometheus(std::string_view accept);

// A body is checked against `limits` (one pass over its bytes) before it is parsed: over one of
// them it is answered as Vault (or OpenBao) answers it (JsonLimitStatus) and never parsed.
Decoded DecodeRequest(const HttpIn& in, const core::JsonLimits& limits);
HttpOut EncodeResponse(const ipc::Response& resp);

// sys/storage/raft/snapshot[-force]: the body is the binary snapshot archive, not JSON. It
// travels to and from the broker as base64 strings in data.snapshot (engines/raft_snapshot.h);
// a body over kMaxSnapshotBytes, or one whose base64 would break the listener's JSON limits, is
// answered 413 here.
inline constexpr size_t kMaxSnapshotBytes = 16u << 20;  // = storage::kMaxSnapshotBytes
bool IsSnapshotPath(std::string_view path);
// Whether an HTTP request target (as sent: /v1/..., query and percent-encoding included) names a
// snapshot path: its body is bounded by kMaxSnapshotBytes from its header on, before it is read.
bool IsSnapshotTarget(std::string_view target);
// The 413 for a snapshot body over kMaxSnapshotBytes (`size` when known, 0 when not).
HttpOut SnapshotTooLarge(uint64_t size);
// The answer to a snapshot read: the archive's bytes as application/octet-stream (anything but
// a 200 with a snapshot is encoded as EncodeResponse does).
HttpOut EncodeSnapshotResponse(const ipc::Response& resp);
HttpOut ErrorOut(unsigned status, const std::vector<std::string>& errors);

// The status for a body over a JSON limit: Vault answers 500 for its four limits (and the
// number length), OpenBao 400 for estimated memory and the number of strings.
unsigned JsonLimitStatus(core::JsonLimit limit);

// Status code for an absl::StatusCode carried in Response.error_code (ipc/protocol.h).
using ipc::HttpStatusFor;

}  // namespace strongroom::worker
