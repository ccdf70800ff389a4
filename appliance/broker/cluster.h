// The broker's Raft node: RaftStorage beneath the barrier, the core's view of the cluster
// (core/cluster.h), and the calls members make to one another on the cluster port:
//
//   join     a joining node sends the public half of a transport key it made in its token; the
//            leader answers with both KEKs wrapped for it (hsm::Token::WrapKeysForPeer)
//   add      the joining node, now holding the KEKs, asks the leader to add it as a voter
//   forward  a standby hands the leader a request a client sent it, and relays the answer
//   term     the leader asks a member for its current term (read_index.h: confirming that it
//            still leads before it answers a read); any member answers
//   read-index  a member that has just started asks the leader how far the log is committed
//            (the leader answers after a barrier of its own): once it has applied that much, it
//            has caught up with the cluster (CaughtUp)
//   read-point  a standby asks the leader for the read point of its reads (read_index.h:
//            LeaderCheck::PointFor), saying its own term
//
// Answers are linearizable: the active node sends the answer to a request (its own worker's, or
// one a standby forwarded) only once it knows the answer is current (ConfirmAnswer): the request
// committed a write in the term the node's tables were loaded in, or a confirmation round
// (read_index.h) begun after the request was handled showed that a majority still follows that
// term. Else it answers 503 (a leader replaced without knowing it yet never sends what it read).
// A forward that fails before the request left is redirected (307); once the request may have
// reached the leader, the answer is a 500 "may or may not have been applied" (a client must not
// replay a write that may have run).
//
// A standby answers some reads itself, linearizably (MaybeForward): a read or list of a KV
// mount, unwrapped, while no audit device is enabled (a standby's audit chain could not save
// its state: that is a replicated write). Before the request is handled it gets a read point
// from the leader (read_index.h, StandbyReads: one call shared by the reads that arrived
// meanwhile) and waits until its store holds it; the request then reads the store as it is,
// and its answer is sent only when (1) the request tried no write (a token use, say), (2) every
// key it read is unchanged since it began (RaftStorage read check: so its reads were one view
// of the store, at or after the read point), and (3) none of the tables the core keeps in memory
// (mounts, audit devices, keyring: RaftStorage table 1; policies: 2; identity: 3) changed since
// this node last loaded them. Else the request is forwarded to the leader, as any other: a
// standby never answers from an older state than the leader would. The main loop keeps the
// tables current (TendStandby): the policy and identity caches are dropped when those change,
// the core reads its tables again (Core::ReloadTables, at most once a second) when table 1
// changes; no local answer is under way meanwhile (requests are forwarded).
//
// Peers are told apart by their cluster certificate, which names the holder's node_id (a
// subjectAltName URI urn:strongroom:node:<node_id>) and the hosts it is reached at (DNS/IP
// subjectAltNames): a Raft connection must claim the raft id of that node_id and an address with
// it and one of those hosts; a service call is answered only for a certificate naming a node_id,
// and join/add only for that node_id and (add) a cluster address among its hosts
// (cluster_identity.cc). libraft's server address carries "cluster_addr|node_id|api_addr", so
// every node knows the leader's API address (for 307s) from Raft itself.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "appliance/broker/raft_ops.h"
#include "appliance/broker/raft_recover.h"
#include "appliance/broker/read_index.h"
#include "appliance/core/cluster.h"
#include "appliance/core/core.h"
#include "appliance/core/json_limits.h"
#include "appliance/ipc/strongroom_ipc.pb.h"
#include "appliance/raft/raft_storage.h"
#include "base/metrics.h"

