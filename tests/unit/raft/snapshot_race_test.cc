// Issue 16, defect 4: libraft 0.22.1 crashed when an InstallSnapshot from the leader reached a
// follower while that follower was writing a snapshot of its own. libraft holds the install back
// until the local snapshot is written (cowsql/raft pull request 164), but its takeSnapshotCb
// cleared the held request's pointer before reading it and started persisting NULL: a SIGSEGV
// in the follower as soon as its own snapshot finished. strongroom builds libraft from Debian's
// 0.22.1 source with packaging/libraft/*.patch; this test sets up exactly that schedule in
// libraft's own fixture (simulated disk and network) and must crash on the unpatched library.
// It then checks what a fix must also get right: the follower goes on receiving entries after the
// install (with only the pointer fixed it rejects them all), and, under ASan, that the
// InstallSnapshots the leader retransmits meanwhile are freed (patch 0003).
#include <gtest/gtest.h>

#include "tests/unit/raft/raft_fixture_support.h"

namespace strongroom::raft_test {
namespace {

constexpr unsigned kThreshold = 8;    // every server snapshots after this many committed entries
constexpr unsigned kTrailing = 2;     // ...keeping this many entries of log behind the snapshot
constexpr unsigned kSlowDisk = 5000;  // ms for the follower's snapshot write: the race window
constexpr unsigned kDisk = 10;        // the fixture's default disk latency (ms)

TEST(RaftSnapshotRace, InstallSnapshotArrivingWhileTheFollowerWritesItsOwnIsInstalled) {
  FixtureCluster c(3);
  ASSERT_EQ(c.init_status(), 0);
  ASSERT_EQ(c.Bootstrap(), 0);
  ASSERT_EQ(c.Start(), 0);
  for (unsigned i = 0; i < 3; ++i) {
    raft_set_snapshot_threshold(c.server(i), kThreshold);
    raft_set_snapshot_trailing(c.server(i), kTrailing);
  }
  raft_fixture_elect(c.fixture(), 0);
  ASSERT_EQ(raft_state(c.server(0)), RAFT_LEADER);
  struct raft* leader = c.server(0);
  struct raft* follower = c.server(2);  // the follower that will race
  uint64_t next_value = 1;
  std::vector<uint64_t> expected;
  auto submit = [&](unsigned n) {
    std::vector<uint64_t> values;
    for (unsigned k = 0; k < n; ++k) values.push_back(next_value++);
    expected.insert(expected.end(), values.begin(), values.end());
    return c.Submit(0, values);
  };

  // 1. Every server applies entries up to one short of its snapshot threshold.
  const raft_index before_threshold = kThreshold - 1;
  ASSERT_LT(raft_last_index(leader), before_threshold);
  ASSERT_EQ(submit(static_cast<unsigned>(before_threshold - raft_last_index(leader))), 0);
  ASSERT_EQ(raft_last_index(leader), before_threshold);
  ASSERT_TRUE(raft_fixture_step_until_applied(c.fixture(), 3, before_threshold, 2000));
  for (unsigned i = 0; i < 3; ++i) ASSERT_EQ(c.fsm(i).snapshots_taken, 0u) << "server " << i + 1;

  // 2. One more entry: once the follower has stored it, its disk turns slow, so the snapshot it
  //    takes when it learns the entry is committed stays in flight for kSlowDisk ms.
  ASSERT_EQ(submit(1), 0);
  ASSERT_TRUE(c.StepUntil([&] { return follower->last_stored >= kThreshold; }, 2000));
  ASSERT_EQ(raft_last_applied(follower), before_threshold);
  raft_fixture_set_disk_latency(c.fixture(), 2, kSlowDisk);
  ASSERT_TRUE(c.StepUntil([&] { return follower->legacy.snapshot_taking; }, 2000))
      << "the follower never started its own snapshot";
  ASSERT_EQ(c.fsm(2).snapshots_taken, 1u);

  // 3. The leader's messages to the follower are lost while the leader commits three
  //    thresholds' worth of entries and compacts its log past everything the follower has.
  raft_fixture_saturate(c.fixture(), 0, 2);
  ASSERT_EQ(submit(3 * kThreshold), 0);
  const raft_index last = raft_last_index(leader);
  ASSERT_TRUE(c.StepUntil(
      [&] {
        return raft_last_applied(leader) >= last && c.fsm(0).snapshots_taken >= 2 &&
               !leader->legacy.snapshot_taking;
      },
      1000));
  // Messages the leader sent before compacting (entries the follower would take instead of a
  // snapshot) are still in flight: they are dropped too before the link comes back.
  ASSERT_TRUE(raft_fixture_step_until_delivered(c.fixture(), 0, 2, 1000));
  ASSERT_TRUE(follower->legacy.snapshot_taking) << "the follower's snapshot write ended early";

  // 4. Reconnected, the follower is behind the leader's log: the leader sends InstallSnapshot,
  //    which arrives while the follower's own snapshot is still being written, so libraft holds
  //    it back.
  raft_fixture_desaturate(c.fixture(), 0, 2);
  ASSERT_TRUE(c.StepUntil([&] { return follower->legacy.snapshot_pending != nullptr; }, 2000))
      << "no InstallSnapshot reached the follower during its own snapshot";
  ASSERT_TRUE(follower->legacy.snapshot_taking);
  EXPECT_GE(raft_fixture_n_recv(c.fixture(), 2, RAFT_INSTALL_SNAPSHOT), 1u);
  raft_fixture_set_disk_latency(c.fixture(), 2, kDisk);

  // 5. The follower's own snapshot completes, then the held install must be persisted and
  //    restored (unpatched libraft: SIGSEGV here, legacyPersistSnapshotStart(NULL)).
  ASSERT_TRUE(c.StepUntil([&] { return raft_last_applied(follower) >= last; }, 20000))
      << "the follower never installed the leader's snapshot";
  EXPECT_FALSE(follower->legacy.snapshot_taking);
  EXPECT_EQ(follower->legacy.snapshot_pending, nullptr);
  EXPECT_EQ(c.fsm(2).restores, 1u);

  // 6. The cluster goes on: new entries reach every server, the follower included, and all three
  //    state machines hold the same commands.
  ASSERT_EQ(submit(2), 0);
  ASSERT_TRUE(raft_fixture_step_until_applied(c.fixture(), 3, raft_last_index(leader), 5000));
  for (unsigned i = 0; i < 3; ++i) {
    EXPECT_EQ(c.fsm(i).applied, expected) << "server " << i + 1;
    EXPECT_EQ(c.fsm(i).error, "") << "server " << i + 1;
  }
}

}  // namespace
}  // namespace strongroom::raft_test
