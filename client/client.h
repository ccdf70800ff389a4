// The Vault-API client every client-side program shares (OpenBao's api/ package is the model:
// one client object, one typed response, one error shape). Synchronous; not thread-safe (one
// owner thread, as the agent's loop). It holds a token, never a key.
//
// Errors (absl::Status; the HTTP status is kept as a payload, HttpStatusOf):
//   the server answered non-2xx: the code mapped (400 InvalidArgument, 401/403 PermissionDenied,
//     404 NotFound, 405 Unimplemented, 412 FailedPrecondition, 429 ResourceExhausted,
//     500 Internal, 502/503/504 Unavailable), the message as Vault's api package prints it:
//     "Error making API request.\n\nURL: GET <addr>/v1/<path>\nCode: 403. Errors:\n\n* ..."
//   no answer: Unavailable from client/http (resolve, connect, TLS, timeouts)
//   a 2xx body that is not a JSON object: Internal
// Error messages never hold the token; the server's own messages are passed on as sent.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "appliance/core/json.h"
#include "client/http.h"

namespace strongroom::client {

namespace json = boost::json;

struct Config {
  std::string address = "https://127.0.0.1:8200";  // VAULT_ADDR
  http::TlsOptions tls;
  absl::Duration timeout = absl::Seconds(60);  // Vault's api default
  uint64_t max_response_bytes = 32 << 20;
  std::string namespace_;  // VAULT_NAMESPACE: sent as X-Vault-Namespace when set
};

// The "auth" object of a login or token response.
struct Auth {
  std::string client_token;
  std::string accessor;
  std::vector<std::string> policies;
  int64_t lease_duration = 0;  // seconds
  bool renewable = false;
};

// The "wrap_info" of a response-wrapped answer (Vault's api.SecretWrapInfo): the single-use
// wrapping token that unwraps to the real response, and where and when it was made.
struct WrapInfo {
  std::string token;
  std::string accessor;
  int64_t ttl = 0;               // seconds
  std::string creation_time;     // RFC 3339, as the server sent it
  std::string creation_path;     // the request path whose response is inside
  std::string wrapped_accessor;  // the accessor of a token inside (a wrapped login), else ""
};

// The JSON Vault Agent writes to a sink for a wrapped token (api.SecretWrapInfo encoded by Go:
// token, accessor, ttl, creation_time, creation_path, wrapped_accessor, in that order, compact,
// with a final newline).
std::string WrapInfoJson(const WrapInfo& w);

// A response body in Vault's shape.
struct Secret {
  std::string request_id;
  std::string lease_id;
  int64_t lease_duration = 0;
  bool renewable = false;
  json::value data;  // null when absent
  std::vector<std::string> warnings;
  std::optional<Auth> auth;
  std::optional<WrapInfo> wrap_info;  // a wrapped response: data and auth are then empty
  json::object raw;                   // the whole body
};

// What one request may change from the client's defaults.
struct RequestOptions {
  // X-Vault-Wrap-TTL ("5m", "300"): nullopt takes the client's (SetWrapTtl, else Vault's
  // default of 5m for a write to sys/wrapping/wrap); "" sends none.
  std::optional<std::string> wrap_ttl;
};

// Vault's default wrapping TTL for sys/wrapping/wrap when none is given (api.DefaultWrappingTTL).
inline constexpr std::string_view kDefaultWrappingTtl = "5m";

// The HTTP status of an error returned by Client (0 when the server gave no answer).
int HttpStatusOf(const absl::Status& status);

// When a token of `lease_seconds` should be renewed (or replaced, when it cannot be renewed):
// two thirds into its lease, at least one second after it was obtained. The agent's auto-auth
// and the CSI provider's token cache both follow it.
absl::Duration RenewAfter(int64_t lease_seconds);

class Client {
 public:
  static absl::StatusOr<Client> Create(Config config);

  void SetToken(std::string token) { token_ = std::move(token); }
  const std::string& token() const { return token_; }
  void ClearToken() { token_.clear(); }
  const Config& config() const { return config_; }

  // Response wrapping for every request (the CLI's -wrap-ttl): X-Vault-Wrap-TTL with this value
  // ("" turns it off). A request's RequestOptions::wrap_ttl wins over it.
  void SetWrapTtl(std::string ttl) { wrap_ttl_ = std::move(ttl); }
  const std::string& wrap_ttl() const { return wrap_ttl_; }