namespace strongroom::broker {

struct ClusterOptions {
  std::string node_id;       // this node's name (storage "raft" node_id)
  std::string api_addr;      // https://host:8200, as clients reach this node
  std::string cluster_addr;  // host:port of the cluster port (TLS)
  std::string path;          // the Raft directory
  raft::TlsFiles tls;
  // retry_join: leader API addresses to join through at start while this node has no state
  // and is not initialised.
  std::vector<std::string> retry_join;
  // retry_join's join credential, read from this file at each attempt (a Kubernetes Secret
  // mounted as a file): "" for none.
  std::string join_token_file;
  // The JSON limits a request forwarded by a standby is checked against here (this node's own
  // listener settings, as for its own workers' requests).
  core::JsonLimits json_limits;
  // -raft-recover: the peers file's members (raft_recover.h); empty: a normal start.
  std::vector<RecoverPeer> recover;
};

class ClusterNode final : public core::Cluster {
 public:
  static absl::StatusOr<std::unique_ptr<ClusterNode>> Start(ClusterOptions options);
  ~ClusterNode() override;

  storage::Storage* storage() { return raft_.get(); }
  // This node's incarnation: a random id made when the node starts with a data directory that
  // holds no Raft state (a new node, or one re-added under an old node_id), and kept in
  // <path>/incarnation. It names the node's audit chains, so a re-added node starts new ones.
  // "" for a data directory from before incarnations (its chains keep their names).
  const std::string& incarnation() const { return incarnation_; }
  // The core and seal serve the join calls; set once the core exists.
  void Attach(core::Core* core, core::Seal* seal);

  // Whether this node has Raft state: it started a cluster or joined one. Such a node learns
  // whether its cluster is initialised only from the cluster, once it has caught up.
  bool HasState() { return raft_->HasState(); }
  // One bounded attempt (at most about `budget`; never latched: call again) to tell whether this
  // node's state machine holds everything the cluster had committed at some moment since this
  // process started: as the leader, after a barrier of its own; as a follower, once it has
  // applied the commit index the leader gave it (read-index). False while no leader is known or
  // reachable. True at once for a node without Raft state. *as_leader: caught up as the leader.
  bool CaughtUp(absl::Duration budget, bool* as_leader = nullptr);
  // CaughtUp, retried until it holds or `timeout` passes (for a member: it waits for the
  // node's first Raft state too).
  bool WaitCaughtUp(absl::Duration timeout);
  // True while this node leads but is not the active node: it has just become the leader, or
  // leads in a new term since it was reloaded (it may have lost and won the leadership in
  // between: its tables may be old), or was sealed by request meanwhile. The main loop polls it,
  // reloads the core unless it is sealed by request, then calls SetActive(true). Losing the
  // leadership, or leading in a term the core was not reloaded for, ends Active() at once.
  bool BecameLeader();
  // The main loop's part of sys/step-down and sys/seal, called each tick. A step-down asked for
  // (RequestStepDown) on the leader: stops serving as active, seals the core (its audit logs
  // end with a checkpoint while this node can still write), hands the leadership on, and
  // unseals again as a standby (if no node took the leadership, the main loop reloads this one
  // as the active node again). A leader sealed by request: hands the leadership on, retried
  // every few seconds until a voter takes it.
  void HandOver();
  // The core has been reloaded for the leadership BecameLeader() last reported (true), or this
  // node does not serve as the active node (false).
  void SetActive(bool active) { active_term_.store(active ? led_term_.load() : 0); }
  // Why this node's Raft state machine failed ("" while it works): the node must stop serving
  // (strongroomd exits with status 1; raft::RaftStorage).
  std::string StorageFailure() { return raft_->Failure(); }
  // Nullopt when this node answers `req` itself: it is the active node (its core confirms the
  // answer, ConfirmAnswer), or the request is one every node answers (sys/health, ...). Else the
  // answer: the leader's, forwarded; a 307 to it when the client asked not to be forwarded or
  // nothing could be sent; a 500 when the forward broke after the request may have reached it;
  // a 503 when there is no active node.
  std::optional<ipc::Response> MaybeForward(const ipc::Request& req);
  // retry_join: joins through the configured leaders if this node is new. Blocks (retries every
  // few seconds) until it joined, was initialised meanwhile, or `stop` is set.
  void RetryJoin(const std::atomic<bool>& stop);

