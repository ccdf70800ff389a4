// The broker's Raft node: RaftStorage beneath the barrier, the core's view of the cluster
// (core/cluster.h), and the calls members make to one another on the cluster port:
//
//   join     a joining node sends the public half of a transport key it made in its token; the
//            leader answers with both KEKs wrapped for it (hsm::Token::WrapKeysForPeer)
//   add      the joining node, now holding the KEKs, asks the leader to add it as a voter
//   forward  a standby hands the leader a request a client sent it, and relays the answer
//   read-index  a member that has just started asks the leader how far the log is committed
//            (the leader answers after a barrier of its own): once it has applied that much, it
//            has caught up with the cluster (CaughtUp)
//
// Peers are told apart by their cluster certificate (any certificate of the cluster CA is a
// member) and named by node_id. libraft's server address carries "cluster_addr|node_id|api_addr",
// so every node knows the leader's API address (for 307s) from Raft itself.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "appliance/core/cluster.h"
#include "appliance/core/core.h"
#include "appliance/core/json_limits.h"
#include "appliance/ipc/strongroom_ipc.pb.h"
#include "appliance/raft/raft_storage.h"

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
  // The JSON limits a request forwarded by a standby is checked against here (this node's own
  // listener settings, as for its own workers' requests).
  core::JsonLimits json_limits;
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
  // Whether this node leads but does not serve as the active node yet: the main loop then
  // reloads the core once caught up, and calls SetActive. Not leading ends Active() at once.
  bool LeadingButNotActive();
  void SetActive(bool active) { active_.store(active); }
  // Why this node's Raft state machine failed ("" while it works): the node must stop serving
  // (strongroomd exits with status 1; raft::RaftStorage).
  std::string StorageFailure() { return raft_->Failure(); }
  // A standby's answer for a worker's request: forwarded to the leader, a 307 to it when the
  // client asked not to be forwarded, or nullopt when this node answers itself.
  std::optional<ipc::Response> MaybeForward(const ipc::Request& req);
  // retry_join: joins through the configured leaders if this node is new. Blocks (retries every
  // few seconds) until it joined, was initialised meanwhile, or `stop` is set.
  void RetryJoin(const std::atomic<bool>& stop);

  // core::Cluster
  std::optional<core::LeaderInfo> CurrentLeader() override;
  bool Active() override { return active_.load(); }
  absl::Status BootstrapForInit() override;
  absl::Status Join(const core::JoinRequest& req) override;
  absl::StatusOr<core::json::object> Configuration() override;
  absl::Status RemovePeer(std::string_view node_id) override;

 private:
  explicit ClusterNode(ClusterOptions options) : options_(std::move(options)) {}
  absl::Status AddSelf(std::string target);
  std::string Serve(std::string_view request);
  std::string ServeJoin(const core::json::object& req);
  std::string ServeAdd(const core::json::object& req);
  std::string ServeForward(const core::json::object& req);
  std::string ServeReadIndex();
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
  absl::StatusOr<core::json::object> Call(const std::string& cluster_addr,
                                          const core::json::object& req, absl::Duration timeout);

  ClusterOptions options_;
  std::string incarnation_;
  std::unique_ptr<raft::RaftStorage> raft_;
  std::unique_ptr<raft::ServiceClient> client_;  // kept connections to other members
  std::atomic<core::Core*> core_{nullptr};
  std::atomic<core::Seal*> seal_{nullptr};
  std::atomic<bool> active_{false};
  // The commit index a leader gave this process (read-index); 0 until then.
  std::atomic<uint64_t> catch_up_index_{0};
  std::atomic<int64_t> catch_up_logged_ms_{0};  // when a failed read-index was last logged
};

// "https://host:port" -> "host:port+1", the cluster port by Vault's convention.
absl::StatusOr<std::string> ClusterAddrFromApiAddr(std::string_view api_addr);

}  // namespace strongroom::broker
