// One conformance suite for every Storage implementation (TiKV engine_traits style).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <thread>

#include "appliance/raft/raft_storage.h"
#include "appliance/storage/memory_storage.h"
#include "appliance/storage/rocksdb_storage.h"
#include "tests/support/cluster_support.h"

namespace strongroom::storage {
namespace {

using ::testing::ElementsAre;

struct Impl {
  std::string name;
  std::function<std::unique_ptr<Storage>(const std::string& dir)> make;
};

// A one-node Raft cluster (libraft, the TLS transport, RocksDB state machine) on a free loopback
// port, with a cluster CA and certificate made by the openssl CLI; returned once it leads.
std::unique_ptr<Storage> StartSingleRaftNode(const std::string& dir) {
  testing::ClusterCerts certs = testing::MakeClusterCerts(dir, "node");
  if (certs.ca.empty()) return nullptr;
  raft::RaftOptions o;
  o.node_id = 1;
  o.address = "127.0.0.1:" + std::to_string(testing::FreeLoopbackPort());
  o.dir = dir + "/raft-node";
  o.tls = {certs.ca, certs.cert, certs.key, nullptr};
  o.bootstrap = true;
  o.election_timeout_ms = 200;
  o.heartbeat_timeout_ms = 20;
  auto node = raft::RaftStorage::Start(o);
  if (!node.ok()) return nullptr;
  testing::Eventually([&] { return (*node)->IsLeader(); }, 30);
  return std::move(*node);
}

class StorageConformance : public ::testing::TestWithParam<Impl> {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sr-storage-XXXXXX";
    dir_ = mkdtemp(tmpl);
    s_ = GetParam().make(dir_ + "/db");
    ASSERT_NE(s_, nullptr);
  }
  void TearDown() override {
    s_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::string dir_;
  std::unique_ptr<Storage> s_;
};

TEST_P(StorageConformance, GetPutDelete) {
  EXPECT_FALSE(s_->Get("a").value().has_value());
  ASSERT_TRUE(s_->Put("a", std::string("v\0x", 3)).ok());
  EXPECT_EQ(*s_->Get("a").value(), std::string("v\0x", 3));
  ASSERT_TRUE(s_->Put("a", "w").ok());
  EXPECT_EQ(*s_->Get("a").value(), "w");
  ASSERT_TRUE(s_->Delete("a").ok());
  EXPECT_FALSE(s_->Get("a").value().has_value());
  EXPECT_TRUE(s_->Delete("never").ok());
}

TEST_P(StorageConformance, ListFoldsFoldersLikeVault) {
  for (const char* k : {"a/b", "a/c/d", "a/c/e", "a/d", "ab", "a/c0", "b/x"})
    ASSERT_TRUE(s_->Put(k, "1").ok());
  EXPECT_THAT(s_->List("a/").value(), ElementsAre("b", "c/", "c0", "d"));
  EXPECT_THAT(s_->List("a/c/").value(), ElementsAre("d", "e"));
  EXPECT_THAT(s_->List("").value(), ElementsAre("a/", "ab", "b/"));
  EXPECT_TRUE(s_->List("zzz/").value().empty());
}

TEST_P(StorageConformance, BatchIsAtomicAndOrdered) {
  ASSERT_TRUE(s_->Put("gone", "1").ok());
  ASSERT_TRUE(s_->Apply({BatchOp::Put("x", "1"), BatchOp::Put("y", "2"), BatchOp::Delete("gone"),
                         BatchOp::Put("x", "3")})
                  .ok());
  EXPECT_EQ(*s_->Get("x").value(), "3");
  EXPECT_EQ(*s_->Get("y").value(), "2");
  EXPECT_FALSE(s_->Get("gone").value().has_value());
}

// Submit: in commit order with everything else, durable once Wait says so; GetLatest sees the
// submitted writes at once (a synchronous store has none pending), through a View too.
TEST_P(StorageConformance, SubmittedWritesCommitInOrder) {
  ASSERT_TRUE(s_->Put("gone", "1").ok());
  View v(s_.get(), "p/");
  std::shared_ptr<PendingWrite> first = v.Submit({BatchOp::Put("a", "1"), BatchOp::Put("b", "1")});
  std::shared_ptr<PendingWrite> second =
      s_->Submit({BatchOp::Put("p/a", "2"), BatchOp::Delete("gone")});
  EXPECT_EQ(*v.GetLatest("a").value(), "2");
  EXPECT_EQ(*v.GetLatest("b").value(), "1");
  EXPECT_FALSE(s_->GetLatest("gone").value().has_value());
  ASSERT_TRUE(second->Wait().ok());
  EXPECT_TRUE(second->Done());
  EXPECT_TRUE(first->Done());  // committed no later than `second`
  ASSERT_TRUE(first->Wait().ok());
  EXPECT_EQ(*s_->Get("p/a").value(), "2");
  EXPECT_EQ(*v.Get("b").value(), "1");
  EXPECT_FALSE(s_->Get("gone").value().has_value());
}

TEST_P(StorageConformance, ViewPrefixesAndDeletePrefix) {
  View v(s_.get(), "logical/u1/");
  ASSERT_TRUE(v.Put("k/1", "a").ok());
  ASSERT_TRUE(v.Apply({BatchOp::Put("k/2", "b")}).ok());
  EXPECT_EQ(*s_->Get("logical/u1/k/1").value(), "a");
  EXPECT_THAT(v.List("k/").value(), ElementsAre("1", "2"));
  ASSERT_TRUE(s_->Put("logical/u2/k", "other").ok());
  ASSERT_TRUE(DeletePrefix(*s_, "logical/u1/").ok());
  EXPECT_TRUE(s_->List("logical/u1/").value().empty());
  EXPECT_TRUE(s_->Get("logical/u2/k").value().has_value());
}

INSTANTIATE_TEST_SUITE_P(
    All, StorageConformance,
    ::testing::Values(Impl{"memory",
                           [](const std::string&) -> std::unique_ptr<Storage> {
                             return std::make_unique<MemoryStorage>();
                           }},
                      Impl{"rocksdb",
                           [](const std::string& d) -> std::unique_ptr<Storage> {
                             auto s = RocksDbStorage::Open(d);
                             return s.ok() ? std::move(*s) : nullptr;
                           }},
                      Impl{"raft", &StartSingleRaftNode}),
    [](const auto& param_info) { return param_info.param.name; });

TEST(RocksDbStorage, SurvivesReopen) {
  char tmpl[] = "/tmp/sr-rocks-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  {
    auto s = RocksDbStorage::Open(dir + "/db");
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE((*s)->Put("k", "v").ok());
  }
  auto s = RocksDbStorage::Open(dir + "/db");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*(*s)->Get("k").value(), "v");
  std::filesystem::remove_all(dir);
}

// A cluster port someone else holds stops the start with a message that says so (libraft does
// not carry the transport's message over; the start used to fail with "cannot start Raft: ").
TEST(RaftStorageStart, AClusterPortInUseIsNamedInTheError) {
  const std::string dir = testing::NewTempDir("sr-raft-busy");
  ASSERT_FALSE(dir.empty());
  testing::ClusterCerts certs = testing::MakeClusterCerts(dir, "node");
  ASSERT_FALSE(certs.ca.empty());
  const int port = testing::FreeLoopbackPort();
  int holder = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  ASSERT_EQ(::bind(holder, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(::listen(holder, 1), 0);
  raft::RaftOptions o;
  o.node_id = 1;
  o.address = "127.0.0.1:" + std::to_string(port);
  o.dir = dir + "/raft-node";
  o.tls = {certs.ca, certs.cert, certs.key, nullptr};
  o.bootstrap = true;
  auto node = raft::RaftStorage::Start(o);
  ::close(holder);
  ASSERT_FALSE(node.ok());
  EXPECT_THAT(std::string(node.status().message()),
              ::testing::HasSubstr("cannot listen on " + o.address));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace strongroom::storage
