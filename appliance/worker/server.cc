// All Boost.Beast / Asio code of the worker lives in this translation unit.
#include "appliance/worker/server.h"

#include <openssl/err.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <type_traits>
#include <unordered_map>
#include <vector>

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

  void Start() { ReadMore(); }

  // `urgent`: a status call (sys/health and the like). It goes out before the ordinary frames
  // still waiting (each may be a 32 MiB body), so a load balancer's health check does not wait
  // behind a flood of large writes.
  void Send(ipc::Request req, Callback cb, bool urgent = false) {
    const uint64_t id = next_id_++;
    req.set_id(id);
    pending_[id] = std::move(cb);
    ipc::Frame frame;
    *frame.mutable_request() = std::move(req);
    (urgent ? urgent_ : queue_).push_back(ipc::EncodeFrame(frame));
    if (!writing_) {
      // Written once the handlers ready now have run: the requests of every connection that
      // became readable together go out in one write.
      writing_ = true;
      asio::post(socket_.get_executor(), [self = shared_from_this()] { self->WriteNext(); });
    }
  }

 private:
  // Frames that wait go out together, in one system call (up to kMaxBatchFrames of them, or
  // until one makes the batch reach kMaxBatchBytes): urgent ones first.
  static constexpr size_t kMaxBatchFrames = 64;
  static constexpr size_t kMaxBatchBytes = 256 * 1024;
  // Responses are read in pieces of this much (more when a frame is larger), each piece
  // holding as many whole frames as have arrived.
  static constexpr size_t kReadChunk = 64 * 1024;

  void WriteNext() {
    batch_.clear();
    size_t bytes = 0;
    for (std::deque<std::string>* from : {&urgent_, &queue_}) {
      while (!from->empty() && batch_.size() < kMaxBatchFrames && bytes < kMaxBatchBytes) {
        bytes += from->front().size();
        batch_.push_back(std::move(from->front()));
        from->pop_front();
      }
    }
    if (batch_.empty()) {
      writing_ = false;
      return;
    }
    writing_ = true;
    buffers_.clear();
    for (const std::string& f : batch_) buffers_.push_back(asio::buffer(f));
    auto self = shared_from_this();
    asio::async_write(socket_, buffers_, [self](beast::error_code ec, size_t) {
      if (ec) self->Fatal("write to broker", ec);
      self->WriteNext();
    });
  }

  // Reads what the broker has sent into rbuf_ and hands on every whole frame in it.
  void ReadMore() {
    const size_t avail = end_ - start_;
    size_t need = 4;
    if (avail >= 4) {
      need = 4 + size_t{ipc::DecodeLength(reinterpret_cast<const uint8_t*>(rbuf_.data() + start_))};
    }
    // Room for the rest of the frame under way (at least a chunk): what is buffered moves to
    // the front. Its length was checked against the cap when its header arrived (Dispatch).
    if (rbuf_.size() - start_ < std::max(need, kReadChunk)) {
      if (start_ > 0) {
        std::memmove(rbuf_.data(), rbuf_.data() + start_, avail);
        start_ = 0;
        end_ = avail;
      }
      if (rbuf_.size() < std::max(need, kReadChunk)) rbuf_.resize(std::max(need, kReadChunk));
    }
    auto self = shared_from_this();
    socket_.async_read_some(asio::buffer(rbuf_.data() + end_, rbuf_.size() - end_),
                            [self](beast::error_code ec, size_t n) {
                              if (ec) self->Fatal("read from broker", ec);
                              self->end_ += n;
                              self->Dispatch();
                              self->ReadMore();
                            });
  }

  void Dispatch() {
    while (end_ - start_ >= 4) {
      const uint32_t len =
          ipc::DecodeLength(reinterpret_cast<const uint8_t*>(rbuf_.data() + start_));
      if (len > ipc::kMaxResponseFrame) Fatal("oversized frame from broker", {});
      if (end_ - start_ - 4 < len) break;
      ipc::Frame frame;
      if (!frame.ParseFromArray(rbuf_.data() + start_ + 4, static_cast<int>(len)) ||
          !frame.has_response()) {
        Fatal("malformed frame from broker", {});
      }
      start_ += 4 + size_t{len};
      auto it = pending_.find(frame.response().id());
      if (it == pending_.end()) Fatal("response for an unknown request", {});
      Callback cb = std::move(it->second);
      pending_.erase(it);
      cb(frame.response());
    }
    if (start_ == end_) {
      start_ = end_ = 0;
      if (rbuf_.size() > kReadChunk) {  // a large answer is gone: give its room back
        rbuf_.resize(kReadChunk);
        rbuf_.shrink_to_fit();
      }
    }
  }

  [[noreturn]] void Fatal(const char* what, beast::error_code ec) {
    // Without the broker this worker can do nothing; the broker restarts workers.
    LogError("%s failed%s%s; exiting", what, ec ? ": " : "", ec ? ec.message() : "");
    std::_Exit(3);
  }

  local::socket socket_;
  std::string rbuf_;  // responses read, from start_ to end_
  size_t start_ = 0;
  size_t end_ = 0;
  std::deque<std::string> queue_;   // ordinary frames, in order
  std::deque<std::string> urgent_;  // status calls, sent first
  std::vector<std::string> batch_;  // the frames being written
  std::vector<asio::const_buffer> buffers_;
  bool writing_ = false;
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
  std::chrono::milliseconds header{10000};
  core::JsonLimits json;  // checked on every body before it is parsed
  uint32_t max_connections = 1024;
  uint32_t max_per_address = 128;
};

