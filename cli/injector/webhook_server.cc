// One io_context on one thread: the admission work is small (a pod spec in, a patch out) and
// the apiserver sends few requests at a time. Each connection holds the TLS context it was
// accepted with, so a certificate reload never pulls a context from under a live connection.
#include "cli/injector/webhook_server.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/stat.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <csignal>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/strings.h"

namespace strongroom::injector {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

constexpr std::string_view kMutatePath = "/mutate";
constexpr std::string_view kReadyPath = "/health/ready";
// After refusing an oversize body, how much of it is read and dropped so that closing the
// socket does not reset the connection before the client has read the 413.
constexpr size_t kMaxDrainBytes = 8 * 1024 * 1024;
constexpr std::chrono::milliseconds kDrainTimeout{2000};

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

// What identifies the content of a file without reading it: a rename or an in-place rewrite
// changes one of these.
struct FileStamp {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = -1;
  int64_t mtime_ns = -1;
  bool operator==(const FileStamp&) const = default;
};

FileStamp Stamp(const std::string& path) {
  struct stat st {};
  FileStamp s;
  if (::stat(path.c_str(), &st) != 0) return s;
  s.dev = st.st_dev;
  s.ino = st.st_ino;
  s.size = st.st_size;
  s.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return s;
}

absl::StatusOr<std::shared_ptr<ssl::context>> LoadContext(const std::string& cert_file,
                                                          const std::string& key_file) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* c = ctx->native_handle();
  ERR_clear_error();
  if (SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) != 1) {
    return absl::InternalError(absl::StrCat("TLS setup: ", OpenSslError()));
  }
  SSL_CTX_set_options(
      c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // TLS 1.2: forward-secret AEAD suites only (TLS 1.3's suites are all of that kind).
  if (SSL_CTX_set_cipher_list(c, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1) {
    return absl::InternalError(absl::StrCat("TLS setup: ", OpenSslError()));
  }
  if (SSL_CTX_use_certificate_chain_file(c, cert_file.c_str()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("-tls-cert-file ", cert_file, ": ", OpenSslError()));
  }
  if (SSL_CTX_use_PrivateKey_file(c, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("-tls-key-file ", key_file, ": ", OpenSslError()));
  }
  if (SSL_CTX_check_private_key(c) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("-tls-key-file ", key_file, " does not match -tls-cert-file ", cert_file));
  }
  return ctx;
}

// The serving certificate, read again when its files change.
class TlsContexts {
 public:
  TlsContexts(std::string cert_file, std::string key_file)
      : cert_file_(std::move(cert_file)), key_file_(std::move(key_file)) {}

  absl::Status LoadFirst() {
    FileStamp cert = Stamp(cert_file_), key = Stamp(key_file_);
    absl::StatusOr<std::shared_ptr<ssl::context>> ctx = LoadContext(cert_file_, key_file_);
    if (!ctx.ok()) return ctx.status();
    current_ = *std::move(ctx);
    loaded_ = {cert, key};
    return absl::OkStatus();
  }

  // The context for a new connection: reloaded first when either file changed since the last
  // load. A pair that does not load (half written, mismatched) keeps the last good context and
  // is tried again on the next connection; the failure is logged once per change.
  std::shared_ptr<ssl::context> Current() {
    std::pair<FileStamp, FileStamp> now{Stamp(cert_file_), Stamp(key_file_)};
    if (now != loaded_ && now != failed_) {
      absl::StatusOr<std::shared_ptr<ssl::context>> ctx = LoadContext(cert_file_, key_file_);
      if (ctx.ok()) {
        current_ = *std::move(ctx);
        loaded_ = now;
        LogInfo("injector: reloaded the TLS certificate from %s", cert_file_);
      } else {
        failed_ = now;
        LogWarn("injector: keeping the previous TLS certificate: %s", ctx.status().message());
      }
    }
    return current_;
  }

