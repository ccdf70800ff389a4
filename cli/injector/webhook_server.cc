// One io_context on one thread: the admission work is small (a pod spec in, a patch out) and
// the apiserver sends few requests at a time. Each connection holds the TLS context it was
// accepted with, so a certificate reload never pulls a context from under a live connection.
// The limits (connections overall and per peer, the body budget) are counts on that thread: a
// session registers when accepted and unregisters when destroyed or evicted.
#include "cli/injector/webhook_server.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <csignal>
#include <list>
#include <map>
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
// What a connection reads beyond a whole header (its read buffer's size, per connection).
constexpr size_t kReadAhead = 16 * 1024;

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
  // An idle connection gives its read and write buffers back (many may be open at once).
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
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

class Session;

// What one peer address holds: connections, and request bytes in memory.
struct PeerUsage {
  size_t connections = 0;
  size_t body_bytes = 0;
};

// The peer's address as the limits count it: an IPv4 peer on a dual-stack socket is the same
// peer as over IPv4.
asio::ip::address PeerKey(const asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  }
  return a;
}

// Logs the first event of a kind and every 100th after it, so that a flood cannot flood the log.
bool LogThisOne(uint64_t* count) { return (*count)++ % 100 == 0; }

}  // namespace

// Everything below runs on the io_context's one thread: no locks.
struct WebhookServer::Impl {
  Impl(WebhookOptions o, MutateHandler h)
      : options(std::move(o)),
        handler(std::move(h)),
        acceptor(ioc),
        accept_retry(ioc),
        signals(ioc),
        tls(options.cert_file, options.key_file) {}

  void Accept();
  void Admit(tcp::socket socket);
  // Closes the oldest idle connection (of `peer` only, when given); false if there is none.
  bool EvictOldestIdle(const asio::ip::address* peer);
  // Stops accepting and closes the idle connections; the requests being served finish.
  void StopAccepting();

  // One peer may hold a quarter of the body budget, and always at least one largest body.
  size_t PeerBodyShare() const {
    return std::max(options.max_body_bytes, options.max_body_bytes_in_flight / 4);
  }
  bool TryReserveBody(PeerUsage* peer, size_t n) {
    if (n > options.max_body_bytes_in_flight || body_bytes > options.max_body_bytes_in_flight - n ||
        n > PeerBodyShare() || peer->body_bytes > PeerBodyShare() - n) {
      return false;
    }
    body_bytes += n;
    peer->body_bytes += n;
    return true;
  }