// Connection slots past max_connections that serve only the status calls (sys/health,
// sys/seal-status, sys/leader), one answer each: when every ordinary slot holds a request under
// way, a load balancer's health check still gets its answer; anything else there gets 503.
constexpr uint32_t kStatusReserve = 16;
// Descriptors the worker keeps for itself (stdio, the broker channels, the listener, epoll,
// timers): the connection caps are lowered to fit the open-file limit without them.
constexpr rlim_t kReservedDescriptors = 64;
// A connection's read buffer: while a large body arrives, and at most between requests.
constexpr size_t kBodyBufferBytes = 64 * 1024;
constexpr size_t kIdleBufferBytes = 16 * 1024;

class Connection;

// The worker's connections: how many, how many per client address, and which have no request
// under way (TLS handshake, waiting for a request, its header arriving, closing), oldest first.
// Those are the ones a newcomer replaces when every slot is taken, so connections that send
// nothing cannot lock others out. `live` holds every counted connection, for the deadline sweep
// (Sweeper). One thread: no locking.
struct Shared {
  Limits limits;
  std::shared_ptr<BrokerChannel> broker;
  uint32_t connections = 0;
  std::unordered_map<std::string, uint32_t> per_address;
  std::list<Connection*> replaceable;
  std::list<Connection*> live;
};

// One connection's place in Shared: counted from construction until Release() (at close, or at
// destruction at the latest).
class Connection {
 public:
  using Clock = std::chrono::steady_clock;

