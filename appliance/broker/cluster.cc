#include "appliance/broker/cluster.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <map>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "appliance/broker/cluster_internal.h"
#include "appliance/broker/ipc_server.h"
#include "appliance/broker/join_tokens.h"
#include "appliance/core/request.h"
#include "base/log.h"
#include "base/metrics_catalog.h"
#include "base/status_macros.h"
#include "base/strings.h"

namespace strongroom::broker {

using namespace cluster_internal;  // NOLINT(build/namespaces): the cluster's own helpers

namespace {

namespace json = core::json;

constexpr absl::Duration kJoinCallTimeout = absl::Seconds(30);
constexpr absl::Duration kAddCallTimeout = absl::Seconds(120);
constexpr absl::Duration kForwardTimeout = absl::Seconds(90);
constexpr int kMaxLeaderHops = 4;
// A leader's question for a member's term (a read's confirmation round): a member that has not
// answered by then does not count, and is not asked again until it has.
constexpr absl::Duration kTermCallTimeout = absl::Seconds(1);
constexpr char kRemovePath[] = "sys/storage/raft/remove-peer";
// A forward that broke once the request may have reached the leader (Vault's text for a failed
// forwarding call, and what the client must know before it retries).
constexpr char kForwardBroke[] =
    "error during forwarding RPC request: the active node may have received the request but its "
    "answer did not arrive; the request may or may not have been applied";

// <dir>/incarnation (ClusterNode::incarnation): read when the node has Raft state ("" when the
// file is absent: a data directory from before incarnations), made anew when it has none.
absl::StatusOr<std::string> Incarnation(const std::string& dir, bool has_state) {
  const std::string path = dir + "/incarnation";
  if (has_state) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0 && errno == ENOENT) return std::string();
    if (fd < 0) {
      return absl::FailedPreconditionError(absl::StrCat("cannot read ", path, ": errno ", errno));
    }
    char buf[64];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    ::close(fd);
    std::string v(buf, n > 0 ? static_cast<size_t>(n) : 0);
    if (!v.empty() && v.back() == '\n') v.pop_back();
    if (v.empty() || v.size() > 32 || !AllIn(v, "")) {
      return absl::DataLossError(absl::StrCat(
          path,
          " is damaged; it names this node's audit chains (restore it, or re-add the node "
          "with an empty data directory)"));
    }
    return v;
  }
  std::string v = core::RandomHex(4);
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  const std::string line = v + "\n";
  bool ok = fd >= 0 && ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
            ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  ok = ok && ::rename(tmp.c_str(), path.c_str()) == 0;
  if (ok) {
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ok = dfd >= 0 && ::fsync(dfd) == 0;
    if (dfd >= 0) ::close(dfd);
  }
  if (!ok) return absl::FailedPreconditionError(absl::StrCat("cannot write ", path));
  return v;
}

}  // namespace

absl::StatusOr<std::string> ClusterAddrFromApiAddr(std::string_view api_addr) {
  std::string_view rest = api_addr;
  size_t scheme = rest.find("://");
  if (scheme != std::string_view::npos) rest.remove_prefix(scheme + 3);
  rest = rest.substr(0, rest.find('/'));
  size_t colon = rest.rfind(':');
  const bool bracketed = rest.starts_with('[');
  uint32_t port = 8200;
  std::string_view host = rest;
  if (colon != std::string_view::npos && (!bracketed || colon > rest.find(']'))) {
    host = rest.substr(0, colon);
    if (!absl::SimpleAtoi(Av(rest.substr(colon + 1)), &port) || port == 0 || port >= 65535) {
      return absl::InvalidArgumentError(absl::StrCat("invalid address \"", Av(api_addr), "\""));
    }
  }
  if (host.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("invalid address \"", Av(api_addr), "\""));
  }
  return absl::StrCat(Av(host), ":", port + 1);
}