  // core::Cluster
  std::optional<core::LeaderInfo> CurrentLeader() override;
  bool Active() override { return active_term_.load() != 0; }
  // The answer is current when this node was the active node as the request began, and the
  // request committed a write in that term, or a round begun after it was handled (read_index.h,
  // shared with concurrent requests) confirmed that a majority still follows that term. Else
  // Unavailable (503): a leader replaced without knowing it yet never sends what it read.
  absl::Status BeginAnswer() override;
  absl::Status ConfirmAnswer(bool handled_ok) override;
  void EndLocalAnswer() override;
  absl::Status BootstrapForInit() override;
  absl::Status Join(const core::JoinRequest& req) override;
  absl::StatusOr<core::json::object> Configuration() override;
  absl::Status RemovePeer(std::string_view node_id) override;
  // raft_ops.cc
  absl::StatusOr<core::json::object> AutopilotState(std::string_view version) override;
  absl::StatusOr<core::json::object> HaStatus(std::string_view version) override;
  // raft_ops.cc: Raft's part of sys/metrics at a scrape (term, commit and applied index, the
  // configuration's size; on the leader each follower's last contact; on a standby the reads it
  // answered itself and those it forwarded after trying).
  void CollectMetrics(metrics::Collection& c);
  // The main loop's part of a standby's own reads, called each tick: keeps the tables the core
  // keeps in memory as current as the store (see above), or stops local answers.
  void TendStandby();
  // Reads this standby answered itself, and reads it tried and then forwarded (counters).
  uint64_t standby_local_reads() const { return standby_local_.load(); }
  uint64_t standby_forwarded_reads() const { return standby_forwarded_.load(); }
  uint64_t RaftCommittedIndex() override { return raft_->CommitIndex(); }
  uint64_t RaftAppliedIndex() override { return raft_->AppliedIndex(); }
  absl::StatusOr<core::MintedJoinToken> MintJoinToken(std::string_view node_id,
                                                      int64_t ttl_seconds) override;
  absl::Status HandOverLeadership() override;
  void RequestStepDown() override { step_down_requested_.store(true); }
  // Reads the removed node ids and pinned keys (join_tokens.h) from the local store into the
  // sets every check on the cluster port uses (cluster_identity.cc), saves them beside the Raft
  // directory with the applied index they are as new as (a restarted node refuses the same
  // before it has caught up), closes the open Raft connections they now refuse, and, on the
  // active node, pins its own key once. Only from a store that has caught up, applied all it
  // knows committed, and is at least as new as the sets held: until then it may say what the
  // cluster said long ago. A node with no Raft state refuses nothing. The main loop calls it
  // every tick, and an "add" service call before its checks.
  void RefreshRefused();
  // Until this node has caught up, and while it hears from no leader (the main loop, every
  // 2 s at most): asks the members of its configuration it does not refuse for their sets
  // ("refused-sets", answered by a caught-up member), and takes the first answer at least as
  // new as the sets it holds. A copy saved before the cluster re-admitted a node, or a store
  // passing through that node's removal, would otherwise refuse that node, even as the leader
  // this node must catch up from.
  void AskRefusedSets();
  // The main loop saw this node catch up with the cluster: a join that failed after it got
  // Raft state (joining_) is over.
  void JoinCaughtUp() {
    if (join_left_state_.exchange(false)) joining_.fetch_sub(1);
  }
  // Why `peer` is refused whatever else it asks (cluster_identity.cc): its node id was removed
  // (with `removed_too`), or (with `pin_too`) a key was pinned for its node id and its
  // certificate is for another. "" when neither. From the sets RefreshRefused last read.
  std::string RefusedIdentity(const raft::PeerIdentity& peer, bool removed_too, bool pin_too);

