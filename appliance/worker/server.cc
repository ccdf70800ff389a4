// All Boost.Beast / Asio code of the worker lives in this translation unit.
#include "appliance/worker/server.h"

#include <openssl/err.h>
#include <sys/socket.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <type_traits>
#include <unordered_map>

#include "appliance/ipc/protocol.h"
#include "appliance/tls/certificates.h"
#include "appliance/tls/remote_ec_key.h"
#include "appliance/tls/sign_channel.h"
#include "appliance/worker/codec.h"
#include "base/log.h"
#include "sandbox/worker_sandbox.h"

namespace strongroom::worker {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using local = asio::local::stream_protocol;

// ---------------------------------------------------------------------------------------------
// Broker channel: frames out through a write queue, frames in dispatched by request id.

class BrokerChannel : public std::enable_shared_from_this<BrokerChannel> {
 public:
  using Callback = std::function<void(const ipc::Response&)>;

  BrokerChannel(asio::io_context& io, int fd) : socket_(io) { socket_.assign(local(), fd); }

  void Start() { ReadHeader(); }

  void Send(ipc::Request req, Callback cb) {
    const uint64_t id = next_id_++;
    req.set_id(id);
    pending_[id] = std::move(cb);
    ipc::Frame frame;
    *frame.mutable_request() = std::move(req);
    queue_.push_back(ipc::EncodeFrame(frame));
    if (queue_.size() == 1) WriteNext();
  }

 private:
  void WriteNext() {
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(queue_.front()), [self](beast::error_code ec, size_t) {
      if (ec) self->Fatal("write to broker", ec);
      self->queue_.pop_front();
      if (!self->queue_.empty()) self->WriteNext();
    });
  }

  void ReadHeader() {
    auto self = shared_from_this();
    asio::async_read(socket_, asio::buffer(header_), [self](beast::error_code ec, size_t) {
      if (ec) self->Fatal("read from broker", ec);
      const uint32_t len = ipc::DecodeLength(self->header_);
      if (len > ipc::kMaxResponseFrame) self->Fatal("oversized frame from broker", {});
      self->body_.resize(len);
      self->ReadBody();
    });
  }

  void ReadBody() {
    auto self = shared_from_this();
    asio::async_read(socket_, asio::buffer(body_), [self](beast::error_code ec, size_t) {
      if (ec) self->Fatal("read from broker", ec);
      ipc::Frame frame;
      if (!frame.ParseFromString(self->body_) || !frame.has_response()) {
        self->Fatal("malformed frame from broker", {});
      }
      auto it = self->pending_.find(frame.response().id());
      if (it == self->pending_.end()) self->Fatal("response for an unknown request", {});
      Callback cb = std::move(it->second);
      self->pending_.erase(it);
      cb(frame.response());
      self->ReadHeader();
    });
  }

  [[noreturn]] void Fatal(const char* what, beast::error_code ec) {
    // Without the broker this worker can do nothing; the broker restarts workers.
    LogError("%s failed%s%s; exiting", what, ec ? ": " : "", ec ? ec.message() : "");
    std::_Exit(3);
  }

  local::socket socket_;
  uint8_t header_[4] = {};
  std::string body_;
  std::deque<std::string> queue_;
  std::unordered_map<uint64_t, Callback> pending_;
  uint64_t next_id_ = 1;
};

// ---------------------------------------------------------------------------------------------
// HTTP sessions (plain and TLS share one template).

struct Limits {
  uint64_t max_body = 32ull << 20;
  uint32_t max_header = 16 * 1024;
  std::chrono::milliseconds idle{60000};
  std::chrono::milliseconds read{30000};
  unsigned json_depth = 64;
  uint32_t max_connections = 1024;
};

struct Shared {
  Limits limits;
  std::shared_ptr<BrokerChannel> broker;
  uint32_t connections = 0;
};

