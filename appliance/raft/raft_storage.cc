#include "appliance/raft/raft_storage.h"

#include <sys/stat.h>
#include <uv.h>

#include <algorithm>
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
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "appliance/raft/libraft.h"
#include "appliance/raft/log_codec.h"
#include "appliance/raft/log_recover.h"
#include "appliance/raft/loop_inbox.h"
#include "appliance/raft/raft_storage_impl.h"
#include "appliance/raft/spill.h"
#include "appliance/storage/rocksdb_storage.h"
#include "base/log.h"
#include "base/strings.h"

namespace strongroom::raft {

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

absl::Status FailedStorage() {
  return absl::UnavailableError(
      "this node's storage failed and the node is stopping; the request may or may not have "
      "been applied: retry it (another node takes over)");
}

absl::Status TimedOut(std::string_view what, absl::Duration timeout) {
  return absl::DeadlineExceededError(absl::StrCat(
      "context deadline exceeded: the Raft cluster did not complete the ", Av(what), " within ",
      absl::FormatDuration(timeout), "; it may or may not have been applied"));
}

namespace {

absl::Status MakePrivateDir(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec)
    return absl::FailedPreconditionError(absl::StrCat("cannot create ", path, ": ", ec.message()));
  if (::chmod(path.c_str(), 0700) != 0)
    return absl::FailedPreconditionError(absl::StrCat("cannot chmod ", path));
  return absl::OkStatus();
}

// libraft loads the last snapshot from disk each time it sends it to a follower. The log line
// shows how often that happens (once per follower that needs it, with libraft patch 0006).
std::atomic<int (*)(raft_io*, raft_io_snapshot_get*, raft_io_snapshot_get_cb)> uv_snapshot_get{
    nullptr};

int LoggedSnapshotGet(raft_io* io, raft_io_snapshot_get* req, raft_io_snapshot_get_cb cb) {
  LogInfo("raft: loading the last snapshot to send it to a follower");
  return uv_snapshot_get.load()(io, req, cb);
}

}  // namespace

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

  auto transport = TlsTransport::Create(&impl->loop, o.tls, o.service, o.peer_check);
  if (!transport.ok()) return transport.status();
  impl->transport = std::move(*transport);

  // libraft's large buffers (a snapshot sent or received) are file-backed, in this directory.
  SetSpillDirectory(raft_dir);
  InstallRaftHeap();
  int rv = raft_uv_init(&impl->io, &impl->loop, raft_dir.c_str(), impl->transport->get());
  if (rv != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open the Raft directory ", raft_dir, ": ", impl->io.errmsg));
  }
  impl->io_ready = true;
  uv_snapshot_get.store(impl->io.snapshot_get);
  impl->io.snapshot_get = &LoggedSnapshotGet;
  raft_uv_set_auto_recovery(&impl->io, false);
  impl->fsm.version = 3;
  impl->fsm.data = impl.get();
  impl->fsm.apply = &Impl::FsmApply;
  impl->fsm.snapshot = &Impl::FsmSnapshot;
  impl->fsm.restore = &Impl::FsmRestore;
  impl->fsm.snapshot_finalize = &Impl::FsmSnapshotFinalize;
  impl->fsm.snapshot_async = &Impl::FsmSnapshotAsync;
  raft_set_snapshot_async_runner(&Impl::RunSnapshotWork);
  rv = raft_init(&impl->raft, &impl->io, &impl->fsm, o.node_id, o.address.c_str());
  if (rv != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot start Raft: ", raft_errmsg(&impl->raft)));
  }
  impl->raft_ready = true;
  impl->raft.data = impl.get();
  raft_set_election_timeout(&impl->raft, o.election_timeout_ms);
  raft_set_heartbeat_timeout(&impl->raft, o.heartbeat_timeout_ms);
  raft_set_snapshot_threshold(&impl->raft, o.snapshot_threshold);
  raft_set_snapshot_trailing(&impl->raft, o.snapshot_trailing);
  raft_set_pre_vote(&impl->raft, true);
  if (o.recover) {
    if (absl::Status r = RecoverLog(&impl->io, &impl->raft, o.recover); !r.ok()) return r;
  }

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
  uv_timer_init(&impl->loop, &impl->stall_watch);
  impl->stall_watch.data = impl.get();
  uv_timer_start(&impl->stall_watch, &Impl::WatchStall, 0, Impl::kWatchPeriodMs);
  impl->watch_ready = true;
  uv_check_init(&impl->loop, &impl->store_check);
  impl->store_check.data = impl.get();
  uv_check_start(&impl->store_check, &Impl::CheckStore);
  impl->check_ready = true;
  rv = raft_start(&impl->raft);
  if (rv != 0) {
    // libraft does not carry the transport's message (a cluster port in use, say) over.
    const char* why = raft_errmsg(&impl->raft);
    if (why[0] == '\0') why = impl->transport->get()->errmsg;
    if (why[0] == '\0') why = raft_strerror(rv);
    return absl::FailedPreconditionError(absl::StrCat("cannot start Raft: ", why));
  }
  impl->raft_started = true;  // before the loop runs: set once, read on the loop only
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