 private:
  explicit ClusterNode(ClusterOptions options) : options_(std::move(options)) {}
  absl::Status AddSelf(std::string target, const std::string& join_token);
  absl::Status HandOverLocked();  // handover_mu_ held
  std::string Serve(const raft::PeerIdentity& peer, std::string_view request);
  // Why a service call `op` from `peer` is refused for who it is (cluster_identity.cc): its
  // certificate names no node_id, or join/add claims a node_id (add: or a cluster_addr) other
  // than its certificate's; a refused join/add is audited. "" when it may go on.
  std::string RefuseImpostor(const raft::PeerIdentity& peer, std::string_view op,
                             const core::json::object& req);
  std::string ServeJoin(const core::json::object& req, const raft::PeerIdentity& peer);
  // The join credential check of ServeJoin (join_tokens.h): "" when `token` admits `node_id`
  // and was consumed (the certificate's key `key_sha256` pinned) by a write committed in the term
  // this node checked it in; else why not.
  std::string AdmitJoin(std::string_view token, std::string_view node_id,
                        std::string_view key_sha256);
  // ServeAdd's check: "" when `node_id` was admitted by a credential (or `token`, a credential
  // for it, admits it now: a node whose token holds the KEKs already), is not removed and is no
  // member yet; else why not.
  std::string AddRefusal(std::string_view node_id, std::string_view token,
                         std::string_view key_sha256);
  std::string ServeAdd(const core::json::object& req, const raft::PeerIdentity& peer);
  std::string ServeForward(const core::json::object& req);
  // A member's current term (LeaderCheck::AskTerm); `raft_address` as libraft has it.
  absl::StatusOr<uint64_t> AskTerm(const std::string& raft_address);
  // Whether a member says it is sealed (or still starting); false when it does not answer.
  bool AskSealed(const std::string& raft_address);
  // Forwards `req` to the leader at `leader`; the answer as MaybeForward describes it.
  ipc::Response Forward(const ipc::Request& req, const core::LeaderInfo& leader);
  std::string ServeReadIndex();
  std::string ServeReadPoint(const raft::PeerIdentity& peer, const core::json::object& req);
  // A read point from the leader for this standby's reads (StandbyReads::AskLeader).
  absl::StatusOr<ReadPoint> AskReadPoint(uint64_t term);
  std::optional<core::LeaderInfo> LeaderInfoOf(const std::optional<raft::Peer>& leader);
  // Whether this standby may try `req` itself (standby_mu_ held shared): see above.
  bool StandbyMayServe(const ipc::Request& req, core::Core* core);
  // Loads the tables anew (TendStandby): `hard` has the core read them all again (table 1),
  // else drops the policy and identity caches.
  void RefreshStandby(core::Core* core, bool hard);
  // MaybeForward on a standby: this node's answer to `req`, when it may answer it itself and
  // the checks hold; nullopt to forward it.
  std::optional<ipc::Response> TryStandbyRead(const ipc::Request& req, core::Core* core);
  // The standby's part of BeginAnswer and ConfirmAnswer, for the request TryStandbyRead tries
  // on this thread (StandbyAnswering).
  static bool StandbyAnswering();
  absl::Status BeginStandbyAnswer();
  absl::Status ConfirmStandbyAnswer();
  // Records a cluster change this node carries out in its audit chain (AuditBroker::
  // LogSystemEvent): the request record before the change (an error when no audit device
  // could record it: the change must not happen), the response record after it.
  absl::Status AuditChangeRequest(const core::AuditSystemEvent& event);
  absl::Status AuditChangeResponse(core::AuditSystemEvent event, const core::json::object& result,
                                   std::string_view error);
  // Why `node_id` cannot join: "" when no member has that name.
  std::string MemberNamed(std::string_view node_id);
  // Call, following "not the leader" answers; an answer that is not ok is an error starting
  // with `refused`. `target` ends as the member that answered.
  absl::StatusOr<core::json::object> CallLeader(std::string* target, const core::json::object& req,
                                                absl::Duration timeout, std::string_view refused);
  // With `server`, who answered (ServiceClient::Call).
  absl::StatusOr<core::json::object> Call(const std::string& cluster_addr,
                                          const core::json::object& req, absl::Duration timeout,
                                          raft::PeerIdentity* server = nullptr);

