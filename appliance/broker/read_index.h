// Linearizable reads. Before a node answers a request from its own state it shows that the
// state holds every write completed before the request arrived:
//
//  * On the active node (the leader), after the request was handled: a confirmation round
//    (LeaderCheck) begun after it shows that this node still led, so no newer leader had
//    committed anything it lacks (a leader that was deposed without knowing it yet, paused or
//    partitioned, never answers from its old state).
//  * On a standby, before the request is handled (StandbyReads): the leader gives a read point
//    (LeaderCheck::PointFor), a log index covering every write committed before the standby
//    asked; the standby answers from its own store once that store holds the read point (the
//    broker then also checks that what it read stayed one consistent view: broker/cluster.h).
//
//  * BatchedRounds batches: concurrent requests share one round. A caller waits for the first
//    round that begins after it arrived (a round under way may have begun before the caller's
//    request existed, so it does not count); rounds run one at a time, so under load each round
//    confirms every request that arrived while the previous one ran.
//  * LeaderCheck is the leader's round. The first round of a term is a read barrier
//    (RaftStorage::ReadBarrier): an entry of this term is committed and applied here, so this
//    node's state machine holds everything committed before it. Later rounds of the same term
//    ask other voters for their current term (as many as make a majority, those that answered
//    last first; the others too when one fails or is slow): once a majority of the voters
//    (this node included) answered with this node's term, none of those had voted for a newer
//    leader when it answered, after the round began; as any two majorities share a member, no
//    newer leader had been elected when the round began. The round's read point is the commit
//    index this node knew when it began. Steady state: one round trip to the nearest followers
//    per round, no log entry and no disk write.
//  * A standby's request for a read point carries the standby's term, taken after its reads
//    arrived. A voter in the leader's term counts as a confirmation from a time after those
//    reads arrived: with the leader itself that is a majority of three voters, so in a cluster
//    of up to three voters the leader answers at once (after the read barrier of its term),
//    without asking anyone; in larger ones it runs a round.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "appliance/raft/elastic_pool.h"
#include "appliance/raft/raft_storage.h"

namespace strongroom::broker {

// What a confirmation round showed: this node led in `term` when the round began, and `index`
// (its commit index then) covers every write committed before the round began.
struct ReadPoint {
  uint64_t term = 0;
  uint64_t index = 0;
};

template <typename T>
class BatchedRounds {
 public:
  // One round: its result, or why it could not confirm.
  using Round = std::function<absl::StatusOr<T>()>;
  explicit BatchedRounds(Round round) : round_(std::move(round)) {}

  // The result of a round that began after this call did (run by this caller or another).
  absl::StatusOr<T> Confirm() {
    std::unique_lock<std::mutex> lock(mu_);
    const uint64_t mine = started_ + 1;  // the first round to begin from now on
    while (finished_ < mine) {
      if (running_) {
        ++waiting_;
        done_.wait(lock);
        --waiting_;
        continue;
      }
      running_ = true;
      const uint64_t round = ++started_;
      lock.unlock();
      absl::StatusOr<T> result = round_();
      lock.lock();
      running_ = false;
      finished_ = round;
      last_ = std::move(result);
      done_.notify_all();
    }
    return last_;
  }

  // Rounds ended so far, and callers waiting for one (for tests and metrics).
  uint64_t rounds() {
    std::lock_guard<std::mutex> lock(mu_);
    return finished_;
  }
  int waiting() {
    std::lock_guard<std::mutex> lock(mu_);
    return waiting_;
  }

 private:
  Round round_;
  std::mutex mu_;
  std::condition_variable done_;
  uint64_t started_ = 0;   // rounds begun
  uint64_t finished_ = 0;  // rounds ended; they end in order, one at a time
  bool running_ = false;
  int waiting_ = 0;
  absl::StatusOr<T> last_ = T{};  // the result of round `finished_`
};

// Rounds that confirm a term (tests of the batching).
using ReadIndex = BatchedRounds<uint64_t>;

class LeaderCheck {
 public:
  // Asks the member whose libraft address is `raft_address` for its current term (a call with
  // a deadline of its own).
  using AskTerm = std::function<absl::StatusOr<uint64_t>(const std::string& raft_address)>;
  LeaderCheck(raft::RaftStorage* raft, AskTerm ask) : raft_(raft), ask_(std::move(ask)) {}
  ~LeaderCheck();  // waits for the calls under way
  LeaderCheck(const LeaderCheck&) = delete;
  LeaderCheck& operator=(const LeaderCheck&) = delete;

  // The read point of a round begun after the call: the term this node was confirmed to lead
  // in, with its state machine holding everything committed before; FailedPrecondition "not the
  // leader" or Unavailable.
  absl::StatusOr<ReadPoint> Round();

  // The leader's answer to a standby's read: a read point covering every write committed before
  // the call began. `requester` (a raft id) says its term was `requester_term` after its reads
  // arrived; when it is a voter in this node's term and that makes a majority with this node,
  // the commit index now is the answer (once the read barrier of this term was committed);
  // else a round of `rounds` (begun after the call) gives it.
  absl::StatusOr<ReadPoint> PointFor(uint64_t requester, uint64_t requester_term,
                                     BatchedRounds<ReadPoint>& rounds);

 private:
  raft::RaftStorage* raft_;
  AskTerm ask_;
  std::atomic<uint64_t> barrier_term_{0};  // the term of the last read barrier
  std::mutex mu_;
  std::condition_variable changed_;
  std::set<uint64_t> asking_;              // voters with a call under way: at most one each
  int calls_ = 0;                          // calls under way
  std::map<uint64_t, uint64_t> last_yes_;  // voter -> yes_count_ when it last confirmed
  uint64_t yes_count_ = 0;
  // The threads the calls run on, kept for later rounds (at most one call per voter is under
  // way). Last: destroyed first, once ~LeaderCheck saw no call under way.
  raft::ElasticPool askers_{64};
};

// A standby's side of its own linearizable reads: the read point from the leader (one call
// shared by the reads that arrived while the previous one ran), then the wait until this node's
// store holds it.
class StandbyReads {
 public:
  // Asks the leader for a read point, telling it this node's current term `term` (taken after
  // the reads it is for arrived).
  using AskLeader = std::function<absl::StatusOr<ReadPoint>(uint64_t term)>;
  StandbyReads(raft::RaftStorage* raft, AskLeader ask)
      : raft_(raft), ask_(std::move(ask)), rounds_([this] { return Ask(); }) {}
  StandbyReads(const StandbyReads&) = delete;
  StandbyReads& operator=(const StandbyReads&) = delete;

  // Returns once this node's store holds every write completed before the call began (a read
  // point from the leader, asked after the call began, reached by StoreIndex()). Unavailable
  // when the leader cannot give one; DeadlineExceeded when the store does not reach it within
  // `wait`.
  absl::Status Begin(absl::Duration wait);
  uint64_t rounds() { return rounds_.rounds(); }

 private:
  absl::StatusOr<ReadPoint> Ask() { return ask_(raft_->Term()); }
  raft::RaftStorage* raft_;
  AskLeader ask_;
  BatchedRounds<ReadPoint> rounds_;
};

}  // namespace strongroom::broker
