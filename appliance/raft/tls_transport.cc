// The one translation unit of the Raft module that compiles Boost.Asio (see tls_transport.h).
//
// Threads: libraft's uv loop calls init/listen/connect/close; the Asio thread runs every TLS
// handshake and the byte pumps. Results cross back to the loop through a queue and a uv_async
// handle; nothing on the Asio thread touches libraft.
#include "appliance/raft/tls_transport.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <array>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "appliance/raft/elastic_pool.h"
#include "appliance/raft/libraft.h"
#include "appliance/raft/loop_inbox.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "base/strings.h"

namespace strongroom::raft {
namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using local_stream = asio::local::stream_protocol;
using error_code = boost::system::error_code;

constexpr auto kHandshakeDeadline = std::chrono::seconds(5);
constexpr std::string_view kPreambleMagic = "SRT1";
constexpr std::string_view kServiceMagic = "SRJ1";
constexpr size_t kMagicBytes = 4;
constexpr size_t kPreambleFixed = 4 + 8 + 2;
constexpr auto kServiceDeadline = std::chrono::seconds(30);
// A caller's idle connection is closed after this; callers drop theirs sooner (kClientIdle).
constexpr auto kServiceIdle = std::chrono::seconds(60);
constexpr auto kClientIdle = std::chrono::seconds(30);
constexpr size_t kMaxAddress = 255;
// Bounds on what the cluster port takes on (issue 15): connections still in their TLS handshake
// (anyone who can reach the port can open them), service-call connections (held by members
// between calls), and service calls being answered, each on a thread of its own (kept for later
// calls: ElasticPool). Past the
// first two a new connection is closed at once; past the last a call is answered with an empty
// answer, which callers report as "busy".
constexpr int kMaxHandshakes = 64;
constexpr int kMaxServiceConnections = 256;
constexpr int kMaxServiceCalls = 32;
constexpr size_t kPumpBuffer = 64 * 1024;
// The payload on a failed call's status whose request may have reached the member.
constexpr std::string_view kMayHaveArrived = "strongroom/raft-request-may-have-arrived";

absl::Status LoadContext(SSL_CTX* ctx, const TlsFiles& f) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_num_tickets(ctx, 0);
  if (SSL_CTX_use_certificate_chain_file(ctx, f.cert_file.c_str()) != 1)
    return absl::InvalidArgumentError(absl::StrCat("cannot read the cluster certificate \"",
                                                   f.cert_file, "\": ", OpenSslError()));
  const std::string key_name =
      f.key ? std::string("in the token") : absl::StrCat("\"", f.key_file, "\"");
  if (f.key ? SSL_CTX_use_PrivateKey(ctx, f.key->pkey.get()) != 1
            : SSL_CTX_use_PrivateKey_file(ctx, f.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    return absl::InvalidArgumentError(
        absl::StrCat("cannot use the cluster key ", key_name, ": ", OpenSslError()));
  if (SSL_CTX_check_private_key(ctx) != 1)
    return absl::InvalidArgumentError(
        absl::StrCat("the cluster key ", key_name, " does not match \"", f.cert_file, "\""));
  if (SSL_CTX_load_verify_locations(ctx, f.ca_file.c_str(), nullptr) != 1)
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read the cluster CA \"", f.ca_file, "\": ", OpenSslError()));
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  return absl::OkStatus();
}

// A TLS context for `f`, made in the token key's library context when it has one (so that
// libssl fetches the key's signature from pkcs11-provider).
absl::StatusOr<ssl::context> NewContext(const TlsFiles& f, bool server) {
  OSSL_LIB_CTX* libctx = f.key ? f.key->libctx.get() : nullptr;
  SSL_CTX* native =
      SSL_CTX_new_ex(libctx, nullptr, server ? TLS_server_method() : TLS_client_method());
  if (native == nullptr) {
    return absl::InternalError(absl::StrCat("cannot make a TLS context: ", OpenSslError()));
  }
  ssl::context ctx(native);  // owns it from here
  RETURN_IF_ERROR(LoadContext(ctx.native_handle(), f));
  return ctx;
}

void TuneSocket(tcp::socket& s) {
  error_code ignored;
  s.set_option(tcp::no_delay(true), ignored);
  s.set_option(asio::socket_base::keep_alive(true), ignored);
}

// Owns one end of a socketpair until it is handed to libraft.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  int Release() { return std::exchange(fd, -1); }
};

