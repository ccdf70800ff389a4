// A synchronous HTTP/1.1 client for one exchange at a time, over TLS or plain TCP: what the
// broker's Kubernetes TokenReview and every client-side program (agent, injector, CLI) use to
// talk to a server. One connection per call; the timeout bounds the whole exchange (resolve,
// connect, TLS handshake, write, read): when it passes, the socket is closed, and name
// resolution runs on a detached thread so a slow resolver cannot hold the call either.
//
// TLS: TLS 1.2 or later; the peer is verified unless TlsOptions::skip_verify (against ca_pem,
// else ca_file/ca_path, else the system's default verify paths), and so is the host name,
// against the certificate's DNS or IP address SANs (never the subject CN, as Go). Errors:
//   InvalidArgument  bad URL, unusable CA or client certificate
//   Unavailable      resolve/connect/TLS/read/write failures, timeouts, oversized responses:
//                    "<label> to host:port failed: <stage>: <reason>" or "... timed out after
//                    <timeout> during <stage>"
// A response with any status code is OK; judging it is the caller's business.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace strongroom::http {

struct Url {
  bool tls = true;
  std::string host;  // DNS name or IP literal (IPv6 without brackets)
  uint16_t port = 443;
  bool is_ip = false;     // no SNI; the certificate must name the address
  std::string authority;  // Host header: as written in the URL ("[::1]:6443", "kube")
  std::string prefix;     // path prefix without a trailing slash ("" or "/k8s")
  // "host:port" ("[::1]:8200" for IPv6), for messages.
  std::string Where() const;
};

// Parses "https://host[:port][/prefix]" (and "http://..." when allow_http). `what` names the
// setting in errors ("kubernetes_host must be an https:// URL"). No user information, query or
// fragment; the host is a DNS name or an IP literal; one trailing slash of the prefix is dropped.
absl::StatusOr<Url> ParseUrl(std::string_view url, std::string_view what, bool allow_http);

struct TlsOptions {
  std::string ca_pem;   // trusted CAs as PEM text
  std::string ca_file;  // or a PEM file
  std::string ca_path;  // or a directory of hashed certificates (c_rehash)
  bool skip_verify = false;
  std::string client_cert_file, client_key_file;  // both or neither
  std::string server_name;                        // SNI and name to verify; default Url::host
};

struct Request {
  std::string method = "GET";
  std::string target;  // path and query, appended to Url::prefix
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct Response {
  unsigned status = 0;
  std::string reason;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

struct Limits {
  uint32_t max_header_bytes = 64 * 1024;
  uint64_t max_body_bytes = 1 << 20;
};

// No spaces, control characters or bytes >= 0x80 (bearer tokens, host names).
bool IsPrintableAscii(std::string_view s);

// `label` starts every error ("TokenReview request").
absl::StatusOr<Response> Fetch(const Url& url, const TlsOptions& tls, const Request& request,
                               absl::Duration timeout, const Limits& limits,
                               std::string_view label);

}  // namespace strongroom::http