  ClusterOptions options_;
  std::string incarnation_;
  std::unique_ptr<raft::RaftStorage> raft_;
  std::unique_ptr<raft::ServiceClient> client_;  // kept connections to other members
  std::atomic<core::Core*> core_{nullptr};
  std::atomic<core::Seal*> seal_{nullptr};
  // The term BecameLeader() (or sys/init) last saw this node lead in; 0 while it does not.
  std::atomic<uint64_t> led_term_{0};
  // The term the core was reloaded for as the active node; 0 while it is not the active node.
  std::atomic<uint64_t> active_term_{0};
  std::unique_ptr<LeaderCheck> leader_check_;  // made in Start (it needs raft_ and client_)
  BatchedRounds<ReadPoint> read_index_{[this] { return leader_check_->Round(); }};
  std::unique_ptr<StandbyReads> standby_reads_;  // made in Start
  // Shared while a local answer is under way on a standby; exclusive while its tables change
  // (ExclusiveStandby: no new local answer starts while it waits for the lock).
  std::shared_mutex standby_mu_;
  std::atomic<bool> standby_exclusive_wanted_{false};
  class ExclusiveStandby {
   public:
    explicit ExclusiveStandby(ClusterNode* node);
    ~ExclusiveStandby();
    ExclusiveStandby(const ExclusiveStandby&) = delete;
    ExclusiveStandby& operator=(const ExclusiveStandby&) = delete;