absl::StatusOr<std::unique_ptr<ClusterNode>> ClusterNode::Start(ClusterOptions o) {
  PeerInfo self{o.cluster_addr, o.node_id, o.api_addr};
  if (absl::Status s = CheckPeer(self); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("raft: ", s.message()));
  }
  RETURN_IF_ERROR(CheckOwnCertificate(o.tls.cert_file, self));
  auto own = raft::IdentityOfCertificateFile(o.tls.cert_file);
  std::unique_ptr<ClusterNode> node(new ClusterNode(std::move(o)));
  if (own.ok()) node->own_key_sha256_ = own->public_key_sha256;
  node->LoadRefused();  // before the transport listens
  node->client_ = std::make_unique<raft::ServiceClient>(node->options_.tls);
  raft::RaftOptions ro;
  ro.node_id = raft::RaftStorage::IdFor(node->options_.node_id);
  ro.address = EncodePeer(self);
  ro.dir = node->options_.path;
  ro.tls = node->options_.tls;
  ClusterNode* raw = node.get();
  ro.service = [raw](const raft::PeerIdentity& peer, std::string_view request) {
    return raw->Serve(peer, request);
  };
  ro.peer_check = [raw](uint64_t raft_id, std::string_view address,
                        const raft::PeerIdentity& peer) {
    return CheckMemberPeer(raw, raft_id, address, peer);
  };
  if (!node->options_.recover.empty()) {
    auto decide = RecoveryDecision(node->options_.recover, node->options_.node_id, ro.tls);
    ro.recover =
        [decide = std::move(decide),
         raw](const std::vector<raft::Peer>& current) -> absl::StatusOr<std::vector<raft::Peer>> {
      auto forced = decide(current);
      if (forced.ok()) raw->NoteDropped(current, *forced);
      return forced;
    };
  }
  ro.table_of = &StandbyTableOf;
  ASSIGN_OR_RETURN(node->raft_, raft::RaftStorage::Start(ro));
  node->leader_check_ = std::make_unique<LeaderCheck>(
      node->raft_.get(), [raw](const std::string& address) { return raw->AskTerm(address); });
  node->standby_reads_ = std::make_unique<StandbyReads>(
      node->raft_.get(), [raw](uint64_t term) { return raw->AskReadPoint(term); });
  node->RefreshRefused();
  ASSIGN_OR_RETURN(node->incarnation_, Incarnation(node->options_.path, node->raft_->HasState()));
  if (!node->incarnation_.empty()) {
    LogInfo("raft: node %s, incarnation %s", node->options_.node_id, node->incarnation_);
  }
  // Service calls reach Serve as soon as the transport listens, inside RaftStorage::Start:
  // until here they are answered "still starting" (raft_ was not set yet).
  node->ready_.store(true, std::memory_order_release);
  node->metrics_ = metrics::DefaultRegistry().AddCollector(
      [raw](metrics::Collection& c) { raw->CollectMetrics(c); });
  return node;
}

ClusterNode::~ClusterNode() {
  metrics_.Reset();  // no scrape reads raft_ from here on
  ready_.store(false, std::memory_order_release);
  raft_.reset();  // no service call can reach us after this
}

void ClusterNode::Attach(core::Core* core, core::Seal* seal) {
  seal_.store(seal);
  core_.store(core);
}

bool ClusterNode::CaughtUp(absl::Duration budget, bool* as_leader) {
  if (as_leader != nullptr) *as_leader = false;
  if (!raft_->HasState()) return true;
  if (raft_->IsLeader()) {
    // A barrier of this term applied here: everything committed before it is applied too.
    if (!raft_->Barrier(budget).ok()) return false;
    if (as_leader != nullptr) *as_leader = true;
    return true;
  }
  // A follower's own commit index says nothing until the leader's first append matched its
  // log (before that it is the index of its last snapshot, or 0): ask the leader instead, once
  // per process. What it answers is committed for good, whoever leads later.
  uint64_t target = catch_up_index_.load();
  if (target == 0) {
    auto leader = CurrentLeader();
    if (!leader || leader->self) return false;
    json::object ask;
    ask["op"] = "read-index";
    std::string addr = leader->cluster_addr;
    auto answer = CallLeader(&addr, ask, budget, "the leader did not give its commit index: ");
    if (!answer.ok()) {
      const absl::Time now = absl::Now();
      if (now - absl::FromUnixMillis(catch_up_logged_ms_.load()) >= absl::Seconds(5)) {
        catch_up_logged_ms_.store(absl::ToUnixMillis(now));
        LogInfo("raft: catching up: %s", answer.status().message());
      }
      return false;
    }
    auto index = core::GetInt(*answer, "index");
    if (!index.ok() || !index->has_value() || **index <= 0) return false;
    target = static_cast<uint64_t>(**index);
    catch_up_index_.store(target);
    LogInfo("raft: catching up with the cluster: the leader has committed up to index %d",
            static_cast<int64_t>(target));
  }
  return raft_->AppliedIndex() >= target;
}

