// Raft replication with real nodes: every node is its own strongroom-raft-node process
// (RaftStorage: libraft, the mutual-TLS transport, RocksDB) on loopback, with certificates from a
// cluster CA made by the openssl CLI for each test. Waits poll with a generous deadline (liveness,
// not speed: no timing is asserted).
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/cluster_support.h"

namespace {

using strongroom::testing::ClusterCerts;
using strongroom::testing::Eventually;
using strongroom::testing::FreeLoopbackPort;
using strongroom::testing::MakeClusterCerts;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class Node {
 public:
  Node(uint64_t id, std::string dir, const ClusterCerts& certs, std::vector<std::string> extra = {})
      : id_(id), dir_(std::move(dir)), certs_(certs), extra_(std::move(extra)) {
    address_ = "127.0.0.1:" + std::to_string(FreeLoopbackPort());
  }
  ~Node() { Kill(); }

  const std::string& address() const { return address_; }
  const std::string& dir() const { return dir_; }
  uint64_t id() const { return id_; }
  std::string log() const { return ReadFile(dir_ + ".log"); }

  void Start(bool bootstrap = false) {
    int in[2], out[2];
    ASSERT_EQ(::pipe2(in, O_CLOEXEC), 0);
    ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
    std::vector<std::string> args = {STRONGROOM_RAFT_NODE,
                                     "--id",
                                     std::to_string(id_),
                                     "--address",
                                     address_,
                                     "--dir",
                                     dir_,
                                     "--ca",
                                     certs_.ca,
                                     "--cert",
                                     certs_.cert,
                                     "--key",
                                     certs_.key};
    if (bootstrap) args.push_back("--bootstrap");
    args.insert(args.end(), extra_.begin(), extra_.end());
    std::string log_path = dir_ + ".log";
    pid_ = ::fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      ::dup2(log, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    to_ = in[1];
    from_ = out[0];
    buffer_.clear();
    ASSERT_EQ(ReadLine(), "started") << log();
  }

  // One command, one answer line.
  std::string Cmd(const std::string& line) {
    std::string l = line + "\n";
    if (::write(to_, l.data(), l.size()) != static_cast<ssize_t>(l.size())) return "<write failed>";
    return ReadLine();
  }

  // SIGKILL only: a thread blocked in Cmd() sees EOF; Kill() reaps and closes later.
  void Signal() {
    if (pid_ > 0) ::kill(pid_, SIGKILL);
  }

  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
    ::close(to_);
    ::close(from_);
  }

  // "quit", then the exit status.
  int Stop() {
    Cmd("quit");
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    ::close(to_);
    ::close(from_);
    return status;
  }

 private:
  std::string ReadLine() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (true) {
      size_t nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now())
                      .count();
      if (left <= 0) return "<timeout>";
      pollfd p{from_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char buf[4096];
      ssize_t n = ::read(from_, buf, sizeof(buf));
      if (n <= 0) return "<eof>";
      buffer_.append(buf, static_cast<size_t>(n));
    }
  }

  uint64_t id_;
  std::string dir_;
  ClusterCerts certs_;
  std::vector<std::string> extra_;
  std::string address_;
  pid_t pid_ = -1;
  int to_ = -1, from_ = -1;
  std::string buffer_;
};

class RaftTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::signal(SIGPIPE, SIG_IGN);  // a killed node's stdin
    char tmpl[] = "/tmp/sr-raft-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    certs_ = MakeClusterCerts(dir_ + "/pki", "cluster");
  }
  void TearDown() override {
    nodes_.clear();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  Node& Add(uint64_t id, std::vector<std::string> extra = {}) {
    nodes_.push_back(
        std::make_unique<Node>(id, dir_ + "/node" + std::to_string(id), certs_, std::move(extra)));
    return *nodes_.back();
  }

  // Node 1 bootstraps; the others join through it. Returns once all three are voters.
  void StartCluster(std::vector<std::string> extra = {}) {
    Node& n1 = Add(1, extra);
    n1.Start(/*bootstrap=*/true);
    ASSERT_TRUE(Eventually([&] { return n1.Cmd("isleader") == "yes"; })) << n1.log();
    for (uint64_t id : {2, 3}) {
      Node& n = Add(id, extra);
      n.Start();
      ASSERT_EQ(n1.Cmd("add " + std::to_string(id) + " " + n.address()), "ok") << n1.log();
    }
  }

  Node* LeaderAmong(const std::vector<Node*>& nodes) {
    for (Node* n : nodes)
      if (n->Cmd("isleader") == "yes") return n;
    return nullptr;
  }

  std::string dir_;
  ClusterCerts certs_;
  std::vector<std::unique_ptr<Node>> nodes_;
};