  Connection(Shared* shared, std::string address_key)
      : shared_(shared), address_key_(std::move(address_key)) {
    ++shared_->connections;
    ++shared_->per_address[address_key_];
    live_at_ = shared_->live.insert(shared_->live.end(), this);
  }
  virtual ~Connection() { Release(); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Ends the connection at once to make room for a newcomer.
  virtual void Evict() = 0;
  // Ends the connection: its deadline passed (Sweeper).
  virtual void OnDeadline() = 0;
  Clock::time_point deadline() const { return deadline_; }

 protected:
  // The time by which the client I/O under way must be done (Sweeper); max while none is (the
  // broker is answering).
  void SetDeadline(Clock::time_point t) { deadline_ = t; }
  void ClearDeadline() { deadline_ = Clock::time_point::max(); }

  void MarkReplaceable() {
    if (replaceable_) return;
    where_ = shared_->replaceable.insert(shared_->replaceable.end(), this);
    replaceable_ = true;
  }
  void MarkBusy() {
    if (!replaceable_) return;
    shared_->replaceable.erase(where_);
    replaceable_ = false;
  }
  void Release() {
    MarkBusy();
    if (released_) return;
    released_ = true;
    shared_->live.erase(live_at_);
    --shared_->connections;
    auto it = shared_->per_address.find(address_key_);
    if (it != shared_->per_address.end() && --it->second == 0) shared_->per_address.erase(it);
  }

  Shared* shared_;

 private:
  std::string address_key_;
  std::list<Connection*>::iterator where_;
  std::list<Connection*>::iterator live_at_;
  Clock::time_point deadline_ = Clock::time_point::max();
  bool replaceable_ = false;
  bool released_ = false;
};

// The timeouts of every connection (header, read, idle, closing), checked by one timer every
// kSweepPeriod: a connection past its deadline is closed, which ends the operation it waits
// on. Beast's per-stream timers re-armed the worker's timerfd twice per request (issue 22); a
// deadline here is a store to memory. Deadlines are whole seconds, so they are kept to within
// a tenth of one.
class Sweeper {
 public:
  static constexpr std::chrono::milliseconds kSweepPeriod{100};
  Sweeper(asio::io_context& io, Shared* shared) : timer_(io), shared_(shared) {}
  void Start() {
    timer_.expires_after(kSweepPeriod);
    timer_.async_wait([this](beast::error_code ec) {
      if (ec) return;
      Sweep();
      Start();
    });
  }

 private:
  void Sweep() {
    const Connection::Clock::time_point now = Connection::Clock::now();
    std::vector<Connection*> late;
    for (Connection* c : shared_->live) {
      if (c->deadline() <= now) late.push_back(c);
    }
    // Each ends itself (and leaves `live`); none is destroyed here (its handlers hold it).
    for (Connection* c : late) c->OnDeadline();
  }
  asio::steady_timer timer_;
  Shared* shared_;
};

// What the per-address limit counts: the address, or for IPv6 its /64 (one host usually has a
// whole /64 to pick from); an IPv4-mapped IPv6 address as the IPv4 address it is.
std::string AddressKey(const asio::ip::address& a) {
  if (!a.is_v6()) return a.to_string();
  const asio::ip::address_v6 v6 = a.to_v6();
  if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_string();
  asio::ip::address_v6::bytes_type bytes = v6.to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), static_cast<unsigned char>(0));
  return asio::ip::address_v6(bytes).to_string() + "/64";
}

// The unauthenticated status calls a reserve slot serves.
bool IsStatusCall(const http::request<http::string_body>& req) {
  if (req.method() != http::verb::get && req.method() != http::verb::head) return false;
  std::string_view path(req.target().data(), req.target().size());
  path = path.substr(0, path.find('?'));
  return path == "/v1/sys/health" || path == "/v1/sys/seal-status" || path == "/v1/sys/leader";
}

// Plain connections are bare sockets on the io_context's own executor (one thread: no strand),
// with no Beast timers (Sweeper keeps the deadlines).
using PlainStream = tcp::socket;
using TlsStream = beast::ssl_stream<tcp::socket>;
tcp::socket& Lowest(PlainStream& s) { return s; }
tcp::socket& Lowest(TlsStream& s) { return beast::get_lowest_layer(s); }

template <class Stream>
class Session : public Connection, public std::enable_shared_from_this<Session<Stream>> {
 public:
  using Clock = std::chrono::steady_clock;

  // `reserve`: a reserve slot (kStatusReserve), for one status call.
  Session(Stream stream, Shared* shared, std::string address_key, std::string remote, uint16_t port,
          bool reserve)
      : Connection(shared, std::move(address_key)),
        stream_(std::move(stream)),
        remote_(std::move(remote)),
        port_(port),
        reserve_(reserve) {}