bool ClusterNode::WaitCaughtUp(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    if (raft_->HasState() && CaughtUp(std::min(left, absl::Seconds(5)))) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
}

bool ClusterNode::BecameLeader() {
  const uint64_t term = raft_->LeaderTerm();
  // Not the leader, or the leader of a term the core was not reloaded for: not active.
  if (active_term_.load() != term) active_term_.store(0);
  led_term_.store(term);
  // Leads, but is not the active node: a new leadership (maybe lost and won again in between:
  // its tables may be old), or one sealed by request meanwhile.
  return term != 0 && active_term_.load() != term;
}

absl::Status ClusterNode::HandOverLeadership() {
  std::lock_guard<std::mutex> lock(handover_mu_);
  return HandOverLocked();
}

absl::Status ClusterNode::HandOverLocked() {
  // A sealed member could not serve as the active node (it would hand the leadership on again,
  // or hold it sealed): passed over. One that does not answer is tried (it may still take it).
  std::map<uint64_t, std::string> addresses;
  for (const auto& peer : raft_->Configuration()) addresses[peer.id] = peer.address;
  auto to = raft_->TransferLeadership([&](uint64_t id) {
    auto it = addresses.find(id);
    return it != addresses.end() && AskSealed(it->second);
  });
  if (!to.ok()) {
    if (raft_->IsLeader()) return to.status();
    // Another node leads already (a hand-over that ran meanwhile, an election).
    active_term_.store(0);
    return absl::OkStatus();
  }
  active_term_.store(0);
  std::string name = "(not known yet)";
  for (const auto& peer : raft_->Configuration()) {
    if (*to != 0 && peer.id == *to) name = DecodePeer(peer.address).node_id;
  }
  LogInfo("raft: node %s leads now; this node is no longer the active node", name);
  return absl::OkStatus();
}

void ClusterNode::HandOver() {
  const bool step_down = step_down_requested_.exchange(false);
  core::Core* core = core_.load();
  // Vault: a step-down that reaches a node which is not active does nothing.
  if (core == nullptr || !core->initialized() || !raft_->IsLeader()) return;
  std::unique_lock<std::mutex> lock(handover_mu_, std::try_to_lock);
  if (!lock.owns_lock()) {  // sys/seal is handing the leadership on right now
    if (step_down) step_down_requested_.store(true);
    return;
  }
  if (core->sealed_by_request() && core->sealed()) {
    // (Only once sealed: sys/seal closes the audit logs first, and their last checkpoint is a
    // write that needs this node to lead.)
    if (absl::Now() < next_handover_) return;
    absl::Status s = HandOverLocked();
    if (s.ok()) {
      handover_error_.clear();
      return;
    }
    next_handover_ = absl::Now() + absl::Seconds(5);
    if (s.message() != handover_error_) {
      handover_error_ = std::string(s.message());
      LogWarn("raft: this node is sealed but leads the cluster (%s); trying again every 5 s",
              handover_error_);
    }
    return;
  }
  if (!step_down) return;
  bool other_voter = false;
  for (const auto& peer : raft_->Configuration()) {
    other_voter = other_voter || (peer.voter && peer.id != raft_->node_id());
  }
  if (!other_voter) {
    LogWarn("sys/step-down: no other voter can become the active node; this node stays active");
    return;
  }
  LogInfo("raft: stepping down as the active node (sys/step-down)");
  active_term_.store(0);
  (void)core->SealNow("stepping down as the active node (sys/step-down)");
  absl::Status s = HandOverLocked();
  if (!raft_->IsLeader()) {
    core->Start();  // a standby from here on, unsealed as at start-up
    return;
  }
  // Still the leader: the main loop reloads this node as the active node (BecameLeader).
  LogWarn("sys/step-down: %s; this node stays the active node",
          s.ok() ? "it was elected again" : std::string(s.message()));
}