TEST_F(RaftTest, SingleNodeBootstrapsWritesAndKeepsDataAcrossRestart) {
  Node& n = Add(1);
  n.Start(/*bootstrap=*/true);
  ASSERT_TRUE(Eventually([&] { return n.Cmd("isleader") == "yes"; })) << n.log();
  EXPECT_EQ(n.Cmd("put a/b 1"), "ok");
  EXPECT_EQ(n.Cmd("put a/c/d 2"), "ok");
  EXPECT_EQ(n.Cmd("del a/b"), "ok");
  EXPECT_EQ(n.Cmd("list a/"), "list c/");
  EXPECT_EQ(n.Stop(), 0);

  // Restart (bootstrap again is harmless): the state machine is rebuilt from the log.
  n.Start(/*bootstrap=*/true);
  EXPECT_THAT(n.log(), HasSubstr("holds Raft state already"));
  ASSERT_TRUE(Eventually([&] { return n.Cmd("isleader") == "yes"; }));
  ASSERT_EQ(n.Cmd("barrier"), "ok");
  EXPECT_EQ(n.Cmd("get a/c/d"), "value 2");
  EXPECT_EQ(n.Cmd("get a/b"), "none");
}

TEST_F(RaftTest, ThreeNodesReplicateFollowersRefuseWritesAndTheClusterSurvivesItsLeader) {
  StartCluster();
  Node& n1 = *nodes_[0];
  Node& n2 = *nodes_[1];
  Node& n3 = *nodes_[2];
  EXPECT_EQ(n1.Cmd("config"), "config 1=" + n1.address() + ":voter 2=" + n2.address() +
                                  ":voter 3=" + n3.address() + ":voter");
  for (int i = 0; i < 50; ++i)
    ASSERT_EQ(n1.Cmd("put k" + std::to_string(i) + " v" + std::to_string(i)), "ok");
  for (Node* n : {&n2, &n3}) {
    EXPECT_TRUE(Eventually([&] { return n->Cmd("get k49") == "value v49"; })) << n->log();
    EXPECT_EQ(n->Cmd("get k0"), "value v0");
    EXPECT_EQ(n->Cmd("leader"), "leader 1 " + n1.address());
    // Writes go to the leader only.
    EXPECT_THAT(n->Cmd("put x y"), StartsWith("error not the leader"));
  }

  // The leader dies: one of the others takes over with everything acknowledged so far.
  n1.Kill();
  Node* leader = nullptr;
  ASSERT_TRUE(Eventually([&] {
    return (leader = LeaderAmong({&n2, &n3})) != nullptr;
  })) << n2.log()
      << n3.log();
  EXPECT_EQ(leader->Cmd("get k49"), "value v49");
  // Two of three is still a majority: writes go on.
  ASSERT_EQ(leader->Cmd("put after failover"), "ok");

  // The old leader comes back from its directory as a follower and catches up.
  n1.Start();
  EXPECT_TRUE(Eventually([&] { return n1.Cmd("get after") == "value failover"; })) << n1.log();
  EXPECT_EQ(n1.Cmd("isleader"), "no");
  EXPECT_EQ(n1.Cmd("get k7"), "value v7");
}

TEST_F(RaftTest, WithoutAMajorityWritesFailInsteadOfBeingAcknowledged) {
  StartCluster();
  Node& n1 = *nodes_[0];
  ASSERT_EQ(n1.Cmd("put before yes"), "ok");
  nodes_[1]->Kill();
  nodes_[2]->Kill();
  // The lone leader steps down once it misses its majority; the write is never acknowledged.
  std::string answer = n1.Cmd("put alone no");
  EXPECT_THAT(answer, StartsWith("error")) << n1.log();
  EXPECT_TRUE(Eventually([&] { return n1.Cmd("isleader") == "no"; }));
  EXPECT_THAT(n1.Cmd("put later no"), StartsWith("error not the leader"));
}

