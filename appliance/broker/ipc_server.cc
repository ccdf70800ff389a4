#include "appliance/broker/ipc_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/duration.h"
#include "base/log.h"
#include "base/metrics_catalog.h"
#include "base/random_pool.h"
#include "base/status_macros.h"

namespace strongroom::broker {
namespace {

// A worker that stops reading its responses would hold a pool thread in send() for good, and the
// other pool threads behind it on the same channel, so every worker's requests would wait. A
// send() that can make no progress for this long fails (one frame may take two such waits, when
// the first moved part of it), and the worker is ended like one that breaks the protocol.
constexpr timeval kWorkerWriteTimeout{10, 0};

}  // namespace

// ---------------------------------------------------------------------------------------------

ThreadPool::ThreadPool(size_t threads, size_t max_tasks, size_t max_bytes)
    : max_tasks_(max_tasks), max_bytes_(max_bytes) {
  for (size_t i = 0; i < threads; ++i) {
    threads_.emplace_back([this] {
      for (;;) {
        std::function<void()> task;
        {
          std::unique_lock<std::mutex> lock(mu_);
          cv_.wait(lock, [this] { return stop_ || !tasks_.empty(); });
          if (stop_ && tasks_.empty()) return;
          task = std::move(tasks_.front().run);
          queued_bytes_ -= tasks_.front().bytes;
          tasks_.pop_front();
        }
        task();
      }
    });
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

bool ThreadPool::TryPost(size_t bytes, std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!tasks_.empty() &&
        (tasks_.size() >= max_tasks_ || bytes > max_bytes_ - std::min(max_bytes_, queued_bytes_))) {
      return false;
    }
    queued_bytes_ += bytes;
    tasks_.push_back(Task{bytes, std::move(task)});
  }
  cv_.notify_one();
  return true;
}

// ---------------------------------------------------------------------------------------------

struct IpcServer::Channel {
  int index = 0;
  int fd = -1;
  pid_t pid = 0;
  std::mutex write_mu;
  std::atomic<bool> ended{false};  // no more answers: the worker is gone or being ended
  // This worker's requests waiting in each lane: no worker may take more than its share, so a
  // flooding (compromised) worker cannot crowd the others out.
  std::atomic<size_t> queued{0};
  std::atomic<size_t> queued_status{0};
  // What this worker's reads took lately, in microseconds (an average, NoteReadCost): while it
  // is under kInlineBudgetUs they are answered on the reader thread (AnswersInline).
  std::atomic<uint64_t> read_cost_us{0};
  ~Channel() {
    if (fd >= 0) close(fd);
  }
};

IpcServer::IpcServer(core::Core* core, ipc::WorkerSettings settings, size_t threads,
                     std::function<void(pid_t)> kill_worker)
    : core_(core),
      settings_(std::move(settings)),
      json_limits_(JsonLimitsFor(settings_)),
      kill_worker_(std::move(kill_worker)),
      pool_(threads, kMaxQueuedRequests, kMaxQueuedBytes),
      status_pool_(1, kMaxQueuedStatus, kMaxQueuedStatus * 64 * 1024),
      metrics_(metrics::DefaultRegistry().AddCollector([this](metrics::Collection& c) {
        c.Gauge("core.in_flight_requests",
                "Requests queued or being answered in the broker (all workers)",
                static_cast<double>(in_flight_.load()));
      })) {}

IpcServer::~IpcServer() { Stop(); }

void IpcServer::AddWorker(int index, int fd, pid_t pid) {
  auto ch = std::make_shared<Channel>();
  ch->index = index;
  ch->fd = fd;
  ch->pid = pid;
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &kWorkerWriteTimeout, sizeof kWorkerWriteTimeout);
  {
    std::lock_guard<std::mutex> lock(mu_);
    channels_.push_back(ch);
  }
  std::thread([this, ch] { Serve(ch); }).detach();
}

void IpcServer::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& w : channels_) {
    if (auto ch = w.lock()) shutdown(ch->fd, SHUT_RDWR);
  }
  channels_.clear();
}

