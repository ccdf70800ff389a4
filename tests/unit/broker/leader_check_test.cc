// LeaderCheck (broker/read_index.h) against a real three-node Raft group in this process
// (libraft, the TLS transport, RocksDB state machines on disk): the first round of a term is a
// read barrier, later rounds ask the other voters for their term, a round confirms only with a
// majority in this node's term, and a voter that hangs or fails does not stop the round when the
// other one answers. Also RaftStorage's ReadState, ReadBarrier and TakeThreadWrites.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "appliance/broker/read_index.h"
#include "appliance/raft/raft_storage.h"
#include "tests/support/cluster_support.h"

namespace strongroom::broker {
namespace {

class LeaderCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::signal(SIGPIPE, SIG_IGN);  // libuv writes to peers with write(2), as in strongroomd
    char tmpl[] = "/tmp/sr-leadercheck-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    testing::ClusterCerts certs = testing::MakeClusterCerts(dir_, "node");
    ASSERT_FALSE(certs.ca.empty());
    for (uint64_t i = 1; i <= 3; ++i) {
      raft::RaftOptions o;
      o.node_id = i;
      o.address = "127.0.0.1:" + std::to_string(testing::FreeLoopbackPort());
      o.dir = dir_ + "/n" + std::to_string(i);
      o.tls = {certs.ca, certs.cert, certs.key, nullptr};
      o.bootstrap = i == 1;
      auto node = raft::RaftStorage::Start(o);
      ASSERT_TRUE(node.ok()) << node.status();
      nodes_.push_back(std::move(*node));
      by_address_[o.address] = i - 1;
    }
    ASSERT_TRUE(testing::Eventually([&] { return nodes_[0]->IsLeader(); }, 30));
    for (const auto& [address, i] : by_address_) {
      if (i == 0) continue;
      ASSERT_TRUE(nodes_[0]->AddVoter(i + 1, address).ok());
    }
  }
  void TearDown() override {
    nodes_.clear();
    std::filesystem::remove_all(dir_);
  }

  // What a member answers when asked for its term: node i's own term, unless a test says
  // otherwise for it.
  absl::StatusOr<uint64_t> Ask(const std::string& address) {
    const size_t i = by_address_.at(address);
    ++asked_[i];
    switch (behaviour_[i].load()) {
      case kFail:
        return absl::UnavailableError("cluster call failed");
      case kNewerTerm:
        return nodes_[i]->Term() + 1;
      case kHang:
        while (!release_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        return absl::UnavailableError("timed out");
      default:
        return nodes_[i]->Term();
    }
  }

  enum Behaviour { kAnswer, kFail, kNewerTerm, kHang };
  std::string dir_;
  std::vector<std::unique_ptr<raft::RaftStorage>> nodes_;
  std::map<std::string, size_t> by_address_;
  std::atomic<int> behaviour_[3] = {kAnswer, kAnswer, kAnswer};
  std::atomic<int> asked_[3] = {0, 0, 0};
  std::atomic<bool> release_{false};
};

TEST_F(LeaderCheckTest, RaftReportsTheLeadersStateAndWhatAThreadsWritesCameTo) {
  auto st = nodes_[0]->ReadState();
  EXPECT_GT(st.term, 0u);
  EXPECT_EQ(st.voters.size(), 3u);
  EXPECT_GE(st.commit_index, 1u);
  EXPECT_EQ(nodes_[1]->ReadState().term, 0u);  // a follower
  auto barrier = nodes_[0]->ReadBarrier();
  ASSERT_TRUE(barrier.ok()) << barrier.status();
  EXPECT_EQ(*barrier, st.term);
  EXPECT_FALSE(nodes_[1]->ReadBarrier().ok());

  (void)raft::RaftStorage::TakeThreadWrites();
  ASSERT_TRUE(nodes_[0]->Put("k", "v").ok());
  auto w = raft::RaftStorage::TakeThreadWrites();
  EXPECT_EQ(w.committed_term, st.term);
  EXPECT_FALSE(w.failed);
  w = raft::RaftStorage::TakeThreadWrites();  // taken: nothing since
  EXPECT_EQ(w.committed_term, 0u);
  // A write on a follower is not appended: 503-shaped, and noted as failed.
  absl::Status refused = nodes_[1]->Put("k", "v");
  EXPECT_TRUE(absl::IsUnavailable(refused)) << refused;
  w = raft::RaftStorage::TakeThreadWrites();
  EXPECT_TRUE(w.failed);
  EXPECT_EQ(w.committed_term, 0u);
}

TEST_F(LeaderCheckTest, RoundsConfirmWithAMajorityInTheLeadersTermOnly) {
  LeaderCheck check(nodes_[0].get(), [&](const std::string& a) { return Ask(a); });
  const uint64_t term = nodes_[0]->Term();
  // The first round of the term is a barrier: no voter is asked.
  auto first = check.Round();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->term, term);
  EXPECT_EQ(asked_[1] + asked_[2], 0);
  // Then one voter (with this node, a majority of three) is asked per round.
  auto second = check.Round();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->term, term);
  EXPECT_EQ(asked_[1] + asked_[2], 1);

  // One voter fails or answers a newer term: the other one is asked, and suffices.
  for (int bad : {kFail, kNewerTerm}) {
    for (size_t i : {1u, 2u}) {
      behaviour_[i] = bad;
      behaviour_[3 - i] = kAnswer;
      auto r = check.Round();
      EXPECT_TRUE(r.ok()) << "voter " << i << " behaving " << bad << ": " << r.status();
    }
  }
  // Both have moved to a newer term (a new leader may exist): no confirmation.
  behaviour_[1] = kNewerTerm;
  behaviour_[2] = kNewerTerm;
  auto deposed = check.Round();
  EXPECT_TRUE(absl::IsUnavailable(deposed.status())) << deposed.status();
  // Both fail: none either.
  behaviour_[1] = kFail;
  behaviour_[2] = kFail;
  EXPECT_TRUE(absl::IsUnavailable(check.Round().status()));
  // A follower is not the leader.
  LeaderCheck on_follower(nodes_[1].get(), [&](const std::string& a) { return Ask(a); });
  EXPECT_TRUE(absl::IsFailedPrecondition(on_follower.Round().status()));
}

TEST_F(LeaderCheckTest, AVoterThatHangsDoesNotHoldUpRoundsTheOtherCanConfirm) {
  LeaderCheck check(nodes_[0].get(), [&](const std::string& a) { return Ask(a); });
  ASSERT_TRUE(check.Round().ok());  // the barrier
  behaviour_[1] = kHang;
  behaviour_[2] = kHang;
  // Both hang: the round waits (in a thread of its own) ...
  absl::StatusOr<ReadPoint> waited;
  std::thread t([&] { waited = check.Round(); });
  ASSERT_TRUE(testing::Eventually([&] { return asked_[1] + asked_[2] == 2; }, 30));
  // ... until one answers. Voter 2 answers from now on; voter 1 still hangs.
  behaviour_[2] = kAnswer;
  release_ = true;  // the calls under way end (failing); voter 1 hangs no more either
  t.join();
  EXPECT_FALSE(waited.ok());
  release_ = false;
  behaviour_[1] = kHang;
  // Voter 1 hangs again, in a call that outlives the rounds below: they go to voter 2.
  for (int i = 0; i < 5; ++i) {
    auto r = check.Round();
    EXPECT_TRUE(r.ok()) << r.status();
  }
  release_ = true;  // lets LeaderCheck's destructor end (it waits for the calls under way)
}

}  // namespace
}  // namespace strongroom::broker
