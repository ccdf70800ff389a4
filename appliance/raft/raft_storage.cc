#include "appliance/raft/raft_storage.h"

#include <sys/stat.h>
#include <uv.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "appliance/raft/libraft.h"
#include "appliance/raft/log_codec.h"
#include "appliance/raft/loop_inbox.h"
#include "appliance/storage/rocksdb_storage.h"
#include "base/log.h"
#include "base/strings.h"

namespace strongroom::raft {
namespace {

absl::Status RaftError(int rv, std::string_view what) {
  std::string msg = absl::StrCat(Av(what), ": ", raft_strerror(rv));
  switch (rv) {
    case RAFT_NOTLEADER:
      return absl::FailedPreconditionError(absl::StrCat("not the leader (", msg, ")"));
    case RAFT_LEADERSHIPLOST:
      return absl::UnavailableError(
          absl::StrCat("leadership was lost before the change was committed; it may or may not "
                       "take effect (",
                       msg, ")"));
    case RAFT_CANTCHANGE:
      return absl::FailedPreconditionError(
          absl::StrCat("another configuration change is in progress (", msg, ")"));
    case RAFT_DUPLICATEID:
    case RAFT_DUPLICATEADDRESS:
      return absl::AlreadyExistsError(msg);
    case RAFT_BADID:
      return absl::NotFoundError(msg);
    default:
      return absl::UnavailableError(msg);
  }
}

// What a caller gets once the state machine has failed (RaftStorage::Failure() has the reason;
// the detail stays in the log).
absl::Status FailedStorage() {
  return absl::UnavailableError(
      "this node's storage failed and the node is stopping; the request may or may not have "
      "been applied: retry it (another node takes over)");
}

// A wait that ran out: Vault's words for it. The request may still be applied later.
absl::Status TimedOut(std::string_view what, absl::Duration timeout) {
  return absl::DeadlineExceededError(absl::StrCat(
      "context deadline exceeded: the Raft cluster did not complete the ", Av(what), " within ",
      absl::FormatDuration(timeout), "; it may or may not have been applied"));
}

absl::Status MakePrivateDir(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec)
    return absl::FailedPreconditionError(absl::StrCat("cannot create ", path, ": ", ec.message()));
  if (::chmod(path.c_str(), 0700) != 0)
    return absl::FailedPreconditionError(absl::StrCat("cannot chmod ", path));
  return absl::OkStatus();
}

}  // namespace

struct RaftStorage::Impl {
  RaftOptions options;
  std::unique_ptr<storage::RocksDbStorage> fsm_db;
  uv_loop_t loop{};
  LoopInbox inbox;
  std::unique_ptr<TlsTransport> transport;
  raft_io io{};
  raft_fsm fsm{};
  struct raft raft {};
  std::thread thread;
  bool loop_ready = false;
  bool io_ready = false;
  bool raft_ready = false;
  bool policy_ready = false;

  // Runs `fn` on the loop thread and waits for it to return. False, with `fn` not run (and never
  // to run), once the loop is stopping or when it does not take the call up within kLoopTimeout.
  bool RunOnLoop(const std::function<void()>& fn) {
    struct Call {
      std::mutex mu;
      std::condition_variable cv;
      const std::function<void()>* fn = nullptr;  // valid until `abandoned` or `done`
      bool done = false;
      bool abandoned = false;
    };
    auto call = std::make_shared<Call>();
    call->fn = &fn;
    if (!inbox.Post([call] {
          std::lock_guard<std::mutex> lock(call->mu);
          if (call->abandoned) return;
          (*call->fn)();
          call->done = true;
          call->cv.notify_all();
        })) {
      return false;
    }
    std::unique_lock<std::mutex> lock(call->mu);
    const auto timeout = std::chrono::milliseconds(absl::ToInt64Milliseconds(kLoopTimeout));
    if (call->cv.wait_for(lock, timeout, [&] { return call->done; })) return true;
    call->abandoned = true;  // `fn` has not started (it runs holding `mu`) and now never will
    LogError("raft: the Raft loop did not take a call up within %s",
             absl::FormatDuration(kLoopTimeout));
    return false;
  }

