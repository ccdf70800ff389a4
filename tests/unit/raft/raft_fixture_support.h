// libraft's own in-memory test cluster (raft/fixture.h, shipped in the library strongroom links):
// simulated time, network and disk, every event stepped one at a time, so a race between a
// message and a disk write is a schedule the test sets, not a timing it hopes for. Each server
// runs a RecordingFsm: its state is the list of 8-byte commands it applied, in order.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "appliance/raft/libraft.h"  // raft.h and raft/fixture.h

namespace strongroom::raft_test {

// A state machine whose state is the commands it applied. Snapshots hold that list; a restore
// replaces it.
struct RecordingFsm {
  RecordingFsm();
  raft_fsm fsm{};
  std::vector<uint64_t> applied;
  unsigned snapshots_taken = 0;
  unsigned restores = 0;
  std::string error;  // the first malformed input seen (empty: none)
};

// A raft_fixture of `n` servers (ids 1..n, indexes 0..n-1), each with a RecordingFsm.
class FixtureCluster {
 public:
  explicit FixtureCluster(unsigned n);
  ~FixtureCluster();
  FixtureCluster(const FixtureCluster&) = delete;
  FixtureCluster& operator=(const FixtureCluster&) = delete;

  // 0 when raft_fixture_init and every raft_fixture_grow succeeded.
  int init_status() const { return init_status_; }
  // Bootstraps every server with a configuration in which all n servers vote.
  int Bootstrap();
  int Start() { return raft_fixture_start(&f_); }

  raft_fixture* fixture() { return &f_; }
  struct raft* server(unsigned i) {
    return raft_fixture_get(&f_, i);
  }
  RecordingFsm& fsm(unsigned i) { return *fsms_[i]; }
  unsigned size() const { return static_cast<unsigned>(fsms_.size()); }

  // Persisted state before Start(): an entry carrying `value` in `term` appended to server i.
  void AddCommand(unsigned i, raft_term term, uint64_t value);

  // raft_apply of one entry per value on server i (which must be the leader).
  int Submit(unsigned i, const std::vector<uint64_t>& values);

  // Steps the cluster until `done` holds or `max_msecs` of simulated time have passed.
  bool StepUntil(const std::function<bool()>& done, unsigned max_msecs);

 private:
  raft_fixture f_{};
  bool initialised_ = false;
  int init_status_ = 0;
  std::vector<std::unique_ptr<RecordingFsm>> fsms_;
};

// True when every list is a prefix of the longest one: no index applied with two different
// commands on two servers (Raft's State Machine Safety, as the state machines see it).
bool AppliedPrefixConsistent(const std::vector<const std::vector<uint64_t>*>& lists,
                             std::string* why);

}  // namespace strongroom::raft_test
