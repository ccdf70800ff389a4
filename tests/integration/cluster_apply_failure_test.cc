// A Raft node whose state machine cannot apply a committed entry (issue 16, defect 5), in a
// cluster of three real strongroomd processes. The leader's fsm/ directory (its RocksDB) is made
// unwritable for real: a 1 MiB tmpfs mounted over it when the test runs as root (the disk is
// full), mode 0500 otherwise (permission denied). Writes of large values then fill RocksDB's
// memtable until its flush to disk fails, and from then on RocksDB refuses every write: the
// leader's state machine cannot apply what the cluster committed. The write that meets the
// failure must get an answer in Vault's error shape (5xx, {"errors":[...]}) instead of hanging;
// the node must stop serving loudly (its log says why; it exits with status 1 so the service
// manager restarts it and the cluster elects another leader); the other two must serve every
// write that was acknowledged; and once its disk is fixed the node comes back as a standby. The
// same on a follower: it exits with status 1 (it must not crash) while the others carry on.
// Waits poll with a generous deadline (liveness, not speed).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "tests/integration/cluster_fixture.h"

namespace strongroom::testing {
namespace {

using ::testing::HasSubstr;

// Makes a directory unwritable for the daemon (a full 1 MiB tmpfs over it as root, mode 0500
// otherwise), and writable again on Fix() or destruction.
class BrokenDir {
 public:
  explicit BrokenDir(std::string path) : path_(std::move(path)) {}
  ~BrokenDir() { Fix(); }
  // "" on success, else why not.
  std::string Break() {
    if (::geteuid() == 0) {
      if (::mount("tmpfs", path_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0700") !=
          0) {
        return std::string("mount tmpfs: ") + std::strerror(errno);
      }
      mounted_ = true;
      return "";
    }
    if (::chmod(path_.c_str(), 0500) != 0) return std::string("chmod: ") + std::strerror(errno);
    chmodded_ = true;
    return "";
  }
  void Fix() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
    if (chmodded_) ::chmod(path_.c_str(), 0700);
    mounted_ = chmodded_ = false;
  }

 private:
  std::string path_;
  bool mounted_ = false;
  bool chmodded_ = false;
};

std::string Tail(const std::string& log) {
  return log.size() > 3000 ? log.substr(log.size() - 3000) : log;
}

class ClusterApplyFailureTest : public ClusterFixture {
 protected:
  // n1 initialised with secret/ (KV v2) and leading; n2 and n3 joined through the API.
  void StartThree() {
    ASSERT_NO_FATAL_FAILURE(StartFirstWithKv());
    Node& n1 = nodes_[0];
    for (const char* name : {"n2", "n3"}) {
      Node& n = AddNode(name);
      ASSERT_TRUE(n.daemon->Start()) << n.daemon->Log();
      ASSERT_EQ(Join(n, n1).status, 200) << n.daemon->Log();
    }
    for (auto& n : nodes_) n.daemon->set_root_token(root_);
    ASSERT_EQ(Health(n1), 200);
  }