  // The first request's header must be complete within the header timeout of the accept (TLS
  // handshake included), so a connection that sends nothing is gone after it.
  void Start() {
    MarkReplaceable();
    const Clock::time_point accepted = Clock::now();
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      SetDeadline(HeaderDeadline(accepted));
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this(), accepted](beast::error_code ec) {
                                if (ec) return self->Close();
                                self->ReadRequest(accepted);
                              });
    } else {
      ReadRequest(accepted);
    }
  }

  void Evict() override { Close(); }
  void OnDeadline() override { Close(); }

 private:
  Clock::time_point HeaderDeadline(Clock::time_point start) const {
    return start + std::min(shared_->limits.header, shared_->limits.read);
  }

  // Idle keep-alive: wait (idle timeout) for the next request's first byte.
  void WaitForRequest() {
    MarkReplaceable();
    if (buffer_.capacity() > kIdleBufferBytes) buffer_.shrink_to_fit();
    if (buffer_.size() > 0) return ReadRequest(Clock::now());
    SetDeadline(Clock::now() + shared_->limits.idle);
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = this->shared_from_this()](beast::error_code ec, size_t n) {
                              if (ec) return self->Close();
                              self->buffer_.commit(n);
                              self->ReadRequest(Clock::now());
                            });
  }

  // A request that started at `start`: its header must be complete by the header timeout and
  // the whole of it by the read timeout, so a client trickling bytes cannot hold the connection
  // for long. Until its header is complete the connection counts as replaceable.
  void ReadRequest(Clock::time_point start) {
    parser_.emplace();
    snapshot_body_ = false;
    parser_->header_limit(shared_->limits.max_header);
    parser_->body_limit(shared_->limits.max_body);
    request_deadline_ = start + shared_->limits.read;
    SetDeadline(HeaderDeadline(start));
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return OnRead(ec);
    MarkBusy();
    if (reserve_ && !IsStatusCall(parser_->get())) {
      return Reply(ErrorOut(503, {ipc::kServerBusy}), false, parser_->get().version());
    }
    if (parser_->is_done()) return OnRead({});
    // A snapshot's body is bounded by the snapshot limit, not only by the listener's: one over it
    // is refused from its Content-Length before a byte of it is read, and a chunked one as soon as
    // a chunk would pass the limit.
    if (IsSnapshotTarget(parser_->get().target())) {
      snapshot_body_ = true;
      const auto announced = parser_->content_length();
      if (announced && *announced > kMaxSnapshotBytes) {
        return Reply(SnapshotTooLarge(*announced), false, parser_->get().version());
      }
      if (shared_->limits.max_body > kMaxSnapshotBytes) parser_->body_limit(kMaxSnapshotBytes);
    }
    // A body is read in pieces as large as the buffer's free room: give a large one room for
    // 64 KiB reads (with 4 KiB ones a 32 MiB body took 2 s to arrive); WaitForRequest gives
    // the room back.
    const auto length = parser_->content_length();  // none: chunked
    if (!length || *length > kIdleBufferBytes) buffer_.reserve(kBodyBufferBytes);
    SetDeadline(request_deadline_);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec2, size_t) { self->OnRead(ec2); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
        ec == asio::error::bad_descriptor) {
      return Close();
    }
    if (ec == http::error::body_limit) {
      if (snapshot_body_) return Reply(SnapshotTooLarge(0), false, 11);
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
    in.accept = std::string(req[http::field::accept]);
    in.wrap_ttl = std::string(req["X-Vault-Wrap-TTL"]);
    in.vault_namespace = std::string(req["X-Vault-Namespace"]);
    in.no_request_forwarding = !req["X-Vault-No-Request-Forwarding"].empty();
    in.body = std::move(req.body());
    in.remote_address = remote_;
    in.remote_port = port_;
    const bool keep_alive = req.keep_alive();
    const unsigned version = req.version();
    Decoded decoded = DecodeRequest(in, shared_->limits.json);
    if (auto* out = std::get_if<HttpOut>(&decoded))
      return Reply(std::move(*out), keep_alive, version);
    const auto& decoded_req = std::get<ipc::Request>(decoded);
    const bool snapshot_read =
        decoded_req.operation() == ipc::OP_READ && IsSnapshotPath(decoded_req.path());
    ClearDeadline();  // no client I/O until the answer: the broker bounds its own work
    shared_->broker->Send(
        std::move(std::get<ipc::Request>(decoded)),
        [self = this->shared_from_this(), keep_alive, version, target = std::string(req.target()),
         snapshot_read](const ipc::Response& r) {
          HttpOut out = snapshot_read ? EncodeSnapshotResponse(r) : EncodeResponse(r);
          if (!out.redirect_to.empty()) out.redirect_to += target;
          self->Reply(std::move(out), keep_alive, version);
        },
        IsStatusCall(req));
  }

  void Reply(HttpOut out, bool keep_alive, unsigned version) {
    MarkBusy();
    if (reserve_) keep_alive = false;  // a reserve slot serves one call
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(out.status), version);
    res->set(http::field::server, "strongroom");
    if (out.content_type.empty()) {
      res->set(http::field::content_type, "application/json");
    } else {
      res->set(http::field::content_type, out.content_type);
    }
    if (!out.content_disposition.empty()) {
      res->set(http::field::content_disposition, out.content_disposition);
    }
    res->set(http::field::cache_control, "no-store");
    if (!out.redirect_to.empty()) res->set(http::field::location, out.redirect_to);
    res->keep_alive(keep_alive);
    if (out.status != 204) {
      const size_t len = out.body.size();
      if (!out.head_only) res->body() = std::move(out.body);
      res->content_length(len);
    }
    SetDeadline(Clock::now() + shared_->limits.read);
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
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      SetDeadline(Clock::now() + std::chrono::seconds(2));
      stream_.async_shutdown(
          [self = this->shared_from_this()](beast::error_code) { self->LingeringClose(); });
    } else {
      LingeringClose();
    }
  }

  // After an early answer (413, 400) the client may still be sending: stop sending, read and
  // discard for a short while, then close, so the client sees the answer instead of a reset.
  void LingeringClose() {
    MarkReplaceable();  // nothing left to do for this client
    beast::error_code ec;
    Lowest(stream_).shutdown(tcp::socket::shutdown_send, ec);
    SetDeadline(Clock::now() + std::chrono::seconds(2));
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

  // Idempotent; the slot is free again at once (the object goes when its handlers are done).
  void Close() {
    Release();
    beast::error_code ec;
    Lowest(stream_).shutdown(tcp::socket::shutdown_both, ec);
    Lowest(stream_).close(ec);
  }

  Stream stream_;
  std::string remote_;
  uint16_t port_;
  bool reserve_;
  Clock::time_point request_deadline_;
  bool snapshot_body_ = false;  // this request names a snapshot path (its body limit is lower)
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string drain_;
};

