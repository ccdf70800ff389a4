// Storage replicated by Raft: the barrier's ciphertext, written through a Raft log that a
// majority of the cluster holds before a write returns, and read from a local RocksDB that is the
// Raft state machine.
//
// The Raft engine is libraft (cowsql raft 0.22.1 built from Debian's source with the patches in
// packaging/libraft; 0.15 in bookworm has the Figure 8 bug) with its libuv disk I/O,
// auto-recovery off, and our mutual-TLS transport (tls_transport.h). One thread runs libraft's
// loop; every call below crosses to it and waits.
//
// Directory layout under RaftOptions::dir:
//   raft/   libraft's log segments, metadata and snapshots (durable; fsynced by libraft)
//   fsm/    the state machine: RocksDB without WAL or fsync, emptied at each start and rebuilt
//           from the last snapshot and the log, so it never disagrees with the log
//
// Writes are accepted only on the leader (Unavailable "not the leader" elsewhere: nothing was
// written; Leader() names it). The process must ignore SIGPIPE (libuv writes to peers with
// write(2); strongroomd does). Reads are local: on a follower they may lag, and a leader that lost
// its leadership without knowing it yet (paused, partitioned) still answers from its old state;
// a linearizable read is confirmed first (ReadBarrier, ReadState: broker/read_index.h). Snapshots
// hold the whole store (taken every `snapshot_threshold` entries, keeping `snapshot_trailing`
// entries of log behind them): pinned on the loop thread, written out in 4 MiB pieces on a libuv
// pool thread while the loop goes on (libraft patch 0004), and held once in memory until libraft
// has written them.
//
// Every wait has a deadline. A write or barrier not committed and applied within kWriteTimeout
// fails with DeadlineExceeded ("context deadline exceeded", as Vault words it; it may still take
// effect), a membership change or leadership transfer within kChangeTimeout likewise, and a call
// that the Raft loop does not take up within kLoopTimeout gets the answer for "unknown" (false,
// 0, none).
//
// A state machine that cannot apply a committed entry (RocksDB refuses the write: disk full, I/O
// or permission error) stops the node's storage for good: told of it, libraft 0.22.1 would stop
// applying there and leave every later write waiting (or, on a follower, crash), so it is not
// told; from then on Failure() says why, writes and barriers fail at once (Unavailable), reads
// fail too (the store lags the log: an answer could be stale), and no snapshot is taken.
// The owner must stop serving (strongroomd exits with status 1 and rebuilds fsm/ from the log at
// its next start; docs/operations.md).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
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

struct Peer {
  uint64_t id = 0;
  std::string address;
  bool voter = false;
};

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
  // Lost-quorum recovery (raft_recover.h), before the node starts: called with the configuration
  // this node's log holds, it returns the configuration to force on the log (libraft's
  // raft_recover), or an error, which fails Start with nothing written.
  std::function<absl::StatusOr<std::vector<Peer>>(const std::vector<Peer>& current)> recover;
  // Checks each Raft connection's claimed id and address against the peer's certificate.
  PeerCheck peer_check;
  // Tests only (strongroom-raft-node --hold-restore): called before a snapshot received from the
  // leader is restored, on the thread that restores it; it may block, to hold the restore.
  std::function<void()> before_restore;
  // Which of the owner's tables (what it keeps in memory from the store: mounts, policies, ...)
  // `key` belongs to: 0 for none, else 1 to kTables - 1. An applied entry that writes or deletes
  // such a key counts in that table's TableEpoch(). Without it, every key is in table 1. Called
  // on the Raft loop (and the restore thread); it must not block.
  std::function<unsigned(std::string_view key)> table_of;
  // Tests only: called on the thread that applies entry `index`, after it was counted (table
  // epochs, read checks) and before it reaches the store; it may block, to hold the entry there.
  std::function<void(uint64_t index)> before_store;
};