// Copies bytes both ways between a TLS stream and libraft's end of a socketpair until either
// side closes; then closes both, which libraft sees as EOF.
class Pump : public std::enable_shared_from_this<Pump> {
 public:
  Pump(ssl::stream<tcp::socket> tls, local_stream::socket local)
      : tls_(std::move(tls)), local_(std::move(local)) {}
  void Start() {
    Relay(tls_, local_, down_);
    Relay(local_, tls_, up_);
  }

  // Asio thread.
  void Stop() {
    if (stopped_) return;
    stopped_ = true;
    error_code ignored;
    tls_.lowest_layer().shutdown(tcp::socket::shutdown_both, ignored);
    tls_.lowest_layer().close(ignored);
    local_.close(ignored);
  }

 private:
  // Copies `from` to `to` until either side fails or closes; then stops both directions.
  template <typename From, typename To>
  void Relay(From& from, To& to, std::array<char, kPumpBuffer>& buf) {
    from.async_read_some(asio::buffer(buf),
                         [self = shared_from_this(), &from, &to, &buf](error_code ec, size_t n) {
                           if (ec) return self->Stop();
                           asio::async_write(to, asio::buffer(buf.data(), n),
                                             [self, &from, &to, &buf](error_code wec, size_t) {
                                               if (wec) return self->Stop();
                                               self->Relay(from, to, buf);
                                             });
                         });
  }

  ssl::stream<tcp::socket> tls_;
  local_stream::socket local_;
  std::array<char, kPumpBuffer> down_{};
  std::array<char, kPumpBuffer> up_{};
  bool stopped_ = false;
};

}  // namespace

struct TlsTransport::Impl {
  raft_uv_transport t{};
  uv_loop_t* loop = nullptr;
  LoopInbox inbox;  // closures for the loop thread
  bool inbox_open = false;

  // Service connections open. Declared before `io`: the last handler holding one may be
  // destroyed with the io_context, or on a service thread.
  std::atomic<int> service_connections{0};
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread io_thread;
  std::optional<ssl::context> server_ctx;  // set by Create
  std::optional<ssl::context> client_ctx;
  std::unique_ptr<tcp::acceptor> acceptor;  // Asio thread only, once listening
  ServiceHandler service;
  PeerCheck check;
  std::atomic<int> service_threads{0};  // handlers still running (they use `service`)
  // The threads handlers run on, kept for later calls. Declared after `io`: destroyed first,
  // once no handler runs (~TlsTransport), so none posts to `io` after it is gone.
  ElasticPool service_pool{kMaxServiceCalls};
  int handshakes = 0;  // Asio thread only

  // Loop thread only.
  raft_id id = 0;
  std::string address;
  raft_uv_accept_cb accept_cb = nullptr;
  std::map<raft_uv_connect*, uint64_t> connecting;  // request -> attempt number
  uint64_t next_attempt = 1;
  bool closing = false;
  raft_uv_transport_close_cb close_cb = nullptr;

  // Runs `fn` on the loop thread, or drops it (and what it owns) once the transport is closed.
  void ToLoop(std::function<void()> fn) { inbox.Post(std::move(fn)); }

  // A uv_pipe_t over `fd`, allocated with raft_malloc: libraft frees its streams with raft_free.
  uv_stream_t* OpenPipe(Fd& fd) {
    auto* pipe = static_cast<uv_pipe_t*>(raft_malloc(sizeof(uv_pipe_t)));
    if (pipe == nullptr) return nullptr;
    uv_pipe_init(loop, pipe, 0);
    if (uv_pipe_open(pipe, fd.fd) != 0) {
      uv_close(reinterpret_cast<uv_handle_t*>(pipe), [](uv_handle_t* h) { raft_free(h); });
      return nullptr;
    }
    fd.Release();
    return reinterpret_cast<uv_stream_t*>(pipe);
  }

  void DeliverAccept(raft_id peer, const std::string& peer_address, Fd& fd) {
    if (closing || accept_cb == nullptr) return;
    uv_stream_t* stream = OpenPipe(fd);
    if (stream != nullptr) accept_cb(&t, peer, peer_address.c_str(), stream);
  }

  void DeliverConnect(raft_uv_connect* req, uint64_t attempt, Fd* fd) {
    auto it = connecting.find(req);
    if (it == connecting.end() || it->second != attempt) return;  // cancelled meanwhile
    connecting.erase(it);
    uv_stream_t* stream = fd != nullptr ? OpenPipe(*fd) : nullptr;
    req->cb(req, stream, stream != nullptr ? 0 : RAFT_NOCONNECTION);
  }

  // Open Raft connections, with what they were admitted as (Asio thread only): RecheckPeers.
  struct Admitted {
    std::weak_ptr<Pump> pump;
    uint64_t raft_id = 0;
    std::string address;
    PeerIdentity peer;
  };
  std::vector<Admitted> admitted;