beast::tcp_stream& Lowest(beast::tcp_stream& s) { return s; }
beast::tcp_stream& Lowest(beast::ssl_stream<beast::tcp_stream>& s) {
  return beast::get_lowest_layer(s);
}

template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(Stream stream, Shared* shared, std::string remote, uint16_t port)
      : stream_(std::move(stream)), shared_(shared), remote_(std::move(remote)), port_(port) {
    ++shared_->connections;
  }
  ~Session() { --shared_->connections; }

  void Start() {
    if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
      Lowest(stream_).expires_after(shared_->limits.read);
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (!ec) self->WaitForRequest();
                              });
    } else {
      WaitForRequest();
    }
  }

 private:
  // Idle keep-alive: wait (idle timeout) for the first byte, then the whole request must arrive
  // within the read timeout, so a client trickling bytes cannot hold the connection for long.
  void WaitForRequest() {
    parser_.emplace();
    parser_->header_limit(shared_->limits.max_header);
    parser_->body_limit(shared_->limits.max_body);
    if (buffer_.size() > 0) return ReadRequest();
    Lowest(stream_).expires_after(shared_->limits.idle);
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = this->shared_from_this()](beast::error_code ec, size_t n) {
                              if (ec) return self->Close();
                              self->buffer_.commit(n);
                              self->ReadRequest();
                            });
  }

  void ReadRequest() {
    Lowest(stream_).expires_after(shared_->limits.read);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::eof ||
        ec == asio::error::connection_reset) {
      return Close();
    }
    if (ec == http::error::body_limit) {
      return Reply(ErrorOut(413, {"http: request body too large"}), false, 11);
    }
    if (ec == http::error::header_limit) {
      return Reply(ErrorOut(431, {"request header fields too large"}), false, 11);
    }
    if (ec) return Reply(ErrorOut(400, {"malformed HTTP request"}), false, 11);

    auto& req = parser_->get();
    HttpIn in;
    in.method = std::string(req.method_string());
    in.target = std::string(req.target());
    in.vault_token = std::string(req["X-Vault-Token"]);
    in.authorization = std::string(req[http::field::authorization]);
    in.content_type = std::string(req[http::field::content_type]);
    in.wrap_ttl = std::string(req["X-Vault-Wrap-TTL"]);
    in.vault_namespace = std::string(req["X-Vault-Namespace"]);
    in.no_request_forwarding = !req["X-Vault-No-Request-Forwarding"].empty();
    in.body = std::move(req.body());
    in.remote_address = remote_;
    in.remote_port = port_;
    const bool keep_alive = req.keep_alive();
    const unsigned version = req.version();
    Decoded decoded = DecodeRequest(in, shared_->limits.json_depth);
    if (auto* out = std::get_if<HttpOut>(&decoded))
      return Reply(std::move(*out), keep_alive, version);
    shared_->broker->Send(std::move(std::get<ipc::Request>(decoded)),
                          [self = this->shared_from_this(), keep_alive, version,
                           target = std::string(req.target())](const ipc::Response& r) {
                            HttpOut out = EncodeResponse(r);
                            if (!out.redirect_to.empty()) out.redirect_to += target;
                            self->Reply(std::move(out), keep_alive, version);
                          });
  }

  void Reply(HttpOut out, bool keep_alive, unsigned version) {
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(out.status), version);
    res->set(http::field::server, "strongroom");
    res->set(http::field::content_type, "application/json");
    res->set(http::field::cache_control, "no-store");
    if (!out.redirect_to.empty()) res->set(http::field::location, out.redirect_to);
    res->keep_alive(keep_alive);
    if (out.status != 204) {
      const size_t len = out.body.size();
      if (!out.head_only) res->body() = std::move(out.body);
      res->content_length(len);
    }
    Lowest(stream_).expires_after(shared_->limits.read);
    auto self = this->shared_from_this();
    auto sr = std::make_shared<http::response_serializer<http::string_body>>(*res);
    auto done = [self, res, sr, keep_alive](beast::error_code ec, size_t) {
      if (ec) return self->Close();
      if (!keep_alive) return self->EndConnection();
      self->WaitForRequest();
    };
    if (out.head_only) {
      http::async_write_header(stream_, *sr, std::move(done));
    } else {
      http::async_write(stream_, *sr, std::move(done));
    }
  }

  // The answer said "Connection: close": over TLS, first a close_notify (so that the client can
  // tell a complete answer from a truncated one), then the TCP close below.
  void EndConnection() {
    if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
      Lowest(stream_).expires_after(std::chrono::seconds(2));
      stream_.async_shutdown(
          [self = this->shared_from_this()](beast::error_code) { self->LingeringClose(); });
    } else {
      LingeringClose();
    }
  }

  // After an early answer (413, 400) the client may still be sending: stop sending, read and
  // discard for a short while, then close, so the client sees the answer instead of a reset.
  void LingeringClose() {
    beast::error_code ec;
    Lowest(stream_).socket().shutdown(tcp::socket::shutdown_send, ec);
    Lowest(stream_).expires_after(std::chrono::seconds(2));
    Drain();
  }

  void Drain() {
    drain_.resize(64 * 1024);
    Lowest(stream_).async_read_some(
        asio::buffer(drain_), [self = this->shared_from_this()](beast::error_code ec, size_t) {
          if (ec) return self->Close();
          self->Drain();
        });
  }

  void Close() {
    beast::error_code ec;
    Lowest(stream_).socket().shutdown(tcp::socket::shutdown_both, ec);
    Lowest(stream_).close();
  }

  Stream stream_;
  Shared* shared_;
  std::string remote_;
  uint16_t port_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string drain_;
};

