// A small blocking HTTP/1.1 client for tests (plain TCP, one request per connection unless a
// Connection is reused explicitly). Deliberately independent of the server's Beast code.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace strongroom::testing {

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  nlohmann::json Json() const;
};

struct HttpRequest {
  std::string method = "GET";
  std::string path;  // "/v1/sys/health"
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Sends one request to host:port and reads the whole response. status 0 on connection failure.
HttpResponse SendHttp(const std::string& host, int port, const HttpRequest& req,
                      int timeout_ms = 30000);

// The same from a given local address (e.g. "127.0.0.2": every 127/8 address reaches a loopback
// listener); "" lets the kernel choose.
HttpResponse SendHttpFrom(const std::string& source, const std::string& host, int port,
                          const HttpRequest& req, int timeout_ms = 30000);

// A connected TCP socket (blocking, close-on-exec) from `source` to host:port; -1 on failure.
int ConnectFrom(const std::string& source, const std::string& host, int port);

// Sends raw bytes and returns what came back until the peer closed or the timeout passed.
std::string SendRaw(const std::string& host, int port, const std::string& bytes,
                    int timeout_ms = 10000);

}  // namespace strongroom::testing
