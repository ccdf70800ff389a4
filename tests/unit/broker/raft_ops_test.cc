// The pure parts of the Raft operations: Go's duration strings (autopilot's last_contact) and the
// peers file of a lost-quorum recovery (Vault's peers.json), read as hostile input.
#include "appliance/broker/raft_ops.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "appliance/broker/raft_recover.h"

namespace strongroom::broker {
namespace {

using ::testing::HasSubstr;

TEST(GoDurationMs, FormatsAsGoDoes) {
  EXPECT_EQ(GoDurationMs(0), "0s");
  EXPECT_EQ(GoDurationMs(87), "87ms");
  EXPECT_EQ(GoDurationMs(999), "999ms");
  EXPECT_EQ(GoDurationMs(1000), "1s");
  EXPECT_EQ(GoDurationMs(1500), "1.5s");
  EXPECT_EQ(GoDurationMs(12'203), "12.203s");
  EXPECT_EQ(GoDurationMs(120'000), "2m0s");
  EXPECT_EQ(GoDurationMs(3'600'000), "1h0m0s");
  EXPECT_EQ(GoDurationMs(3'723'250), "1h2m3.25s");
}

class PeersFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sr-peers-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& text) {
    const std::string path = dir_ + "/peers.json";
    std::ofstream(path, std::ios::trunc) << text;
    return path;
  }
  std::string dir_;
};

TEST_F(PeersFileTest, ReadsVaultsFormat) {
  auto peers = ReadPeersFile(Write(
      R"([{"id":"node1","address":"10.0.0.1:8201","non_voter":false},)"
      R"( {"id":"node2","address":"10.0.0.2:8201","non_voter":true}, {"id":"n3","address":"h:1"}])"));
  ASSERT_TRUE(peers.ok()) << peers.status();
  ASSERT_EQ(peers->size(), 3u);
  EXPECT_EQ((*peers)[0].node_id, "node1");
  EXPECT_EQ((*peers)[0].cluster_addr, "10.0.0.1:8201");
  EXPECT_TRUE((*peers)[0].voter);
  EXPECT_FALSE((*peers)[1].voter);
  EXPECT_TRUE((*peers)[2].voter);  // non_voter absent: a voter
}

TEST_F(PeersFileTest, RefusesWhatIsNotAWellFormedListOfMembers) {
  const std::pair<std::string, std::string> cases[] = {
      {"", "must be a JSON array"},
      {"{}", "must be a JSON array"},
      {"[]", "lists no member"},
      {"[1]", "must be a JSON array"},
      {R"([{"id":"a"}])", "must be a JSON array"},
      {R"([{"id":"a","address":"h:1","extra":1}])", "unknown field \"extra\""},
      {R"([{"id":"a|b","address":"h:1"}])", "id must be"},
      {R"([{"id":"a","address":"h:1|x"}])", "must be host:port"},
      {R"([{"id":"a","address":"nohost"}])", "must be host:port"},
      {R"([{"id":"a","address":"h:1"},{"id":"a","address":"h:2"}])", "listed twice"},
      {R"([{"id":"a","address":"h:1","non_voter":"maybe"}])", "must be a JSON array"},
      {"[[[[[[[[1]]]]]]]]", "must be a JSON array"},
  };
  for (const auto& [text, want] : cases) {
    auto peers = ReadPeersFile(Write(text));
    ASSERT_FALSE(peers.ok()) << text;
    EXPECT_THAT(std::string(peers.status().message()), HasSubstr(want)) << text;
  }
  EXPECT_THAT(std::string(ReadPeersFile(Write(std::string(70 * 1024, ' '))).status().message()),
              HasSubstr("larger than 64 KiB"));
  EXPECT_FALSE(ReadPeersFile(dir_ + "/missing.json").ok());
}

TEST(RecoveryDecision, RefusesAFileWithoutThisNodeOrWithAStranger) {
  const std::vector<raft::Peer> current = {
      {11, "127.0.0.1:1|n1|https://127.0.0.1:0", true},
      {12, "127.0.0.1:3|n2|https://127.0.0.1:2", true},
  };
  auto decide = RecoveryDecision({{"n2", "127.0.0.1:3", true}}, "n1", {});
  auto r = decide(current);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("this node (n1) must be in the peers file"));
  decide = RecoveryDecision({{"n1", "127.0.0.1:1", true}, {"n9", "127.0.0.1:9", true}}, "n1", {});
  r = decide(current);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("\"n9\" is not in the current Raft configuration"));
}

TEST(RecoveryDecision, KeepsTheApiAddressAndIdAndTakesTheNewClusterAddress) {
  // n2 answers nowhere (nothing listens on port 9 of loopback here), so one of two voters is
  // reachable: not a majority.
  const std::vector<raft::Peer> current = {
      {11, "127.0.0.1:1|n1|https://127.0.0.1:0", true},
      {12, "127.0.0.1:9|n2|https://127.0.0.1:8", true},
  };
  auto r = RecoveryDecision({{"n1", "10.1.1.1:8201", true}}, "n1", {})(current);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].id, 11u);
  EXPECT_EQ((*r)[0].address, "10.1.1.1:8201|n1|https://127.0.0.1:0");
  EXPECT_TRUE((*r)[0].voter);
}

}  // namespace
}  // namespace strongroom::broker