bool IpcServer::Drain(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (in_flight_.load() > 0) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

void IpcServer::Serve(std::shared_ptr<Channel> ch) {
  ipc::PeerState state = ipc::PeerState::kNew;
  ipc::FrameReader reader(ch->fd, ipc::kMaxRequestFrame);
  // Answers made on this thread while more requests were already read: sent together, before
  // this thread waits for the worker again (one system call for a batch of reads).
  InlineBatch batch;
  for (;;) {
    if (!batch.bytes.empty() && !reader.HasBufferedFrame()) Flush(ch, &batch);
    auto frame = reader.Next();
    if (!frame.ok()) {
      // A failed read ends the worker, unless it is being ended already (see Answer).
      if (!ch->ended.exchange(true) && !absl::IsNotFound(frame.status())) {
        LogWarn("worker %d: protocol violation (%s); ending it", ch->index,
                frame.status().message());
        kill_worker_(ch->pid);
      }
      shutdown(ch->fd, SHUT_RDWR);
      return;
    }
    std::string violation;
    if (absl::Status s = ipc::CheckFromWorker(*frame, state); !s.ok()) {
      violation = std::string(s.message());
    } else if (frame->has_hello()) {
      ipc::Frame reply;
      *reply.mutable_settings() = settings_;
      std::lock_guard<std::mutex> lock(ch->write_mu);
      if (!ipc::WriteFrame(ch->fd, reply).ok()) violation = "cannot write settings";
      state = ipc::PeerState::kReady;
    } else if (frame->has_request()) {
      Dispatch(ch, std::move(*frame->mutable_request()), &batch);
      if (batch.answers >= kMaxInlineBatch || batch.bytes.size() >= kMaxInlineBatchBytes) {
        Flush(ch, &batch);
      }
    }
    if (!violation.empty()) {
      ch->ended = true;
      LogWarn("worker %d: protocol violation (%s); ending it", ch->index, violation);
      kill_worker_(ch->pid);
      shutdown(ch->fd, SHUT_RDWR);
      return;
    }
  }
}

namespace {

// A request id: a random (version 4) UUID, as Vault's, from the thread's pool of random bytes
// (base/random_pool.h: a RAND_bytes call costs more than the rest of a small request's
// validation). The id is not a secret; it tells audit records and logs apart. A generator that
// fails stops the broker, as core::RandomBytesOrAbort does.
std::string NewRequestId() {
  uint8_t b[16];
  if (!PooledRandomBytes(b, sizeof b).ok()) core::RandomBytesOrAbort(b, sizeof b);
  b[6] = static_cast<uint8_t>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<uint8_t>((b[8] & 0x3f) | 0x80);
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (size_t i = 0; i < sizeof b; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kDigits[b[i] >> 4]);
    out.push_back(kDigits[b[i] & 0xf]);
  }
  return out;
}

// The client's address as the worker reports it: empty, or an IPv4 or IPv6 literal (with an
// IPv6 zone such as "%eth0" after a link-local one). The broker cannot check that it is the
// real peer (docs/threat-model.md: worker-asserted), only that it is an address, so that it
// never carries anything else into a log line or an audit record.
bool IsIpLiteral(const std::string& text) {
  if (text.empty()) return true;
  unsigned char buf[sizeof(in6_addr)];
  if (inet_pton(AF_INET, text.c_str(), buf) == 1) return true;
  const size_t zone = text.find('%');
  const std::string address = text.substr(0, zone);
  if (inet_pton(AF_INET6, address.c_str(), buf) != 1) return false;
  if (zone == std::string::npos) return true;
  const std::string name = text.substr(zone + 1);
  if (name.empty() || name.size() > 15) return false;  // IFNAMSIZ - 1, or a number
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

}  // namespace

core::JsonLimits IpcServer::JsonLimitsFor(const ipc::WorkerSettings& s) {
  core::JsonLimits l;
  if (s.max_json_depth()) l.max_depth = s.max_json_depth();
  if (s.max_json_string_value_length()) l.max_string_length = s.max_json_string_value_length();
  l.max_string_length = std::max<uint64_t>(l.max_string_length, 32);
  if (s.max_json_object_entry_count()) l.max_object_entries = s.max_json_object_entry_count();
  if (s.max_json_array_element_count()) l.max_array_elements = s.max_json_array_element_count();
  if (s.max_request_json_memory()) l.max_memory = s.max_request_json_memory();
  if (s.max_request_json_strings()) l.max_strings = s.max_request_json_strings();
  return l;
}

absl::StatusOr<core::Request> IpcServer::ToCoreRequest(const ipc::Request& r,
                                                       const core::JsonLimits& limits) {
  core::Request req;
  switch (r.operation()) {
    case ipc::OP_READ:
      req.operation = core::Operation::kRead;
      break;
    case ipc::OP_LIST:
      req.operation = core::Operation::kList;
      break;
    case ipc::OP_UPDATE:
      req.operation = core::Operation::kUpdate;
      break;
    case ipc::OP_PATCH:
      req.operation = core::Operation::kPatch;
      break;
    case ipc::OP_DELETE:
      req.operation = core::Operation::kDelete;
      break;
    case ipc::OP_HEAD:
      req.operation = core::Operation::kHead;
      break;
    default:
      return absl::InvalidArgumentError("unknown operation");
  }
  if (r.path().size() > 4096) return absl::InvalidArgumentError("path is too long");
  if (r.token().size() > core::TokenStore::kMaxTokenSize) {
    return absl::PermissionDeniedError("permission denied");
  }
  if (r.remote_address().size() > 64 || !IsIpLiteral(r.remote_address())) {
    return absl::InvalidArgumentError("bad remote address");
  }
  if (r.remote_port() > 65535) return absl::InvalidArgumentError("bad remote port");
  if (r.wrap_ttl().size() > 64 || r.namespace_().size() > 256) {
    return absl::InvalidArgumentError("bad header value");
  }
  if (!r.namespace_().empty() && r.namespace_() != "root" && r.namespace_() != "root/") {
    return absl::InvalidArgumentError("namespaces are not supported");
  }
  if (!r.wrap_ttl().empty()) {
    auto ttl = ParseDurationSeconds(r.wrap_ttl());
    if (!ttl.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("error parsing wrap TTL: ", ttl.status().message()));
    }
    // A TTL under a second would send the answer unwrapped to a client that asked for wrapping.
    if (*ttl < 1) return absl::InvalidArgumentError("the wrapping TTL must be at least 1s");
    req.wrap_ttl = *ttl;
  }
  req.path = r.path();
  while (!req.path.empty() && req.path.front() == '/') req.path.erase(0, 1);
  // The limits before any parsing (one pass over the bytes, as the worker did).
  const core::JsonLimit over = core::CheckJsonLimits(r.data_json(), limits);
  if (over != core::JsonLimit::kNone && over != core::JsonLimit::kSyntax) {
    return absl::InvalidArgumentError(std::string(core::JsonLimitError(over)));
  }
  ASSIGN_OR_RETURN(req.data, core::ParseObject(r.data_json(), limits.max_depth));
  if (over == core::JsonLimit::kSyntax) {
    return absl::InvalidArgumentError("failed to parse JSON input");  // see the worker's codec
  }
  req.has_data = r.has_data();
  req.client_token = r.token();
  req.remote_address = r.remote_address();
  req.remote_port = r.remote_port();
  req.request_id = NewRequestId();
  return req;
}

