// Linearizable reads on the active node, batched. Before the active node answers a request from
// its own state it runs a confirmation round (RaftStorage::ReadBarrier: a barrier entry a
// majority must accept in this node's term), so a leader that was deposed without knowing it yet
// (paused, partitioned) never answers from its old state. Concurrent requests share one round:
// a caller waits for the first round that begins after it arrived (a round under way may have
// begun before the caller's request existed, so it does not count), and the rounds run one at a
// time, so under load each round confirms every request that arrived while the previous one ran.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>

#include "absl/status/statusor.h"

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

}  // namespace strongroom::broker