void RaftStorage::RecheckPeers() {
  std::shared_lock lock(mu_);
  if (impl_->transport) impl_->transport->RecheckPeers();
}

namespace {

// The calling thread's read check (RaftStorage::BeginReadCheck): what it read from `owner`.
struct ReadCheck {
  const void* owner = nullptr;  // null: no check under way
  uint64_t from = 0;            // the store index when it began
  uint64_t restores = 0;        // Impl::restores when it began
  std::vector<uint64_t> keys;
  std::vector<uint64_t> prefixes;
  bool unknowable = false;  // a prefix not ending in '/', or too many reads
};
thread_local ReadCheck t_read_check;

void NoteRead(const void* owner, std::string_view key, bool prefix) {
  ReadCheck& c = t_read_check;
  if (c.owner != owner) return;
  if (c.keys.size() + c.prefixes.size() >= RaftStorage::kReadCheckKeys ||
      (prefix && !key.empty() && key.back() != '/') || (prefix && key.empty())) {
    c.unknowable = true;
    return;
  }
  (prefix ? c.prefixes : c.keys).push_back(std::hash<std::string_view>{}(key));
}

}  // namespace

absl::StatusOr<std::optional<std::string>> RaftStorage::Get(std::string_view key) {
  std::shared_lock lock(mu_);
  NoteRead(this, key, false);
  impl_->WaitRestored();  // a snapshot received from the leader is being restored
  if (impl_->failed.load()) return FailedStorage();
  return impl_->fsm_db->Get(key);
}

void RaftStorage::BeginReadCheck() {
  ReadCheck& c = t_read_check;
  c = ReadCheck();
  c.owner = this;
  std::shared_lock lock(mu_);
  c.from = impl_->store_index.load();
  std::lock_guard<std::mutex> written_lock(impl_->written_mu);
  c.restores = impl_->restores;
}

bool RaftStorage::EndReadCheck() {
  ReadCheck c = std::move(t_read_check);
  t_read_check = ReadCheck();
  if (c.owner != this || c.unknowable) return false;
  std::shared_lock lock(mu_);
  Impl* impl = impl_.get();
  if (impl->failed.load()) return false;
  std::lock_guard<std::mutex> written_lock(impl->written_mu);
  if (impl->restores != c.restores || impl->written_floor > c.from) return false;
  const auto in = [](const std::vector<uint64_t>& hashes, uint64_t h) {
    return std::find(hashes.begin(), hashes.end(), h) != hashes.end();
  };
  // Newest first: the entries after `from` are at the back.
  for (auto it = impl->written.rbegin(); it != impl->written.rend() && it->index > c.from; ++it) {
    if (it->all) return false;
    for (uint64_t h : it->keys) {
      if (in(c.keys, h)) return false;
    }
    for (uint64_t h : it->prefixes) {
      if (in(c.prefixes, h)) return false;
    }
  }
  return true;
}

size_t RaftStorage::ReadCheckHashes() {
  std::shared_lock lock(mu_);
  std::lock_guard<std::mutex> written_lock(impl_->written_mu);
  return impl_->written_hashes;
}

uint64_t RaftStorage::StoreIndex() {
  std::shared_lock lock(mu_);
  return impl_->store_index.load();
}

uint64_t RaftStorage::TableEpoch(unsigned table) {
  std::shared_lock lock(mu_);
  return impl_->table_epochs[std::min(table, kTables - 1)].load();
}

