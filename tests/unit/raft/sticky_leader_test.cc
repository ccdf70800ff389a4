// A voter whose promotion the leader committed with the other voters, while it was down or cut
// off, is a stand-by or spare in its own configuration. libraft 0.22.1 never let it help elect
// a leader: electionVote() refused every vote of a server that is not a voter in its own
// configuration ("local server is not voting"), although the candidate counts votes by the
// candidate's configuration, which holds the promotion; and a follower that does not campaign
// kept the leader it last heard from for good (follower_state.current_leader is cleared only
// when a follower becomes a candidate or learns a newer term), while recvRequestVote() refuses
// every (pre-)vote as long as that field is set, however long ago the leader last spoke.
//
// RaftTest.AFollowerRestoringASnapshotAfterTheOtherVoterDiedLetsTheLeaderLeadAgain hit it with
// real nodes: node 3 was killed right after its promotion committed (on nodes 1 and 2), before
// it had stored it, and came back a spare in its own eyes; node 2 died, node 1 stepped down, and
// a heartbeat node 1 had queued while it still led reached node 3 once it was back. From then on
// node 3 refused node 1's every pre-vote ("local server has a leader (server 1)") and no node
// ever led again: no term changed on any node for as long as the test waited. libraft patch 0007
// lets such a voter vote and makes a follower that stays follower forget a leader silent for an
// election timeout.
#include <gtest/gtest.h>

#include "tests/unit/raft/raft_fixture_support.h"

namespace strongroom::raft_test {
namespace {

int RoleOf(const struct raft* r, raft_id id) {
  for (unsigned k = 0; k < r->configuration.n; ++k) {
    if (r->configuration.servers[k].id == id) return r->configuration.servers[k].role;
  }
  return -1;
}

TEST(RaftStickyLeader, AVoterThatMissedItsPromotionVotesOnceItsLeaderIsGone) {
  FixtureCluster c(3);
  ASSERT_EQ(c.init_status(), 0);
  // Servers 1 and 2 vote; server 3 is a stand-by, in every log.
  raft_configuration conf;
  ASSERT_EQ(raft_fixture_configuration(c.fixture(), 2, &conf), 0);
  ASSERT_EQ(raft_fixture_bootstrap(c.fixture(), &conf), 0);
  raft_configuration_close(&conf);
  for (unsigned i = 0; i < 3; ++i) raft_set_pre_vote(c.server(i), true);  // as RaftStorage
  ASSERT_EQ(c.Start(), 0);
  raft_fixture_elect(c.fixture(), 0);
  struct raft* leader = c.server(0);
  struct raft* follower = c.server(2);
  ASSERT_EQ(raft_state(leader), RAFT_LEADER);

  // 1. Server 3 follows server 1 and has its whole log.
  ASSERT_TRUE(c.StepUntil(
      [&] {
        raft_index match = 0;
        return follower->follower_state.current_leader.id == 1 &&
               raft_match_index(leader, 3, &match) == 0 && match == raft_last_index(leader);
      },
      5000));

  // 2. Server 1's messages to server 3 are lost from here. Server 3 is promoted to voter: the
  //    change commits on servers 1 and 2 and never reaches server 3, which still takes itself
  //    for a stand-by (it never campaigns) and still takes server 1 for its leader.
  raft_fixture_saturate(c.fixture(), 0, 2);
  struct Change {
    raft_change req{};
    bool done = false;
    int status = -1;
  } change;
  change.req.data = &change;
  ASSERT_EQ(raft_assign(leader, &change.req, 3, RAFT_VOTER,
                        [](raft_change* req, int status) {
                          auto* ch = static_cast<Change*>(req->data);
                          ch->done = true;
                          ch->status = status;
                        }),
            0);
  ASSERT_TRUE(c.StepUntil([&] { return change.done; }, 5000));
  ASSERT_EQ(change.status, 0);
  ASSERT_EQ(RoleOf(leader, 3), RAFT_VOTER);
  ASSERT_EQ(RoleOf(follower, 3), RAFT_STANDBY);

  // 3. Server 2 dies: server 1 hears from no other voter and steps down.
  raft_fixture_kill(c.fixture(), 1);
  ASSERT_TRUE(c.StepUntil([&] { return raft_state(leader) != RAFT_LEADER; }, 5000));

  // 4. Server 3 can be reached again. Server 1 needs its vote and has the longer log: it must
  //    lead again. (libraft 0.22.1: server 3 refuses every pre-vote, for good: it still has a
  //    leader, and it is no voter in its own eyes.)
  raft_fixture_desaturate(c.fixture(), 0, 2);
  ASSERT_TRUE(c.StepUntil([&] { return raft_state(leader) == RAFT_LEADER; }, 30000))
      << "server 1 never led again; server 3 still follows server "
      << follower->follower_state.current_leader.id;

  // 5. Server 3 learns it votes, and the two commit without server 2.
  ASSERT_EQ(c.Submit(0, {42}), 0);
  const raft_index last = raft_last_index(leader);
  ASSERT_TRUE(c.StepUntil(
      [&] { return raft_last_applied(leader) >= last && raft_last_applied(follower) >= last; },
      5000));
  EXPECT_EQ(RoleOf(follower, 3), RAFT_VOTER);
  EXPECT_EQ(c.fsm(0).applied, std::vector<uint64_t>{42});
  EXPECT_EQ(c.fsm(2).applied, std::vector<uint64_t>{42});
}

}  // namespace
}  // namespace strongroom::raft_test
