// What the core knows of replication: whether this node is the active one (the Raft leader),
// where the active node is, and the sys/storage/raft/* operations. Implemented in the broker
// (broker/cluster.h) over Raft; absent (nullptr) for single-node storage.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "appliance/core/json.h"

namespace strongroom::core {

struct LeaderInfo {
  bool self = false;
  std::string node_id;
  std::string api_addr;      // as the leader advertises it (https://host:8200)
  std::string cluster_addr;  // host:port of its cluster port
};

struct JoinRequest {
  std::string leader_api_addr;
  // strongroom: the leader's cluster port when it is not the API port + 1.
  std::string leader_cluster_addr;
  bool non_voter = false;
  // The join credential minted for this node id on the active node (broker/join_tokens.h).
  std::string join_token;
};

struct MintedJoinToken {
  std::string token;
  std::string id;  // names it in audit records
  int64_t expires_unix = 0;
  int64_t ttl_seconds = 0;
};

class Cluster {
 public:
  virtual ~Cluster() = default;
  // The leader this node knows of; nullopt while there is none.
  virtual std::optional<LeaderInfo> CurrentLeader() = 0;
  // Whether this node serves as the active node: the leader, with its tables reloaded.
  virtual bool Active() = 0;
  // Linearizable answers. The core calls BeginAnswer() before it handles a request (past the
  // status paths and the seal check) and ConfirmAnswer() once the request was handled, before
  // its response is audited and sent; `handled_ok` tells whether the handler succeeded. An error
  // replaces the response when this node cannot show that the answer is current (a leader that
  // was replaced without knowing it yet must not answer from its old state). BeginAnswer's error
  // refuses the request before anything is done (this node is not the active node any more).
  virtual absl::Status BeginAnswer() { return absl::OkStatus(); }
  virtual absl::Status ConfirmAnswer(bool /*handled_ok*/) { return absl::OkStatus(); }
  // Instead of ConfirmAnswer for an answer about this node alone (a done sys/seal: the node is
  // sealed whatever Raft says now, and the hand-over the seal began may have ended its
  // leadership already): ends the request's answer without a confirmation round.
  virtual void EndLocalAnswer() {}
  // sys/init on a node without Raft state: a new cluster of this node alone, led by it.
  virtual absl::Status BootstrapForInit() = 0;
  // sys/storage/raft/join on an uninitialised node: receives the cluster's KEKs into this
  // node's token and becomes a member. Returns once it is a voter that has caught up with the
  // cluster (or fails; DeadlineExceeded: a member whose data did not arrive in time).
  virtual absl::Status Join(const JoinRequest& req) = 0;
  // sys/storage/raft/configuration: Vault's {"servers": [...], "index": N}.
  virtual absl::StatusOr<json::object> Configuration() = 0;
  // sys/storage/raft/join-token on the active node: a one-time join credential for `node_id`.
  virtual absl::StatusOr<MintedJoinToken> MintJoinToken(std::string_view node_id,
                                                        int64_t ttl_seconds) = 0;
  // sys/storage/raft/remove-peer.
  virtual absl::Status RemovePeer(std::string_view node_id) = 0;
  // sys/storage/raft/autopilot/state, on the active node: Vault's autopilot state of every
  // server of the configuration (broker/raft_ops.h). `version`: this node's.
  virtual absl::StatusOr<json::object> AutopilotState(std::string_view version) = 0;
  // sys/ha-status, on the active node: {"nodes": [...]}, this node and the members it heard from.
  virtual absl::StatusOr<json::object> HaStatus(std::string_view version) = 0;
  // sys/leader's raft_committed_index and raft_applied_index (this node's).
  virtual uint64_t RaftCommittedIndex() = 0;
  virtual uint64_t RaftAppliedIndex() = 0;
  // sys/seal on the leader, once sealed: hands the Raft leadership to another voter, the most
  // up-to-date first, so that one becomes the active node. An error when none took it (this
  // node then still leads; the broker keeps trying while it is sealed).
  virtual absl::Status HandOverLeadership() = 0;
  // sys/step-down, once its response is recorded: the broker's main loop hands the active role
  // to another node (as Vault, the answer does not wait for it).
  virtual void RequestStepDown() = 0;
};

}  // namespace strongroom::core
