// What the core knows of replication: whether this node is the active one (the Raft leader),
// where the active node is, and the sys/storage/raft/* operations. Implemented in the broker
// (broker/cluster.h) over Raft; absent (nullptr) for single-node storage.
#pragma once

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
};

class Cluster {
 public:
  virtual ~Cluster() = default;
  // The leader this node knows of; nullopt while there is none.
  virtual std::optional<LeaderInfo> CurrentLeader() = 0;
  // Whether this node serves as the active node: the leader, with its tables reloaded.
  virtual bool Active() = 0;
  // sys/init on a node without Raft state: a new cluster of this node alone, led by it.
  virtual absl::Status BootstrapForInit() = 0;
  // sys/storage/raft/join on an uninitialised node: receives the cluster's KEKs into this
  // node's token and becomes a member. Returns once it is a voter that has caught up with the
  // cluster (or fails; DeadlineExceeded: a member whose data did not arrive in time).
  virtual absl::Status Join(const JoinRequest& req) = 0;
  // sys/storage/raft/configuration: Vault's {"servers": [...], "index": N}.
  virtual absl::StatusOr<json::object> Configuration() = 0;
  // sys/storage/raft/remove-peer.
  virtual absl::Status RemovePeer(std::string_view node_id) = 0;
};

}  // namespace strongroom::core
