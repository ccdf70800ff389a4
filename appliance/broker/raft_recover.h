// Lost-quorum recovery: `strongroomd -config=FILE -raft-recover=PEERS` (docs/operations.md,
// "Recovering from lost quorum"). PEERS is Vault's peers.json: the members the cluster is to
// consist of from now on,
//   [{"id": "node1", "address": "10.0.0.1:8201", "non_voter": false}, ...]
// (id: the storage node_id; address: its cluster address). Before this node's Raft starts, the
// configuration its log holds is replaced by that one (libraft's raft_recover appends it to the
// log), and the node starts with it: a one-member file makes this node the cluster's only voter,
// which then leads and serves what it held.
//
// Refused (strongroomd exits 1, nothing written) when this node has no Raft state, when this
// node is not in the file as a voter, when the file names a node that is not in the current
// configuration, and when a majority of the current configuration's voters is reachable: each
// other voter is asked for its term (the "term" service call on its cluster port); this node
// counts as reachable. A cluster that has its quorum is changed with sys/storage/raft/remove-peer,
// never by force: two majorities would each go on alone.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "appliance/raft/raft_storage.h"
#include "appliance/raft/tls_transport.h"

namespace strongroom::broker {

struct RecoverPeer {
  std::string node_id;
  std::string cluster_addr;  // host:port
  bool voter = true;
};

// Reads a peers file: at most 64 KiB and 64 members; every id and address well-formed, no id
// twice.
absl::StatusOr<std::vector<RecoverPeer>> ReadPeersFile(const std::string& path);

// RaftOptions::recover for the node named `self_node_id`: checks the file against the current
// configuration, probes the other voters over `tls`, and returns the configuration to force.
std::function<absl::StatusOr<std::vector<raft::Peer>>(const std::vector<raft::Peer>&)>
RecoveryDecision(std::vector<RecoverPeer> peers, std::string self_node_id, raft::TlsFiles tls);

}  // namespace strongroom::broker