  // The state machine stopped following the log (RaftStorage::Failure). Loop thread.
  std::atomic<bool> failed{false};
  std::mutex failure_mu;
  std::string failure;  // guarded by failure_mu

  void Fail(std::string why) {
    {
      std::lock_guard<std::mutex> lock(failure_mu);
      if (!failure.empty()) return;
      failure = why;
    }
    failed.store(true);
    LogError(
        "raft: %s; this node's storage stops here (writes, barriers and reads fail) and the "
        "node must stop serving",
        why);
  }

  // --- the state machine (loop thread) ---
  // libraft 0.22.1 (Debian's backport) crashes when an InstallSnapshot from the leader arrives
  // while the node is writing a snapshot of its own (legacy.c, takeSnapshotCb: the pending
  // install is cleared before it is read; fixed upstream in cowsql/raft pull request 164). The
  // leader never receives InstallSnapshot, so it snapshots every `snapshot_threshold` entries; a
  // follower, which may be sent one whenever it lags, snapshots only when its unsnapshotted log
  // reaches kFollowerSnapshotFactor times that (a connected follower does not lag that far; a
  // follower that lags is sent the leader's snapshot, which resets its log anyway).
  static constexpr uint64_t kFollowerSnapshotFactor = 8;
  uv_timer_t snapshot_policy{};
  uint64_t unsnapshotted = 0;  // entries applied since the last snapshot (loop thread)

  static void SnapshotPolicy(uv_timer_t* timer) {
    auto* self = static_cast<Impl*>(timer->data);
    struct raft* r = &self->raft;
    const unsigned configured = self->options.snapshot_threshold;
    const bool allow =
        raft_state(r) == RAFT_LEADER || self->unsnapshotted >= kFollowerSnapshotFactor * configured;
    raft_set_snapshot_threshold(r, allow ? configured : UINT_MAX);
  }

  // libraft 0.22.1 ignores what this returns beyond stopping there: the entry stays unapplied,
  // its write never completes, and it is tried again at the next commit. So a failure is final
  // here (Fail): the node's storage stops, and its owner stops the node.
  static int FsmApply(raft_fsm* fsm, const raft_buffer* buf, void** result) {
    auto* self = static_cast<Impl*>(fsm->data);
    *result = nullptr;
    if (self->failed.load()) return RAFT_IOERR;
    ++self->unsnapshotted;
    const uint64_t index = raft_last_applied(&self->raft) + 1;
    auto ops = DecodeBatch(std::string_view(static_cast<const char*>(buf->base), buf->len));
    if (!ops.ok()) {
      self->Fail(absl::StrCat("the state machine cannot apply log entry ", index,
                              " (malformed: ", ops.status().ToString(), ")"));
      return RAFT_MALFORMED;
    }
    absl::Status s = self->fsm_db->Apply(*ops);
    if (!s.ok()) {
      self->Fail(
          absl::StrCat("the state machine cannot apply log entry ", index, ": ", s.ToString()));
      return RAFT_IOERR;
    }
    return 0;
  }

  static int FsmSnapshot(raft_fsm* fsm, raft_buffer* bufs[], unsigned* n_bufs) {
    auto* self = static_cast<Impl*>(fsm->data);
    self->unsnapshotted = 0;
    SnapshotWriter w;
    absl::Status s =
        self->fsm_db->Scan([&](std::string_view k, std::string_view v) { w.Add(k, v); });
    if (!s.ok()) {
      LogError("raft: cannot take a snapshot: %s", s.ToString());
      return RAFT_IOERR;
    }
    std::string bytes = std::move(w).Finish();
    auto* out = static_cast<raft_buffer*>(raft_malloc(sizeof(raft_buffer)));
    void* base = raft_malloc(bytes.size());
    if (out == nullptr || base == nullptr) {
      raft_free(out);
      raft_free(base);
      return RAFT_NOMEM;
    }
    std::memcpy(base, bytes.data(), bytes.size());
    out->base = base;
    out->len = bytes.size();
    *bufs = out;
    *n_bufs = 1;
    return 0;
  }