class Listener {
 public:
  Listener(asio::io_context& io, int listen_fd, Shared* shared, ssl::context* tls)
      : io_(io), acceptor_(io), shared_(shared), tls_(tls) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    getsockname(listen_fd, reinterpret_cast<sockaddr*>(&ss), &len);
    acceptor_.assign(ss.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), listen_fd);
  }

  void Accept() {
    acceptor_.async_accept(asio::make_strand(io_),
                           [this](beast::error_code ec, tcp::socket socket) {
                             if (!ec) OnAccept(std::move(socket));
                             Accept();
                           });
  }

 private:
  void OnAccept(tcp::socket socket) {
    if (shared_->connections >= shared_->limits.max_connections) {
      beast::error_code ignored;
      socket.close(ignored);  // over the per-worker cap: refuse rather than queue
      return;
    }
    beast::error_code ec;
    auto ep = socket.remote_endpoint(ec);
    socket.set_option(tcp::no_delay(true), ec);
    std::string remote = ec ? "" : ep.address().to_string();
    uint16_t port = ec ? 0 : ep.port();
    if (tls_ != nullptr) {
      std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(
          beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(socket)), *tls_),
          shared_, std::move(remote), port)
          ->Start();
    } else {
      std::make_shared<Session<beast::tcp_stream>>(beast::tcp_stream(std::move(socket)), shared_,
                                                   std::move(remote), port)
          ->Start();
    }
  }

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  Shared* shared_;
  ssl::context* tls_;
};

// The TLS key for a certificate whose private key is in the broker's token: an EVP_PKEY with the
// certificate's public key whose signatures are made by the broker over the signing channel.
// A broken channel (closed, or no answer within its timeout) leaves this worker unable to
// complete any handshake, so it exits and the broker restarts it with a fresh channel.
absl::Status UseKeyInBroker(SSL_CTX* ctx, const std::string& chain_pem, int sign_fd) {
  auto spki = tls::LeafPublicKeyDer(chain_pem);
  if (!spki.ok()) return spki.status();
  auto key = tls::MakeRemoteEcKey(*spki, [sign_fd](std::span<const uint8_t> digest) {
    absl::StatusOr<std::string> sig = tls::RequestSignature(sign_fd, digest);
    if (absl::IsUnavailable(sig.status())) {
      LogError("%s; exiting", sig.status().message());
      std::_Exit(3);
    }
    return sig;
  });
  if (!key.ok()) return key.status();
  if (SSL_CTX_use_PrivateKey(ctx, key->get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("the broker's TLS key does not match the certificate");
  }
  return absl::OkStatus();
}

}  // namespace