  void Recheck() {
    std::vector<Admitted> still;
    for (Admitted& a : admitted) {
      std::shared_ptr<Pump> pump = a.pump.lock();
      if (!pump) continue;  // closed meanwhile
      if (check) {
        if (absl::Status s = check(a.raft_id, a.address, a.peer); !s.ok()) {
          LogWarn("raft: closed the Raft connection with id %d at \"%s\": %s", a.raft_id,
                  absl::CHexEscape(Av(a.address)), s.message());
          pump->Stop();
          continue;
        }
      }
      still.push_back(std::move(a));
    }
    admitted = std::move(still);
  }

  void StartPump(ssl::stream<tcp::socket> tls, std::shared_ptr<Fd>* libraft_end,
                 uint64_t peer_id = 0, std::string peer_address = "", PeerIdentity peer = {}) {
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return;
    local_stream::socket ours(io);
    error_code ec;
    ours.assign(local_stream(), pair[0], ec);
    if (ec) {
      ::close(pair[0]);
      ::close(pair[1]);
      return;
    }
    *libraft_end = std::make_shared<Fd>(pair[1]);
    auto pump = std::make_shared<Pump>(std::move(tls), std::move(ours));
    pump->Start();
    if (peer_id != 0) {
      // Closed pumps are dropped here too, so the list stays as long as the open connections.
      std::erase_if(admitted, [](const Admitted& a) { return a.pump.expired(); });
      admitted.push_back({pump, peer_id, std::move(peer_address), std::move(peer)});
    }
  }

  // --- accepting (Asio thread) ---
  void Accept() {
    acceptor->async_accept([this](error_code ec, tcp::socket sock) {
      if (ec == asio::error::operation_aborted || !acceptor->is_open()) return;
      if (ec) {
        // Out of descriptors and the like: try again shortly rather than spin.
        auto timer = std::make_shared<asio::steady_timer>(io, std::chrono::milliseconds(100));
        timer->async_wait([this, timer](error_code) {
          if (acceptor->is_open()) Accept();
        });
        return;
      }
      Incoming(std::move(sock));
      Accept();
    });
  }

  struct Handshake {
    explicit Handshake(asio::io_context& io, tcp::socket s, ssl::context& ctx)
        : tls(std::move(s), ctx), deadline(io, kHandshakeDeadline) {}
    ~Handshake() {
      if (service_count != nullptr) --*service_count;
    }
    ssl::stream<tcp::socket> tls;
    asio::steady_timer deadline;
    std::array<char, kPreambleFixed + kMaxAddress> preamble{};
    std::atomic<int>* service_count = nullptr;  // set while this is a service connection
    PeerIdentity peer;                          // what the peer's certificate names
    void Arm() {
      deadline.async_wait([this](error_code ec) {
        if (ec) return;  // cancelled: the handshake finished
        error_code ignored;
        tls.lowest_layer().close(ignored);
      });
    }
  };

  void Incoming(tcp::socket sock) {
    if (handshakes >= kMaxHandshakes) {
      error_code ignored;
      LogWarn("raft: refused a connection from %s (%d handshakes under way)", RemoteOf(sock),
              handshakes);
      sock.close(ignored);
      return;
    }
    TuneSocket(sock);
    ++handshakes;
    auto h = std::make_shared<Handshake>(io, std::move(sock), *server_ctx);
    h->Arm();
    h->tls.async_handshake(ssl::stream_base::server, [this, h](error_code ec) {
      --handshakes;
      if (ec) return Refused(h, "TLS handshake", ec);
      h->peer = IdentityOfPeer(h->tls.native_handle());
      asio::async_read(h->tls, asio::buffer(h->preamble.data(), kMagicBytes),
                       [this, h](error_code rec, size_t) {
                         if (rec) return Refused(h, "preamble", rec);
                         std::string_view magic(h->preamble.data(), kMagicBytes);
                         if (magic == kPreambleMagic) return RaftPeer(h);
                         if (magic == kServiceMagic && service) {
                           if (service_connections.load() >= kMaxServiceConnections) {
                             return Refused(h, "service connection", asio::error::no_buffer_space);
                           }
                           ++service_connections;
                           h->service_count = &service_connections;
                           return ServiceCall(h, true);
                         }
                         Refused(h, "preamble", asio::error::invalid_argument);
                       });
    });
  }

  static std::string RemoteOf(const tcp::socket& sock) {
    error_code ec;
    auto remote = sock.remote_endpoint(ec);
    return ec ? std::string("?") : remote.address().to_string();
  }