  // libraft hands the buffer over on success.
  static int FsmRestore(raft_fsm* fsm, raft_buffer* buf) {
    auto* self = static_cast<Impl*>(fsm->data);
    self->unsnapshotted = 0;
    std::vector<storage::BatchOp> ops;
    absl::Status s =
        DecodeSnapshot(std::string_view(static_cast<const char*>(buf->base), buf->len),
                       [&](std::string_view k, std::string_view v) {
                         ops.push_back(storage::BatchOp::Put(std::string(k), std::string(v)));
                         return absl::OkStatus();
                       });
    if (s.ok()) s = self->fsm_db->Clear();
    if (s.ok()) s = self->fsm_db->Apply(ops);
    if (!s.ok()) {
      // The store may be half cleared: it follows the log no more.
      self->Fail(absl::StrCat("the state machine cannot restore a snapshot: ", s.ToString()));
      return RAFT_MALFORMED;
    }
    raft_free(buf->base);
    return 0;
  }

  // --- requests whose answer arrives later on the loop (apply, barrier, membership) ---
  template <typename Req>
  struct Pending {
    Req req{};
    std::promise<absl::Status> result;
    std::string what;
  };

  static void ApplyDone(struct raft_apply* req, int status, void*) {
    auto* p = static_cast<Pending<struct raft_apply>*>(req->data);
    p->result.set_value(status == 0 ? absl::OkStatus() : RaftError(status, p->what));
    delete p;
  }
  static void BarrierDone(struct raft_barrier* req, int status) {
    auto* p = static_cast<Pending<struct raft_barrier>*>(req->data);
    p->result.set_value(status == 0 ? absl::OkStatus() : RaftError(status, p->what));
    delete p;
  }
  static void ChangeDone(raft_change* req, int status) {
    auto* p = static_cast<Pending<raft_change>*>(req->data);
    p->result.set_value(status == 0 ? absl::OkStatus() : RaftError(status, p->what));
    delete p;
  }

  // Starts `start` on the loop with a fresh Pending and waits for its callback, at most
  // `timeout`, and no longer once the state machine has failed. `start` returns libraft's
  // immediate result; non-zero means the callback will not run. The callback owns the Pending
  // (a caller that stopped waiting leaves it to the callback).
  template <typename Req>
  absl::Status Await(std::string what, absl::Duration timeout,
                     const std::function<int(Pending<Req>*)>& start) {
    auto* p = new Pending<Req>();
    p->req.data = p;
    p->what = what;
    std::future<absl::Status> f = p->result.get_future();
    bool ran = RunOnLoop([&] {
      int rv = start(p);
      if (rv != 0) {
        p->result.set_value(RaftError(rv, p->what));
        delete p;
      }
    });
    if (!ran) {
      delete p;  // `start` did not run: libraft never saw it
      return absl::UnavailableError("the Raft node is stopping or not answering");
    }
    const absl::Time deadline = absl::Now() + timeout;
    for (;;) {
      if (f.wait_for(std::chrono::milliseconds(50)) == std::future_status::ready) return f.get();
      if (failed.load()) return FailedStorage();
      if (absl::Now() >= deadline) return TimedOut(what, timeout);
    }
  }

  static void Closed(struct raft* r) {
    auto* self = static_cast<Impl*>(r->data);
    self->inbox.Close(nullptr);
    self->ClosePolicy();
  }