 private:
  std::string cert_file_, key_file_;
  std::shared_ptr<ssl::context> current_;
  std::pair<FileStamp, FileStamp> loaded_, failed_;
};

}  // namespace

struct WebhookServer::Impl {
  Impl(WebhookOptions o, MutateHandler h)
      : options(std::move(o)),
        handler(std::move(h)),
        acceptor(ioc),
        signals(ioc),
        tls(options.cert_file, options.key_file) {}

  void Accept();
  void StopAccepting() {
    boost::system::error_code ignored;
    acceptor.close(ignored);
    signals.cancel(ignored);
  }

  WebhookOptions options;
  MutateHandler handler;
  asio::io_context ioc{1};
  tcp::acceptor acceptor;
  asio::signal_set signals;
  TlsContexts tls;
  size_t connections = 0;  // touched on the io_context's thread only
  uint64_t refused_connections = 0;
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(WebhookServer::Impl* server, tcp::socket socket, std::shared_ptr<ssl::context> ctx)
      : server_(server), ctx_(std::move(ctx)), stream_(std::move(socket), *ctx_) {
    ++server_->connections;
  }
  ~Session() { --server_->connections; }

  void Start() {
    Tcp().expires_after(server_->options.handshake_timeout);
    stream_.async_handshake(ssl::stream_base::server,
                            [self = shared_from_this()](boost::system::error_code ec) {
                              if (!ec) self->ReadRequest();
                            });
  }

 private:
  beast::tcp_stream& Tcp() { return beast::get_lowest_layer(stream_); }

  void ReadRequest() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(server_->options.max_header_bytes));
    parser_->body_limit(server_->options.max_body_bytes);
    Tcp().expires_after(server_->options.read_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](boost::system::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(boost::system::error_code ec) {
    if (ec == http::error::end_of_stream) return Shutdown();
    if (ec == http::error::body_limit) {
      return Reply(413, Error("the request body is larger than 3 MiB"), false, true);
    }
    if (ec == http::error::header_limit) {
      return Reply(431, Error("the request header is too large"), false, false);
    }
    if (ec && ec.category() == http::make_error_code(http::error::bad_method).category()) {
      // A malformed request (not a closed or timed-out connection): say so before closing.
      return Reply(400, Error("malformed HTTP request"), false, false);
    }
    if (ec) return;  // timeout, reset, TLS error: nothing to answer
    Handle(parser_->get());
  }

  static std::string Error(std::string_view message) {
    return absl::StrCat("{\"errors\":[\"", Av(message), "\"]}\n");
  }

  void Handle(const http::request<http::string_body>& req) {
    std::string_view target(req.target().data(), req.target().size());
    std::string_view path = target.substr(0, target.find('?'));
    bool keep_alive = req.keep_alive();
    if (path == kReadyPath) {
      if (req.method() != http::verb::get && req.method() != http::verb::head) {
        return Reply(405, Error("use GET"), keep_alive, false, "GET, HEAD");
      }
      return Reply(200, "{\"ready\":true}\n", keep_alive, false);
    }
    if (path != kMutatePath) return Reply(404, Error("not found"), keep_alive, false);
    if (req.method() != http::verb::post) {
      return Reply(405, Error("use POST"), keep_alive, false, "POST");
    }
    auto type = req.find(http::field::content_type);
    std::string_view content_type =
        type == req.end() ? std::string_view()
                          : std::string_view(type->value().data(), type->value().size());
    if (content_type.substr(0, 16) != "application/json") {
      return Reply(415, Error("the body must be application/json"), keep_alive, false);
    }
    WebhookReply reply = server_->handler(req.body());
    res_ = {};
    res_.result(reply.status);
    res_.set(http::field::content_type, reply.content_type);
    res_.body() = std::move(reply.body);
    Send(keep_alive, false);
  }

  void Reply(unsigned status, std::string body, bool keep_alive, bool drain,
             std::string_view allow = {}) {
    res_ = {};
    res_.result(status);
    res_.set(http::field::content_type, "application/json");
    if (!allow.empty()) res_.set(http::field::allow, allow);
    res_.body() = std::move(body);
    Send(keep_alive, drain);
  }

  void Send(bool keep_alive, bool drain) {
    res_.version(11);
    res_.keep_alive(keep_alive);
    res_.prepare_payload();
    Tcp().expires_after(server_->options.write_timeout);
    http::async_write(
        stream_, res_,
        [self = shared_from_this(), keep_alive, drain](boost::system::error_code ec, size_t) {
          if (ec) return;
          if (drain) return self->Drain();
          if (keep_alive) return self->ReadRequest();
          self->Shutdown();
        });
  }

  // Reads and drops what the client still sends (bounded in bytes and time), then closes.
  void Drain() {
    if (drained_ == 0) Tcp().expires_after(kDrainTimeout);
    stream_.async_read_some(asio::buffer(drain_buf_),
                            [self = shared_from_this()](boost::system::error_code ec, size_t n) {
                              self->drained_ += n;
                              if (ec || self->drained_ > kMaxDrainBytes) {
                                boost::system::error_code ignored;
                                self->Tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
                                return;
                              }
                              self->Drain();
                            });
  }

  void Shutdown() {
    Tcp().expires_after(std::chrono::seconds(2));
    stream_.async_shutdown([self = shared_from_this()](boost::system::error_code) {
      boost::system::error_code ignored;
      self->Tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    });
  }

  WebhookServer::Impl* server_;
  std::shared_ptr<ssl::context> ctx_;  // outlives stream_ (declared first)
  beast::ssl_stream<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  std::array<char, 16 * 1024> drain_buf_{};
  size_t drained_ = 0;
};

}  // namespace

