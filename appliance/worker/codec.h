// The worker's translation between HTTP and the broker protocol, free of any socket code so it
// can be unit-tested and fuzzed. DecodeRequest turns an HTTP request into a typed ipc::Request
// (or answers at once for what the worker itself rejects: bad method, bad JSON, bad query,
// PATCH without merge-patch). EncodeResponse is the one place where an error status becomes an
// HTTP status and where the Vault envelope is built.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "appliance/ipc/protocol.h"

namespace strongroom::worker {

struct HttpIn {
  std::string method;
  std::string target;         // path and query
  std::string vault_token;    // X-Vault-Token
  std::string authorization;  // Authorization
  std::string content_type;
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
  std::string redirect_to;  // Location = redirect_to + the request target (307 from a standby)
};

using Decoded = std::variant<ipc::Request, HttpOut>;

Decoded DecodeRequest(const HttpIn& in, unsigned max_json_depth);
HttpOut EncodeResponse(const ipc::Response& resp);
HttpOut ErrorOut(unsigned status, const std::vector<std::string>& errors);

// Status code for an absl::StatusCode carried in Response.error_code.
unsigned HttpStatusFor(int absl_code);

}  // namespace strongroom::worker
