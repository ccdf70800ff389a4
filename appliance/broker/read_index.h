// Linearizable reads on the active node. Before the active node answers a request from its own
// state it runs a confirmation round, so a leader that was deposed without knowing it yet
// (paused, partitioned) never answers from its old state:
//
//  * ReadIndex batches: concurrent requests share one round. A caller waits for the first round
//    that begins after it arrived (a round under way may have begun before the caller's request
//    existed, so it does not count); rounds run one at a time, so under load each round confirms
//    every request that arrived while the previous one ran.
//  * LeaderCheck is the round. The first round of a term is a read barrier
//    (RaftStorage::ReadBarrier): an entry of this term is committed and applied here, so this
//    node's state machine holds everything committed before it. Later rounds of the same term
//    ask other voters for their current term (as many as make a majority, those that answered
//    last first; the others too when one fails or is slow): once a majority of the voters
//    (this node included) answered with this node's term, none of those had voted for a newer
//    leader when it answered, after the round began; as any two majorities share a member, no
//    newer leader had been elected when the round began. The round then waits until this node
//    applied what it knew committed when it began. Steady state: one round trip to the nearest
//    followers per round, no log entry and no disk write.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "appliance/raft/raft_storage.h"

namespace strongroom::broker {

class ReadIndex {
 public:
  // One confirmation round: the term it confirmed, or why it could not.
  using Round = std::function<absl::StatusOr<uint64_t>()>;
  explicit ReadIndex(Round round) : round_(std::move(round)) {}

  // The result of a round that began after this call did (run by this caller or another).
  absl::StatusOr<uint64_t> Confirm();

  // Rounds ended so far, and callers waiting for one (for tests and metrics).
  uint64_t rounds();
  int waiting();

 private:
  Round round_;
  std::mutex mu_;
  std::condition_variable done_;
  uint64_t started_ = 0;   // rounds begun
  uint64_t finished_ = 0;  // rounds ended; they end in order, one at a time
  bool running_ = false;
  int waiting_ = 0;
  absl::StatusOr<uint64_t> last_ = uint64_t{0};  // the result of round `finished_`
};

class LeaderCheck {
 public:
  // Asks the member whose libraft address is `raft_address` for its current term (a call with
  // a deadline of its own).
  using AskTerm = std::function<absl::StatusOr<uint64_t>(const std::string& raft_address)>;
  LeaderCheck(raft::RaftStorage* raft, AskTerm ask) : raft_(raft), ask_(std::move(ask)) {}
  ~LeaderCheck();  // waits for the calls under way
  LeaderCheck(const LeaderCheck&) = delete;
  LeaderCheck& operator=(const LeaderCheck&) = delete;

  // The term this node was confirmed to lead in after the call began, with its state machine
  // holding everything committed before; FailedPrecondition "not the leader" or Unavailable.
  absl::StatusOr<uint64_t> Round();

 private:
  raft::RaftStorage* raft_;
  AskTerm ask_;
  uint64_t barrier_term_ = 0;  // the term of the last read barrier (rounds run one at a time)
  std::mutex mu_;
  std::condition_variable changed_;
  std::set<uint64_t> asking_;              // voters with a call under way: at most one each
  int calls_ = 0;                          // calls under way
  std::map<uint64_t, uint64_t> last_yes_;  // voter -> yes_count_ when it last confirmed
  uint64_t yes_count_ = 0;
};

}  // namespace strongroom::broker
