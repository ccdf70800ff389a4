// A standby's own linearizable reads, against a real three-node Raft group in this process
// (libraft, the TLS transport, RocksDB state machines on disk): RaftStorage's store index, read
// checks and table epochs, the leader's read point (LeaderCheck::PointFor), StandbyReads, and a
// read through a standby that always sees the writes acknowledged before it began, under
// concurrent writes. Also ElasticPool, and which table of the core a store key belongs to.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "appliance/broker/cluster_internal.h"
#include "appliance/broker/read_index.h"
#include "appliance/raft/elastic_pool.h"
#include "appliance/raft/raft_storage.h"
#include "tests/support/cluster_support.h"

namespace strongroom::broker {
namespace {

// Keys under "t2/" are in table 2; "data/" in none; every other key in table 1.
unsigned TestTableOf(std::string_view key) {
  if (key.starts_with("t2/")) return 2;
  if (key.starts_with("data/")) return 0;
  return 1;
}

class ReadIndexStandbyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::signal(SIGPIPE, SIG_IGN);  // libuv writes to peers with write(2), as in strongroomd
    dir_ = testing::NewTempDir("sr-standbyread");
    ASSERT_FALSE(dir_.empty());
    testing::ClusterCerts certs = testing::MakeClusterCerts(dir_, "node");
    ASSERT_FALSE(certs.ca.empty());
    for (uint64_t i = 1; i <= 3; ++i) {
      raft::RaftOptions o;
      o.node_id = i;
      o.address = "127.0.0.1:" + std::to_string(testing::FreeLoopbackPort());
      o.dir = dir_ + "/n" + std::to_string(i);
      o.tls = {certs.ca, certs.cert, certs.key, nullptr};
      o.bootstrap = i == 1;
      o.table_of = &TestTableOf;
      // Node `hold_node_` holds its next entry between its count and its store (HoldTheEntry).
      o.before_store = [this, i](uint64_t) { HoldTheEntry(i); };
      auto node = raft::RaftStorage::Start(o);
      ASSERT_TRUE(node.ok()) << node.status();
      nodes_.push_back(std::move(*node));
      options_.push_back(o);
      by_address_[o.address] = i - 1;
    }
    ASSERT_TRUE(testing::Eventually([&] { return nodes_[0]->IsLeader(); }, 30));
    for (const auto& [address, i] : by_address_) {
      if (i == 0) continue;
      ASSERT_TRUE(nodes_[0]->AddVoter(i + 1, address).ok());
    }
    check_ = std::make_unique<LeaderCheck>(nodes_[0].get(), [&](const std::string& a) {
      ++asked_;
      return nodes_[by_address_.at(a)]->Term();
    });
    rounds_ = std::make_unique<BatchedRounds<ReadPoint>>([&] { return check_->Round(); });
  }
  void TearDown() override {
    rounds_.reset();
    check_.reset();
    nodes_.clear();
    std::filesystem::remove_all(dir_);
  }

  // Node i's store holds what the leader has committed now.
  bool CaughtUp(size_t i) {
    return nodes_[i]->WaitStoreIndex(nodes_[0]->CommitIndex(), absl::Seconds(30));
  }