// What the leader knows of one server of its configuration (LeaderProgress).
struct ServerProgress {
  Peer peer;
  uint64_t match_index = 0;  // the highest entry the leader knows it holds
  // How long ago the leader last heard from it (an AppendEntries result), in ms; nullopt when
  // it has not since it became the leader. 0 for the leader itself.
  std::optional<uint64_t> since_contact_ms;
};
struct LeaderProgress {
  uint64_t leader_id = 0;
  uint64_t term = 0;
  uint64_t last_index = 0;  // the leader's last log entry
  uint64_t commit_index = 0;
  std::vector<ServerProgress> servers;  // the latest configuration, in its order
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
  // Every pair of the local state machine, in key order, from one consistent view (on the
  // leader after Barrier(): everything committed before the call), until `each` answers false.
  // For snapshots of the store (sys/storage/raft/snapshot).
  absl::Status Scan(const std::function<bool(std::string_view, std::string_view)>& each);

  uint64_t node_id() const;
  // TlsTransport::RecheckPeers: open Raft connections the peer check now refuses are closed.
  void RecheckPeers();
  // Whether this node has Raft state (a cluster of its own, or a log received from a leader).
  bool HasState();
  // A new cluster with this node as its only voter, for a node without state (restarts the
  // node: libraft bootstraps only before it starts). Nothing else may use the storage meanwhile.
  // FailedPrecondition when the node has state.
  absl::Status BootstrapNew();
  bool IsLeader();
  // The leader this node knows of, if any.
  std::optional<Peer> Leader();
  // Leader() as the loop last saw it (after its latest turn), without a call onto the loop: for
  // routing a request, where an answer a moment old does no harm.
  std::optional<Peer> LeaderHint();
  // The latest configuration this node has (committed or not).
  std::vector<Peer> Configuration();
  // Leader only. Adds `id` as a voter: first as a spare, promoted once it has caught up.
  absl::Status AddVoter(uint64_t id, const std::string& address);
  // Leader only.
  absl::Status Remove(uint64_t id);
  // Leader only, taken at once on the loop thread: each server's match index and last contact
  // (libraft patch 0005). Nullopt when this node is not the leader (or is stopping).
  std::optional<LeaderProgress> Progress();
  // Leader only: returns once every entry committed before the call is applied here.
  absl::Status Barrier(absl::Duration timeout = kWriteTimeout);
  // Leader only: hands the leadership to another voter (libraft's raft_transfer), the most
  // up-to-date first (by match index), the next when one has not taken it within an election
  // timeout (libraft then gives the transfer up). Returns the new leader's id (0: not known
  // yet). NotFound when there is no other voter; Unavailable when none took it (this node then
  // still leads, unless it lost the leadership otherwise). A voter for which `skip(id)` is true
  // is not asked (a sealed node, which could not serve); `skip` runs off the Raft loop, so it
  // may ask the member over the network. NotFound also when every other voter was skipped.
  absl::StatusOr<uint64_t> TransferLeadership(const std::function<bool(uint64_t)>& skip = {});
  // Leader only, the read index of a linearizable read: appends a barrier entry and returns
  // once it is committed and applied here. Then a majority accepted an entry of this node's
  // term after the call began (no other leader had been elected by then), and this node's state
  // machine holds everything committed before the call. Returns the term the barrier was
  // committed in; fails ("not the leader", "leadership was lost") otherwise.
  absl::StatusOr<uint64_t> ReadBarrier();
  // The current term while this node is the leader; 0 when it is not.
  uint64_t LeaderTerm();
  // What a heartbeat round of a linearizable read starts from, taken at once: while this node is
  // the leader its term, commit and applied indexes and the voters of its latest configuration
  // (itself included); term 0 when it is not the leader.
  struct LeaderState {
    uint64_t term = 0;
    uint64_t commit_index = 0;
    uint64_t applied_index = 0;
    std::vector<Peer> voters;
  };
  LeaderState ReadState();
  // What the writes (Put, Delete, Apply, and the configuration changes) made on the calling
  // thread since the last call came to: the term of the last one committed (a majority accepted it
  // in that term, after it was made), and whether any failed. Tells whether a request's answer is
  // current (broker/cluster.h, ConfirmAnswer).
  struct ThreadWrites {
    uint64_t committed_term = 0;
    bool failed = false;
  };
  static ThreadWrites TakeThreadWrites();
  uint64_t AppliedIndex();
  // Whether a snapshot received from the leader is being restored (reads wait until it is done,
  // and the entries counted applied meanwhile are applied after it).
  bool RestoreUnderWay();
  // The commit index this node knows (a follower learns it from the leader's heartbeats).
  uint64_t CommitIndex();
  // A node id for a node name (libraft's raft_digest; never 0).
  static uint64_t IdFor(std::string_view name);
  uint64_t Term();
  // Why this node's state machine stopped applying the log; "" while it works. Never clears.
  std::string Failure();
  // --- Reads a standby answers from its own store (broker/read_index.h, StandbyReads) ---
  // The index of the last log entry applied to this node's store: every entry up to it is in
  // the store (a snapshot received from the leader is counted once it is restored and the
  // entries held meanwhile are applied).
  uint64_t StoreIndex();
  // Returns true once StoreIndex() >= `index`; false when `timeout` passes first or the state
  // machine failed.
  bool WaitStoreIndex(uint64_t index, absl::Duration timeout);
  // How many applied entries wrote a key of `table` (RaftOptions::table_of; 1 to kTables - 1) or
  // replaced the store (a snapshot restored) so far, counted before the entry reaches the store:
  // a table read from the store while it stays the same is the store's.
  static constexpr unsigned kTables = 4;
  uint64_t TableEpoch(unsigned table);
  // Returns true once every change counted in `epochs` (TableEpoch(t) values, t = 1 to
  // kTables - 1, taken earlier; epochs[0] is ignored) has reached the store: a table read from
  // the store after that holds at least those changes. (TableEpoch moves before the store
  // changes, so a table read right after it moved may still be the old one.) False when
  // `timeout` passes first or the state machine failed.
  bool WaitTablesStored(const uint64_t (&epochs)[kTables], absl::Duration timeout);
  // A read check, for the calling thread: from BeginReadCheck on, the keys it gets and the
  // prefixes it lists from this store are noted; EndReadCheck ends it and says whether every
  // value it read is still the store's: no entry applied since BeginReadCheck (nor one being
  // applied) wrote one of those keys or a key below one of those prefixes, and no snapshot
  // replaced the store. Then the reads are as one consistent view of the store. False too when
  // too much was applied meanwhile to tell (at most kReadCheckEntries entries are remembered),
  // when more than kReadCheckKeys were read, or for a listed prefix that does not end in '/'.
  static constexpr size_t kReadCheckEntries = 8192;
  static constexpr size_t kReadCheckKeys = 256;
  // What the remembered entries may hold in all, in key and prefix hashes (a key with many '/'
  // has as many prefixes): past it the oldest are forgotten (a read check over them fails). An
  // entry with more than kReadCheckEntryHashes is remembered as one that wrote every key.
  static constexpr size_t kReadCheckHashes = size_t{1} << 20;
  static constexpr size_t kReadCheckEntryHashes = size_t{1} << 16;
  // The key and prefix hashes remembered now (tests, metrics).
  size_t ReadCheckHashes();
  void BeginReadCheck();
  bool EndReadCheck();

  // The longest the Raft loop was kept from running (a snapshot or an apply holding it) since
  // the last call, in ms, measured every 100 ms; resets it. Past the election timeout a loop
  // stall costs the leadership. (A stall of the election timeout or more is also logged.)
  uint64_t TakeMaxLoopStallMs();

  struct Impl;

 private:
  // A barrier committed in the current term, before a membership change (mu_ held shared).
  absl::Status CommitInTermLocked(uint64_t* term);
  explicit RaftStorage(std::unique_ptr<Impl> impl);
  static absl::StatusOr<std::unique_ptr<Impl>> StartImpl(const RaftOptions& options);
  absl::Status Propose(const std::vector<storage::BatchOp>& ops);  // ProposeIn, in ThreadWrites
  absl::Status ProposeIn(const std::vector<storage::BatchOp>& ops, uint64_t* term);
  std::shared_mutex mu_;  // exclusive only while BootstrapNew replaces impl_
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> had_state_{false};  // HasState() once seen true (it never turns false)
};

}  // namespace strongroom::raft