std::optional<core::LeaderInfo> ClusterNode::CurrentLeader() {
  return LeaderInfoOf(raft_->Leader());
}

std::optional<core::LeaderInfo> ClusterNode::LeaderInfoOf(const std::optional<raft::Peer>& leader) {
  if (!leader) return std::nullopt;
  PeerInfo p = DecodePeer(leader->address);
  core::LeaderInfo info;
  info.self = leader->id == raft_->node_id();
  info.node_id = p.node_id;
  info.api_addr = p.api_addr;
  info.cluster_addr = p.cluster_addr;
  return info;
}

absl::Status ClusterNode::BootstrapForInit() {
  if (!raft_->HasState()) {
    RETURN_IF_ERROR(raft_->BootstrapNew());
    LogInfo("raft: node %s bootstrapped a new cluster for sys/init", options_.node_id);
  }
  for (int i = 0; i < 200 && !raft_->IsLeader(); ++i) absl::SleepFor(absl::Milliseconds(50));
  if (!raft_->IsLeader()) {
    return absl::FailedPreconditionError(
        "this node is a member of a Raft cluster but not its leader; initialise the cluster on "
        "its leader");
  }
  RETURN_IF_ERROR(raft_->Barrier());
  const uint64_t term = raft_->LeaderTerm();  // 0 if the leadership is gone already
  led_term_.store(term);
  active_term_.store(term);
  return absl::OkStatus();
}

absl::StatusOr<json::object> ClusterNode::Configuration() {
  auto leader = raft_->Leader();
  json::array servers;
  for (const auto& peer : raft_->Configuration()) {
    PeerInfo p = DecodePeer(peer.address);
    json::object s;
    s["node_id"] = p.node_id;
    s["address"] = p.cluster_addr;
    s["leader"] = leader && leader->id == peer.id;
    s["protocol_version"] = "3";
    s["voter"] = peer.voter;
    servers.emplace_back(std::move(s));
  }
  json::object o;
  o["servers"] = std::move(servers);
  o["index"] = raft_->AppliedIndex();
  return o;
}

absl::Status ClusterNode::RemovePeer(std::string_view node_id) {
  for (const auto& peer : raft_->Configuration()) {
    const PeerInfo p = DecodePeer(peer.address);
    if (p.node_id == node_id) {
      core::AuditSystemEvent event = ChangeEvent(kRemovePath, "remove-peer");
      event.data["node_id"] = p.node_id;
      event.data["cluster_addr"] = p.cluster_addr;
      event.data["voter"] = peer.voter;
      RETURN_IF_ERROR(AuditChangeRequest(event));
      // Removal is final (join_tokens.h): recorded in replicated state before the member goes.
      core::Core* core = core_.load();
      absl::Status s = core == nullptr
                           ? absl::UnavailableError("the node is still starting")
                           : JoinTokens(core->barrier()).MarkRemoved(node_id, core->Now());
      if (s.ok()) s = raft_->Remove(peer.id);
      json::object result;
      if (s.ok()) result["removed"] = true;
      (void)AuditChangeResponse(std::move(event), result, Sv(s.message()));
      RETURN_IF_ERROR(s);
      LogInfo("raft: removed node %s from the cluster", std::string(node_id));
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("no server with node_id \"", Av(node_id), "\""));
}

absl::StatusOr<json::object> ClusterNode::Call(const std::string& cluster_addr,
                                               const json::object& req, absl::Duration timeout,
                                               raft::PeerIdentity* server) {
  auto answer =
      client_->Call(cluster_addr, core::Serialize(req),
                    std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)), server);
  // The member has too many calls under way: Vault's overloaded answer (503), not 429.
  if (absl::IsResourceExhausted(answer.status())) return absl::UnavailableError(ipc::kServerBusy);
  if (!answer.ok()) return answer.status();
  return core::ParseObject(*answer);
}