  std::string dir_;
  std::vector<std::unique_ptr<raft::RaftStorage>> nodes_;
  std::vector<raft::RaftOptions> options_;
  std::map<std::string, size_t> by_address_;
  std::atomic<int> asked_{0};
  // Set hold_node_ to a node id: that node's next entry waits, counted in its table epochs
  // and read checks but not yet in its store, until release_ (held_ says it waits).
  void HoldTheEntry(uint64_t node) {
    uint64_t expected = node;
    if (!hold_node_.compare_exchange_strong(expected, 0)) return;
    held_.store(true);
    for (int i = 0; i < 3000 && !release_.load(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  std::atomic<uint64_t> hold_node_{0};
  std::atomic<bool> held_{false};
  std::atomic<bool> release_{false};
  std::unique_ptr<LeaderCheck> check_;
  std::unique_ptr<BatchedRounds<ReadPoint>> rounds_;
};

TEST_F(ReadIndexStandbyTest, EveryNodesStoreIndexFollowsTheLog) {
  ASSERT_TRUE(nodes_[0]->Put("data/a", "1").ok());
  const uint64_t committed = nodes_[0]->CommitIndex();
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(nodes_[i]->WaitStoreIndex(committed, absl::Seconds(30))) << "node " << i + 1;
    EXPECT_GE(nodes_[i]->StoreIndex(), committed);
    EXPECT_EQ(nodes_[i]->Get("data/a").value().value_or(""), "1");
  }
  // An index not reached yet is waited for, and the wait gives up at its deadline.
  EXPECT_FALSE(nodes_[1]->WaitStoreIndex(committed + 1000, absl::Milliseconds(100)));
  // A barrier (no state machine entry) is counted too once applied.
  ASSERT_TRUE(nodes_[0]->Barrier().ok());
  EXPECT_TRUE(CaughtUp(0));
  EXPECT_TRUE(CaughtUp(1));
}

TEST_F(ReadIndexStandbyTest, AReadCheckFailsExactlyWhenSomethingItReadChanged) {
  raft::RaftStorage& standby = *nodes_[1];
  ASSERT_TRUE(
      nodes_[0]
          ->Apply({storage::BatchOp::Put("data/a", "1"), storage::BatchOp::Put("data/dir/x", "1"),
                   storage::BatchOp::Put("data/other/y", "1")})
          .ok());
  ASSERT_TRUE(CaughtUp(1));

  // Nothing applied meanwhile.
  standby.BeginReadCheck();
  ASSERT_TRUE(standby.Get("data/a").ok());
  ASSERT_TRUE(standby.List("data/dir/").ok());
  EXPECT_TRUE(standby.EndReadCheck());

  // A key not read changes: the reads still hold.
  standby.BeginReadCheck();
  ASSERT_TRUE(standby.Get("data/a").ok());
  ASSERT_TRUE(standby.List("data/dir/").ok());
  ASSERT_TRUE(nodes_[0]->Put("data/b", "2").ok());
  ASSERT_TRUE(nodes_[0]->Put("data/other/z", "2").ok());
  ASSERT_TRUE(CaughtUp(1));
  EXPECT_TRUE(standby.EndReadCheck());

  // A key read changes.
  standby.BeginReadCheck();
  ASSERT_TRUE(standby.Get("data/a").ok());
  ASSERT_TRUE(nodes_[0]->Put("data/a", "2").ok());
  ASSERT_TRUE(CaughtUp(1));
  EXPECT_FALSE(standby.EndReadCheck());

  // A key below a listed prefix changes (deeper down too).
  standby.BeginReadCheck();
  ASSERT_TRUE(standby.List("data/dir/").ok());
  ASSERT_TRUE(nodes_[0]->Delete("data/dir/x/deeper").ok());
  ASSERT_TRUE(CaughtUp(1));
  EXPECT_FALSE(standby.EndReadCheck());

  // A missing key read, then written, changed too.
  standby.BeginReadCheck();
  ASSERT_FALSE(standby.Get("data/new").value().has_value());
  ASSERT_TRUE(nodes_[0]->Put("data/new", "1").ok());
  ASSERT_TRUE(CaughtUp(1));
  EXPECT_FALSE(standby.EndReadCheck());

  // A listing that is not of a directory ("" or no trailing '/') cannot be told: refused.
  standby.BeginReadCheck();
  ASSERT_TRUE(standby.List("data/d").ok());
  EXPECT_FALSE(standby.EndReadCheck());

  // More reads than a check keeps: refused.
  standby.BeginReadCheck();
  for (size_t i = 0; i <= raft::RaftStorage::kReadCheckKeys; ++i) {
    ASSERT_TRUE(standby.Get("data/k" + std::to_string(i)).ok());
  }
  EXPECT_FALSE(standby.EndReadCheck());

  // A check is the calling thread's and the store's: another node's reads are not noted, and
  // an end without a beginning holds nothing.
  standby.BeginReadCheck();
  ASSERT_TRUE(nodes_[2]->Get("data/a").ok());
  ASSERT_TRUE(nodes_[0]->Put("data/a", "3").ok());
  ASSERT_TRUE(CaughtUp(1));
  EXPECT_TRUE(standby.EndReadCheck());
  EXPECT_FALSE(standby.EndReadCheck());
  EXPECT_FALSE(nodes_[2]->EndReadCheck());
}

TEST_F(ReadIndexStandbyTest, TableEpochsCountTheEntriesThatWriteTheirKeys) {
  raft::RaftStorage& standby = *nodes_[1];
  ASSERT_TRUE(CaughtUp(1));
  const uint64_t t1 = standby.TableEpoch(1);
  const uint64_t t2 = standby.TableEpoch(2);
  ASSERT_TRUE(nodes_[0]->Put("data/a", "1").ok());  // no table
  ASSERT_TRUE(CaughtUp(1));
  EXPECT_EQ(standby.TableEpoch(1), t1);
  EXPECT_EQ(standby.TableEpoch(2), t2);
  ASSERT_TRUE(
      nodes_[0]
          ->Apply({storage::BatchOp::Put("t2/p", "1"), storage::BatchOp::Put("data/b", "1")})
          .ok());
  ASSERT_TRUE(CaughtUp(1));
  EXPECT_EQ(standby.TableEpoch(1), t1);
  EXPECT_EQ(standby.TableEpoch(2), t2 + 1);
  ASSERT_TRUE(nodes_[0]->Delete("mounts").ok());  // a delete counts as well
  ASSERT_TRUE(CaughtUp(1));
  EXPECT_EQ(standby.TableEpoch(1), t1 + 1);
  EXPECT_EQ(standby.TableEpoch(2), t2 + 1);
  // Out of range: the last table.
  EXPECT_EQ(standby.TableEpoch(99), standby.TableEpoch(raft::RaftStorage::kTables - 1));
}

TEST_F(ReadIndexStandbyTest, TablesAreReadOnlyOnceTheChangesTheirEpochsCountAreStored) {
  raft::RaftStorage& standby = *nodes_[1];
  ASSERT_TRUE(nodes_[0]->Put("t2/p", "v1").ok());
  ASSERT_TRUE(CaughtUp(1));
  uint64_t before[raft::RaftStorage::kTables] = {};
  for (unsigned t = 1; t < raft::RaftStorage::kTables; ++t) before[t] = standby.TableEpoch(t);
  EXPECT_TRUE(standby.WaitTablesStored(before, absl::Seconds(1)));
  // The standby's next entry (a change of table 2) is held after it was counted.
  hold_node_.store(2);
  ASSERT_TRUE(nodes_[0]->Put("t2/p", "v2").ok());  // committed by the leader and node 3
  ASSERT_TRUE(testing::Eventually([&] { return held_.load(); }, 10));
  uint64_t now[raft::RaftStorage::kTables] = {};
  for (unsigned t = 1; t < raft::RaftStorage::kTables; ++t) now[t] = standby.TableEpoch(t);
  EXPECT_EQ(now[2], before[2] + 1);
  EXPECT_EQ(now[1], before[1]);
  // The epoch says the table changed, but the store does not hold the change yet: a table read
  // now would be the old one under the new epoch (and kept until the next change).
  EXPECT_EQ(standby.Get("t2/p").value().value_or(""), "v1");
  EXPECT_FALSE(standby.WaitTablesStored(now, absl::Milliseconds(100)));
  EXPECT_TRUE(standby.WaitTablesStored(before, absl::Milliseconds(100)));
  release_.store(true);
  ASSERT_TRUE(standby.WaitTablesStored(now, absl::Seconds(10)));
  EXPECT_EQ(standby.Get("t2/p").value().value_or(""), "v2");
}

TEST_F(ReadIndexStandbyTest, WhatReadChecksRememberIsBoundedWhateverTheKeys) {
  raft::RaftStorage& standby = *nodes_[1];
  ASSERT_TRUE(CaughtUp(1));
  // A key as deep as a request path may make it (4 KiB: 2000 levels), 40 of them in one entry
  // (joined writes), 40 entries: remembered in full, ~26 MB of hashes on every node.
  std::string deep = "data/";
  for (int i = 0; i < 2000; ++i) deep += "a/";
  for (int e = 0; e < 40; ++e) {
    std::vector<storage::BatchOp> ops;
    for (int k = 0; k < 40; ++k) {
      ops.push_back(storage::BatchOp::Put(deep + std::to_string(e) + "-" + std::to_string(k), "v"));
    }
    ASSERT_TRUE(nodes_[0]->Apply(ops).ok());
  }
  ASSERT_TRUE(CaughtUp(1));
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_LE(nodes_[i]->ReadCheckHashes(), raft::RaftStorage::kReadCheckHashes)
        << "node " << i + 1;
  }
  // A read check over such an entry still fails when it read one of its keys, and also when
  // it did not (the entry was too large to remember: as if it wrote every key).
  ASSERT_TRUE(nodes_[0]->Put("data/other", "1").ok());
  ASSERT_TRUE(CaughtUp(1));
  standby.BeginReadCheck();
  ASSERT_TRUE(standby.Get("data/other").ok());
  std::vector<storage::BatchOp> ops;
  for (int k = 0; k < 40; ++k)
    ops.push_back(storage::BatchOp::Put(deep + "x" + std::to_string(k), "v"));
  ASSERT_TRUE(nodes_[0]->Apply(ops).ok());
  ASSERT_TRUE(CaughtUp(1));
  EXPECT_FALSE(standby.EndReadCheck());
  // A small entry after it is remembered as before.
  standby.BeginReadCheck();
  ASSERT_TRUE(standby.Get("data/other").ok());
  ASSERT_TRUE(nodes_[0]->Put("data/unrelated", "1").ok());
  ASSERT_TRUE(CaughtUp(1));
  EXPECT_TRUE(standby.EndReadCheck());
}

TEST_F(ReadIndexStandbyTest, TheLeaderGivesAVoterInItsTermAReadPointWithoutAskingAnyone) {
  const uint64_t term = nodes_[0]->Term();
  // Before the read barrier of its term: a round (the barrier) first.
  auto first = check_->PointFor(2, term, *rounds_);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->term, term);
  EXPECT_EQ(asked_.load(), 0);  // a barrier asks nobody
  ASSERT_TRUE(nodes_[0]->Put("data/a", "1").ok());
  const uint64_t committed = nodes_[0]->CommitIndex();
  // A voter in this term, with the leader a majority of three: the commit index, at once.
  auto point = check_->PointFor(2, term, *rounds_);
  ASSERT_TRUE(point.ok()) << point.status();
  EXPECT_EQ(point->term, term);
  EXPECT_GE(point->index, committed);
  EXPECT_EQ(asked_.load(), 0);
  const uint64_t rounds = rounds_->rounds();
  // Another term, or not a voter (or the leader itself): a round, which asks a voter.
  for (auto [id, t] :
       {std::pair<uint64_t, uint64_t>{2, term - 1}, {2, term + 1}, {99, term}, {1, term}}) {
    auto p = check_->PointFor(id, t, *rounds_);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_GE(p->index, committed);
  }
  EXPECT_EQ(rounds_->rounds(), rounds + 4);
  EXPECT_GE(asked_.load(), 4);
  // A follower gives none.
  LeaderCheck on_follower(nodes_[1].get(), [](const std::string&) { return uint64_t{0}; });
  EXPECT_TRUE(absl::IsFailedPrecondition(on_follower.PointFor(1, term, *rounds_).status()));
}