  void ClosePolicy() {
    if (!policy_ready) return;
    policy_ready = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&snapshot_policy), nullptr);
  }

  ~Impl() {
    if (thread.joinable()) {
      inbox.Last([this] { raft_close(&raft, &Impl::Closed); });
      thread.join();
    } else if (loop_ready) {
      // Start() failed before the loop ran: close what was opened and let the loop settle.
      if (raft_ready) {
        raft_close(&raft, &Impl::Closed);
      } else {
        inbox.Close(nullptr);
        ClosePolicy();
      }
      uv_run(&loop, UV_RUN_DEFAULT);
    }
    if (io_ready) raft_uv_close(&io);
    if (loop_ready && uv_loop_close(&loop) != 0) LogError("raft: the loop still had handles open");
    transport.reset();
  }
};

absl::StatusOr<std::unique_ptr<RaftStorage::Impl>> RaftStorage::StartImpl(const RaftOptions& o) {
  if (o.node_id == 0) return absl::InvalidArgumentError("raft node_id must be at least 1");
  if (o.address.empty()) return absl::InvalidArgumentError("raft needs a cluster address");
  auto impl = std::make_unique<Impl>();
  impl->options = o;
  std::string raft_dir = o.dir + "/raft";
  std::string fsm_dir = o.dir + "/fsm";
  absl::Status s = MakePrivateDir(o.dir);
  if (s.ok()) s = MakePrivateDir(raft_dir);
  if (!s.ok()) return s;
  std::error_code ec;
  std::filesystem::remove_all(fsm_dir, ec);
  if (ec) return absl::FailedPreconditionError(absl::StrCat("cannot empty ", fsm_dir));
  auto db = storage::RocksDbStorage::Open(fsm_dir, /*sync=*/false);
  if (!db.ok()) return db.status();
  impl->fsm_db = std::move(*db);

  if (uv_loop_init(&impl->loop) != 0) return absl::InternalError("uv_loop_init failed");
  impl->loop_ready = true;
  impl->inbox.Init(&impl->loop);

  auto transport = TlsTransport::Create(&impl->loop, o.tls, o.service);
  if (!transport.ok()) return transport.status();
  impl->transport = std::move(*transport);

  int rv = raft_uv_init(&impl->io, &impl->loop, raft_dir.c_str(), impl->transport->get());
  if (rv != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open the Raft directory ", raft_dir, ": ", impl->io.errmsg));
  }
  impl->io_ready = true;
  raft_uv_set_auto_recovery(&impl->io, false);
  impl->fsm.version = 1;
  impl->fsm.data = impl.get();
  impl->fsm.apply = &Impl::FsmApply;
  impl->fsm.snapshot = &Impl::FsmSnapshot;
  impl->fsm.restore = &Impl::FsmRestore;
  rv = raft_init(&impl->raft, &impl->io, &impl->fsm, o.node_id, o.address.c_str());
  if (rv != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot start Raft: ", raft_errmsg(&impl->raft)));
  }
  impl->raft_ready = true;
  impl->raft.data = impl.get();
  raft_set_election_timeout(&impl->raft, o.election_timeout_ms);
  raft_set_heartbeat_timeout(&impl->raft, o.heartbeat_timeout_ms);
  raft_set_snapshot_threshold(&impl->raft, UINT_MAX);  // SnapshotPolicy sets it from here on
  raft_set_snapshot_trailing(&impl->raft, o.snapshot_trailing);
  raft_set_pre_vote(&impl->raft, true);

  if (o.bootstrap) {
    raft_configuration conf;
    raft_configuration_init(&conf);
    rv = raft_configuration_add(&conf, o.node_id, o.address.c_str(), RAFT_VOTER);
    if (rv == 0) rv = raft_bootstrap(&impl->raft, &conf);
    raft_configuration_close(&conf);
    if (rv == RAFT_CANTBOOTSTRAP) {
      LogInfo("raft: %s holds Raft state already; not bootstrapping again", raft_dir);
    } else if (rv != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot bootstrap Raft: ", raft_strerror(rv)));
    } else {
      LogInfo("raft: bootstrapped a new cluster with node %d at %s", o.node_id, o.address);
    }
  }
  uv_timer_init(&impl->loop, &impl->snapshot_policy);
  impl->snapshot_policy.data = impl.get();
  uv_timer_start(&impl->snapshot_policy, &Impl::SnapshotPolicy, 0, 100);
  impl->policy_ready = true;
  rv = raft_start(&impl->raft);
  if (rv != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot start Raft: ", raft_errmsg(&impl->raft)));
  }
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { uv_run(&raw->loop, UV_RUN_DEFAULT); });
  LogInfo("raft: node %d listening at %s", o.node_id, o.address);
  return impl;
}