   private:
    ClusterNode* node_;
  };
  // Guarded by standby_mu_: whether the tables are loaded, the table epochs they are as new
  // as, and the KV mounts' paths (those a standby may answer reads of) and every mount's.
  bool standby_ready_ = false;
  uint64_t standby_epochs_[raft::RaftStorage::kTables] = {};
  std::vector<std::string> standby_kv_mounts_;
  std::vector<std::string> standby_mounts_;
  absl::Time next_standby_reload_ = absl::InfinitePast();  // main loop
  bool standby_reload_failed_ = false;                     // standby_mu_: logged once
  std::atomic<uint64_t> standby_local_{0};
  std::atomic<uint64_t> standby_forwarded_{0};
  std::atomic<int64_t> last_unconfirmed_warning_{0};  // unix seconds; one warning per 10 s
  std::atomic<bool> step_down_requested_{false};
  std::mutex join_mu_;      // one credential check-and-consume at a time (AdmitJoin)
  std::mutex handover_mu_;  // one leadership transfer at a time
  absl::Time next_handover_ = absl::InfinitePast();  // a sealed leader's next try (main loop)
  std::string handover_error_;                       // its last failure, logged once (main loop)
  // The commit index a leader gave this process (read-index); 0 until then.
  std::atomic<uint64_t> catch_up_index_{0};
  std::atomic<int64_t> catch_up_logged_ms_{0};  // when a failed read-index was last logged
  HealthHistory health_history_;                // stable_since of sys/storage/raft/autopilot/state
  // The sets last saved (RefusedFile), before the transport starts; with the node ids a
  // recovery dropped (NoteDropped) among the removed ones.
  void LoadRefused();
  // -raft-recover: the members of `current` not in `forced` are written to DroppedFile, refused
  // from now on, and marked removed in replicated state (MarkDropped) once this node is active.
  void NoteDropped(const std::vector<raft::Peer>& current, const std::vector<raft::Peer>& forced);
  void MarkDropped(core::Core* core);
  // RefreshRefused's read of the local store, as new as `applied`: TakeRefused. False when the
  // store could not be read.
  // With `keep_vouched_if_leader_refused`, a member's answer stays while the store would refuse
  // the leader this node hears.
  bool TakeStoreRefused(uint64_t applied, bool keep_vouched_if_leader_refused = false);
  // Takes `removed` (with the node ids a recovery dropped) and `pinned` as the sets, as new as
  // `index`; saves them (unless `vouched`: a member's answer), and closes the Raft connections
  // they now refuse, when they changed. False when they did not change.
  bool TakeRefused(std::set<std::string> removed,
                   std::map<std::string, std::set<std::string>> pinned, uint64_t index,
                   bool vouched = false);
  std::string ServeRefusedSets();
  // The sets as a "refused-sets" answer (also in a join's answer: the joiner holds them until
  // it has caught up).
  core::json::object RefusedSetsAnswer();
  // A joiner takes the leader's sets from its join answer (`from`: the leader's address); false
  // when the answer has none usable.
  bool TakeJoinRefused(const core::json::object& join_answer, const std::string& from);
  // Joins under way (until caught up), and one that failed with Raft state left behind (it is
  // not known to follow the cluster until a restart: the node keeps the leader's sets).
  std::atomic<int> joining_{0};
  std::atomic<bool> join_left_state_{false};  // JoinCaughtUp ends that one
  // The active node pins its own key (RefreshRefused).
  void PinSelf(core::Core* core);
  std::atomic<bool> ready_{false};  // raft_ and leader_check_ are set (Serve may use them)
  std::mutex refresh_mu_;           // one RefreshRefused at a time
  std::mutex refused_mu_;           // guards the three below
  std::set<std::string> removed_ids_;
  std::map<std::string, std::set<std::string>> pinned_;  // node id -> key SHA-256s
  uint64_t refused_index_ = 0;  // the applied index the two above are as new as
  // The sets are a member's answer (AskRefusedSets), held in memory only: the store replaces
  // them once this node has caught up and hears from a leader, whatever index they claimed.
  bool refused_vouched_ = false;
  std::chrono::steady_clock::time_point refused_vouched_at_{};  // when they became a member's
  std::chrono::steady_clock::time_point next_refused_ask_{};    // AskRefusedSets (main loop)
  std::string own_key_sha256_;                                  // this node's certificate's key
  bool self_pinned_ = false;                                    // refresh_mu_
  absl::Time next_self_pin_ = absl::InfinitePast();             // refresh_mu_
  metrics::CollectorHandle metrics_;  // reset first by the destructor (it reads raft_)
};

// What libraft's server address of a node says: "cluster_addr|node_id|api_addr".
struct PeerInfo {
  std::string cluster_addr;
  std::string node_id;
  std::string api_addr;
};
std::string EncodePeer(const PeerInfo& p);
PeerInfo DecodePeer(std::string_view address);
// The transport's PeerCheck (raft::PeerCheck): the raft id is RaftStorage::IdFor(node_id) of the
// node the certificate names, and `address` carries that node_id and one of its hosts.
absl::Status CheckRaftPeer(uint64_t raft_id, std::string_view address,
                           const raft::PeerIdentity& peer);
// CheckRaftPeer, then `node`'s RefusedIdentity.
absl::Status CheckMemberPeer(ClusterNode* node, uint64_t raft_id, std::string_view address,
                             const raft::PeerIdentity& peer);
// This node's own certificate must name its node_id and the host of its cluster_addr: its peers
// would refuse it otherwise.
absl::Status CheckOwnCertificate(const std::string& cert_file, const PeerInfo& self);
// The join credential in `path` (surrounding white space dropped; at most 4 KiB read).
absl::StatusOr<std::string> ReadJoinTokenFile(const std::string& path);

// "https://host:port" -> "host:port+1", the cluster port by Vault's convention.
absl::StatusOr<std::string> ClusterAddrFromApiAddr(std::string_view api_addr);

}  // namespace strongroom::broker