int RunWorker(int worker_index, int ipc_fd, int listen_fd, int sign_fd,
              const sandbox::WorkerSandboxOptions& sandbox_options) {
  SetLogRole(absl::StrFormat("worker[%d]", worker_index));
  // Handshake, blocking, before the event loop: Hello -> WorkerSettings.
  ipc::Frame hello;
  hello.mutable_hello()->set_protocol_version(ipc::kProtocolVersion);
  hello.mutable_hello()->set_worker_index(static_cast<uint32_t>(worker_index));
  if (!ipc::WriteFrame(ipc_fd, hello).ok()) return 3;
  auto frame = ipc::ReadFrame(ipc_fd, ipc::FindRule(ipc::Frame::kSettings)->max_frame_bytes);
  if (!frame.ok() || !frame->has_settings()) {
    LogError("no settings from the broker: %s",
             frame.ok() ? "wrong message" : frame.status().ToString());
    return 3;
  }
  const ipc::WorkerSettings& s = frame->settings();
  Shared shared;
  if (s.max_request_bytes()) shared.limits.max_body = s.max_request_bytes();
  if (s.max_header_bytes()) shared.limits.max_header = s.max_header_bytes();
  if (s.idle_timeout_ms()) shared.limits.idle = std::chrono::milliseconds(s.idle_timeout_ms());
  if (s.read_timeout_ms()) shared.limits.read = std::chrono::milliseconds(s.read_timeout_ms());
  if (s.max_json_depth()) shared.limits.json_depth = s.max_json_depth();
  if (s.max_connections()) shared.limits.max_connections = s.max_connections();

  asio::io_context io(1);
  std::unique_ptr<ssl::context> tls;
  if (!s.tls_cert_chain_pem().empty()) {
    tls = std::make_unique<ssl::context>(ssl::context::tls_server);
    tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                     ssl::context::single_dh_use);
    if (s.tls_min_version() == "tls13") tls->set_options(ssl::context::no_tlsv1_2);
    beast::error_code ec;
    tls->use_certificate_chain(asio::buffer(s.tls_cert_chain_pem()), ec);
    if (ec) {
      LogError("TLS set-up failed: %s", ec.message());
      return 3;
    }
    if (s.tls_key_in_broker()) {
      if (absl::Status k = UseKeyInBroker(tls->native_handle(), s.tls_cert_chain_pem(), sign_fd);
          !k.ok()) {
        LogError("TLS set-up failed: %s", k.message());
        return 3;
      }
    } else {
      tls->use_private_key(asio::buffer(s.tls_key_pem()), ssl::context::pem, ec);
      if (ec) {
        LogError("TLS set-up failed: %s", ec.message());
        return 3;
      }
    }
  }
  shared.broker = std::make_shared<BrokerChannel>(io, ipc_fd);
  shared.broker->Start();
  Listener listener(io, listen_fd, &shared, tls.get());
  listener.Accept();
  // Everything the worker needs is open; from here on it can only serve (worker_sandbox.h).
  // The TLS signing channel (fd 5) needs nothing but sendmsg/recvmsg on it.
  if (absl::Status sandboxed = sandbox::EnterWorkerSandbox(sandbox_options); !sandboxed.ok()) {
    LogError("cannot enter the sandbox: %s", sandboxed.message());
    return 3;
  }
  LogInfo("serving%s", !tls                    ? ""
                       : s.tls_key_in_broker() ? " (TLS, key in the broker's token)"
                                               : " (TLS)");
  io.run();
  return 0;
}

}  // namespace strongroom::worker