  void RaftPeer(const std::shared_ptr<Handshake>& h) {
    asio::async_read(
        h->tls, asio::buffer(h->preamble.data() + kMagicBytes, kPreambleFixed - kMagicBytes),
        [this, h](error_code rec, size_t) {
          if (rec) return Refused(h, "preamble", rec);
          const char* p = h->preamble.data();
          uint64_t peer = 0;
          for (int i = 7; i >= 0; --i) peer = (peer << 8) | static_cast<uint8_t>(p[4 + i]);
          size_t len =
              static_cast<uint8_t>(p[12]) | (static_cast<size_t>(static_cast<uint8_t>(p[13])) << 8);
          if (peer == 0 || len == 0 || len > kMaxAddress)
            return Refused(h, "preamble", asio::error::invalid_argument);
          asio::async_read(
              h->tls, asio::buffer(h->preamble.data() + kPreambleFixed, len),
              [this, h, peer, len](error_code aec, size_t) {
                if (aec) return Refused(h, "preamble", aec);
                std::string peer_address(h->preamble.data() + kPreambleFixed, len);
                if (check) {
                  if (absl::Status s = check(peer, peer_address, h->peer); !s.ok()) {
                    LogWarn("raft: refused a Raft connection claiming id %d at \"%s\": %s", peer,
                            absl::CHexEscape(Av(peer_address)), s.message());
                    return Refused(h, "preamble", asio::error::access_denied);
                  }
                }
                h->deadline.cancel();
                std::shared_ptr<Fd> fd;
                StartPump(std::move(h->tls), &fd, peer, peer_address, h->peer);
                if (!fd) return;
                ToLoop([this, peer, peer_address, fd] { DeliverAccept(peer, peer_address, *fd); });
              });
        });
  }

  // Service calls: length-prefixed request in, the handler's answer out, then the next request
  // on the same connection (the caller keeps it for later calls; it closes it when idle). The
  // handler runs on a thread of its own (it may wait on the Raft loop or the token), kept for
  // later calls (ElasticPool).
  void ServiceCall(const std::shared_ptr<Handshake>& h, bool first) {
    h->deadline.expires_after(first ? kServiceDeadline : kServiceIdle);
    h->Arm();
    auto len_buf = std::make_shared<std::array<uint8_t, 4>>();
    asio::async_read(
        h->tls, asio::buffer(*len_buf), [this, h, len_buf, first](error_code ec, size_t) {
          if (ec && !first)
            return Quiet(h);  // the caller closed an idle connection, or it timed out
          if (ec) return Refused(h, "service request", ec);
          uint32_t len = 0;
          for (int i = 3; i >= 0; --i) len = (len << 8) | (*len_buf)[static_cast<size_t>(i)];
          if (len > kMaxServiceMessage)
            return Refused(h, "service request", asio::error::message_size);
          h->deadline.expires_after(kServiceDeadline);
          h->Arm();
          auto body = std::make_shared<std::string>(len, '\0');
          asio::async_read(h->tls, asio::buffer(*body), [this, h, body](error_code rec, size_t) {
            if (rec) return Refused(h, "service request", rec);
            h->deadline.cancel();  // the handler has deadlines of its own
            // Too many calls under way: the empty answer ("busy") at once, and no thread.
            if (service_threads.load() >= kMaxServiceCalls) {
              LogWarn("raft: a service call from %s answered busy (%d calls under way)",
                      RemoteOf(h->tls.next_layer()), service_threads.load());
              return ServiceAnswer(h, std::string());
            }
            ++service_threads;
            const bool posted = service_pool.Post([this, h, body] {
              std::string answer = service(h->peer, *body);
              // Too large to send: the call ran, so not the empty "busy" answer (which says it
              // did not); an answer without "ok", which callers take as a failure after the
              // fact (a forwarded request: "may or may not have been applied").
              if (answer.size() > kMaxServiceMessage) {
                answer = "{\"error\":\"the answer is larger than the cluster port carries\"}";
              }
              asio::post(io, [this, h, answer = std::move(answer)]() mutable {
                ServiceAnswer(h, std::move(answer));
              });
              --service_threads;
            });
            if (!posted) {  // no thread could be started: "busy", as above
              --service_threads;
              return ServiceAnswer(h, std::string());
            }
          });
        });
  }