ipc::Response IpcServer::ToIpcResponse(uint64_t id, const std::string& request_id,
                                       const absl::StatusOr<core::Response>& result,
                                       const std::string& mount_type) {
  ipc::Response out;
  out.set_id(id);
  out.set_request_id(request_id);
  // Also on an error: the route class of the broker's metrics (the worker does not send it).
  out.set_mount_type(mount_type);
  if (!result.ok()) {
    const absl::Status& s = result.status();
    out.set_kind(ipc::Response::ERROR);
    out.set_error_code(static_cast<int>(s.code()));
    switch (s.code()) {
      case absl::StatusCode::kInvalidArgument:
      case absl::StatusCode::kFailedPrecondition:
      case absl::StatusCode::kOutOfRange:
      case absl::StatusCode::kAlreadyExists:
      case absl::StatusCode::kPermissionDenied:
      case absl::StatusCode::kUnauthenticated:
      case absl::StatusCode::kNotFound:
      case absl::StatusCode::kUnimplemented:
      case absl::StatusCode::kResourceExhausted:
      case absl::StatusCode::kUnavailable:
      case absl::StatusCode::kAborted:
      case absl::StatusCode::kDeadlineExceeded:  // a 500 that says so ("context deadline ...")
        if (!s.message().empty()) out.add_errors(std::string(s.message()));
        break;
      default:
        // Internal detail stays in the broker log, tied to the request id.
        LogError("request %s failed: %s", request_id, s.ToString());
        out.add_errors("internal error");
        if (s.GetPayload(core::kPublicDetailPayload.data()).has_value()) {
          out.add_errors(std::string(s.message()));
        }
    }
    return out;
  }
  const core::Response& r = *result;
  switch (r.kind) {
    case core::Response::Kind::kEmpty:
      out.set_kind(ipc::Response::EMPTY);
      return out;
    case core::Response::Kind::kRaw:
      out.set_kind(ipc::Response::RAW);
      break;
    case core::Response::Kind::kLogical:
      out.set_kind(ipc::Response::LOGICAL);
      break;
  }
  out.set_http_status(static_cast<uint32_t>(r.http_status));
  if (r.data) out.set_data_json(core::Serialize(*r.data));
  if (r.auth) out.set_auth_json(core::Serialize(*r.auth));
  for (const auto& w : r.warnings) out.add_warnings(w);
  out.set_lease_id(r.lease_id);
  out.set_renewable(r.renewable);
  out.set_lease_duration(r.lease_duration);
  out.set_inject_data(r.inject_data);
  out.set_head_only(r.head_only);
  if (r.wrap_info) out.set_wrap_info_json(core::Serialize(*r.wrap_info));
  if (r.kind == core::Response::Kind::kRaw && !r.content_type.empty()) {
    out.set_content_type(r.content_type);
    out.set_body(r.body);
  }
  return out;
}