TEST_F(RaftTest, ALaggingNodeCatchesUpFromASnapshot) {
  // Small threshold: snapshots every 16 entries, 4 kept behind.
  StartCluster({"--snapshot-threshold", "16", "--snapshot-trailing", "4"});
  Node& n1 = *nodes_[0];
  Node& n3 = *nodes_[2];
  n3.Kill();
  for (int i = 0; i < 120; ++i)
    ASSERT_EQ(n1.Cmd("put s/" + std::to_string(i) + " " + std::to_string(i * i)), "ok");
  ASSERT_EQ(n1.Cmd("del s/0"), "ok");
  auto has_snapshot = [&](const std::string& node) {
    for (const auto& e : std::filesystem::directory_iterator(dir_ + "/" + node + "/raft"))
      if (e.path().filename().string().starts_with("snapshot-")) return true;
    return false;
  };
  // The leader compacted its log: node 3 needs entries it no longer has. The connected follower
  // compacts at the same threshold (issue 16, defect 4: followers used to wait for 8 x the
  // threshold, to dodge a libraft 0.22.1 crash that packaging/libraft's patch now fixes).
  EXPECT_TRUE(has_snapshot("node1"));
  EXPECT_TRUE(Eventually([&] { return has_snapshot("node2"); })) << nodes_[1]->log();
  n3.Start();
  EXPECT_TRUE(Eventually([&] { return n3.Cmd("get s/119") == "value 14161"; })) << n3.log();
  EXPECT_EQ(n3.Cmd("get s/5"), "value 25");
  EXPECT_EQ(n3.Cmd("get s/0"), "none");

  // Past the snapshot, node 3 follows the log again.
  for (int i = 0; i < 20; ++i) ASSERT_EQ(n1.Cmd("put t/" + std::to_string(i) + " x"), "ok");
  EXPECT_TRUE(Eventually([&] { return n3.Cmd("get t/19") == "value x"; })) << n3.log();
}

// A store larger than a snapshot piece (4 MiB): the snapshot is written in pieces, sent to a
// node that lags, restored there in batches, and read back from disk after a restart.
TEST_F(RaftTest, ASnapshotOfManyPiecesIsSentRestoredAndReloaded) {
  StartCluster({"--snapshot-threshold", "16", "--snapshot-trailing", "4"});
  Node& n1 = *nodes_[0];
  Node& n3 = *nodes_[2];
  n3.Kill();
  for (int i = 0; i < 40; ++i) {
    const std::string key = "big/" + std::string(1, static_cast<char>('a' + i % 26)) +
                            std::to_string(i) + static_cast<char>('A' + i % 26);
    ASSERT_EQ(n1.Cmd("putbig " + key + " " + std::to_string((1 << 20) + i)), "ok") << n1.log();
  }
  n3.Start();
  EXPECT_TRUE(Eventually([&] { return n3.Cmd("getbig big/n39N") == "big 1048615"; })) << n3.log();
  // The snapshot (over 40 MiB) was held in file-backed buffers, not in RAM (spill.h): where the
  // leader loaded it to send it, and where n3 received it.
  EXPECT_THAT(n1.log(), HasSubstr("-byte Raft buffer is file-backed")) << n1.log();
  EXPECT_THAT(n3.log(), HasSubstr("-byte Raft buffer is file-backed")) << n3.log();
  // The leader loaded a snapshot for n3 once, plus once more if a heartbeat answer crossed it
  // or if the leader finished a newer snapshot (at index 32) during the install: not again for
  // every heartbeat n3 refused before the snapshot reached it (libraft patch 0006; without it,
  // 33 to 36 loads of the whole snapshot for this one install).
  EXPECT_LE(Count(n1.log(), "loading the last snapshot to send it to a follower"), 3u) << n1.log();
  for (Node* n : {&n1, &n3}) {
    n->Kill();
    n->Start();
  }
  for (int i = 0; i < 40; ++i) {
    const std::string key = "big/" + std::string(1, static_cast<char>('a' + i % 26)) +
                            std::to_string(i) + static_cast<char>('A' + i % 26);
    EXPECT_TRUE(Eventually([&] {
      return n3.Cmd("getbig " + key) == "big " + std::to_string((1 << 20) + i);
    })) << key
        << ": " << n3.Cmd("getbig " + key);
  }
}