  // Writes the length-prefixed answer (empty: refused, busy) and waits for the next request.
  void ServiceAnswer(const std::shared_ptr<Handshake>& h, std::string answer) {
    auto out = std::make_shared<std::string>();
    for (int i = 0; i < 4; ++i)
      out->push_back(static_cast<char>((answer.size() >> (8 * i)) & 0xff));
    *out += answer;
    asio::async_write(h->tls, asio::buffer(*out), [this, h, out](error_code wec, size_t) {
      if (wec) return Quiet(h);
      ServiceCall(h, false);
    });
  }

  void Quiet(const std::shared_ptr<Handshake>& h) {
    h->deadline.cancel();
    error_code ignored;
    h->tls.lowest_layer().shutdown(tcp::socket::shutdown_both, ignored);
    h->tls.lowest_layer().close(ignored);
  }

  void Refused(const std::shared_ptr<Handshake>& h, std::string_view step, error_code ec) {
    error_code ignored;
    auto remote = h->tls.lowest_layer().remote_endpoint(ignored);
    LogWarn("raft: refused a peer connection from %s (%s: %s)",
            ignored ? std::string("?") : remote.address().to_string(), Av(step), ec.message());
    h->deadline.cancel();
    h->tls.lowest_layer().close(ignored);
  }

  // --- connecting (Asio thread) ---
  void Connect(raft_uv_connect* req, uint64_t attempt, raft_id peer_id, std::string peer_address) {
    std::string host, port;
    if (!SplitHostPort(peer_address, &host, &port)) return ConnectFailed(req, attempt);
    auto h = std::make_shared<Handshake>(io, tcp::socket(io), *client_ctx);
    auto resolver = std::make_shared<tcp::resolver>(io);
    h->deadline.async_wait([h, resolver](error_code ec) {
      if (ec) return;
      resolver->cancel();
      error_code ignored;
      h->tls.lowest_layer().close(ignored);
    });
    resolver->async_resolve(
        host, port,
        [this, h, resolver, req, attempt, peer_id, peer_address](error_code ec,
                                                                 tcp::resolver::results_type r) {
          if (ec) return ConnectFailed(req, attempt, h);
          asio::async_connect(
              h->tls.lowest_layer(), r,
              [this, h, req, attempt, peer_id, peer_address](error_code cec, const tcp::endpoint&) {
                if (cec) return ConnectFailed(req, attempt, h);
                TuneSocket(h->tls.next_layer());
                h->tls.async_handshake(ssl::stream_base::client, [this, h, req, attempt, peer_id,
                                                                  peer_address](error_code hec) {
                  if (hec) {
                    LogWarn("raft: TLS handshake with a peer failed: %s", hec.message());
                    return ConnectFailed(req, attempt, h);
                  }
                  PeerIdentity who = IdentityOfPeer(h->tls.native_handle());
                  if (check) {
                    absl::Status s = check(peer_id, peer_address, who);
                    if (!s.ok()) {
                      LogWarn("raft: the peer at %s is not Raft id %d: %s", peer_address, peer_id,
                              s.message());
                      return ConnectFailed(req, attempt, h);
                    }
                  }
                  std::string pre(kPreambleMagic);
                  for (int i = 0; i < 8; ++i)
                    pre.push_back(static_cast<char>((id >> (8 * i)) & 0xff));
                  pre.push_back(static_cast<char>(address.size() & 0xff));
                  pre.push_back(static_cast<char>(address.size() >> 8));
                  pre += address;
                  auto buf = std::make_shared<std::string>(std::move(pre));
                  asio::async_write(h->tls, asio::buffer(*buf),
                                    [this, h, buf, req, attempt, peer_id, peer_address,
                                     who = std::move(who)](error_code wec, size_t) {
                                      if (wec) return ConnectFailed(req, attempt, h);
                                      h->deadline.cancel();
                                      std::shared_ptr<Fd> fd;
                                      StartPump(std::move(h->tls), &fd, peer_id, peer_address, who);
                                      if (!fd) return ConnectFailed(req, attempt);
                                      ToLoop([this, req, attempt, fd] {
                                        DeliverConnect(req, attempt, fd.get());
                                      });
                                    });
                });
              });
        });
  }

  void ConnectFailed(raft_uv_connect* req, uint64_t attempt,
                     const std::shared_ptr<Handshake>& h = nullptr) {
    if (h) {
      h->deadline.cancel();
      error_code ignored;
      h->tls.lowest_layer().close(ignored);
    }
    ToLoop([this, req, attempt] { DeliverConnect(req, attempt, nullptr); });
  }

  // --- the raft_uv_transport methods (loop thread) ---
  static Impl* Of(raft_uv_transport* t) { return static_cast<Impl*>(t->impl); }