ipc::Response IpcServer::Process(core::Core* core, const ipc::Request& req,
                                 const core::JsonLimits& limits) {
  auto creq = ToCoreRequest(req, limits);
  if (!creq.ok()) return ToIpcResponse(req.id(), "", creq.status(), "");
  auto result = core->Handle(*creq);
  return ToIpcResponse(req.id(), creq->request_id, result, creq->mount_type);
}

bool IpcServer::AnswersInline(const Channel& ch, const ipc::Request& req) {
  if (req.operation() != ipc::OP_READ && req.operation() != ipc::OP_LIST) return false;
  // Raft: a standby forwards over the network, the active node confirms each answer with its
  // peers. Audit: each record waits for its batch's fdatasync (group commit needs the requests
  // that wait together). Both wait on I/O, so they take the pool.
  if (forwarder_ || core_->cluster() != nullptr || core_->audit().HasDevices()) return false;
  return ch.read_cost_us.load(std::memory_order_relaxed) < kInlineBudgetUs;
}

void IpcServer::NoteReadCost(Channel& ch, std::chrono::steady_clock::time_point start) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  const uint64_t sample =
      std::min<uint64_t>(static_cast<uint64_t>(std::max<int64_t>(us, 0)), uint64_t{1} << 30);
  // An exponentially weighted average (1/8 per sample); a lost update between threads only
  // delays the switch by a request.
  const uint64_t old = ch.read_cost_us.load(std::memory_order_relaxed);
  ch.read_cost_us.store(old - old / 8 + sample / 8, std::memory_order_relaxed);
}

void IpcServer::Dispatch(const std::shared_ptr<Channel>& ch, ipc::Request req, InlineBatch* batch) {
  // The status calls: reads (or HEAD) of the unauthenticated status paths, with nothing in them
  // worth the name (anything else, even on these paths, takes the ordinary lane).
  const bool status = (req.operation() == ipc::OP_READ || req.operation() == ipc::OP_HEAD) &&
                      (req.path() == "sys/health" || req.path() == "sys/seal-status" ||
                       req.path() == "sys/leader") &&
                      req.data_json().size() <= 4096;
  const bool read = !status && (req.operation() == ipc::OP_READ || req.operation() == ipc::OP_LIST);
  if (read && AnswersInline(*ch, req)) {
    // Answered on this thread: no hand-off (a wake-up and two context switches, which cost more
    // than a KV read itself), and nothing queued. The worker's next frames wait in its socket
    // meanwhile, which is as long as a read takes.
    ++in_flight_;
    const auto start = std::chrono::steady_clock::now();
    Answer(ch, std::move(req), batch);
    NoteReadCost(*ch, start);
    --in_flight_;
    return;
  }
  const size_t bytes = req.ByteSizeLong();
  const uint64_t id = req.id();
  std::atomic<size_t>& mine = status ? ch->queued_status : ch->queued;
  if (mine.fetch_add(1) < (status ? kMaxQueuedStatusPerWorker : kMaxQueuedPerWorker)) {
    ++in_flight_;
    auto task = [this, ch, &mine, read, req = std::move(req)]() mutable {
      --mine;
      const auto start = std::chrono::steady_clock::now();
      Answer(ch, std::move(req));
      // Reads the pool answers keep measuring, so a worker whose reads were slow for a while
      // (a cold disk) has them answered inline again once they are fast.
      if (read) NoteReadCost(*ch, start);
      --in_flight_;
    };
    if ((status ? status_pool_ : pool_).TryPost(bytes, std::move(task))) return;
    --in_flight_;
  }
  --mine;
  // Full: answered now, from this thread; the request is dropped. (Not audited: it was never
  // looked at, as with Vault's request limiter.) One warning per 10 s at most.
  ++refused_;
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  int64_t last = last_refusal_warning_.load();
  if (now - last >= 10 && last_refusal_warning_.compare_exchange_strong(last, now)) {
    LogWarn("broker busy: %llu request(s) answered 503 (queue full: %u requests or %u MiB)",
            static_cast<unsigned long long>(refused_.exchange(0)),
            static_cast<unsigned>(kMaxQueuedRequests),
            static_cast<unsigned>(kMaxQueuedBytes / ipc::kMiB));
  }
  ipc::Response busy = ToIpcResponse(id, "", absl::UnavailableError(ipc::kServerBusy), "");
  const unsigned http = ipc::ResponseHttpStatus(busy);
  metrics::Get()
      .response_status_code.At({metrics::StatusIndex(http), metrics::StatusClassIndex(http)})
      .Add();
  Send(ch, std::move(busy));
}