bool RaftStorage::WaitTablesStored(const uint64_t (&epochs)[kTables], absl::Duration timeout) {
  std::shared_lock lock(mu_);
  Impl* impl = impl_.get();
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::microseconds(absl::ToInt64Microseconds(timeout));
  const auto stored = [&] {
    for (unsigned t = 1; t < kTables; ++t) {
      if (impl->table_stored[t].load() < epochs[t]) return false;
    }
    return true;
  };
  std::unique_lock<std::mutex> store_lock(impl->store_mu);
  while (!stored()) {
    if (impl->failed.load() || std::chrono::steady_clock::now() >= deadline) return false;
    impl->store_cv.wait_for(store_lock, std::chrono::milliseconds(10));
  }
  return !impl->failed.load();
}

bool RaftStorage::WaitStoreIndex(uint64_t index, absl::Duration timeout) {
  std::shared_lock lock(mu_);
  Impl* impl = impl_.get();
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::microseconds(absl::ToInt64Microseconds(timeout));
  std::unique_lock<std::mutex> store_lock(impl->store_mu);
  // The failure is checked now and then: the loop stops notifying once the store failed.
  while (impl->store_index.load() < index) {
    if (impl->failed.load() || std::chrono::steady_clock::now() >= deadline) return false;
    impl->store_cv.wait_for(store_lock, std::chrono::milliseconds(50));
  }
  return true;
}

absl::Status RaftStorage::Scan(
    const std::function<bool(std::string_view, std::string_view)>& each) {
  std::shared_lock lock(mu_);
  impl_->WaitRestored();  // a snapshot received from the leader is being restored
  if (impl_->failed.load()) return FailedStorage();
  return impl_->fsm_db->Scan(each);
}

absl::StatusOr<std::vector<std::string>> RaftStorage::List(std::string_view prefix) {
  std::shared_lock lock(mu_);
  NoteRead(this, prefix, true);
  impl_->WaitRestored();  // a snapshot received from the leader is being restored
  if (impl_->failed.load()) return FailedStorage();
  return impl_->fsm_db->List(prefix);
}

absl::Status RaftStorage::Put(std::string_view key, std::string_view value) {
  std::shared_lock lock(mu_);
  return Propose({storage::BatchOp::Put(std::string(key), std::string(value))});
}

absl::Status RaftStorage::Delete(std::string_view key) {
  std::shared_lock lock(mu_);
  return Propose({storage::BatchOp::Delete(std::string(key))});
}

absl::Status RaftStorage::Apply(const std::vector<storage::BatchOp>& ops) {
  std::shared_lock lock(mu_);
  return Propose(ops);
}

namespace {
thread_local RaftStorage::ThreadWrites t_writes;

// Notes what a write (an entry of `term`; 0 when none was appended) came to in t_writes.
void NoteWrite(const absl::Status& s, uint64_t term) {
  if (s.ok()) {
    t_writes.committed_term = term;
  } else {
    t_writes.failed = true;
  }
}
}  // namespace

RaftStorage::ThreadWrites RaftStorage::TakeThreadWrites() {
  ThreadWrites w = t_writes;
  t_writes = ThreadWrites();
  return w;
}

absl::Status RaftStorage::Propose(const std::vector<storage::BatchOp>& ops) {
  uint64_t term = 0;
  absl::Status s = ProposeIn(ops, &term);
  NoteWrite(s, term);
  if (term == 0 && absl::IsFailedPrecondition(s)) {
    // Not appended: this node knew it was not the leader (a leader that lost the leadership
    // before the broker noticed). Nothing was done: the client may retry (503) and reaches the
    // new leader through this node once it forwards.
    return absl::UnavailableError("not the leader: nothing was written; retry");
  }
  return s;
}