void WebhookServer::Impl::Accept() {
  acceptor.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
    if (!ec) {
      if (connections >= options.max_connections) {
        // Over the cap: close at once (the apiserver retries on another connection).
        if (refused_connections++ % 100 == 0) {
          LogWarn("injector: %u connections open, refusing more (%u refused so far)", connections,
                  refused_connections);
        }
        boost::system::error_code ignored;
        socket.close(ignored);
      } else {
        boost::system::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        std::make_shared<Session>(this, std::move(socket), tls.Current())->Start();
      }
    }
    Accept();
  });
}

WebhookServer::WebhookServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WebhookServer::~WebhookServer() = default;

absl::StatusOr<std::unique_ptr<WebhookServer>> WebhookServer::Create(const WebhookOptions& options,
                                                                     MutateHandler handler) {
  auto impl = std::make_unique<Impl>(options, std::move(handler));
  if (absl::Status s = impl->tls.LoadFirst(); !s.ok()) return s;
  boost::system::error_code ec;
  asio::ip::address address = asio::ip::make_address(options.host, ec);
  if (ec)
    return absl::InvalidArgumentError(absl::StrCat("-listen: not an IP address: ", options.host));
  tcp::endpoint endpoint(address, options.port);
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("-listen ", options.host, ":", options.port, ": ", ec.message()));
  }
  return std::unique_ptr<WebhookServer>(new WebhookServer(std::move(impl)));
}

uint16_t WebhookServer::port() const {
  boost::system::error_code ec;
  tcp::endpoint e = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : e.port();
}

void WebhookServer::Run(bool handle_signals) {
  Impl* impl = impl_.get();
  if (handle_signals) {
    impl->signals.add(SIGTERM);
    impl->signals.add(SIGINT);
    impl->signals.async_wait([impl](boost::system::error_code ec, int sig) {
      if (ec) return;
      LogInfo("injector: signal %d, finishing the requests in flight", sig);
      impl->StopAccepting();
    });
  }
  impl->Accept();
  impl->ioc.run();
}

void WebhookServer::Stop() {
  Impl* impl = impl_.get();
  asio::post(impl->ioc, [impl] { impl->StopAccepting(); });
}

}  // namespace strongroom::injector
