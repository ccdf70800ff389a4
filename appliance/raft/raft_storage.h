// Storage replicated by Raft: the barrier's ciphertext, written through a Raft log that a
// majority of the cluster holds before a write returns, and read from a local RocksDB that is the
// Raft state machine.
//
// The Raft engine is libraft (cowsql raft 0.22, Debian's bookworm-backports; 0.15 in bookworm has
// the Figure 8 bug) with its libuv disk I/O, auto-recovery off, and our mutual-TLS transport
// (tls_transport.h). One thread runs libraft's loop; every call below crosses to it and waits.
//
// Directory layout under RaftOptions::dir:
//   raft/   libraft's log segments, metadata and snapshots (durable; fsynced by libraft)
//   fsm/    the state machine: RocksDB without WAL or fsync, emptied at each start and rebuilt
//           from the last snapshot and the log, so it never disagrees with the log
//
// Writes are accepted only on the leader (FailedPrecondition "not the leader" elsewhere; Leader()
// names it). The process must ignore SIGPIPE (libuv writes to peers with write(2); strongroomd
// does). Reads are local: on the leader they see every write it has acknowledged; on a
// follower they may lag. Snapshots hold the whole store (taken every `snapshot_threshold`
// entries, keeping `snapshot_trailing` entries of log behind them).
//
// Every wait has a deadline. A write or barrier not committed and applied within kWriteTimeout
// fails with DeadlineExceeded ("context deadline exceeded", as Vault words it; it may still take
// effect), a membership change within kChangeTimeout likewise, and a call that the Raft loop
// does not take up within kLoopTimeout gets the answer for "unknown" (false, 0, none).
//
// A state machine that cannot apply a committed entry (RocksDB refuses the write: disk full, I/O
// or permission error) stops the node's storage for good: libraft would stop applying there and
// leave every later write waiting, so from then on Failure() says why, writes and barriers fail
// at once (Unavailable) and reads fail too (the store lags the log: an answer could be stale).
// The owner must stop serving (strongroomd exits with status 1 and rebuilds fsm/ from the log at
// its next start; docs/operations.md).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "appliance/raft/tls_transport.h"
#include "appliance/storage/storage.h"

namespace strongroom::raft {

struct RaftOptions {
  uint64_t node_id = 0;  // > 0, unique in the cluster
  std::string address;   // host:port peers reach this node at (TLS); it listens on that port
  std::string dir;       // created 0700 when missing
  TlsFiles tls;
  // A new cluster whose only voter is this node. Ignored (harmlessly) when the directory already
  // holds Raft state; a node without state and without bootstrap waits to be added by a leader.
  bool bootstrap = false;
  unsigned election_timeout_ms = 1000;
  unsigned heartbeat_timeout_ms = 100;
  unsigned snapshot_threshold = 8192;
  unsigned snapshot_trailing = 1024;
  // Answers service calls from other members on the cluster port (tls_transport.h).
  ServiceHandler service;
};

struct Peer {
  uint64_t id = 0;
  std::string address;
  bool voter = false;
};

class RaftStorage final : public storage::Storage {
 public:
  static constexpr absl::Duration kWriteTimeout = absl::Seconds(30);
  static constexpr absl::Duration kChangeTimeout = absl::Seconds(120);
  static constexpr absl::Duration kLoopTimeout = absl::Seconds(60);

  static absl::StatusOr<std::unique_ptr<RaftStorage>> Start(const RaftOptions& options);
  ~RaftStorage() override;  // leaves the cluster's view as it is: a stop, not a removal

  absl::StatusOr<std::optional<std::string>> Get(std::string_view key) override;
  absl::Status Put(std::string_view key, std::string_view value) override;
  absl::Status Delete(std::string_view key) override;
  absl::StatusOr<std::vector<std::string>> List(std::string_view prefix) override;
  absl::Status Apply(const std::vector<storage::BatchOp>& ops) override;

  uint64_t node_id() const;
  // Whether this node has Raft state (a cluster of its own, or a log received from a leader).
  bool HasState();
  // A new cluster with this node as its only voter, for a node without state (restarts the
  // node: libraft bootstraps only before it starts). Nothing else may use the storage meanwhile.
  // FailedPrecondition when the node has state.
  absl::Status BootstrapNew();
  bool IsLeader();
  // The leader this node knows of, if any.
  std::optional<Peer> Leader();
  // The latest configuration this node has (committed or not).
  std::vector<Peer> Configuration();
  // Leader only. Adds `id` as a voter: first as a spare, promoted once it has caught up.
  absl::Status AddVoter(uint64_t id, const std::string& address);
  // Leader only.
  absl::Status Remove(uint64_t id);
  // Leader only: returns once every entry committed before the call is applied here.
  absl::Status Barrier(absl::Duration timeout = kWriteTimeout);
  uint64_t AppliedIndex();
  // The commit index this node knows (a follower learns it from the leader's heartbeats).
  uint64_t CommitIndex();
  // A node id for a node name (libraft's raft_digest; never 0).
  static uint64_t IdFor(std::string_view name);
  uint64_t Term();
  // Why this node's state machine stopped applying the log; "" while it works. Never clears.
  std::string Failure();

  struct Impl;

 private:
  explicit RaftStorage(std::unique_ptr<Impl> impl);
  static absl::StatusOr<std::unique_ptr<Impl>> StartImpl(const RaftOptions& options);
  absl::Status Propose(std::string entry);
  std::shared_mutex mu_;  // exclusive only while BootstrapNew replaces impl_
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> had_state_{false};  // HasState() once seen true (it never turns false)
};

}  // namespace strongroom::raft