// A follower that lost its disk (same id, empty directory) is brought up to date and keeps
// following. The leader still holds the match index it had reached on it; libraft 0.22.1 kept it
// when the follower refused below it, and with the next index under the match index it sent
// only heartbeats from then on (libraft patch 0006 lowers it). The log is not compacted here.
TEST_F(RaftTest, AFollowerThatLostItsDiskCatchesUpAndKeepsFollowing) {
  StartCluster();
  Node& n1 = *nodes_[0];
  Node& n3 = *nodes_[2];
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(n1.Cmd("put k" + std::to_string(i) + " v" + std::to_string(i)), "ok");
  }
  ASSERT_TRUE(Eventually([&] { return n3.Cmd("get k19") == "value v19"; })) << n3.log();
  n3.Kill();
  std::filesystem::remove_all(n3.dir());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // as long as a restart
  n3.Start();
  ASSERT_EQ(n1.Cmd("put after 1"), "ok");
  EXPECT_TRUE(Eventually([&] { return n3.Cmd("get after") == "value 1"; })) << n3.log();
  EXPECT_EQ(n3.Cmd("get k0"), "value v0");
}

// Issue 16, item 7 (the install side): a follower restores a snapshot received from its leader
// off its Raft loop. While the restore is held (--hold-restore), the follower still takes the
// leader's entries and answers; the only other voter being down, the leader commits nothing
// without it. On the loop, the held restore kept the follower from answering: the leader lost
// its majority and no write after the snapshot committed.
TEST_F(RaftTest, AFollowerRestoringASnapshotKeepsAnsweringItsLeader) {
  const std::vector<std::string> small = {"--snapshot-threshold", "16", "--snapshot-trailing", "4"};
  const std::string hold = dir_ + "/hold-restore";
  Node& n1 = Add(1, small);
  n1.Start(/*bootstrap=*/true);
  ASSERT_TRUE(Eventually([&] { return n1.Cmd("isleader") == "yes"; })) << n1.log();
  Node& n2 = Add(2, small);
  n2.Start();
  ASSERT_EQ(n1.Cmd("add 2 " + n2.address()), "ok") << n1.log();
  std::vector<std::string> held = small;
  held.insert(held.end(), {"--hold-restore", hold});
  Node& n3 = Add(3, held);
  n3.Start();
  ASSERT_EQ(n1.Cmd("add 3 " + n3.address()), "ok") << n1.log();
  n3.Kill();
  // Node 3 has no snapshot of its own: the restore held below is the one received.
  for (const auto& e : std::filesystem::directory_iterator(n3.dir() + "/raft")) {
    ASSERT_FALSE(e.path().filename().string().starts_with("snapshot-")) << e.path();
  }
  for (int i = 0; i < 120; ++i) {
    ASSERT_EQ(n1.Cmd("put s/" + std::to_string(i) + " " + std::to_string(i * i)), "ok");
  }
  // Node 3 comes back (its restore to be held) while node 2 still gives the leader its
  // majority; node 2 goes once node 3 holds the restore. (Killing node 2 first left the leader
  // without a majority until node 3 was up; under the sanitizers that could take longer than an
  // election timeout, and the elections that followed are not what this test is about.)
  std::ofstream(hold) << "held\n";
  n3.Start();
  ASSERT_TRUE(Eventually([&] { return n3.log().find("restore held") != std::string::npos; }))
      << n3.log() << n1.log();
  n2.Kill();
  ASSERT_TRUE(Eventually([&] { return n1.Cmd("isleader") == "yes"; })) << n1.log();
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(n1.Cmd("put during/" + std::to_string(i) + " x"), "ok") << i << "\n"
                                                                      << n1.log() << n3.log();
  }
  std::filesystem::remove(hold);
  EXPECT_TRUE(Eventually([&] { return n3.Cmd("get during/4") == "value x"; })) << n3.log();
  EXPECT_EQ(n3.Cmd("get s/119"), "value 14161");
  EXPECT_THAT(n3.log(), HasSubstr("restore released"));
}