  // One request to /v1/<path>[?query]; `body` is sent as JSON when given (PATCH as a JSON merge
  // patch). A 204 gives an empty Secret. `query` is already URL-encoded ("version=2").
  absl::StatusOr<Secret> Request(std::string_view method, std::string_view path,
                                 const json::object* body = nullptr, std::string_view query = "",
                                 const RequestOptions& options = RequestOptions());

  // Response wrapping (Vault API: sys/wrapping). Unwrap follows Vault's api Logical().Unwrap:
  // an empty `wrapping_token` unwraps the client's own token; a token that is not the client's
  // goes in the body, unless the client has no token, when it is sent as the client token.
  // The answer is the response that was wrapped (its data, auth, warnings).
  absl::StatusOr<Secret> Unwrap(std::string_view wrapping_token);
  // sys/wrapping/wrap: `data` wrapped for `ttl` ("5m"), with the client's token.
  absl::StatusOr<WrapInfo> Wrap(const json::object& data, std::string_view ttl);
  // sys/wrapping/lookup: creation_path, creation_time and creation_ttl of a wrapping token
  // (no token needed, nothing spent).
  absl::StatusOr<Secret> WrapLookup(std::string_view wrapping_token);

  // A request whose bodies are bytes, not JSON (sys/storage/raft/snapshot): `body`, when given,
  // is sent as application/octet-stream; a 2xx answer's body is returned as it came (at most
  // Config::max_response_bytes). Errors as Request's.
  absl::StatusOr<std::string> RequestRaw(std::string_view method, std::string_view path,
                                         const std::string* body = nullptr,
                                         std::string_view query = "");

  // The CLI's -output-curl-string: while set, Request sends nothing, writes the equivalent curl
  // command to *sink (the token as $(strongroom print token), never its value) and returns
  // CurlPrinted().
  void SetCurlSink(std::string* sink) { curl_sink_ = sink; }
  std::string* curl_sink() const { return curl_sink_; }
  static absl::Status CurlPrinted();
  static bool IsCurlPrinted(const absl::Status& s);
  absl::StatusOr<Secret> Read(std::string_view path) { return Request("GET", path); }
  absl::StatusOr<Secret> Write(std::string_view path, const json::object& data) {
    return Request("PUT", path, &data);
  }

  // A login request to <mount>/login ("auth/approle" or "approle") as it came back: with
  // options.wrap_ttl the answer holds wrap_info, not auth. Does not set the token.
  absl::StatusOr<Secret> LoginRequest(std::string_view mount_path, const json::object& body,
                                      const RequestOptions& options = RequestOptions());

  // Auth methods (Vault API: auth/<mount>/login). They do not set the token; the caller does.
  absl::StatusOr<Auth> LoginKubernetes(std::string_view mount_path, std::string_view role,
                                       std::string_view jwt);
  absl::StatusOr<Auth> LoginAppRole(std::string_view mount_path, std::string_view role_id,
                                    std::string_view secret_id);
  // auth/token/renew-self with an optional increment (0: the server's choice).
  absl::StatusOr<Auth> RenewSelf(int64_t increment_seconds);
  // auth/token/lookup-self: the token's data (ttl, renewable, policies, ...).
  absl::StatusOr<Secret> LookupSelf() { return Read("auth/token/lookup-self"); }

 private:
  Client(Config config, http::Url url) : config_(std::move(config)), url_(std::move(url)) {}
  absl::StatusOr<Auth> Login(std::string_view mount_path, const json::object& body);
  // The request as sent (target, headers); CheckPath'd. Request and RequestRaw add the body.
  absl::StatusOr<http::Request> Prepare(std::string_view method, std::string_view path,
                                        std::string_view query,
                                        const RequestOptions& options = RequestOptions()) const;
  // Sends `req` (or prints it for -output-curl-string); non-2xx answers become errors.
  absl::StatusOr<http::Response> Send(const http::Request& req) const;

  Config config_;
  http::Url url_;
  std::string token_;
  std::string wrap_ttl_;
  std::string* curl_sink_ = nullptr;
};

// Reads a response body (exposed for tests).
absl::StatusOr<Secret> ParseSecret(std::string_view body);

}  // namespace strongroom::client