absl::StatusOr<json::object> ClusterNode::CallLeader(std::string* target, const json::object& req,
                                                     absl::Duration timeout,
                                                     std::string_view refused) {
  for (int hop = 0;; ++hop) {
    ASSIGN_OR_RETURN(json::object answer, Call(*target, req, timeout));
    ASSIGN_OR_RETURN(auto ok, core::GetBool(answer, "ok"));
    if (ok.value_or(false)) return answer;
    ASSIGN_OR_RETURN(auto error, core::GetString(answer, "error"));
    ASSIGN_OR_RETURN(auto leader, core::GetString(answer, "leader_cluster_addr"));
    if (leader && !leader->empty() && *leader != *target && hop < kMaxLeaderHops) {
      *target = *leader;  // "not the leader": ask the one it names
      continue;
    }
    return absl::FailedPreconditionError(absl::StrCat(Av(refused), error.value_or("no reason")));
  }
}

absl::Status ClusterNode::Join(const core::JoinRequest& jr) {
  if (raft_->HasState()) {
    return absl::FailedPreconditionError(
        absl::StrCat("this node already has Raft state in ", options_.path,
                     "; a node joins a cluster only with an empty storage path"));
  }
  core::Seal* seal = seal_.load();
  if (seal == nullptr) return absl::UnavailableError("the node is still starting");
  // Until the join has caught up, the refused sets are the leader's (TakeJoinRefused).
  joining_.fetch_add(1);
  struct JoinDone {
    ClusterNode* node;
    bool caught_up = false;
    // A join that failed after this node got Raft state (an add whose answer was lost, a
    // catch-up that ran out) stays counted: the node is not known to follow the cluster.
    ~JoinDone() {
      if (caught_up || !node->raft_->HasState()) {
        node->joining_.fetch_sub(1);
      } else {
        node->join_left_state_.store(true);  // until the main loop sees it caught up
      }
    }
  } done{this};
  std::string target = jr.leader_cluster_addr;
  if (target.empty()) {
    ASSIGN_OR_RETURN(target, ClusterAddrFromApiAddr(jr.leader_api_addr));
  }
  RETURN_IF_ERROR(seal->Open());
  if (seal->FindKek().ok()) {
    // An earlier join received the KEKs but did not finish: join with them (a KEK of another
    // cluster would fail the unseal that follows, loudly).
    LogInfo("raft: the token holds the KEK already (an earlier join); asking to be added");
    absl::Status added = AddSelf(target, jr.join_token);
    done.caught_up = added.ok();
    return added;
  }
  ASSIGN_OR_RETURN(std::string point, seal->BeginJoin());

  // Ask for the KEKs, following "not the leader" answers to the leader.
  json::object ask;
  ask["op"] = "join";
  ask["node_id"] = options_.node_id;
  ask["transport_key"] = B64(point);
  if (!jr.join_token.empty()) ask["join_token"] = jr.join_token;
  ASSIGN_OR_RETURN(json::object answer, CallLeader(&target, ask, kJoinCallTimeout,
                                                   "the cluster refused to let this node join: "));
  ASSIGN_OR_RETURN(std::string ephemeral, UnB64(answer, "ephemeral_key"));
  const auto* keks = answer.if_contains("keks");
  if (keks == nullptr || !keks->is_array()) return absl::DataLossError("join answer has no keks");
  std::vector<std::vector<uint8_t>> blobs;
  for (const auto& k : keks->as_array()) {
    std::string b;
    if (!k.is_string() || !absl::Base64Unescape(Av(std::string_view(k.as_string())), &b)) {
      return absl::DataLossError("join answer: keks must be base64 strings");
    }
    blobs.emplace_back(b.begin(), b.end());
  }
  RETURN_IF_ERROR(seal->CompleteJoin(ephemeral, blobs, options_.node_id));
  if (!TakeJoinRefused(answer, target)) {
    LogWarn(
        "raft: the join answer carries no refused sets (an older leader); this node asks the "
        "members until it has caught up");
  }
  absl::Status added = AddSelf(target, "");
  done.caught_up = added.ok();
  return added;
}