// The same in the order the test above had until it was changed: node 2 goes first, so node 1
// steps down, then node 3 comes back with a log that node 1 compacted past. Node 1 can only lead
// again with node 3's vote, and only commit once node 3 takes entries past the snapshot it
// restores. When node 3 was killed before it stored its own promotion to voter (it comes back a
// spare in its own eyes, and never campaigns) and then received a heartbeat node 1 had queued
// while it led, node 3 refused node 1's every vote for good and no node ever led again (1 run in
// 4 to 10 under ASan and load; libraft patch 0007, tests/unit/raft/sticky_leader_test.cc).
TEST_F(RaftTest, AFollowerRestoringASnapshotAfterTheOtherVoterDiedLetsTheLeaderLeadAgain) {
  const std::vector<std::string> small = {"--snapshot-threshold", "16", "--snapshot-trailing", "4"};
  const std::string hold = dir_ + "/hold-restore";
  Node& n1 = Add(1, small);
  n1.Start(/*bootstrap=*/true);
  ASSERT_TRUE(Eventually([&] { return n1.Cmd("isleader") == "yes"; })) << n1.log();
  Node& n2 = Add(2, small);
  n2.Start();
  ASSERT_EQ(n1.Cmd("add 2 " + n2.address()), "ok") << n1.log();
  std::vector<std::string> held = small;
  held.insert(held.end(), {"--hold-restore", hold});
  Node& n3 = Add(3, held);
  n3.Start();
  ASSERT_EQ(n1.Cmd("add 3 " + n3.address()), "ok") << n1.log();
  n3.Kill();
  for (int i = 0; i < 120; ++i) {
    ASSERT_EQ(n1.Cmd("put s/" + std::to_string(i) + " " + std::to_string(i * i)), "ok");
  }
  n2.Kill();
  std::ofstream(hold) << "held\n";
  n3.Start();
  ASSERT_TRUE(Eventually([&] { return n3.log().find("restore held") != std::string::npos; }, 90))
      << "n3:\n"
      << n3.log() << "n1:\n"
      << n1.log();
  ASSERT_TRUE(Eventually([&] { return n1.Cmd("isleader") == "yes"; }, 90)) << n1.log();
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(n1.Cmd("put during/" + std::to_string(i) + " x"), "ok") << i << "\n"
                                                                      << n1.log() << n3.log();
  }
  std::filesystem::remove(hold);
  EXPECT_TRUE(Eventually([&] { return n3.Cmd("get during/4") == "value x"; }, 90)) << n3.log();
  EXPECT_EQ(n3.Cmd("get s/119"), "value 14161");
}

// A node stopped while its snapshot is being written out off the loop (libraft patch 0004):
// the stop waits for that work, exits cleanly, and the node comes back with every value. Each
// round stops the leader right after the write that makes a snapshot of about 8 MiB due.
TEST_F(RaftTest, StoppingDuringAnOffLoopSnapshotIsClean) {
  Node& n1 = Add(1, {"--snapshot-threshold", "8", "--snapshot-trailing", "2"});
  n1.Start(/*bootstrap=*/true);
  ASSERT_TRUE(Eventually([&] { return n1.Cmd("isleader") == "yes"; })) << n1.log();
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 8; ++i) {
      ASSERT_EQ(n1.Cmd("putbig big/" + std::to_string(i) + "x " + std::to_string(1 << 20)), "ok")
          << n1.log();
    }
    EXPECT_EQ(n1.Stop(), 0) << n1.log();
    n1.Start();
    ASSERT_TRUE(Eventually([&] { return n1.Cmd("isleader") == "yes"; })) << n1.log();
    for (int i = 0; i < 8; ++i) {
      EXPECT_EQ(n1.Cmd("getbig big/" + std::to_string(i) + "x"), "big 1048576") << n1.log();
    }
  }
}

