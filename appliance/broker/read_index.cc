#include "appliance/broker/read_index.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace strongroom::broker {
namespace {

// How long a round waits for the voters it asked first before it asks the others too.
constexpr auto kAskMoreAfter = std::chrono::milliseconds(25);

}  // namespace

LeaderCheck::~LeaderCheck() {
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait(lock, [&] { return calls_ == 0; });
}

absl::StatusOr<ReadPoint> LeaderCheck::Round() {
  const raft::RaftStorage::LeaderState st = raft_->ReadState();
  if (st.term == 0) return absl::FailedPreconditionError("not the leader");
  const uint64_t self = raft_->node_id();
  bool self_votes = false;
  for (const auto& v : st.voters) self_votes = self_votes || v.id == self;
  if (barrier_term_.load() != st.term || !self_votes) {
    absl::StatusOr<uint64_t> term = raft_->ReadBarrier();
    if (!term.ok()) return term.status();
    barrier_term_.store(*term);
    // The barrier is committed and applied here: so is everything committed before it.
    return ReadPoint{*term, raft_->StoreIndex()};
  }
  // This node's vote, and as many of the others as make a majority. Those that confirmed most
  // recently are asked first, just enough of them; the rest too when one of those says no or
  // fails, or has not answered within kAskMoreAfter (it may be paused or cut off).
  const size_t needed = st.voters.size() / 2;
  std::vector<const raft::Peer*> others;
  for (const auto& v : st.voters) {
    if (v.id != self) others.push_back(&v);
  }
  struct Tally {
    size_t yes = 0;
    size_t answered = 0;
  };
  auto tally = std::make_shared<Tally>();  // guarded by mu_
  size_t asked = 0;
  size_t next = 0;
  std::unique_lock<std::mutex> lock(mu_);
  std::stable_sort(others.begin(), others.end(), [&](const raft::Peer* a, const raft::Peer* b) {
    return last_yes_[a->id] > last_yes_[b->id];
  });
  const auto ask_more = [&](size_t count) {
    for (; count > 0 && next < others.size(); ++next) {
      const raft::Peer* v = others[next];
      // A voter with a call under way still (slow, paused, unreachable) is not asked again.
      if (!asking_.insert(v->id).second) continue;
      --count;
      ++asked;
      ++calls_;
      const bool posted =
          askers_.Post([this, tally, id = v->id, address = v->address, term = st.term] {
            absl::StatusOr<uint64_t> theirs = ask_(address);
            std::lock_guard<std::mutex> guard(mu_);
            asking_.erase(id);
            --calls_;
            ++tally->answered;
            if (theirs.ok() && *theirs == term) {
              ++tally->yes;
              last_yes_[id] = ++yes_count_;
            }
            changed_.notify_all();
          });
      if (!posted) {  // no thread for it: a voter that did not answer
        asking_.erase(v->id);
        --calls_;
        ++tally->answered;
      }
    }
  };
  const auto settled = [&] { return tally->yes >= needed || tally->answered == asked; };
  ask_more(needed);
  if (!changed_.wait_for(lock, kAskMoreAfter, settled) || tally->yes < needed) {
    ask_more(others.size());
    changed_.wait(lock, settled);
  }
  if (tally->yes < needed) {
    return absl::UnavailableError(absl::StrCat(
        "could not confirm that this node still leads: ", tally->yes, " of the ",
        st.voters.size() - 1, " other voters answered in its term, ", needed, " needed"));
  }
  lock.unlock();
  // What this node knew committed when the round began is applied here (at once, as a rule).
  for (int i = 0; st.applied_index < st.commit_index && raft_->AppliedIndex() < st.commit_index;
       ++i) {
    if (i == 10000) {
      return absl::UnavailableError("this node did not apply the committed log in time");
    }
    absl::SleepFor(absl::Milliseconds(1));
  }
  return ReadPoint{st.term, st.commit_index};
}

absl::StatusOr<ReadPoint> LeaderCheck::PointFor(uint64_t requester, uint64_t requester_term,
                                                BatchedRounds<ReadPoint>& rounds) {
  const raft::RaftStorage::LeaderState st = raft_->ReadState();  // taken after the call began
  if (st.term == 0) return absl::FailedPreconditionError("not the leader");
  const uint64_t self = raft_->node_id();
  bool self_votes = false;
  bool requester_votes = false;
  for (const auto& v : st.voters) {
    self_votes = self_votes || v.id == self;
    requester_votes = requester_votes || (v.id == requester && requester != self);
  }
  // This node and the requester, both in this term after the reads arrived: no newer leader had
  // been elected by then when they make a majority (the others needed: voters / 2). Everything
  // committed before is in this node's commit index once it committed an entry of its term.
  if (self_votes && requester_votes && requester_term == st.term &&
      barrier_term_.load() == st.term && st.voters.size() / 2 <= 1) {
    return ReadPoint{st.term, st.commit_index};
  }
  return rounds.Confirm();
}

absl::Status StandbyReads::Begin(absl::Duration wait) {
  absl::StatusOr<ReadPoint> point = rounds_.Confirm();
  if (!point.ok()) {
    return absl::UnavailableError(
        absl::StrCat("no read point from the leader: ", point.status().message()));
  }
  if (!raft_->WaitStoreIndex(point->index, wait)) {
    return absl::DeadlineExceededError(
        absl::StrCat("this node's store did not reach the leader's read point (index ",
                     point->index, ") in time"));
  }
  return absl::OkStatus();
}

}  // namespace strongroom::broker