  // A write of about 3 MB (three strings just under Vault's 1 MiB string limit) through `n`,
  // bounded by the test's own 120 s (a write that hangs gets status 0). RocksDB's 64 MiB
  // memtable fills after some 20 of them; its flush then fails on a broken fsm/, and RocksDB
  // refuses every write after it.
  HttpResponse WriteBig(Node& n, const std::string& key) {
    const std::string chunk(1000 * 1000, 'v');
    nlohmann::json body = {{"data", {{"a", chunk}, {"b", chunk}, {"c", chunk}, {"d", key}}}};
    HttpRequest req;
    req.method = "POST";
    req.path = "/v1/secret/data/" + key;
    req.body = body.dump();
    req.headers = {{"X-Vault-Token", root_}};
    return SendHttp("127.0.0.1", n.api_port, req, /*timeout_ms=*/120000);
  }
};

TEST_F(ClusterApplyFailureTest, ANodeWhoseStateMachineCannotApplyStopsAndTheClusterCarriesOn) {
  ASSERT_NO_FATAL_FAILURE(StartThree());
  Node& n1 = nodes_[0];
  Node& n2 = nodes_[1];
  Node& n3 = nodes_[2];

  BrokenDir fsm(n1.daemon->data_dir() + "/fsm");
  const std::string broke = fsm.Break();
  ASSERT_EQ(broke, "");

  std::vector<std::string> acknowledged;
  HttpResponse failed;
  std::string failed_key;
  for (int i = 0; i < 60 && failed_key.empty(); ++i) {
    const std::string key = "fill-" + std::to_string(i);
    HttpResponse r = WriteBig(n1, key);
    if (r.status == 200) {
      acknowledged.push_back(key);
    } else {
      failed = r;
      failed_key = key;
    }
  }
  ASSERT_FALSE(failed_key.empty()) << "every write succeeded: the state machine never failed\n"
                                   << n1.daemon->Log();
  ASSERT_FALSE(acknowledged.empty());
  // The write met the failure: an answer, not a hang, in Vault's error shape.
  EXPECT_GE(failed.status, 500) << "write " << failed_key << ": status " << failed.status
                                << " (0: no answer within the test's 120 s)\n"
                                << failed.body << "\nthe end of n1's log:\n"
                                << Tail(n1.daemon->Log());
  EXPECT_LE(failed.status, 599) << failed.body;
  std::cout << "after " << acknowledged.size() << " acknowledged writes, " << failed_key
            << " answered " << failed.status << " " << failed.body << "\n";
  auto errors = failed.Json();
  ASSERT_TRUE(errors.is_object() && errors.contains("errors") && errors["errors"].is_array() &&
              !errors["errors"].empty())
      << failed.body;

  // The node stops serving loudly: the reason in its log, exit status 1.
  int status = 0;
  EXPECT_TRUE(Eventually([&] { return n1.daemon->Exited(&status); }, 120))
      << "the node whose state machine failed kept running\n"
      << n1.daemon->Log();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << "wait status " << status;
  EXPECT_THAT(n1.daemon->Log(), HasSubstr("the state machine cannot apply"));

  // The other two elect a leader and serve every acknowledged write, and new ones.
  Node* active = nullptr;
  ASSERT_TRUE(Eventually([&] {
    const int h2 = Health(n2), h3 = Health(n3);
    if (h2 == 200 && h3 == 429) active = &n2;
    if (h3 == 200 && h2 == 429) active = &n3;
    return active != nullptr;
  })) << n2.daemon->Log()
      << n3.daemon->Log();
  for (Node* n : {&n2, &n3}) {
    for (const auto& key : {acknowledged.front(), acknowledged.back()}) {
      auto read = n->daemon->Root("GET", "/v1/secret/data/" + key);
      EXPECT_EQ(read.status, 200) << n->name << " " << key << ": " << read.body.substr(0, 300);
    }
    auto wrote =
        n->daemon->Root("POST", "/v1/secret/data/after-" + n->name, {{"data", {{"v", n->name}}}});
    EXPECT_EQ(wrote.status, 200) << n->name << ": " << wrote.body;
  }

  // Its disk fixed, the node rebuilds its state machine from its log and rejoins as a standby.
  fsm.Fix();
  ASSERT_TRUE(n1.daemon->Start()) << n1.daemon->Log();
  EXPECT_TRUE(Eventually([&] { return Health(n1) == 429; }, 120)) << n1.daemon->Log();
  auto read = n1.daemon->Root("GET", "/v1/secret/data/after-" + active->name);
  EXPECT_EQ(read.status, 200) << read.body;
}

// The same failure on a follower: it stops (exit status 1, never a crash: libraft 0.22.1 frees
// a received batch twice when the state machine reports an error while it handles an append),
// the leader and the other follower carry on, and it comes back once its disk is fixed.
TEST_F(ClusterApplyFailureTest, AFollowerWhoseStateMachineCannotApplyExitsCleanly) {
  ASSERT_NO_FATAL_FAILURE(StartThree());
  Node& n1 = nodes_[0];
  Node& n2 = nodes_[1];
  Node& n3 = nodes_[2];
  BrokenDir fsm(n2.daemon->data_dir() + "/fsm");
  ASSERT_EQ(fsm.Break(), "");

  // The leader and n3 acknowledge every write (a majority), whatever n2 does.
  std::vector<std::string> acknowledged;
  int status = 0;
  bool exited = false;
  for (int i = 0; i < 60 && !exited; ++i) {
    const std::string key = "fill-" + std::to_string(i);
    HttpResponse r = WriteBig(n1, key);
    EXPECT_EQ(r.status, 200) << key << ": " << r.body.substr(0, 300);
    if (r.status == 200) acknowledged.push_back(key);
    exited = n2.daemon->Exited(&status);
  }
  if (!exited) exited = Eventually([&] { return n2.daemon->Exited(&status); }, 120);
  ASSERT_TRUE(exited) << "the follower whose state machine failed kept running\n"
                      << Tail(n2.daemon->Log());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1)
      << "wait status " << status << " (signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0)
      << ")\n"
      << Tail(n2.daemon->Log());
  EXPECT_THAT(n2.daemon->Log(), HasSubstr("the state machine cannot apply"));
  EXPECT_THAT(n2.daemon->Log(), HasSubstr("stopping with status 1"));

  // The leader stays the active node; it and n3 serve the writes, old and new.
  ASSERT_FALSE(acknowledged.empty());
  EXPECT_EQ(Health(n1), 200) << n1.daemon->Log();
  for (Node* n : {&n1, &n3}) {
    auto read = n->daemon->Root("GET", "/v1/secret/data/" + acknowledged.back());
    EXPECT_EQ(read.status, 200) << n->name << ": " << read.body.substr(0, 300);
  }
  auto wrote = n3.daemon->Root("POST", "/v1/secret/data/after", {{"data", {{"v", "n3"}}}});
  EXPECT_EQ(wrote.status, 200) << wrote.body;

  // Its disk fixed, the follower rebuilds its state machine from its log and is a standby again.
  fsm.Fix();
  ASSERT_TRUE(n2.daemon->Start()) << n2.daemon->Log();
  EXPECT_TRUE(Eventually([&] { return Health(n2) == 429; }, 120)) << n2.daemon->Log();
  auto read = n2.daemon->Root("GET", "/v1/secret/data/after");
  EXPECT_EQ(read.status, 200) << read.body;
}

}  // namespace
}  // namespace strongroom::testing