TEST_F(RaftTest, RemovedNodeLeavesTheConfiguration) {
  StartCluster();
  Node& n1 = *nodes_[0];
  ASSERT_EQ(n1.Cmd("remove 3"), "ok");
  EXPECT_EQ(n1.Cmd("config"),
            "config 1=" + n1.address() + ":voter 2=" + nodes_[1]->address() + ":voter");
  EXPECT_THAT(n1.Cmd("remove 9"), StartsWith("error"));
  EXPECT_THAT(n1.Cmd("add 2 127.0.0.1:1"), StartsWith("error"));
  // Two voters left, both needed: still writable.
  EXPECT_EQ(n1.Cmd("put two yes"), "ok");
}

TEST_F(RaftTest, ThePeerPortSpeaksOnlyMutualTlsWithTheClusterCa) {
  Node& n = Add(1);
  n.Start(/*bootstrap=*/true);
  ASSERT_TRUE(Eventually([&] { return n.Cmd("isleader") == "yes"; }));
  ClusterCerts rogue = MakeClusterCerts(dir_ + "/rogue", "rogue");
  auto handshake = [&](const std::string& cert_args) {
    std::string cmd = "echo | timeout 20 openssl s_client -connect " + n.address() + " -CAfile " +
                      certs_.ca + " " + cert_args + " -verify_return_error -tls1_3 > " + dir_ +
                      "/sclient.out 2>&1";
    int rc = std::system(cmd.c_str());
    return std::make_pair(rc, ReadFile(dir_ + "/sclient.out"));
  };
  // A member's certificate: the handshake completes (TLS 1.3, server verified against the CA).
  auto [ok_rc, ok_out] = handshake("-cert " + certs_.cert + " -key " + certs_.key);
  EXPECT_THAT(ok_out, HasSubstr("Verify return code: 0 (ok)"));
  EXPECT_THAT(ok_out, HasSubstr("TLSv1.3"));
  // No client certificate, or one from another CA: the node refuses and says so.
  auto [none_rc, none_out] = handshake("");
  auto [rogue_rc, rogue_out] = handshake("-cert " + rogue.cert + " -key " + rogue.key);
  EXPECT_TRUE(Eventually([&] {
    std::string log = n.log();
    size_t first = log.find("refused a peer connection");
    return first != std::string::npos &&
           log.find("refused a peer connection", first + 1) != std::string::npos;
  })) << n.log();
  EXPECT_THAT(n.log(), HasSubstr("TLS handshake"));
  // Garbage instead of TLS is refused too, and the node keeps serving.
  std::string junk = "echo 'GET / HTTP/1.0' | timeout 5 openssl s_client -connect " + n.address() +
                     " -quiet > /dev/null 2>&1";
  int junk_rc = std::system(junk.c_str());
  (void)junk_rc;
  EXPECT_EQ(n.Cmd("put still ok"), "ok");
  (void)ok_rc;
  (void)none_rc;
  (void)rogue_rc;
}

TEST_F(RaftTest, ANodeWithAnotherCasCertificateCannotJoin) {
  Node& n1 = Add(1);
  n1.Start(/*bootstrap=*/true);
  ASSERT_TRUE(Eventually([&] { return n1.Cmd("isleader") == "yes"; }));
  ASSERT_EQ(n1.Cmd("put secret 1"), "ok");
  ClusterCerts rogue = MakeClusterCerts(dir_ + "/rogue", "rogue");
  nodes_.push_back(std::make_unique<Node>(2, dir_ + "/rogue-node", rogue));
  Node& r = *nodes_.back();
  r.Start();
  // Added as a spare it would need to catch up first; it never can, so it is never promoted
  // and never sees a byte of the log.
  std::thread adder([&] { n1.Cmd("add 2 " + r.address()); });
  EXPECT_TRUE(Eventually([&] {
    return n1.log().find("TLS handshake") != std::string::npos ||
           r.log().find("TLS handshake") != std::string::npos;
  })) << n1.log()
      << r.log();
  EXPECT_EQ(r.Cmd("get secret"), "none");
  EXPECT_EQ(r.Cmd("applied"), "applied 0");
  n1.Signal();  // ends the pending promotion
  adder.join();
}

}  // namespace