absl::Status ClusterNode::AddSelf(std::string target, const std::string& join_token) {
  // Holding the KEKs, this node asks to be a voter; the leader promotes it once it caught up.
  json::object add;
  add["op"] = "add";
  add["node_id"] = options_.node_id;
  add["cluster_addr"] = options_.cluster_addr;
  add["api_addr"] = options_.api_addr;
  // Only for a node whose token holds the KEKs from an earlier join: the leader admits it with
  // this credential (the join call consumed none).
  if (!join_token.empty()) add["join_token"] = join_token;
  RETURN_IF_ERROR(
      CallLeader(&target, add, kAddCallTimeout, "the leader could not add this node: ").status());
  LogInfo("raft: node %s joined the cluster through %s", options_.node_id, target);
  if (!WaitCaughtUp(absl::Seconds(60))) {
    return absl::DeadlineExceededError("joined, but the cluster's data did not arrive in time");
  }
  return absl::OkStatus();
}

void ClusterNode::RetryJoin(const std::atomic<bool>& stop) {
  if (options_.retry_join.empty()) return;
  while (!stop.load()) {
    core::Core* core = core_.load();
    if (core == nullptr || core->initialized() || raft_->HasState()) return;
    for (const auto& leader : options_.retry_join) {
      if (stop.load()) return;
      core::Request req;
      req.operation = core::Operation::kUpdate;
      req.path = "sys/storage/raft/join";
      req.data["leader_api_addr"] = leader;
      if (!options_.join_token_file.empty()) {
        auto token = ReadJoinTokenFile(options_.join_token_file);
        if (!token.ok()) {
          LogWarn("raft: retry_join: %s", token.status().message());
          break;
        }
        req.data["join_token"] = *token;
      }
      req.has_data = true;
      auto r = core->Handle(req);
      if (r.ok()) {
        LogInfo("raft: retry_join: joined through %s", leader);
        return;
      }
      LogWarn("raft: retry_join through %s: %s", leader, r.status().message());
      if (raft_->HasState()) return;  // half-way: the operator must look (logged above)
    }
    for (int i = 0; i < 50 && !stop.load(); ++i) absl::SleepFor(absl::Milliseconds(100));
  }
}

absl::StatusOr<uint64_t> ClusterNode::AskTerm(const std::string& raft_address) {
  json::object ask;
  ask["op"] = "term";
  ASSIGN_OR_RETURN(json::object answer,
                   Call(DecodePeer(raft_address).cluster_addr, ask, kTermCallTimeout));
  ASSIGN_OR_RETURN(auto term, core::GetString(answer, "term"));
  uint64_t t = 0;
  if (!term || !absl::SimpleAtoi(*term, &t)) {
    return absl::DataLossError("a member's term answer has no term");
  }
  return t;
}

bool ClusterNode::AskSealed(const std::string& raft_address) {
  json::object ask;
  ask["op"] = "term";
  auto answer = Call(DecodePeer(raft_address).cluster_addr, ask, kTermCallTimeout);
  if (!answer.ok()) return false;  // not known: it may still take the leadership
  const auto* sealed = answer->if_contains("sealed");
  return sealed != nullptr && sealed->is_bool() && sealed->as_bool();
}

namespace {
// The term this thread's request began in as the active node (BeginAnswer); 0: not active.
thread_local uint64_t t_answer_term = 0;
}  // namespace

absl::Status ClusterNode::BeginAnswer() {
  (void)raft::RaftStorage::TakeThreadWrites();
  if (StandbyAnswering()) {
    t_answer_term = 0;
    return BeginStandbyAnswer();
  }
  t_answer_term = active_term_.load();
  // It stopped being the active node after MaybeForward let the request through (a step-down,
  // a lost leadership): nothing is done, so a retry is safe.
  if (t_answer_term == 0) {
    return absl::UnavailableError(
        "this node is no longer the active node; nothing was done; retry");
  }
  return absl::OkStatus();
}