void RaftStorage::Impl::DrainProposals() {
  std::vector<std::shared_ptr<Proposal>> batch;
  {
    std::lock_guard<std::mutex> lock(propose_mu);
    batch.swap(proposals);
    drain_posted = false;
  }
  struct raft* r = &raft;
  for (size_t i = 0; i < batch.size();) {
    if (raft_state(r) != RAFT_LEADER) {
      Answer(batch, i, RaftError(RAFT_NOTLEADER, "write"));
      return;
    }
    auto j = std::make_unique<Joined>();
    j->req.data = j.get();
    std::vector<const EncodedOps*> parts;
    size_t bytes = 0;
    uint64_t ops = 0;
    for (; i < batch.size(); ++i) {
      const EncodedOps& w = batch[i]->ops;
      if (!j->writes.empty() &&
          (j->writes.size() >= kJoinedWrites || bytes + w.bytes.size() > kJoinedBytes ||
           ops + w.count > UINT32_MAX)) {
        break;
      }
      j->writes.push_back(batch[i]);
      parts.push_back(&w);
      bytes += w.bytes.size();
      ops += w.count;
    }
    raft_buffer buf;
    buf.len = JoinedBatchSize(parts);
    buf.base = raft_malloc(buf.len);
    if (buf.base == nullptr) {
      Answer(j->writes, 0, RaftError(RAFT_NOMEM, "write"));
      continue;
    }
    JoinBatch(parts, static_cast<char*>(buf.base));
    const uint64_t term = raft_current_term(r);  // the entry's term (raft_apply uses it)
    for (const auto& w : j->writes) {
      w->term.store(term);
      std::string().swap(w->ops.bytes);  // copied into the entry
    }
    // The buffer is libraft's from here on, also when the call fails: some failure paths (a
    // rejected append) release it themselves, so it is never freed here.
    Joined* joined = j.release();
    if (const int rv = raft_apply(r, &joined->req, &buf, 1, &Impl::JoinedDone); rv != 0) {
      std::unique_ptr<Joined> failed_join(joined);  // no callback will come
      Answer(failed_join->writes, 0, RaftError(rv, "write"));
    }
  }
}