  WebhookOptions options;
  MutateHandler handler;
  // The connections' state, declared before ioc: a session still pending when ioc is destroyed
  // unregisters from it.
  bool stopping = false;
  size_t connections = 0;
  size_t body_bytes = 0;  // request bodies (and answers) held, all connections
  std::map<asio::ip::address, PeerUsage> peers;  // peers with a connection open
  // The idle connections (handshaking, waiting for a request header, or closing), the one idle
  // the longest first: the first to be closed for a new connection.
  std::list<Session*> idle;
  uint64_t refused_connections = 0, evicted_connections = 0, refused_peer_connections = 0;
  uint64_t busy_answers = 0, accept_errors = 0;
  // Where every draining connection drops what it reads (one thread, the bytes are never used).
  std::array<char, 16 * 1024> drain_buf{};
  asio::io_context ioc{1};
  tcp::acceptor acceptor;
  asio::steady_timer accept_retry;  // after an accept error (out of descriptors)
  asio::signal_set signals;
  TlsContexts tls;
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(WebhookServer::Impl* server, tcp::socket socket, asio::ip::address peer,
          std::shared_ptr<ssl::context> ctx)
      : server_(server),
        peer_(std::move(peer)),
        usage_(&server->peers[peer_]),
        ctx_(std::move(ctx)),
        stream_(std::move(socket), *ctx_),
        buffer_(server->options.max_header_bytes + kReadAhead) {
    ++server_->connections;
    ++usage_->connections;
    on_chunk_header_ = [this](std::uint64_t size, beast::string_view, beast::error_code& ec) {
      OnChunkHeader(size, ec);
    };
  }
  ~Session() { Unregister(); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const asio::ip::address& peer() const { return peer_; }

  void Start() {
    SetIdle(true);
    Tcp().expires_after(server_->options.handshake_timeout);
    stream_.async_handshake(ssl::stream_base::server,
                            [self = shared_from_this()](boost::system::error_code ec) {
                              if (self->Gone() || ec) return;
                              self->ReadRequest();
                            });
  }

  // Closes the connection at once and stops counting it: its slot is free for a new one. The
  // pending operation then ends with an error and the session is destroyed.
  void Evict() {
    Unregister();
    Tcp().close();
  }

 private:
  beast::tcp_stream& Tcp() { return beast::get_lowest_layer(stream_); }
  bool Gone() const { return !registered_; }

  // Idle: handshaking, waiting for (the rest of) a request header, or finishing after its answer
  // (drain, TLS shutdown). Only idle connections are evicted to make room for new ones.
  void SetIdle(bool idle) {
    if (idle == idle_ || Gone()) return;
    idle_ = idle;
    if (idle) {
      idle_pos_ = server_->idle.insert(server_->idle.end(), this);
    } else {
      server_->idle.erase(idle_pos_);
    }
  }

  void Unregister() {
    if (Gone()) return;
    SetIdle(false);
    ReleaseBody();
    registered_ = false;
    --server_->connections;
    if (--usage_->connections == 0 && usage_->body_bytes == 0) server_->peers.erase(peer_);
    usage_ = nullptr;
  }

  bool ReserveBody(size_t n) {
    if (!server_->TryReserveBody(usage_, n)) return false;
    reserved_ += n;
    return true;
  }
  void ReleaseBody() {
    server_->body_bytes -= reserved_;
    usage_->body_bytes -= reserved_;
    reserved_ = 0;
  }

  void ReadRequest() {
    SetIdle(true);
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(server_->options.max_header_bytes));
    parser_->body_limit(server_->options.max_body_bytes);
    parser_->on_chunk_header(on_chunk_header_);
    over_budget_ = false;
    Tcp().expires_after(server_->options.read_timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](boost::system::error_code ec, size_t) { self->OnHeader(ec); });
  }

  // The header is in: the request is being served from here on. Its body (Content-Length,
  // checked against max_body_bytes by the parser) must fit the budget before it is read.
  void OnHeader(boost::system::error_code ec) {
    if (Gone()) return;
    if (ec) return OnReadError(ec);
    SetIdle(false);
    boost::optional<std::uint64_t> length = parser_->content_length();
    if (length && *length > 0 && !ReserveBody(static_cast<size_t>(*length))) return Busy();
    if (parser_->is_done()) return Handle(parser_->get());
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](boost::system::error_code e, size_t) { self->OnBody(e); });
  }

  // A chunked body grows by doubling (at most to the body limit, or the chunk's need); each
  // growth is reserved before the chunk is read, the string's exact allocation counted.
  void OnChunkHeader(std::uint64_t size, beast::error_code& ec) {
    std::string& body = parser_->get().body();
    // The parser has checked the total against max_body_bytes already.
    size_t needed = body.size() + static_cast<size_t>(size);
    if (size == 0 || needed <= body.capacity()) return;
    size_t grown = std::max(needed, std::min(2 * body.capacity(), server_->options.max_body_bytes));
    if (grown > reserved_ && !ReserveBody(grown - reserved_)) {
      over_budget_ = true;
      ec = asio::error::no_buffer_space;
      return;
    }
    std::string bigger;
    bigger.reserve(grown);
    bigger.append(body);
    body.swap(bigger);
  }

  void OnBody(boost::system::error_code ec) {
    if (Gone()) return;
    if (ec) return OnReadError(ec);
    Handle(parser_->get());
  }

  void OnReadError(boost::system::error_code ec) {
    if (ec == http::error::end_of_stream) return Shutdown();
    if (over_budget_) return Busy();
    if (ec == http::error::body_limit) {
      return Reply(413, Error("the request body is larger than 3 MiB"), false, true);
    }
    if (ec == http::error::header_limit) {
      return Reply(431, Error("the request header is too large"), false, false);
    }
    if (ec.category() == http::make_error_code(http::error::bad_method).category()) {
      // A malformed request (not a closed or timed-out connection): say so before closing.
      return Reply(400, Error("malformed HTTP request"), false, false);
    }
    // Timeout, reset, TLS error: nothing to answer.
  }

  // The body does not fit the budget: answered at once (the apiserver's call has its own
  // deadline; waiting here would hold the connection while the bodies that fill the budget are
  // held for up to the read deadline), without reading the body.
  void Busy() {
    if (LogThisOne(&server_->busy_answers)) {
      LogWarn(
          "injector: request bodies in flight: %u bytes (budget %u; %s holds %u): answered 503 "
          "(%u so far)",
          server_->body_bytes, server_->options.max_body_bytes_in_flight, peer_.to_string(),
          usage_->body_bytes, server_->busy_answers);
    }
    ReleaseBody();
    Reply(503, Error("the injector is busy (request bodies in flight); retry"), false, true, {},
          "1");
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
             std::string_view allow = {}, std::string_view retry_after = {}) {
    res_ = {};
    res_.result(status);
    res_.set(http::field::content_type, "application/json");
    if (!allow.empty()) res_.set(http::field::allow, allow);
    if (!retry_after.empty()) res_.set(http::field::retry_after, retry_after);
    res_.body() = std::move(body);
    Send(keep_alive, drain);
  }

  void Send(bool keep_alive, bool drain) {
    SetIdle(false);
    // The request is answered: its body goes; the answer is held instead, counted in the
    // request's reservation (or beyond it: an answer is never refused once computed).
    parser_.reset();
    if (res_.body().size() > reserved_) {
      size_t more = res_.body().size() - reserved_;
      server_->body_bytes += more;
      usage_->body_bytes += more;
      reserved_ += more;
    }
    keep_alive = keep_alive && !server_->stopping;
    res_.version(11);
    res_.keep_alive(keep_alive);
    res_.prepare_payload();
    Tcp().expires_after(server_->options.write_timeout);
    http::async_write(
        stream_, res_,
        [self = shared_from_this(), keep_alive, drain](boost::system::error_code ec, size_t) {
          if (self->Gone()) return;
          self->res_ = {};
          self->ReleaseBody();
          if (ec) return;
          if (drain) return self->Drain();
          if (keep_alive && !self->server_->stopping) return self->ReadRequest();
          self->Shutdown();
        });
  }

  // Reads and drops what the client still sends (bounded in bytes and time), then closes.
  void Drain() {
    SetIdle(true);
    if (drained_ == 0) Tcp().expires_after(kDrainTimeout);
    stream_.async_read_some(asio::buffer(server_->drain_buf),
                            [self = shared_from_this()](boost::system::error_code ec, size_t n) {
                              if (self->Gone()) return;
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
    SetIdle(true);
    Tcp().expires_after(std::chrono::seconds(2));
    stream_.async_shutdown([self = shared_from_this()](boost::system::error_code) {
      if (self->Gone()) return;
      boost::system::error_code ignored;
      self->Tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    });
  }

  WebhookServer::Impl* server_;
  asio::ip::address peer_;
  PeerUsage* usage_;  // the node of server_->peers (stable until this session unregisters)
  bool registered_ = true;
  bool idle_ = false;
  std::list<Session*>::iterator idle_pos_;
  size_t reserved_ = 0;  // bytes of the body budget this connection holds
  bool over_budget_ = false;
  std::function<void(std::uint64_t, beast::string_view, beast::error_code&)> on_chunk_header_;
  std::shared_ptr<ssl::context> ctx_;  // outlives stream_ (declared first)
  beast::ssl_stream<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;  // a header and one read ahead: the parser moves a body out of it
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  size_t drained_ = 0;
};

}  // namespace