absl::StatusOr<std::unique_ptr<RaftStorage>> RaftStorage::Start(const RaftOptions& options) {
  auto impl = StartImpl(options);
  if (!impl.ok()) return impl.status();
  return std::unique_ptr<RaftStorage>(new RaftStorage(std::move(*impl)));
}

RaftStorage::RaftStorage(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RaftStorage::~RaftStorage() = default;

uint64_t RaftStorage::node_id() const { return impl_->options.node_id; }

bool RaftStorage::HasState() {
  if (had_state_.load()) return true;
  std::shared_lock lock(mu_);
  bool state = false;
  impl_->RunOnLoop(
      [&] { state = impl_->raft.configuration.n > 0 || raft_last_index(&impl_->raft) > 0; });
  if (state) had_state_.store(true);
  return state;
}

absl::Status RaftStorage::BootstrapNew() {
  std::unique_lock lock(mu_);
  bool state = false;
  impl_->RunOnLoop(
      [&] { state = impl_->raft.configuration.n > 0 || raft_last_index(&impl_->raft) > 0; });
  if (state) {
    return absl::FailedPreconditionError(
        "this node already belongs to a Raft cluster (its Raft directory holds state)");
  }
  RaftOptions options = impl_->options;
  options.bootstrap = true;
  impl_.reset();  // stops the node: libraft bootstraps only before it starts
  auto impl = StartImpl(options);
  if (!impl.ok()) {
    LogError("raft: cannot restart to bootstrap: %s", impl.status().ToString());
    options.bootstrap = false;
    auto plain = StartImpl(options);
    if (plain.ok()) impl_ = std::move(*plain);
    return impl.status();
  }
  impl_ = std::move(*impl);
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> RaftStorage::Get(std::string_view key) {
  std::shared_lock lock(mu_);
  if (impl_->failed.load()) return FailedStorage();
  return impl_->fsm_db->Get(key);
}

absl::StatusOr<std::vector<std::string>> RaftStorage::List(std::string_view prefix) {
  std::shared_lock lock(mu_);
  if (impl_->failed.load()) return FailedStorage();
  return impl_->fsm_db->List(prefix);
}

absl::Status RaftStorage::Put(std::string_view key, std::string_view value) {
  std::shared_lock lock(mu_);
  return Propose(EncodeBatch({storage::BatchOp::Put(std::string(key), std::string(value))}));
}

absl::Status RaftStorage::Delete(std::string_view key) {
  std::shared_lock lock(mu_);
  return Propose(EncodeBatch({storage::BatchOp::Delete(std::string(key))}));
}

absl::Status RaftStorage::Apply(const std::vector<storage::BatchOp>& ops) {
  std::shared_lock lock(mu_);
  return Propose(EncodeBatch(ops));
}

absl::Status RaftStorage::Propose(std::string entry) {
  if (impl_->failed.load()) return FailedStorage();
  struct raft* r = &impl_->raft;
  const std::function<int(Impl::Pending<struct raft_apply>*)> start =
      [&](Impl::Pending<struct raft_apply>* p) -> int {
    if (raft_state(r) != RAFT_LEADER) return RAFT_NOTLEADER;
    raft_buffer buf;
    buf.len = entry.size();
    buf.base = raft_malloc(entry.size());
    if (buf.base == nullptr) return RAFT_NOMEM;
    std::memcpy(buf.base, entry.data(), entry.size());
    // The buffer is libraft's from here on, also when the call fails: some failure paths
    // (a rejected append) release it themselves, so it is never freed here.
    return raft_apply(r, &p->req, &buf, 1, &Impl::ApplyDone);
  };
  return impl_->Await<struct raft_apply>("write", kWriteTimeout, start);
}

absl::Status RaftStorage::Barrier(absl::Duration timeout) {
  std::shared_lock lock(mu_);
  if (impl_->failed.load()) return FailedStorage();
  struct raft* r = &impl_->raft;
  return impl_->Await<struct raft_barrier>("barrier", timeout,
                                           [&](Impl::Pending<struct raft_barrier>* p) -> int {
                                             return raft_barrier(r, &p->req, &Impl::BarrierDone);
                                           });
}

absl::Status RaftStorage::AddVoter(uint64_t id, const std::string& address) {
  std::shared_lock lock(mu_);
  if (id == 0 || address.empty())
    return absl::InvalidArgumentError("a peer needs an id and address");
  struct raft* r = &impl_->raft;
  absl::Status s =
      impl_->Await<raft_change>("add", kChangeTimeout, [&](Impl::Pending<raft_change>* p) -> int {
        return raft_add(r, &p->req, id, address.c_str(), &Impl::ChangeDone);
      });
  if (!s.ok()) return s;
  return impl_->Await<raft_change>(
      "promote", kChangeTimeout, [&](Impl::Pending<raft_change>* p) -> int {
        return raft_assign(r, &p->req, id, RAFT_VOTER, &Impl::ChangeDone);
      });
}

absl::Status RaftStorage::Remove(uint64_t id) {
  std::shared_lock lock(mu_);
  struct raft* r = &impl_->raft;
  return impl_->Await<raft_change>("remove", kChangeTimeout,
                                   [&](Impl::Pending<raft_change>* p) -> int {
                                     return raft_remove(r, &p->req, id, &Impl::ChangeDone);
                                   });
}

bool RaftStorage::IsLeader() {
  std::shared_lock lock(mu_);
  bool leader = false;
  impl_->RunOnLoop([&] { leader = raft_state(&impl_->raft) == RAFT_LEADER; });
  return leader;
}

std::optional<Peer> RaftStorage::Leader() {
  std::shared_lock lock(mu_);
  std::optional<Peer> out;
  impl_->RunOnLoop([&] {
    raft_id id = 0;
    const char* address = nullptr;
    raft_leader(&impl_->raft, &id, &address);
    if (id != 0 && address != nullptr) out = Peer{id, address, true};
  });
  return out;
}

std::vector<Peer> RaftStorage::Configuration() {
  std::shared_lock lock(mu_);
  std::vector<Peer> out;
  impl_->RunOnLoop([&] {
    const raft_configuration& c = impl_->raft.configuration;
    for (unsigned i = 0; i < c.n; ++i)
      out.push_back(Peer{c.servers[i].id, c.servers[i].address, c.servers[i].role == RAFT_VOTER});
  });
  return out;
}

uint64_t RaftStorage::AppliedIndex() {
  std::shared_lock lock(mu_);
  uint64_t index = 0;
  impl_->RunOnLoop([&] { index = raft_last_applied(&impl_->raft); });
  return index;
}

uint64_t RaftStorage::CommitIndex() {
  std::shared_lock lock(mu_);
  uint64_t index = 0;
  impl_->RunOnLoop([&] { index = raft_commit_index(&impl_->raft); });
  return index;
}

uint64_t RaftStorage::IdFor(std::string_view name) {
  uint64_t id = raft_digest(name.data(), name.size());
  return id == 0 ? 1 : id;
}

std::string RaftStorage::Failure() {
  std::shared_lock lock(mu_);
  std::lock_guard<std::mutex> failure_lock(impl_->failure_mu);
  return impl_->failure;
}

uint64_t RaftStorage::Term() {
  std::shared_lock lock(mu_);
  uint64_t term = 0;
  impl_->RunOnLoop([&] { term = raft_current_term(&impl_->raft); });
  return term;
}

}  // namespace strongroom::raft
