#include "tests/support/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>

namespace strongroom::testing {
namespace {

int Connect(const std::string& host, int port, const std::string& source = "") {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (!source.empty()) {
    sockaddr_in from{};
    from.sin_family = AF_INET;
    if (inet_pton(AF_INET, source.c_str(), &from.sin_addr) != 1 ||
        bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) {
      close(fd);
      return -1;
    }
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, host.c_str(), &a.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

std::string ReadUntilClose(int fd, int timeout_ms) {
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  char buf[65536];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) break;
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace

int ConnectFrom(const std::string& source, const std::string& host, int port) {
  return Connect(host, port, source);
}

nlohmann::json HttpResponse::Json() const {
  return nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
}

std::string SendRaw(const std::string& host, int port, const std::string& bytes, int timeout_ms) {
  int fd = Connect(host, port);
  if (fd < 0) return "";
  WriteAll(fd, bytes);
  std::string out = ReadUntilClose(fd, timeout_ms);
  close(fd);
  return out;
}

HttpResponse SendHttp(const std::string& host, int port, const HttpRequest& req, int timeout_ms) {
  return SendHttpFrom("", host, port, req, timeout_ms);
}

HttpResponse SendHttpFrom(const std::string& source, const std::string& host, int port,
                          const HttpRequest& req, int timeout_ms) {
  HttpResponse resp;
  int fd = Connect(host, port, source);
  if (fd < 0) return resp;
  std::string wire =
      req.method + " " + req.path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n";
  for (const auto& [k, v] : req.headers) wire += k + ": " + v + "\r\n";
  if (!req.body.empty() || req.method == "POST" || req.method == "PUT" || req.method == "PATCH") {
    wire += "Content-Length: " + std::to_string(req.body.size()) + "\r\n";
  }
  wire += "\r\n";
  // Send headers and body; the server may answer (413) before reading all of a large body.
  WriteAll(fd, wire);
  WriteAll(fd, req.body);
  std::string raw = ReadUntilClose(fd, timeout_ms);
  close(fd);
  const size_t head_end = raw.find("\r\n\r\n");
  if (raw.size() < 12 || head_end == std::string::npos) return resp;
  resp.status = std::atoi(raw.substr(9, 3).c_str());
  std::string head = raw.substr(0, head_end);
  size_t pos = head.find("\r\n");
  while (pos != std::string::npos && pos < head.size()) {
    size_t next = head.find("\r\n", pos + 2);
    std::string line =
        head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
    if (auto c = line.find(':'); c != std::string::npos) {
      std::string k = line.substr(0, c);
      std::transform(k.begin(), k.end(), k.begin(),
                     [](unsigned char ch) { return std::tolower(ch); });
      std::string v = line.substr(c + 1);
      v.erase(0, v.find_first_not_of(' '));
      resp.headers[k] = v;
    }
    pos = next;
  }
  resp.body = raw.substr(head_end + 4);
  return resp;
}

}  // namespace strongroom::testing