std::string_view IpcServer::RouteClass(std::string_view path, std::string_view mount_type) {
  using metrics::kRouteClasses;
  if (path == "sys" || path.starts_with("sys/")) return "sys";
  if (mount_type.empty()) return "none";
  // Only the engine table's types are told apart: anything else is "other" (or "auth/other").
  // The lists are short; no string is built on this path.
  if (path.starts_with("auth/")) {
    for (std::string_view c : kRouteClasses) {
      if (c.starts_with("auth/") && c.substr(5) == mount_type) return c;
    }
    return "auth/other";
  }
  for (std::string_view c : kRouteClasses) {
    if (c == mount_type && c != "sys" && c != "none" && c != "other") return c;
  }
  return "other";
}

void IpcServer::RecordAnswer(std::string_view path, const ipc::Response& out,
                             std::chrono::steady_clock::time_point start) {
  metrics::Catalog& m = metrics::Get();
  const unsigned status = ipc::ResponseHttpStatus(out);
  const size_t code = metrics::StatusIndex(status);
  m.handle_request
      .At({metrics::IndexIn(metrics::kRouteClasses, RouteClass(path, out.mount_type())), code})
      .ObserveSince(start);
  m.response_status_code.At({code, metrics::StatusClassIndex(status)}).Add();
}

void IpcServer::Answer(std::shared_ptr<Channel> ch, ipc::Request req, InlineBatch* batch) {
  if (ch->ended) return;  // nobody to answer
  const auto start = std::chrono::steady_clock::now();
  std::optional<ipc::Response> forwarded;
  if (forwarder_) forwarded = forwarder_(req);
  ipc::Response out = forwarded ? std::move(*forwarded) : Process(core_, req, json_limits_);
  RecordAnswer(req.path(), out, start);
  if (batch == nullptr) return Send(ch, std::move(out));
  ipc::Frame frame;
  *frame.mutable_response() = std::move(out);
  batch->bytes += ipc::EncodeFrame(frame);
  ++batch->answers;
}

void IpcServer::Flush(const std::shared_ptr<Channel>& ch, InlineBatch* batch) {
  {
    std::lock_guard<std::mutex> lock(ch->write_mu);
    if (!ch->ended) {
      if (absl::Status s = ipc::WriteAll(ch->fd, batch->bytes); !s.ok()) {
        ch->ended = true;
        LogWarn("worker %d: cannot send it a response (%s); ending it", ch->index, s.message());
        kill_worker_(ch->pid);
        shutdown(ch->fd, SHUT_RDWR);
      }
    }
  }
  batch->bytes.clear();
  if (batch->bytes.capacity() > kMaxInlineBatchBytes) batch->bytes.shrink_to_fit();
  batch->answers = 0;
}

void IpcServer::Send(const std::shared_ptr<Channel>& ch, ipc::Response out) {
  ipc::Frame frame;
  *frame.mutable_response() = std::move(out);
  std::lock_guard<std::mutex> lock(ch->write_mu);
  if (ch->ended) return;
  if (absl::Status s = ipc::WriteFrame(ch->fd, frame); !s.ok()) {
    ch->ended = true;
    LogWarn("worker %d: cannot send it a response (%s); ending it", ch->index, s.message());
    kill_worker_(ch->pid);
    shutdown(ch->fd, SHUT_RDWR);
  }
}

}  // namespace strongroom::broker