class Listener {
 public:
  Listener(asio::io_context& io, int listen_fd, Shared* shared, ssl::context* tls)
      : io_(io), acceptor_(io), retry_(io), shared_(shared), tls_(tls) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    getsockname(listen_fd, reinterpret_cast<sockaddr*>(&ss), &len);
    acceptor_.assign(ss.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), listen_fd);
  }

  void Accept() {
    acceptor_.async_accept(io_, [this](beast::error_code ec, tcp::socket socket) {
      if (!ec) {
        OnAccept(std::move(socket));
        return Accept();
      }
      if (ec == asio::error::operation_aborted) return;
      if (ec == asio::error::connection_aborted) return Accept();  // gone before accepted
      // Out of descriptors (or memory): the listener stays readable, so
      // accepting again at once would spin. Give up the oldest connection
      // that has no request under way, and try again shortly; the connection
      // waits in the listen queue meanwhile.
      if (!shared_->replaceable.empty()) shared_->replaceable.front()->Evict();
      retry_.expires_after(std::chrono::milliseconds(50));
      retry_.async_wait([this](beast::error_code wait_ec) {
        if (!wait_ec) Accept();
      });
    });
  }

 private:
  enum class Admission { kSlot, kReserve, kRefuse };

  // Every connection is accepted, and one that cannot be served is closed at once: the listen
  // queue never fills with connections nobody will take.
  Admission Admit(const std::string& address_key) {
    const Limits& l = shared_->limits;
    auto it = shared_->per_address.find(address_key);
    if (it != shared_->per_address.end() && it->second >= l.max_per_address) {
      return Admission::kRefuse;
    }
    if (shared_->connections >= l.max_connections && !shared_->replaceable.empty()) {
      shared_->replaceable.front()->Evict();
    }
    if (shared_->connections < l.max_connections) return Admission::kSlot;
    if (shared_->connections < l.max_connections + kStatusReserve) return Admission::kReserve;
    return Admission::kRefuse;
  }

  void OnAccept(tcp::socket socket) {
    beast::error_code ec;
    const tcp::endpoint ep = socket.remote_endpoint(ec);
    const Admission admission = ec ? Admission::kRefuse : Admit(AddressKey(ep.address()));
    if (admission == Admission::kRefuse) {
      beast::error_code ignored;
      socket.close(ignored);
      NoteRefused(ec ? std::string("?") : ep.address().to_string());
      return;
    }
    socket.set_option(tcp::no_delay(true), ec);
    const bool reserve = admission == Admission::kReserve;
    if (tls_ != nullptr) {
      std::make_shared<Session<TlsStream>>(TlsStream(std::move(socket), *tls_), shared_,
                                           AddressKey(ep.address()), ep.address().to_string(),
                                           ep.port(), reserve)
          ->Start();
    } else {
      std::make_shared<Session<PlainStream>>(std::move(socket), shared_, AddressKey(ep.address()),
                                             ep.address().to_string(), ep.port(), reserve)
          ->Start();
    }
  }

  // Refused connections are logged, at most once per 10 s (an operator behind a proxy or NAT
  // needs to know that max_connections_per_address is too low for it).
  void NoteRefused(const std::string& from) {
    ++refused_;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_warning_ < std::chrono::seconds(10)) return;
    last_warning_ = now;
    LogWarn(
        "refused %llu connection(s) (the last from %s): over max_connections_per_address "
        "(%u per worker) or every connection slot busy (%u + %u reserved)",
        static_cast<unsigned long long>(refused_), from, shared_->limits.max_per_address,
        shared_->limits.max_connections, kStatusReserve);
    refused_ = 0;
  }

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_;
  uint64_t refused_ = 0;
  std::chrono::steady_clock::time_point last_warning_{};
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

