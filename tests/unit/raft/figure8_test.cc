// Issue 16, defect 8: the Raft paper's Figure 8. A leader must not commit an entry from an
// earlier term only because a majority stores it: a later leader that never had the entry can
// still be elected and overwrite it. Only an entry of the leader's own term, stored on a majority,
// commits (and with it everything before it). Debian 12's own libraft (0.15.0) counted replicas
// for entries of any term (canonical/raft issue 220, fixed in 0.17.1); strongroom links 0.22.1
// built from source (packaging/libraft). This runs the scenario in libraft's fixture against the
// library strongroom links.
//
// Servers S1..S5 are fixture indexes 0..4. Every log starts with the bootstrap configuration
// (index 1, term 1). The state of the paper's Figure 8 (b)-(c), persisted before start:
//   S1, S2, S3: index 2 = A, written in term 2 by S1 (the leader of term 2), stored on a majority
//   S4:         nothing after index 1
//   S5:         index 2 = B, written in term 3 by S5 (the leader of term 3), stored nowhere else
// (c): S5 is down; S1 is elected in term 4. S2 and S3 have slow disks, so S1's entry of term 4 (the
// no-op a new leader appends) is not stored on a majority for a while, while A is.
//   A leader that commits by counting replicas commits A here (commit index 2, A applied).
// (d): S1 crashes, S5 comes back and may be elected (its last entry's term, 3, beats A's), and
//   then overwrites index 2 with B everywhere: had A been applied, two state machines disagree.
// Against a libraft 0.22.1 built with 0.15's rule (the term check of replicationQuorum removed)
// this fails in (c): "S1 committed an entry of term 2 by counting replicas", A applied on S1..S4.
// With the new leader's no-op removed too (0.15 had none), S5 wins (d) with S2-S4's votes and
// libraft aborts on "conflicting terms 2 and 3 for entry 2 (commit index 2)".
#include <gtest/gtest.h>

#include "tests/unit/raft/raft_fixture_support.h"

namespace strongroom::raft_test {
namespace {

constexpr uint64_t kA = 0xA;          // S1's entry of term 2
constexpr uint64_t kB = 0xB;          // S5's entry of term 3
constexpr uint64_t kC = 0xC;          // a command of the leader after (d)
constexpr unsigned kSlowDisk = 5000;  // ms for S2's and S3's writes during (c)
constexpr unsigned kDisk = 10;        // the fixture's default (ms)

TEST(RaftFigure8, OldTermEntryOnAMajorityIsNotCommittedByCountingReplicas) {
  FixtureCluster c(5);
  ASSERT_EQ(c.init_status(), 0);
  ASSERT_EQ(c.Bootstrap(), 0);
  for (unsigned i : {0u, 1u, 2u}) c.AddCommand(i, 2, kA);
  c.AddCommand(4, 3, kB);
  for (unsigned i = 0; i < 5; ++i) raft_fixture_set_term(c.fixture(), i, 3);
  ASSERT_EQ(c.Start(), 0);

  // (c) S5 is down; S2's and S3's disks are slow; S1 is elected in term 4 (votes: S2, S3, S4, whose
  //     logs are no newer than its own).
  raft_fixture_kill(c.fixture(), 4);
  raft_fixture_set_disk_latency(c.fixture(), 1, kSlowDisk);
  raft_fixture_set_disk_latency(c.fixture(), 2, kSlowDisk);
  raft_fixture_elect(c.fixture(), 0);
  struct raft* s1 = c.server(0);
  ASSERT_EQ(raft_state(s1), RAFT_LEADER);
  ASSERT_EQ(s1->current_term, 4u);

  // S1 leads for a second of simulated time: ten heartbeat rounds, every follower answering.
  raft_fixture_step_until_elapsed(c.fixture(), 1000);
  ASSERT_EQ(raft_state(s1), RAFT_LEADER);
  ASSERT_EQ(s1->current_term, 4u);
  // A (index 2, term 2) is stored on S1, S2, S3 (and S4 by now): a majority of five...
  for (unsigned i : {1u, 2u, 3u}) {
    ASSERT_GE(c.server(i)->last_stored, 2u) << "S" << i + 1;
    ASSERT_EQ(c.server(i)->current_term, 4u) << "S" << i + 1;
  }
  // ...while nothing of term 4 is: S2 and S3 have stored nothing after A.
  ASSERT_EQ(c.server(1)->last_stored, 2u);
  ASSERT_EQ(c.server(2)->last_stored, 2u);
  // So S1 must not have committed A (nor applied it), nor has anyone else.
  EXPECT_LT(s1->commit_index, 2u) << "S1 committed an entry of term 2 by counting replicas";
  for (unsigned i = 0; i < 4; ++i) {
    EXPECT_TRUE(c.fsm(i).applied.empty()) << "S" << i + 1 << " applied " << c.fsm(i).applied[0];
  }

  // (d) S1 crashes before its term-4 entry reaches a majority; S5 comes back. Whoever is elected
  //     next, every state machine must apply the same command at every index.
  raft_fixture_kill(c.fixture(), 0);
  raft_fixture_revive(c.fixture(), 4);
  raft_fixture_set_disk_latency(c.fixture(), 1, kDisk);
  raft_fixture_set_disk_latency(c.fixture(), 2, kDisk);
  unsigned leader = 5;
  ASSERT_TRUE(c.StepUntil(
      [&] {
        for (unsigned i = 1; i < 5; ++i) {
          if (raft_state(c.server(i)) == RAFT_LEADER &&
              raft_fixture_leader_index(c.fixture()) == i) {
            leader = i;
            return true;
          }
        }
        return false;
      },
      20000))
      << "no stable leader among S2..S5";
  ASSERT_EQ(c.Submit(leader, {kC}), 0);
  const raft_index last = raft_last_index(c.server(leader));
  ASSERT_TRUE(c.StepUntil(
      [&] {
        for (unsigned i = 1; i < 5; ++i) {
          if (raft_last_applied(c.server(i)) < last) return false;
        }
        return true;
      },
      20000))
      << "S2..S5 did not all apply the new leader's command";

  std::vector<const std::vector<uint64_t>*> lists;
  for (unsigned i = 0; i < 5; ++i) {
    lists.push_back(&c.fsm(i).applied);
    EXPECT_EQ(c.fsm(i).error, "") << "S" << i + 1;
  }
  std::string why;
  EXPECT_TRUE(AppliedPrefixConsistent(lists, &why)) << why;
  // The new leader's command is the last one every live state machine applied, after exactly one
  // of A or B at index 2.
  for (unsigned i = 1; i < 5; ++i) {
    ASSERT_EQ(c.fsm(i).applied.size(), 2u) << "S" << i + 1;
    EXPECT_EQ(c.fsm(i).applied[1], kC) << "S" << i + 1;
    EXPECT_TRUE(c.fsm(i).applied[0] == kA || c.fsm(i).applied[0] == kB) << "S" << i + 1;
  }
}

}  // namespace
}  // namespace strongroom::raft_test