TEST_F(ReadIndexStandbyTest, AStandbysReadSeesEveryWriteAcknowledgedBeforeItBegan) {
  // The standby (node 2) asks the leader's LeaderCheck directly for its read points.
  StandbyReads standby(nodes_[1].get(),
                       [&](uint64_t term) { return check_->PointFor(2, term, *rounds_); });
  ASSERT_TRUE(nodes_[0]->Put("data/k", "0").ok());
  std::atomic<int64_t> acked{0};
  std::atomic<bool> done{false};
  std::atomic<int> reads{0}, stale{0}, failed{0}, inconsistent{0};
  std::thread writer([&] {
    for (int64_t v = 1; v <= 300; ++v) {
      if (!nodes_[0]->Put("data/k", std::to_string(v)).ok()) {
        ++failed;
        break;
      }
      acked.store(v);  // acknowledged: every read that begins from now on must see it
    }
    done.store(true);
  });
  std::vector<std::thread> readers;
  for (int r = 0; r < 6; ++r) {
    readers.emplace_back([&] {
      while (!done.load()) {
        const int64_t before = acked.load();
        if (!standby.Begin(absl::Seconds(10)).ok()) {
          ++failed;
          continue;
        }
        nodes_[1]->BeginReadCheck();
        auto v = nodes_[1]->Get("data/k");
        const bool one_view = nodes_[1]->EndReadCheck();
        int64_t seen = -1;
        if (!v.ok() || !v->has_value() || !absl::SimpleAtoi(**v, &seen)) {
          ++failed;
          continue;
        }
        ++reads;
        if (seen < before) ++stale;
        if (!one_view) ++inconsistent;  // the key changed meanwhile: the broker would forward
      }
    });
  }
  writer.join();
  for (auto& t : readers) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(stale.load(), 0) << "of " << reads.load() << " reads";
  EXPECT_GT(reads.load(), 0);
  // Concurrent reads share the leader's answers (at most one read point per read).
  EXPECT_LE(standby.rounds(), static_cast<uint64_t>(reads.load() + failed.load()));
  std::printf("%d reads through the standby, %llu read points, %d saw the key change\n",
              reads.load(), static_cast<unsigned long long>(standby.rounds()), inconsistent.load());
}

