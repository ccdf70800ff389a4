// Lost-quorum recovery on a node's Raft log (RaftOptions::recover), for RaftStorage::Start only:
// between raft_init and raft_start it reads the configuration the log holds (the last
// configuration entry, else the snapshot's), asks `decide` for the configuration to force, and
// appends that one to the log with libraft's raft_recover. The node then starts with it.
#pragma once

#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "appliance/raft/raft_storage.h"

struct raft;
struct raft_io;

namespace strongroom::raft {

absl::Status RecoverLog(
    raft_io* io, struct raft* r,
    const std::function<absl::StatusOr<std::vector<Peer>>(const std::vector<Peer>&)>& decide);

}  // namespace strongroom::raft