absl::Status ClusterNode::ConfirmAnswer(bool /*handled_ok*/) {
  if (StandbyAnswering()) return ConfirmStandbyAnswer();
  const raft::RaftStorage::ThreadWrites writes = raft::RaftStorage::TakeThreadWrites();
  const uint64_t term = t_answer_term;
  t_answer_term = 0;
  if (term == 0) return absl::UnavailableError("this node is not the active node; retry");
  // A write committed in this term: a majority accepted it in this term after the request's
  // reads, so no newer leader existed when they were made.
  if (!writes.failed && writes.committed_term == term) return absl::OkStatus();
  // Else a round that begins now, after the reads: a majority still follows this node's term.
  // Also when a write on this thread failed: that may be another write than the request's own
  // (an audit checkpoint), and the request's answer (an error, a 404, a refused CAS) may then
  // come from stale reads. A confirmed answer stands, a failed write's own error included.
  auto confirmed = read_index_.Confirm();
  absl::Status s = confirmed.status();
  if (s.ok() && confirmed->term != term) {
    s = absl::UnavailableError("it leads in a term it has not reloaded its tables for yet");
  }
  if (s.ok()) return s;
  if (absl::IsFailedPrecondition(s)) {
    // Raft says this node no longer leads: not active from now on (it cannot lead in `term`
    // again), so the next requests are forwarded without waiting for the main loop's poll.
    uint64_t expected = term;
    active_term_.compare_exchange_strong(expected, 0);
  }
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  int64_t last = last_unconfirmed_warning_.load();
  if (now - last >= 10 && last_unconfirmed_warning_.compare_exchange_strong(last, now)) {
    LogWarn(
        "raft: this node could not confirm that it still leads (%s); answering 503 until it "
        "does or a standby forwards to the new leader",
        s.message());
  }
  if (writes.committed_term != 0 || writes.failed) {
    // A write of this request committed (in a term the tables were not loaded for), or failed
    // after it may have reached the log: a plain retry could apply it twice. (The client is
    // told so: Vault's 500 "internal error" followed by this.)
    return core::InternalErrorWithPublicDetail(
        absl::StrCat("this node could not confirm that it is still the active node (", s.message(),
                     "); the request may or may not have been applied"));
  }
  return absl::UnavailableError(absl::StrCat(
      "this node could not confirm that it is still the active node (", s.message(), "); retry"));
}

void ClusterNode::EndLocalAnswer() {
  (void)raft::RaftStorage::TakeThreadWrites();
  t_answer_term = 0;
  // Not for a read a standby tries (never sys/seal): that one is forwarded.
  if (StandbyAnswering()) (void)ConfirmStandbyAnswer();
}

std::string ClusterNode::ServeReadIndex() {
  // Only a barrier of this term tells a new leader how far the log is committed (Raft §6.4).
  if (absl::Status s = raft_->Barrier(absl::Seconds(10)); !s.ok()) {
    return core::Serialize(Failure(Sv(s.message())));
  }
  json::object o;
  o["ok"] = true;
  o["index"] = static_cast<int64_t>(raft_->AppliedIndex());
  return core::Serialize(o);
}