TEST_F(ReadIndexStandbyTest, ALaggingStandbyReadsOnlyOnceItsStoreHoldsTheReadPoint) {
  ASSERT_TRUE(nodes_[0]->Put("data/k", "0").ok());
  ASSERT_TRUE(CaughtUp(1));
  // Node 2 stops; the others go on without it.
  nodes_[1].reset();
  for (int v = 1; v <= 50; ++v) ASSERT_TRUE(nodes_[0]->Put("data/k", std::to_string(v)).ok());
  // It starts again from its own log, its store rebuilt: behind until the leader reaches it.
  auto restarted = raft::RaftStorage::Start(options_[1]);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  nodes_[1] = std::move(*restarted);
  const uint64_t behind = nodes_[1]->StoreIndex();
  StandbyReads standby(nodes_[1].get(),
                       [&](uint64_t term) { return check_->PointFor(2, term, *rounds_); });
  ASSERT_TRUE(standby.Begin(absl::Seconds(30)).ok());
  EXPECT_EQ(nodes_[1]->Get("data/k").value().value_or(""), "50");
  std::printf("store index %llu at the restart, %llu once the read began\n",
              static_cast<unsigned long long>(behind),
              static_cast<unsigned long long>(nodes_[1]->StoreIndex()));
}

TEST_F(ReadIndexStandbyTest, AStandbyWithoutALeaderAnswerDoesNotRead) {
  StandbyReads standby(nodes_[1].get(), [](uint64_t) -> absl::StatusOr<ReadPoint> {
    return absl::UnavailableError("the leader does not answer");
  });
  EXPECT_TRUE(absl::IsUnavailable(standby.Begin(absl::Seconds(1))));
  // A read point the store does not reach in time.
  StandbyReads ahead(nodes_[1].get(), [&](uint64_t term) -> absl::StatusOr<ReadPoint> {
    return ReadPoint{term, nodes_[0]->CommitIndex() + 1000};
  });
  EXPECT_TRUE(absl::IsDeadlineExceeded(ahead.Begin(absl::Milliseconds(200))));
}

