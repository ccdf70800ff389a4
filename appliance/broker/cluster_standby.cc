// The reads a standby answers itself (broker/cluster.h): which ones, the leader's read point
// (read_index.h), the checks made before the answer leaves, and the tables kept current.
#include <algorithm>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "appliance/broker/cluster.h"
#include "appliance/broker/cluster_internal.h"
#include "appliance/broker/ipc_server.h"
#include "appliance/core/request.h"
#include "base/log.h"
#include "base/strings.h"

namespace strongroom::broker {

using namespace cluster_internal;  // NOLINT(build/namespaces): the cluster's own helpers

namespace {

// How long a standby's read waits for its store to reach the leader's read point, and for the
// leader's answer, before the request is forwarded instead.
constexpr absl::Duration kReadPointWait = absl::Seconds(2);
constexpr absl::Duration kReadPointCallTimeout = absl::Seconds(2);
// The least time between two reloads of a standby's core (its mount table changed, ...).
constexpr absl::Duration kStandbyReloadEvery = absl::Seconds(1);
// The longest a standby's main loop waits for the changes of its tables to reach its store
// (TendStandby starts a reload only once they have, as a rule).
constexpr absl::Duration kTablesStoredWait = absl::Milliseconds(100);

constexpr unsigned kCoreTable = 1;
constexpr unsigned kPolicyTable = 2;
constexpr unsigned kIdentityTable = 3;
static_assert(kIdentityTable < raft::RaftStorage::kTables);

// What the calling thread's request came to, while MaybeForward tries it on this standby.
struct StandbyAnswer {
  bool on = false;         // the request is being tried here
  bool begun = false;      // BeginAnswer ran (and a read check began, unless `forward`)
  bool confirmed = false;  // ConfirmAnswer ran (and ended the read check)
  bool forward = false;    // the answer may not be sent: forward the request instead
  uint64_t epochs[raft::RaftStorage::kTables] = {};  // the tables' epochs when they were loaded
};
thread_local StandbyAnswer t_standby;

bool ParseIndex(const json::object& o, const char* field, uint64_t* out) {
  auto v = core::GetString(o, field);
  return v.ok() && v->has_value() && absl::SimpleAtoi(**v, out);
}

}  // namespace

namespace cluster_internal {

unsigned StandbyTableOf(std::string_view key) {
  if (key.starts_with("sys/policy/")) return kPolicyTable;
  if (key.starts_with("identity/")) return kIdentityTable;
  // Read from the store when needed, never kept in memory by the core: the engines' data (a
  // standby answers reads of KV mounts only; other engines may keep some of theirs in memory,
  // and their requests are forwarded), tokens (but their salt), audit chains' states, the
  // cluster's own records (join credentials, removed and pinned members).
  if (key.starts_with("logical/") || key.starts_with("core/raft/")) return 0;
  if (key.starts_with("sys/token/")) return key == "sys/token/salt" ? kCoreTable : 0;
  if (key.starts_with("sys/audit/") && key.find("/state-") != std::string_view::npos) return 0;
  // Everything else, whatever it is: the mount table, audit devices, the keyring, ... .
  return kCoreTable;
}

}  // namespace cluster_internal

absl::StatusOr<ReadPoint> ClusterNode::AskReadPoint(uint64_t term) {
  auto leader = LeaderInfoOf(raft_->LeaderHint());
  if (!leader || leader->self) return absl::UnavailableError("no other node leads");
  json::object ask;
  ask["op"] = "read-point";
  ask["term"] = std::to_string(term);
  ASSIGN_OR_RETURN(json::object answer, Call(leader->cluster_addr, ask, kReadPointCallTimeout));
  auto ok = core::GetBool(answer, "ok");
  if (!ok.ok() || !ok->value_or(false)) {
    auto error = core::GetString(answer, "error");
    return absl::UnavailableError(
        absl::StrCat("the leader gave no read point: ",
                     error.ok() && error->has_value() ? **error : std::string("no reason")));
  }
  ReadPoint point;
  if (!ParseIndex(answer, "term", &point.term) || !ParseIndex(answer, "index", &point.index)) {
    return absl::DataLossError("the leader's read point answer is malformed");
  }
  return point;
}

std::string ClusterNode::ServeReadPoint(const raft::PeerIdentity& peer, const json::object& req) {
  uint64_t term = 0;
  if (!ParseIndex(req, "term", &term)) return core::Serialize(Failure("read-point needs a term"));
  // The caller's raft id, by the node id its certificate names (RefuseImpostor checked it).
  auto point = leader_check_->PointFor(raft::RaftStorage::IdFor(peer.node_id), term, read_index_);
  if (!point.ok()) return core::Serialize(Failure(Sv(point.status().message())));
  json::object o;
  o["ok"] = true;
  o["term"] = std::to_string(point->term);
  o["index"] = std::to_string(point->index);
  return core::Serialize(o);
}

bool ClusterNode::StandbyMayServe(const ipc::Request& req, core::Core* core) {
  if (!standby_ready_) return false;
  if (req.operation() != ipc::OP_READ && req.operation() != ipc::OP_LIST) return false;
  // A wrapped answer is a new token (a write); a namespace is refused the same everywhere; a
  // client that asks not to be forwarded gets the active node's address (a 307), as before.
  if (!req.wrap_ttl().empty() || !req.namespace_().empty() || req.no_request_forwarding()) {
    return false;
  }
  if (core->sealed() || core->audit().HasDevices()) return false;
  // The longest mount path the request's path starts with must be a KV mount's.
  const std::string& path = req.path();
  const std::string* owner = nullptr;
  for (const std::string& m : standby_mounts_) {
    if (path.starts_with(m) && (owner == nullptr || m.size() > owner->size())) owner = &m;
  }
  return owner != nullptr && std::find(standby_kv_mounts_.begin(), standby_kv_mounts_.end(),
                                       *owner) != standby_kv_mounts_.end();
}

std::optional<ipc::Response> ClusterNode::TryStandbyRead(const ipc::Request& req,
                                                         core::Core* core) {
  // Not while the tables change, nor once the main loop waits to change them (the lock prefers
  // readers: a steady stream of local reads would keep it waiting).
  if (standby_exclusive_wanted_.load()) return std::nullopt;
  std::shared_lock lock(standby_mu_, std::try_to_lock);
  if (!lock.owns_lock() || !StandbyMayServe(req, core)) return std::nullopt;
  t_standby = StandbyAnswer();
  t_standby.on = true;
  std::copy(std::begin(standby_epochs_), std::end(standby_epochs_), std::begin(t_standby.epochs));
  ipc::Response r = IpcServer::Process(core, req, options_.json_limits);
  const StandbyAnswer done = t_standby;
  t_standby = StandbyAnswer();
  // A read check that the core did not end (it answered without confirming) is ended here.
  if (done.begun && !done.confirmed && !done.forward) (void)raft_->EndReadCheck();
  if (!done.begun || !done.confirmed || done.forward) {
    standby_forwarded_.fetch_add(1);
    return std::nullopt;
  }
  standby_local_.fetch_add(1);
  return r;
}

bool ClusterNode::StandbyAnswering() { return t_standby.on; }

ClusterNode::ExclusiveStandby::ExclusiveStandby(ClusterNode* node) : node_(node) {
  node_->standby_exclusive_wanted_.store(true);
  node_->standby_mu_.lock();
}

ClusterNode::ExclusiveStandby::~ExclusiveStandby() {
  node_->standby_mu_.unlock();
  node_->standby_exclusive_wanted_.store(false);
}

absl::Status ClusterNode::BeginStandbyAnswer() {
  t_standby.begun = true;
  absl::Status s = standby_reads_->Begin(kReadPointWait);
  for (unsigned t = 1; s.ok() && t < raft::RaftStorage::kTables; ++t) {
    if (raft_->TableEpoch(t) != t_standby.epochs[t]) {
      s = absl::UnavailableError("this standby's tables changed; forwarding");
    }
  }
  if (!s.ok()) {
    t_standby.forward = true;
    return s;
  }
  raft_->BeginReadCheck();
  return absl::OkStatus();
}

absl::Status ClusterNode::ConfirmStandbyAnswer() {
  t_standby.confirmed = true;
  if (t_standby.forward) return absl::UnavailableError("forwarding");
  const raft::RaftStorage::ThreadWrites writes = raft::RaftStorage::TakeThreadWrites();
  // First the read check, then the tables' epochs: an entry is counted in both before it
  // reaches the store, so one seen by the check is seen in the epochs too.
  const bool one_view = raft_->EndReadCheck();
  bool tables_held = true;
  for (unsigned t = 1; t < raft::RaftStorage::kTables; ++t) {
    tables_held = tables_held && raft_->TableEpoch(t) == t_standby.epochs[t];
  }
  if (writes.committed_term != 0) {
    // This node became the leader while the request ran, and a write of the request committed
    // (a standby's write otherwise fails: nothing is done). Not forwarded: it would run again.
    return core::InternalErrorWithPublicDetail(
        "this node became the active node while it handled the request; the request may or may "
        "not have been applied");
  }
  if (writes.failed || !one_view || !tables_held) {
    t_standby.forward = true;
    return absl::UnavailableError("the request is forwarded to the active node");
  }
  return absl::OkStatus();
}

void ClusterNode::TendStandby() {
  core::Core* core = core_.load();
  if (core == nullptr || !core->initialized() || core->awaiting_cluster() || core->sealed() ||
      joining_.load() > 0) {
    return;
  }
  if (active_term_.load() != 0 || raft_->IsLeader()) {
    // The active node (or about to be): its answers are confirmed otherwise. Its tables are
    // reloaded when it becomes active; when it stands by again they are read anew here.
    ExclusiveStandby lock(this);
    standby_ready_ = false;
    return;
  }
  bool hard = true;
  bool soft = false;
  {
    std::shared_lock lock(standby_mu_);
    if (standby_ready_) {
      hard = raft_->TableEpoch(kCoreTable) != standby_epochs_[kCoreTable];
      for (unsigned t = kCoreTable + 1; t < raft::RaftStorage::kTables; ++t) {
        soft = soft || raft_->TableEpoch(t) != standby_epochs_[t];
      }
    }
  }
  if (!hard && !soft) return;
  // A change of the tables still on its way into the store: taken up at a later turn (without
  // waiting here, nor using up the reload allowance; requests forward meanwhile).
  uint64_t epochs[raft::RaftStorage::kTables] = {};
  for (unsigned t = 1; t < raft::RaftStorage::kTables; ++t) epochs[t] = raft_->TableEpoch(t);
  if (!raft_->WaitTablesStored(epochs, absl::ZeroDuration())) return;
  if (hard) {
    if (absl::Now() < next_standby_reload_) return;
    next_standby_reload_ = absl::Now() + kStandbyReloadEvery;
  }
  RefreshStandby(core, hard);
}

void ClusterNode::RefreshStandby(core::Core* core, bool hard) {
  ExclusiveStandby lock(this);  // waits for the local answers under way; new ones forward
  standby_ready_ = false;
  // Taken before the tables are read: what they hold from now on is at least as new.
  uint64_t epochs[raft::RaftStorage::kTables] = {};
  for (unsigned t = 1; t < raft::RaftStorage::kTables; ++t) epochs[t] = raft_->TableEpoch(t);
  // An epoch moves before its change reaches the store: what the tables are read from must hold
  // every change counted in `epochs` (else a table read now could be the old one while its epoch
  // says it is current, and stay so until the next change).
  if (!raft_->WaitTablesStored(epochs, kTablesStoredWait)) {
    if (!standby_reload_failed_) {
      LogWarn(
          "raft: this standby's store did not take up a change of its tables in time; it "
          "forwards every request until it does");
    }
    standby_reload_failed_ = true;
    return;
  }
  if (hard) {
    if (absl::Status s = core->ReloadTables(); !s.ok()) {
      // It forwards every request meanwhile (as a standby did before it answered reads).
      if (!standby_reload_failed_) {
        LogWarn(
            "raft: this standby could not read its tables again (%s); it forwards every "
            "request until it can",
            s.message());
      }
      standby_reload_failed_ = true;
      return;
    }
    standby_reload_failed_ = false;
    LogInfo(
        "raft: this standby read its tables (at index %d); it answers reads of KV mounts "
        "itself%s",
        static_cast<int64_t>(raft_->StoreIndex()),
        core->audit().HasDevices() ? " once no audit device is enabled" : "");
    standby_mounts_.clear();
    standby_kv_mounts_.clear();
    for (const core::MountEntry& m : core->Mounts()) {
      standby_mounts_.push_back(m.path);
      if (m.type == "kv") standby_kv_mounts_.push_back(m.path);
    }
  } else {
    core->policies().Clear();
    core->identity().Clear();
  }
  std::copy(std::begin(epochs), std::end(epochs), std::begin(standby_epochs_));
  standby_ready_ = true;
}

}  // namespace strongroom::broker