std::optional<ipc::Response> ClusterNode::MaybeForward(const ipc::Request& req) {
  static constexpr std::string_view kLocal[] = {"sys/health", "sys/seal-status",
                                                "sys/leader", "sys/init",
                                                "sys/unseal", "sys/storage/raft/join"};
  for (auto p : kLocal) {
    if (req.path() == p) return std::nullopt;
  }
  core::Core* core = core_.load();
  if (core == nullptr || !core->initialized() || core->sealed()) return std::nullopt;
  // As Vault: with unauthenticated metrics a standby answers sys/metrics with its own; without,
  // the request (it needs a token) goes to the active node, which answers with its metrics.
  if (req.path() == "sys/metrics" && core->options().telemetry.unauthenticated_metrics_access) {
    return std::nullopt;
  }
  // The active node answers itself; its core confirms each answer before it is sent
  // (ConfirmAnswer). A lost leadership ends Active() within the main loop's 100 ms poll.
  if (active_term_.load() != 0) return std::nullopt;
  // As the loop last saw it (no call onto the Raft loop for each request): a leader that
  // changed a moment ago refuses a forward (the standby redirects) or is retried.
  auto leader = LeaderInfoOf(raft_->LeaderHint());
  if (req.path() == "sys/seal" && !(leader && leader->self)) {
    // As Vault: a standby answers sys/seal itself (it is not forwarded to seal the leader).
    return IpcServer::ToIpcResponse(
        req.id(), "",
        absl::FailedPreconditionError(
            "vault cannot seal when in standby mode; please restart instead"),
        "");
  }
  if (leader && leader->self) {
    return IpcServer::ToIpcResponse(
        req.id(), "", absl::UnavailableError("this node is becoming the active node; retry"), "");
  }
  if (!leader) {
    return IpcServer::ToIpcResponse(req.id(), "",
                                    absl::UnavailableError("no active Vault instance found"), "");
  }
  // Some reads a standby answers itself (cluster.h); the rest, and those it may not answer
  // after all, are forwarded.
  if (std::optional<ipc::Response> mine = TryStandbyRead(req, core)) return mine;
  return Forward(req, *leader);
}

ipc::Response ClusterNode::Forward(const ipc::Request& req, const core::LeaderInfo& leader) {
  auto redirect = [&] {
    ipc::Response r;
    r.set_id(req.id());
    r.set_kind(ipc::Response::RAW);
    r.set_http_status(307);
    r.set_redirect_to(leader.api_addr);
    return r;
  };
  // As Vault: the snapshot endpoints are always redirected to the active node, never forwarded.
  if (req.no_request_forwarding() || req.path() == "sys/storage/raft/snapshot" ||
      req.path() == "sys/storage/raft/snapshot-force") {
    return redirect();
  }
  json::object call;
  call["op"] = "forward";
  call["request"] = B64(req.SerializeAsString());
  auto answer =
      client_->Call(leader.cluster_addr, core::Serialize(call),
                    std::chrono::milliseconds(absl::ToInt64Milliseconds(kForwardTimeout)));
  const std::string path = core::LoggablePath(req.path());
  auto broke = [&](std::string_view why) {
    // The leader may have applied it: a redirect would have the client send it again.
    LogWarn(
        "raft: forwarding %s to the leader broke after it was sent (%s); answering that it "
        "may or may not have been applied",
        path, why);
    return IpcServer::ToIpcResponse(req.id(), "",
                                    core::InternalErrorWithPublicDetail(kForwardBroke), "");
  };
  if (!answer.ok()) {
    if (absl::IsResourceExhausted(answer.status())) {
      // The active node is at capacity (it refused the call): Vault's overloaded answer (503);
      // a redirect would only send the load there.
      return IpcServer::ToIpcResponse(req.id(), "", absl::UnavailableError(ipc::kServerBusy), "");
    }
    if (raft::RequestMayHaveArrived(answer.status())) return broke(Sv(answer.status().message()));
    LogWarn(
        "raft: forwarding %s to the leader failed before it was sent (%s); redirecting the "
        "client",
        path, answer.status().message());
    return redirect();
  }
  auto parsed = core::ParseObject(*answer);
  if (!parsed.ok()) return broke("the answer is malformed");
  auto ok = core::GetBool(*parsed, "ok");
  if (ok.ok() && ok->has_value() && !**ok) {
    // Refused before anything was done (not the active node, still starting, ...).
    auto error = core::GetString(*parsed, "error");
    LogWarn("raft: the leader refused a forwarded %s (%s); redirecting the client", path,
            error.ok() && error->has_value() ? **error : std::string("no reason"));
    return redirect();
  }
  ipc::Response r;
  std::string bytes;
  auto encoded = core::GetString(*parsed, "response");
  if (ok.ok() && ok->value_or(false) && encoded.ok() && *encoded &&
      absl::Base64Unescape(**encoded, &bytes) && r.ParseFromString(bytes)) {
    r.set_id(req.id());
    return r;
  }
  return broke("the answer is malformed");
}

}  // namespace strongroom::broker