// Writes that reach the loop together are joined into one log entry: each still gets its own
// answer, and every node applies them all, in the order they were joined.
TEST_F(ReadIndexStandbyTest, ConcurrentWritesAreJoinedAndEachIsAppliedEverywhere) {
  const uint64_t before = nodes_[0]->CommitIndex();
  constexpr int kThreads = 12, kEach = 40;
  std::atomic<int> failed{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        // Two ops per write: the last value of a key shared by all, and one key of its own.
        const std::string v = std::to_string(t) + "/" + std::to_string(i);
        if (!nodes_[0]
                 ->Apply({storage::BatchOp::Put("data/last/" + std::to_string(t), v),
                          storage::BatchOp::Put("data/w/" + v, v)})
                 .ok()) {
          ++failed;
        }
      }
    });
  }
  for (auto& w : writers) w.join();
  ASSERT_EQ(failed.load(), 0);
  const uint64_t entries = nodes_[0]->CommitIndex() - before;
  EXPECT_LE(entries, static_cast<uint64_t>(kThreads * kEach));
  std::printf("%d writes in %llu log entries\n", kThreads * kEach,
              static_cast<unsigned long long>(entries));
  for (size_t n = 0; n < 3; ++n) {
    ASSERT_TRUE(CaughtUp(n));
    for (int t = 0; t < kThreads; ++t) {
      EXPECT_EQ(nodes_[n]->Get("data/last/" + std::to_string(t)).value().value_or(""),
                std::to_string(t) + "/" + std::to_string(kEach - 1))
          << "node " << n + 1;
      for (int i = 0; i < kEach; ++i) {
        const std::string v = std::to_string(t) + "/" + std::to_string(i);
        ASSERT_EQ(nodes_[n]->Get("data/w/" + v).value().value_or(""), v) << "node " << n + 1;
      }
    }
  }
}