  static int Init(raft_uv_transport* t, raft_id id, const char* address) {
    Impl* self = Of(t);
    self->id = id;
    self->address = address;
    if (self->address.size() > kMaxAddress) return RAFT_INVALID;
    if (self->inbox.Init(self->loop) != 0) return RAFT_IOERR;
    self->inbox_open = true;
    return 0;
  }

  static int Listen(raft_uv_transport* t, raft_uv_accept_cb cb) {
    Impl* self = Of(t);
    std::string host, port;
    if (!SplitHostPort(self->address, &host, &port)) {
      snprintf(t->errmsg, sizeof(t->errmsg), "invalid cluster address %s", self->address.c_str());
      return RAFT_INVALID;
    }
    // A name (a pod's DNS name, say) is advertised to peers; the socket listens on every
    // interface at its port. An IP address is listened on as it is.
    error_code ec;
    asio::ip::address bind = asio::ip::make_address(host, ec);
    if (ec) bind = asio::ip::address_v4::any();
    auto acceptor = std::make_unique<tcp::acceptor>(self->io);
    tcp::endpoint ep(bind, static_cast<uint16_t>(std::stoi(port)));
    acceptor->open(ep.protocol(), ec);
    if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor->bind(ep, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      snprintf(t->errmsg, sizeof(t->errmsg), "cannot listen on %s: %s", self->address.c_str(),
               ec.message().c_str());
      return RAFT_IOERR;
    }
    self->accept_cb = cb;
    self->acceptor = std::move(acceptor);
    asio::post(self->io, [self] { self->Accept(); });
    return 0;
  }

  static int ConnectMethod(raft_uv_transport* t, raft_uv_connect* req, raft_id peer,
                           const char* address, raft_uv_connect_cb cb) {
    Impl* self = Of(t);
    if (self->closing) return RAFT_CANCELED;
    req->cb = cb;
    uint64_t attempt = self->next_attempt++;
    self->connecting[req] = attempt;
    asio::post(self->io, [self, req, attempt, peer, a = std::string(address)] {
      self->Connect(req, attempt, peer, a);
    });
    return 0;
  }

  static void Close(raft_uv_transport* t, raft_uv_transport_close_cb cb) {
    Impl* self = Of(t);
    self->closing = true;
    self->close_cb = cb;
    asio::post(self->io, [self] {
      error_code ignored;
      if (self->acceptor) self->acceptor->close(ignored);
    });
    // Pending connects are answered on the next turn of the loop (libraft expects callbacks
    // after the call returns), then the wake-up handle closes and the close callback runs.
    self->inbox.Last([self] {
      auto pending = std::move(self->connecting);
      self->connecting.clear();
      for (auto& [req, attempt] : pending) req->cb(req, nullptr, RAFT_CANCELED);
      self->inbox.Close([self] {
        self->inbox_open = false;
        if (self->close_cb) self->close_cb(&self->t);
      });
    });
  }
};

// One TLS connection to a member's service port, kept between calls. Each has its own
// io_context: a call runs it until the answer arrives or the call's deadline passes.
struct ServiceClient::Conn {
  explicit Conn(ssl::context& ctx) : tls(io, ctx) {}
  asio::io_context io;
  ssl::stream<tcp::socket> tls;
  std::string address;
  PeerIdentity server;  // who the member's certificate says it is
  std::chrono::steady_clock::time_point last_used;
  std::string failure;  // what went wrong in the last operation

  // Whether the member closed this idle connection (or sent anything, which it never does
  // between calls): a kept connection is then not used again. The request would otherwise be
  // written to a dead connection and fail after it left, as one that may have arrived.
  bool ClosedByPeer() {
    pollfd p{tls.lowest_layer().native_handle(), POLLIN | POLLRDHUP, 0};
    const int n = ::poll(&p, 1, 0);
    return n != 0;  // readable, hung up, or an error: not reusable
  }

  // Ends the operation under way: notes the step and closes the socket.
  void Fail(std::string_view step, error_code ec) {
    failure = absl::StrCat(Av(step), ": ", ec.message());
    error_code ignored;
    tls.lowest_layer().close(ignored);
  }

  // Runs the io_context until `done` or `deadline`; on timeout, closes the socket and lets the
  // aborted operations finish while what they refer to is alive.
  bool RunUntil(const bool& done, std::chrono::steady_clock::time_point deadline) {
    io.restart();
    while (!done && std::chrono::steady_clock::now() < deadline) {
      io.run_one_until(deadline);
      if (io.stopped() && !done) break;
    }
    if (done) return true;
    error_code ignored;
    tls.lowest_layer().close(ignored);
    io.restart();
    io.run_for(std::chrono::seconds(1));
    return false;
  }
};