void WebhookServer::Impl::Accept() {
  acceptor.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
    if (ec) {
      // Out of descriptors or memory: try again shortly rather than spin.
      if (LogThisOne(&accept_errors)) {
        LogWarn("injector: accept: %s (%u errors so far)", ec.message(), accept_errors);
      }
      accept_retry.expires_after(std::chrono::milliseconds(100));
      accept_retry.async_wait([this](boost::system::error_code e) {
        if (!e && acceptor.is_open()) Accept();
      });
      return;
    }
    Admit(std::move(socket));
    Accept();
  });
}

void WebhookServer::Impl::Admit(tcp::socket socket) {
  boost::system::error_code ec;
  tcp::endpoint remote = socket.remote_endpoint(ec);
  if (ec) return;  // gone already; the socket closes with this scope
  asio::ip::address peer = PeerKey(remote.address());
  LogDebug("injector: connection from %s", peer.to_string());
  auto it = peers.find(peer);
  if (it != peers.end() && it->second.connections >= options.max_connections_per_peer &&
      !EvictOldestIdle(&peer)) {
    if (LogThisOne(&refused_peer_connections)) {
      LogWarn("injector: %s has %u connections open, all being served: refusing more (%u so far)",
              peer.to_string(), it->second.connections, refused_peer_connections);
    }
    return;
  }
  if (connections >= options.max_connections && !EvictOldestIdle(nullptr)) {
    // Every connection is being served: close the new one (the apiserver retries).
    if (LogThisOne(&refused_connections)) {
      LogWarn("injector: %u connections open, all being served: refusing more (%u refused so far)",
              connections, refused_connections);
    }
    return;
  }
  socket.set_option(tcp::no_delay(true), ec);
  std::make_shared<Session>(this, std::move(socket), std::move(peer), tls.Current())->Start();
}

bool WebhookServer::Impl::EvictOldestIdle(const asio::ip::address* peer) {
  for (Session* s : idle) {
    if (peer != nullptr && s->peer() != *peer) continue;
    if (LogThisOne(&evicted_connections)) {
      LogWarn(
          "injector: %u connections open (%s: %u): closed the oldest idle one, from %s, for a new "
          "one (%u so far)",
          connections, peer ? "this peer" : "cap", peer ? peers[*peer].connections : connections,
          s->peer().to_string(), evicted_connections);
    }
    s->Evict();
    return true;
  }
  return false;
}

void WebhookServer::Impl::StopAccepting() {
  stopping = true;
  boost::system::error_code ignored;
  acceptor.close(ignored);
  accept_retry.cancel();
  signals.cancel(ignored);
  while (!idle.empty()) idle.front()->Evict();
}

WebhookServer::WebhookServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WebhookServer::~WebhookServer() = default;

absl::StatusOr<std::unique_ptr<WebhookServer>> WebhookServer::Create(const WebhookOptions& options,
                                                                     MutateHandler handler) {
  if (options.max_connections == 0 || options.max_connections_per_peer == 0) {
    return absl::InvalidArgumentError("the connection limits must be at least 1");
  }
  if (options.max_body_bytes_in_flight < options.max_body_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("the body budget (", options.max_body_bytes_in_flight,
                     " bytes) must hold at least one largest body (", options.max_body_bytes, ")"));
  }
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