TEST(ReadIndexClusterTest, StoreKeysBelongToTheCoresTablesOrToNone) {
  using cluster_internal::StandbyTableOf;
  EXPECT_EQ(StandbyTableOf("logical/0c5e/data/app"), 0u);
  EXPECT_EQ(StandbyTableOf("sys/token/id/ab12"), 0u);
  EXPECT_EQ(StandbyTableOf("sys/token/accessor/ab12"), 0u);
  EXPECT_EQ(StandbyTableOf("sys/token/cubbyhole/ab12/x"), 0u);
  EXPECT_EQ(StandbyTableOf("sys/audit/0c5e/state-n1.ab12"), 0u);
  EXPECT_EQ(StandbyTableOf("core/raft/removed/n4"), 0u);
  EXPECT_EQ(StandbyTableOf("sys/policy/reader"), 2u);
  EXPECT_EQ(StandbyTableOf("identity/entity/e1"), 3u);
  EXPECT_EQ(StandbyTableOf("identity/alias-key/x"), 3u);
  // The core's own tables, and anything not known to be read at each use.
  for (const char* key :
       {"core/mounts", "core/audit", "core/keyring", "sys/token/salt", "sys/audit/0c5e/salt",
        "core/snapshot-restore", "sys/system/x", "something/new"}) {
    EXPECT_EQ(StandbyTableOf(key), 1u) << key;
  }
}

TEST(ReadIndexPoolTest, ElasticPoolRunsEachTaskAtOnceAndKeepsItsThreads) {
  std::atomic<int> running{0};
  std::atomic<bool> release{false};
  std::mutex ids_mu;
  std::set<std::thread::id> ids;
  {
    raft::ElasticPool pool(3);
    // Three tasks that block: each gets a thread of its own at once.
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(pool.Post([&] {
        {
          std::lock_guard<std::mutex> lock(ids_mu);
          ids.insert(std::this_thread::get_id());
        }
        ++running;
        while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        --running;
      }));
    }
    ASSERT_TRUE(testing::Eventually([&] { return running.load() == 3; }, 30));
    // A fourth while all three are busy: refused (the caller answers "busy").
    EXPECT_FALSE(pool.Post([] {}));
    release.store(true);
    ASSERT_TRUE(testing::Eventually([&] { return running.load() == 0; }, 30));
    // Later tasks reuse the threads.
    for (int i = 0; i < 20; ++i) {
      std::atomic<bool> ran{false};
      ASSERT_TRUE(testing::Eventually(
          [&] {
            return pool.Post([&] {
              {
                std::lock_guard<std::mutex> lock(ids_mu);
                ids.insert(std::this_thread::get_id());
              }
              ran.store(true);
            });
          },
          30));
      ASSERT_TRUE(testing::Eventually([&] { return ran.load(); }, 30));
    }
  }  // the destructor joins the threads
  EXPECT_EQ(ids.size(), 3u);
}

}  // namespace
}  // namespace strongroom::broker