// Every connection is a descriptor. The soft open-file limit goes up to the hard one (systemd's
// default soft limit is 1024, below the default max_connections_per_worker), and the connection
// caps come down to what the limit allows: past it accept() fails and nothing is served.
void FitConnectionsToDescriptors(Limits* limits) {
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) != 0) return;
  if (nofile.rlim_cur < nofile.rlim_max) {
    rlimit raised = nofile;
    raised.rlim_cur = nofile.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) nofile = raised;
  }
  if (nofile.rlim_cur == RLIM_INFINITY) return;
  const rlim_t usable =
      nofile.rlim_cur > kReservedDescriptors ? nofile.rlim_cur - kReservedDescriptors : 0;
  if (limits->max_connections + kStatusReserve <= usable) return;
  const uint32_t fit =
      usable > kStatusReserve + 1 ? static_cast<uint32_t>(usable - kStatusReserve) : 1;
  LogWarn(
      "open-file limit %llu: max_connections_per_worker lowered from %u to %u (raise "
      "LimitNOFILE)",
      static_cast<unsigned long long>(nofile.rlim_cur), limits->max_connections, fit);
  limits->max_connections = fit;
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
  if (s.max_json_depth()) shared.limits.json.max_depth = s.max_json_depth();
  if (s.max_json_string_value_length())
    shared.limits.json.max_string_length = s.max_json_string_value_length();
  if (s.max_json_object_entry_count())
    shared.limits.json.max_object_entries = s.max_json_object_entry_count();
  if (s.max_json_array_element_count())
    shared.limits.json.max_array_elements = s.max_json_array_element_count();
  if (s.max_request_json_memory()) shared.limits.json.max_memory = s.max_request_json_memory();
  if (s.max_request_json_strings()) shared.limits.json.max_strings = s.max_request_json_strings();
  if (s.max_connections()) shared.limits.max_connections = s.max_connections();
  if (s.read_header_timeout_ms())
    shared.limits.header = std::chrono::milliseconds(s.read_header_timeout_ms());
  if (s.max_connections_per_address())
    shared.limits.max_per_address = s.max_connections_per_address();
  FitConnectionsToDescriptors(&shared.limits);

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
  Sweeper sweeper(io, &shared);
  sweeper.Start();
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