// One hand-off each way: the write is queued for the loop, which appends it (joined with the
// others queued meanwhile), and the caller waits for its answer only.
absl::Status RaftStorage::ProposeIn(const std::vector<storage::BatchOp>& ops, uint64_t* term) {
  Impl* impl = impl_.get();
  if (impl->failed.load()) return FailedStorage();
  auto p = std::make_shared<Impl::Proposal>();
  p->ops = EncodeOps(ops);  // off the loop
  std::future<absl::Status> result = p->result.get_future();
  bool post = false;
  {
    std::lock_guard<std::mutex> lock(impl->propose_mu);
    impl->proposals.push_back(p);
    post = !impl->drain_posted;
    impl->drain_posted = true;
  }
  if (post && !impl->inbox.Post([impl] { impl->DrainProposals(); })) {
    impl->FailProposals(absl::UnavailableError("the Raft node is stopping; nothing was written"));
  }
  const absl::Time deadline = absl::Now() + kWriteTimeout;
  absl::Status s;
  for (;;) {
    if (result.wait_for(std::chrono::milliseconds(50)) == std::future_status::ready) {
      s = result.get();
      break;
    }
    if (impl->failed.load()) {
      s = FailedStorage();
      break;
    }
    if (absl::Now() >= deadline) {
      s = TimedOut("write", kWriteTimeout);
      break;
    }
  }
  *term = p->term.load();
  return s;
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

std::optional<LeaderProgress> RaftStorage::Progress() {
  std::shared_lock lock(mu_);
  struct raft* r = &impl_->raft;
  std::optional<LeaderProgress> out;
  impl_->RunOnLoop([&] {
    if (raft_state(r) != RAFT_LEADER) return;
    LeaderProgress p;
    p.leader_id = r->id;
    p.term = raft_current_term(r);
    p.last_index = raft_last_index(r);
    p.commit_index = raft_commit_index(r);
    p.servers.reserve(r->configuration.n);
    for (unsigned i = 0; i < r->configuration.n; ++i) {
      const raft_server& s = r->configuration.servers[i];
      ServerProgress sp;
      sp.peer = Peer{s.id, s.address, s.role == RAFT_VOTER};
      if (s.id == r->id) {
        sp.match_index = p.last_index;
        sp.since_contact_ms = 0;
      } else {
        raft_index match = 0;
        raft_time since = 0;
        if (raft_server_progress(r, s.id, &match, &since) == 0) {
          sp.match_index = match;
          if (since != UINT64_MAX) sp.since_contact_ms = since;
        }
      }
      p.servers.push_back(std::move(sp));
    }
    out = std::move(p);
  });
  return out;
}

absl::StatusOr<uint64_t> RaftStorage::TransferLeadership(
    const std::function<bool(uint64_t)>& skip) {
  std::shared_lock lock(mu_);
  Impl* impl = impl_.get();
  struct raft* r = &impl->raft;
  bool leader = false;
  std::vector<std::pair<raft_index, raft_id>> voters;  // (match index, id)
  if (!impl->RunOnLoop([&] {
        leader = raft_state(r) == RAFT_LEADER;
        if (!leader) return;
        for (unsigned i = 0; i < r->configuration.n; ++i) {
          const raft_server& s = r->configuration.servers[i];
          raft_index match = 0;
          if (s.id != r->id && s.role == RAFT_VOTER && raft_match_index(r, s.id, &match) == 0) {
            voters.emplace_back(match, s.id);
          }
        }
      })) {
    return absl::UnavailableError("the Raft node is stopping");
  }
  if (!leader) return absl::FailedPreconditionError("not the leader");
  if (voters.empty()) return absl::NotFoundError("there is no other voter to take the leadership");
  if (skip) {
    std::erase_if(voters, [&](const auto& v) { return skip(v.second); });
    if (voters.empty()) {
      return absl::NotFoundError("every other voter was passed over (it cannot serve now)");
    }
  }
  // The most up-to-date first: it can take over at once (libraft sends it TimeoutNow as soon as
  // its log matches the leader's; a lagging one must catch up first, within an election timeout).
  std::stable_sort(voters.begin(), voters.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  // libraft gives a transfer up after an election timeout; the callback follows within a
  // heartbeat or two (or once this node, a follower now, hears from the new leader).
  const auto wait =
      std::chrono::milliseconds(3 * uint64_t{impl->options.election_timeout_ms} + 500);
  std::string tried;
  for (const auto& [match, id] : voters) {
    auto* t = new Impl::Transfer();
    t->req.data = t;
    std::future<void> done = t->done.get_future();
    int rv = 0;
    bool busy = false;
    const bool ran = impl->RunOnLoop([&] {
      if (raft_state(r) != RAFT_LEADER) {
        rv = RAFT_NOTLEADER;
      } else if (r->transfer != nullptr) {
        busy = true;  // an earlier transfer has not called back yet
        rv = RAFT_NOTLEADER;
      } else {
        LogInfo("raft: handing the leadership to node %d (match index %d)", id, match);
        rv = raft_transfer(r, &t->req, id, &Impl::TransferDone);
      }
      if (rv != 0) delete t;  // no callback will come
    });
    if (!ran) {
      delete t;
      return absl::UnavailableError("the Raft node is stopping");
    }
    if (busy) return absl::UnavailableError("a leadership transfer is in progress already");
    if (rv == 0) done.wait_for(wait);
    bool still = false;
    raft_id now_leading = 0;
    impl->RunOnLoop([&] {
      still = raft_state(r) == RAFT_LEADER;
      const char* address = nullptr;
      raft_leader(r, &now_leading, &address);
    });
    if (!still) return uint64_t{now_leading};
    absl::StrAppend(&tried, tried.empty() ? "" : ", ", id,
                    rv == 0 ? "" : absl::StrCat(" (", raft_strerror(rv), ")"));
  }
  return absl::UnavailableError(
      absl::StrCat("no other voter took the leadership (tried node ", tried, ")"));
}

absl::StatusOr<uint64_t> RaftStorage::ReadBarrier() {
  std::shared_lock lock(mu_);
  if (impl_->failed.load()) return FailedStorage();
  struct raft* r = &impl_->raft;
  uint64_t term = 0;
  absl::Status s = impl_->Await<struct raft_barrier>(
      "read barrier", kWriteTimeout, [&](Impl::Pending<struct raft_barrier>* p) -> int {
        if (raft_state(r) != RAFT_LEADER) return RAFT_NOTLEADER;
        term = raft_current_term(r);  // the barrier entry's term (raft_barrier uses it)
        return raft_barrier(r, &p->req, &Impl::BarrierDone);
      });
  if (!s.ok()) return s;
  return term;
}

uint64_t RaftStorage::LeaderTerm() {
  std::shared_lock lock(mu_);
  uint64_t term = 0;
  impl_->RunOnLoop([&] {
    if (raft_state(&impl_->raft) == RAFT_LEADER) term = raft_current_term(&impl_->raft);
  });
  return term;
}

RaftStorage::LeaderState RaftStorage::ReadState() {
  std::shared_lock lock(mu_);
  LeaderState st;
  impl_->RunOnLoop([&] {
    struct raft* r = &impl_->raft;
    if (raft_state(r) != RAFT_LEADER) return;
    st.term = raft_current_term(r);
    st.commit_index = raft_commit_index(r);
    st.applied_index = raft_last_applied(r);
    const raft_configuration& c = r->configuration;
    for (unsigned i = 0; i < c.n; ++i) {
      if (c.servers[i].role == RAFT_VOTER)
        st.voters.push_back(Peer{c.servers[i].id, c.servers[i].address, true});
    }
  });
  return st;
}

// Raft's single-server membership changes are safe only once the leader has committed an entry
// of its own term (Ongaro, 2015: a leader that changes the configuration before that can let two
// disjoint majorities decide), and libraft 0.22.1 does not check it. So every change is preceded
// by a barrier, and issued only in the term the barrier committed in. Sets *term to that term.
absl::Status RaftStorage::CommitInTermLocked(uint64_t* term) {
  struct raft* r = &impl_->raft;
  return impl_->Await<struct raft_barrier>("barrier before a membership change", kChangeTimeout,
                                           [&](Impl::Pending<struct raft_barrier>* p) -> int {
                                             *term = raft_current_term(r);
                                             return raft_barrier(r, &p->req, &Impl::BarrierDone);
                                           });
}

absl::Status RaftStorage::AddVoter(uint64_t id, const std::string& address) {
  std::shared_lock lock(mu_);
  if (id == 0 || address.empty())
    return absl::InvalidArgumentError("a peer needs an id and address");
  struct raft* r = &impl_->raft;
  uint64_t term = 0, committed_term = 0;
  if (absl::Status b = CommitInTermLocked(&committed_term); !b.ok()) return b;
  absl::Status s =
      impl_->Await<raft_change>("add", kChangeTimeout, [&](Impl::Pending<raft_change>* p) -> int {
        term = raft_current_term(r);
        if (term != committed_term) return RAFT_NOTLEADER;
        return raft_add(r, &p->req, id, address.c_str(), &Impl::ChangeDone);
      });
  NoteWrite(s, term);
  if (!s.ok()) return s;
  // The promotion sends the new member its first entries at once; right after the add the
  // transport may have no connection to it yet (or a dead one to an earlier process at the same
  // address: a removed node that joins again), and libraft then refuses with "no connection".
  // The add is committed: the promotion is tried again for a while.
  const absl::Time give_up = absl::Now() + absl::Seconds(15);
  for (;;) {
    s = impl_->Await<raft_change>(
        "promote", kChangeTimeout, [&](Impl::Pending<raft_change>* p) -> int {
          term = raft_current_term(r);
          if (term != committed_term) return RAFT_NOTLEADER;  // a new term: barrier again first
          return raft_assign(r, &p->req, id, RAFT_VOTER, &Impl::ChangeDone);
        });
    if (s.ok() || absl::Now() >= give_up ||
        !absl::StrContains(s.message(), raft_strerror(RAFT_NOCONNECTION))) {
      NoteWrite(s, term);
      return s;
    }
    absl::SleepFor(absl::Milliseconds(200));
    if (absl::Status b = CommitInTermLocked(&committed_term); !b.ok()) return b;
  }
}

absl::Status RaftStorage::Remove(uint64_t id) {
  std::shared_lock lock(mu_);
  struct raft* r = &impl_->raft;
  uint64_t term = 0, committed_term = 0;
  if (absl::Status b = CommitInTermLocked(&committed_term); !b.ok()) return b;
  absl::Status s = impl_->Await<raft_change>(
      "remove", kChangeTimeout, [&](Impl::Pending<raft_change>* p) -> int {
        term = raft_current_term(r);
        if (term != committed_term) return RAFT_NOTLEADER;
        return raft_remove(r, &p->req, id, &Impl::ChangeDone);
      });
  NoteWrite(s, term);  // a leader that removed itself has its answer confirmed by the commit
  return s;
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

std::optional<Peer> RaftStorage::LeaderHint() {
  std::shared_lock lock(mu_);
  std::lock_guard<std::mutex> hint_lock(impl_->leader_hint_mu);
  return impl_->leader_hint;
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

bool RaftStorage::RestoreUnderWay() {
  std::lock_guard<std::mutex> lock(impl_->restore_mu);
  return impl_->restoring;
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

uint64_t RaftStorage::TakeMaxLoopStallMs() {
  std::shared_lock lock(mu_);
  return impl_->max_stall_ms.exchange(0);
}

}  // namespace strongroom::raft
