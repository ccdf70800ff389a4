// The injector's HTTPS server (the one translation unit of the injector that compiles
// Beast/Asio): POST /mutate hands the body to a handler, GET /health/ready answers 200. Bounded
// like the apiserver's own limits: a 3 MiB body, a 16 KiB header, read and write deadlines. TLS
// 1.2 or later with the certificate and key read from files, read again when either file changes
// on disk (a rotated Secret), checked before each new handshake.
//
// Against clients that only hold resources (any pod in the cluster can connect unless a
// NetworkPolicy narrows it): a short handshake deadline; a cap on connections where a new
// connection takes the place of the oldest one that is still handshaking or waiting for a request
// header (never one whose request is being read or answered); a cap per peer address; and a
// budget for the request bodies held in memory, checked against Content-Length before a body is
// read (chunked bodies: before each chunk), a request over it answered 503 with Retry-After.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace strongroom::injector {

struct WebhookOptions {
  std::string host = "0.0.0.0";  // an IP literal
  uint16_t port = 8080;          // 0: pick one (see WebhookServer::port())
  std::string cert_file;         // PEM chain, leaf first
  std::string key_file;          // PEM private key
  size_t max_body_bytes = 3 * 1024 * 1024;
  size_t max_header_bytes = 16 * 1024;
  std::chrono::milliseconds handshake_timeout{3000};
  std::chrono::milliseconds read_timeout{15000};  // the whole request, idle keep-alive included
  std::chrono::milliseconds write_timeout{10000};
  // At the cap the oldest connection still handshaking or idle is closed to admit the new one;
  // when every connection is being served the new one is closed.
  size_t max_connections = 128;
  // Per peer IP address, the same rule among that peer's connections.
  size_t max_connections_per_peer = 32;
  // The request bodies (and answers) held at once, across all connections; at least
  // max_body_bytes. One peer may hold at most a quarter of it (but always one largest body).
  size_t max_body_bytes_in_flight = 32 * 1024 * 1024;
};

struct WebhookReply {
  unsigned status = 200;
  std::string body;
  std::string content_type = "application/json";
};

// Called for POST /mutate with the request body; runs on the server's thread.
using MutateHandler = std::function<WebhookReply(std::string_view body)>;

class WebhookServer {
 public:
  // Loads the certificate and key (an error names the file) and binds the listener.
  static absl::StatusOr<std::unique_ptr<WebhookServer>> Create(const WebhookOptions& options,
                                                               MutateHandler handler);
  ~WebhookServer();
  WebhookServer(const WebhookServer&) = delete;
  WebhookServer& operator=(const WebhookServer&) = delete;

  uint16_t port() const;
  // Serves until SIGTERM or SIGINT (when `handle_signals`) or Stop(); in-flight requests finish
  // within their deadlines.
  void Run(bool handle_signals);
  void Stop();  // thread-safe

  struct Impl;

 private:
  explicit WebhookServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace strongroom::injector