ServiceClient::ServiceClient(TlsFiles files) : files_(std::move(files)) {}
ServiceClient::~ServiceClient() = default;

absl::StatusOr<std::unique_ptr<ServiceClient::Conn>> ServiceClient::Connect(
    const std::string& address, std::chrono::steady_clock::time_point deadline) {
  std::string host, port;
  if (!SplitHostPort(address, &host, &port))
    return absl::InvalidArgumentError(absl::StrCat("invalid cluster address \"", address, "\""));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!ctx_) {
      auto ctx = NewContext(files_, /*server=*/false);
      if (!ctx.ok()) return ctx.status();
      ctx_ = std::make_unique<ssl::context>(*std::move(ctx));
    }
  }
  auto c = std::make_unique<Conn>(*ctx_);
  c->address = address;
  bool done = false;
  // An IP address needs no resolver (and no resolver thread).
  error_code parse_ec;
  asio::ip::address ip = asio::ip::make_address(host, parse_ec);
  tcp::resolver resolver(c->io);
  auto handshake = [&] {
    TuneSocket(c->tls.next_layer());
    c->tls.async_handshake(ssl::stream_base::client, [&](error_code hec) {
      if (hec) return c->Fail("TLS handshake", hec);
      // The member is who its certificate says, as a peer is to this node: a node id, and the
      // host dialled (as HTTPS checks a server's name). Anything else gets nothing, not even
      // the magic: forwarded requests carry tokens and secrets.
      const PeerIdentity server = IdentityOfPeer(c->tls.native_handle());
      c->server = server;
      if (server.node_id.empty() || !server.Reaches(address)) {
        c->failure = absl::StrCat("the member's cluster certificate (node \"", server.node_id,
                                  "\") does not name the host of ", address,
                                  " or names no node id; nothing was sent");
        error_code ignored;
        c->tls.lowest_layer().close(ignored);
        return;
      }
      asio::async_write(c->tls, asio::buffer(kServiceMagic), [&](error_code wec, size_t) {
        if (wec) return c->Fail("write", wec);
        done = true;
      });
    });
  };
  if (!parse_ec) {
    c->tls.lowest_layer().async_connect(tcp::endpoint(ip, static_cast<uint16_t>(std::stoi(port))),
                                        [&](error_code cec) {
                                          if (cec) return c->Fail("connect", cec);
                                          handshake();
                                        });
  } else {
    resolver.async_resolve(host, port, [&](error_code ec, tcp::resolver::results_type r) {
      if (ec) return c->Fail("resolve", ec);
      asio::async_connect(c->tls.lowest_layer(), r, [&](error_code cec, const tcp::endpoint&) {
        if (cec) return c->Fail("connect", cec);
        handshake();
      });
    });
  }
  if (!c->RunUntil(done, deadline)) {
    resolver.cancel();
    return absl::UnavailableError(absl::StrCat(
        "cluster call to ", address, " failed: ", c->failure.empty() ? "timed out" : c->failure));
  }
  return c;
}

absl::StatusOr<std::string> ServiceClient::Call(const std::string& address,
                                                std::string_view request,
                                                std::chrono::milliseconds timeout,
                                                PeerIdentity* server) {
  if (request.size() > kMaxServiceMessage)
    return absl::InvalidArgumentError("service request too large");
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // A kept connection to `address`, if one is idle and fresh; else a new one. A kept one may have
  // been closed by the other side meanwhile: then the call is made once more on a new one.
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::unique_ptr<Conn> c;
    bool reused = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // The most recent idle connection to `address`; connections idle too long are dropped,
      // those to other members kept (a leader calls each of its followers in turn).
      const auto now = std::chrono::steady_clock::now();
      for (size_t i = idle_.size(); i-- > 0;) {
        if (now - idle_[i]->last_used >= kClientIdle) {
          idle_.erase(idle_.begin() + static_cast<std::ptrdiff_t>(i));
        } else if (idle_[i]->ClosedByPeer()) {
          idle_.erase(idle_.begin() + static_cast<std::ptrdiff_t>(i));
        } else if (!c && idle_[i]->address == address) {
          c = std::move(idle_[i]);
          idle_.erase(idle_.begin() + static_cast<std::ptrdiff_t>(i));
          reused = true;
        }
      }
    }
    if (!c) {
      ASSIGN_OR_RETURN(c, Connect(address, deadline));
    }
    std::string out;
    for (int i = 0; i < 4; ++i)
      out.push_back(static_cast<char>((request.size() >> (8 * i)) & 0xff));
    out.append(request);
    std::array<uint8_t, 4> len_buf{};
    std::string answer;
    bool done = false;
    bool busy = false;
    c->failure.clear();
    asio::async_write(c->tls, asio::buffer(out), [&](error_code wec, size_t) {
      if (wec) return c->Fail("write", wec);
      asio::async_read(c->tls, asio::buffer(len_buf), [&](error_code rec, size_t) {
        if (rec) return c->Fail("read", rec);
        uint32_t len = 0;
        for (int i = 3; i >= 0; --i) len = (len << 8) | len_buf[static_cast<size_t>(i)];
        if (len > kMaxServiceMessage) return c->Fail("read", asio::error::message_size);
        if (len == 0) {  // the member refused the call: too many under way, or no answer
          busy = true;
          done = true;
          return;
        }
        answer.resize(len);
        asio::async_read(c->tls, asio::buffer(answer), [&](error_code bec, size_t) {
          if (bec) return c->Fail("read", bec);
          done = true;
        });
      });
    });
    if (c->RunUntil(done, deadline)) {
      c->last_used = std::chrono::steady_clock::now();
      if (server != nullptr) *server = c->server;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (idle_.size() < kMaxIdleConnections) idle_.push_back(std::move(c));
      }
      if (busy) {
        return absl::ResourceExhaustedError(
            absl::StrCat("cluster member ", address, " is busy (too many service calls); retry"));
      }
      return answer;
    }
    // A failed write left part of the request at most, which the member never acts on; once
    // the write completed (or the deadline passed while it was under way) the request may have
    // arrived whole.
    const bool unsent = c->failure.rfind("write", 0) == 0;
    if (reused && unsent && std::chrono::steady_clock::now() < deadline) {
      continue;  // the kept connection was gone before the request left: nothing was done
    }
    absl::Status failed = absl::UnavailableError(absl::StrCat(
        "cluster call to ", address, " failed: ", c->failure.empty() ? "timed out" : c->failure));
    if (!unsent) {
      failed.SetPayload(absl::string_view(kMayHaveArrived.data(), kMayHaveArrived.size()),
                        absl::Cord("1"));
    }
    return failed;
  }
  return absl::UnavailableError(absl::StrCat("cluster call to ", address, " failed"));
}

bool RequestMayHaveArrived(const absl::Status& failed_call) {
  return failed_call.GetPayload(absl::string_view(kMayHaveArrived.data(), kMayHaveArrived.size()))
      .has_value();
}

absl::StatusOr<std::string> CallService(const TlsFiles& files, const std::string& address,
                                        std::string_view request,
                                        std::chrono::milliseconds timeout) {
  ServiceClient client(files);
  return client.Call(address, request, timeout);
}

absl::StatusOr<std::unique_ptr<TlsTransport>> TlsTransport::Create(uv_loop_s* loop,
                                                                   const TlsFiles& files,
                                                                   ServiceHandler service,
                                                                   PeerCheck check) {
  auto impl = std::make_unique<Impl>();
  impl->loop = loop;
  impl->service = std::move(service);
  impl->check = std::move(check);
  auto server_ctx = NewContext(files, /*server=*/true);
  if (!server_ctx.ok()) return server_ctx.status();
  auto client_ctx = NewContext(files, /*server=*/false);
  if (!client_ctx.ok()) return client_ctx.status();
  impl->server_ctx.emplace(*std::move(server_ctx));
  impl->client_ctx.emplace(*std::move(client_ctx));
  impl->t.version = 1;
  impl->t.impl = impl.get();
  impl->t.init = &Impl::Init;
  impl->t.listen = &Impl::Listen;
  impl->t.connect = &Impl::ConnectMethod;
  impl->t.close = &Impl::Close;
  impl->work.emplace(impl->io.get_executor());
  Impl* raw = impl.get();
  impl->io_thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<TlsTransport>(new TlsTransport(std::move(impl)));
}

TlsTransport::TlsTransport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

TlsTransport::~TlsTransport() {
  while (impl_->service_threads.load() > 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  impl_->work.reset();
  impl_->io.stop();
  if (impl_->io_thread.joinable()) impl_->io_thread.join();
  if (impl_->inbox_open) LogError("raft: transport destroyed before libraft closed it");
}

raft_uv_transport* TlsTransport::get() { return &impl_->t; }

void TlsTransport::RecheckPeers() {
  Impl* impl = impl_.get();
  asio::post(impl->io, [impl] { impl->Recheck(); });
}

}  // namespace strongroom::raft
