// Integration tests of the appliance foundation: the real strongroomd and its workers as
// processes, a fresh SoftHSM2 token and a RocksDB data directory per test.
// Vault API sections checked: sys/init, sys/seal-status, sys/health, sys/leader, sys/mounts,
// sys/rotate, sys/key-status, sys/seal, sys/unseal; error surface (§1.5 of vault-api.md).
#include "tests/support/daemon.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "hsm/token.h"
#include "tests/support/cluster_support.h"

extern char** environ;

namespace strongroom::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using json = nlohmann::json;

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(d_.Start()) << d_.Log(); }
  // The daemon's token, opened from the test process (a second PKCS#11 client).
  absl::StatusOr<std::unique_ptr<hsm::Token>> OpenToken() {
    return hsm::Token::Open(d_.TokenConfig());
  }
  Daemon d_;
};

TEST_F(DaemonTest, UninitialisedNodeAnswersHealthAndSealStatus) {
  auto h = d_.Call("GET", "/v1/sys/health");
  EXPECT_EQ(h.status, 501);
  EXPECT_EQ(h.Json()["initialized"], false);
  EXPECT_EQ(h.headers["content-type"], "application/json");
  EXPECT_EQ(h.headers["cache-control"], "no-store");
  auto s = d_.Call("GET", "/v1/sys/seal-status");
  ASSERT_EQ(s.status, 200);
  json j = s.Json();
  EXPECT_EQ(j["type"], "pkcs11");
  EXPECT_EQ(j["initialized"], false);
  EXPECT_EQ(j["sealed"], true);
  EXPECT_EQ(j["t"], 0);
  EXPECT_EQ(j["n"], 0);
  EXPECT_EQ(d_.Call("GET", "/v1/sys/init").Json()["initialized"], false);
  // Logical requests while sealed: 503 with Vault's text.
  auto m = d_.Call("GET", "/v1/sys/mounts", "", {{"X-Vault-Token", "x"}});
  EXPECT_EQ(m.status, 503);
  EXPECT_EQ(m.Json()["errors"][0], "Vault is sealed");
}

TEST_F(DaemonTest, InitReturnsRecoveryKeysAndRootToken) {
  auto bad = d_.Call("PUT", "/v1/sys/init", R"({"secret_shares":1,"secret_threshold":1})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(bad.Json()["errors"][0].get<std::string>(),
              HasSubstr("not applicable to seal type pkcs11"));

  json init = d_.Init(5, 3);
  EXPECT_TRUE(init["keys"].is_array() && init["keys"].empty());
  EXPECT_TRUE(init["keys_base64"].is_array() && init["keys_base64"].empty());
  ASSERT_EQ(init["recovery_keys"].size(), 5u);
  EXPECT_EQ(init["recovery_keys_base64"].size(), 5u);
  EXPECT_THAT(d_.root_token(), ::testing::StartsWith("hvs."));

  auto again = d_.Call("PUT", "/v1/sys/init", R"({"recovery_shares":1,"recovery_threshold":1})");
  EXPECT_EQ(again.status, 400);
  EXPECT_EQ(again.Json()["errors"][0], "Vault is already initialized");

  auto h = d_.Call("GET", "/v1/sys/health");
  ASSERT_EQ(h.status, 200);
  json hj = h.Json();
  for (const char* k :
       {"initialized", "sealed", "standby", "performance_standby", "replication_performance_mode",
        "replication_dr_mode", "server_time_utc", "version", "cluster_name", "cluster_id"}) {
    EXPECT_TRUE(hj.contains(k)) << k;
  }
  EXPECT_EQ(hj["sealed"], false);
  auto st = d_.Call("GET", "/v1/sys/seal-status").Json();
  EXPECT_EQ(st["t"], 3);
  EXPECT_EQ(st["n"], 5);
  EXPECT_EQ(st["sealed"], false);
  EXPECT_EQ(st["recovery_seal"], true);
}

TEST_F(DaemonTest, HealthHonoursVaultQueryParameters) {
  EXPECT_EQ(d_.Call("GET", "/v1/sys/health?uninitcode=299").status, 299);
  EXPECT_EQ(d_.Call("GET", "/v1/sys/health?uninitcode=abc").status, 400);
  auto head = d_.Call("HEAD", "/v1/sys/health");
  EXPECT_EQ(head.status, 501);
  EXPECT_TRUE(head.body.empty());
  d_.Init();
  EXPECT_EQ(d_.Call("GET", "/v1/sys/health?activecode=204").status, 204);
  EXPECT_EQ(d_.Call("GET", "/v1/sys/health?standbyok=true").status, 200);
  auto leader = d_.Call("GET", "/v1/sys/leader").Json();
  EXPECT_EQ(leader["ha_enabled"], false);
}

TEST_F(DaemonTest, MountsListEnableTuneDisable) {
  d_.Init();
  auto list = d_.Root("GET", "/v1/sys/mounts");
  ASSERT_EQ(list.status, 200);
  json lj = list.Json();
  EXPECT_EQ(lj["data"]["sys/"]["type"], "system");
  EXPECT_EQ(lj["sys/"]["type"], "system");  // Vault's top-level copy
  EXPECT_EQ(d_.Root("POST", "/v1/sys/mounts/kv2", {{"type", "kv-v2"}}).status, 204);
  EXPECT_EQ(d_.Root("POST", "/v1/sys/mounts/kv1", {{"type", "kv"}}).status, 204);
  auto dup = d_.Root("POST", "/v1/sys/mounts/kv2/nested", {{"type", "kv"}});
  EXPECT_EQ(dup.status, 400);
  EXPECT_THAT(dup.Json()["errors"][0].get<std::string>(),
              HasSubstr("path is already in use at kv2/"));
  EXPECT_EQ(d_.Root("POST", "/v1/sys/mounts/x", {{"type", "nope"}}).status, 400);
  EXPECT_EQ(d_.Root("POST", "/v1/sys/mounts/sys/x", {{"type", "kv"}}).status, 400);
  json info = d_.Root("GET", "/v1/sys/mounts/kv2").Json();
  EXPECT_EQ(info["data"]["type"], "kv");
  EXPECT_EQ(info["data"]["options"]["version"], "2");
  EXPECT_THAT(info["data"]["accessor"].get<std::string>(), ::testing::StartsWith("kv_"));
  EXPECT_EQ(d_.Root("POST", "/v1/sys/mounts/kv2/tune", {{"default_lease_ttl", "1h"}}).status, 204);
  EXPECT_EQ(d_.Root("GET", "/v1/sys/mounts/kv2/tune").Json()["data"]["default_lease_ttl"], 3600);
  EXPECT_EQ(d_.Root("PUT", "/v1/kv1/a", {{"v", "1"}}).status, 204);
  EXPECT_EQ(d_.Root("GET", "/v1/kv1/a").Json()["data"]["v"], "1");
  EXPECT_EQ(d_.Root("DELETE", "/v1/sys/mounts/kv1").status, 204);
  EXPECT_EQ(d_.Root("GET", "/v1/kv1/a").status, 404);
  EXPECT_FALSE(d_.Root("GET", "/v1/sys/mounts").Json()["data"].contains("kv1/"));
}

TEST_F(DaemonTest, OneBrokerAndWorkersAndAKilledWorkerIsRestarted) {
  d_.Init();
  auto workers = d_.WorkerPids();
  ASSERT_EQ(workers.size(), 2u) << d_.Log();
  ASSERT_EQ(kill(workers[0], SIGKILL), 0);
  // The next request succeeds (served by the other worker or by the replacement).
  for (int i = 0; i < 20; ++i) EXPECT_EQ(d_.Call("GET", "/v1/sys/health").status, 200);
  EXPECT_TRUE(d_.WaitForLog("killed by signal 9")) << d_.Log();
  EXPECT_TRUE(d_.WaitForLog("restarting in")) << d_.Log();
  bool replaced = false;
  for (int i = 0; i < 100 && !replaced; ++i) {
    auto now = d_.WorkerPids();
    replaced = now.size() == 2u && std::find(now.begin(), now.end(), workers[0]) == now.end();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(replaced) << d_.Log();
}

// The harness's Kill is a node's crash as systemd (KillMode=control-group) and Kubernetes make
// it: SIGKILL to the broker, its spawner and its workers at once, and the wait until all are
// gone. Killing the broker alone left the spawner and the workers holding the API socket for a
// moment; a start at once on the same port then failed ("address already in use"), as one CI
// run of the cluster restart test did. Stopped workers make the moment as long as it can be.
TEST(DaemonHarnessTest, KillTakesTheWholeNodeSoAStartOnTheSamePortSucceeds) {
  Daemon::Options options;
  options.listen_address = "127.0.0.1:" + std::to_string(FreeLoopbackPort());
  Daemon d(options);
  ASSERT_TRUE(d.Start()) << d.Log();
  const auto workers = d.WorkerPids();
  ASSERT_EQ(workers.size(), 2u) << d.Log();
  for (pid_t w : workers) ASSERT_EQ(kill(w, SIGSTOP), 0);
  d.Kill();
  for (pid_t w : workers) {
    // Gone, or a zombie (holding nothing) until whoever inherited it reaps it.
    const std::string stat = ReadFileOr("/proc/" + std::to_string(w) + "/stat");
    const size_t rp = stat.rfind(')');
    EXPECT_TRUE(rp == std::string::npos || stat.compare(rp + 2, 1, "Z") == 0)
        << "worker " << w << " outlived the kill: " << stat;
  }
  EXPECT_TRUE(d.Start()) << d.Log();
  EXPECT_EQ(d.Call("GET", "/v1/sys/health").status, 501) << d.Log();
  for (pid_t w : workers) kill(w, SIGKILL);  // what an older harness left behind
}

// issue 7: the worker runs under its seccomp filter with no_new_privs, as an unprivileged user
// when strongroomd runs as root, and holds no descriptor to the data directory, the token
// directory or the configuration. The broker runs under its own filter.
TEST_F(DaemonTest, WorkersAreSandboxedAndHoldNothingButSockets) {
  d_.Init();
  const auto workers = d_.WorkerPids();
  ASSERT_EQ(workers.size(), 2u) << d_.Log();
  auto field = [](const std::string& status, const std::string& name) {
    const size_t at = status.find("\n" + name + ":");
    if (at == std::string::npos) return std::string();
    const size_t start = status.find_first_not_of(" \t", at + name.size() + 2);
    return status.substr(start, status.find('\n', start) - start);
  };
  for (pid_t w : workers) {
    const std::string status = ReadFileOr("/proc/" + std::to_string(w) + "/status");
    EXPECT_EQ(field(status, "Seccomp"), "2") << status;
    EXPECT_EQ(field(status, "NoNewPrivs"), "1") << status;
    const std::string uids = field(status, "Uid");
    if (geteuid() == 0) {
      EXPECT_EQ(uids.rfind("0\t", 0), std::string::npos) << "worker runs as root: " << uids;
      EXPECT_THAT(uids, Not(HasSubstr("\t0\t"))) << uids;
    }
    const std::string fd_dir = "/proc/" + std::to_string(w) + "/fd";
    DIR* dir = opendir(fd_dir.c_str());
    ASSERT_NE(dir, nullptr);
    int sockets = 0;
    while (dirent* e = readdir(dir)) {
      if (e->d_name[0] == '.') continue;
      char target[4096] = {};
      const ssize_t n = readlink((fd_dir + "/" + e->d_name).c_str(), target, sizeof target - 1);
      // A connection of d_.Init()'s client may close between readdir and readlink.
      if (n < 0 && errno == ENOENT) continue;
      ASSERT_GT(n, 0) << "fd " << e->d_name << ": " << strerror(errno);
      const std::string t(target, static_cast<size_t>(n));
      EXPECT_THAT(t, Not(HasSubstr(d_.data_dir()))) << "fd " << e->d_name;
      EXPECT_THAT(t, Not(HasSubstr(d_.dir() + "/tokens"))) << "fd " << e->d_name;
      EXPECT_THAT(t, Not(HasSubstr(d_.config_path()))) << "fd " << e->d_name;
      EXPECT_THAT(t, Not(HasSubstr("strongroom.hcl"))) << "fd " << e->d_name;
      if (t.rfind("socket:", 0) == 0) ++sockets;
    }
    closedir(dir);
    EXPECT_GE(sockets, 2);  // the listener and the broker socketpair
    // The worker's root is an empty tmpfs when the kernel allows new namespaces and a private
    // mount tree; where it does not (a chroot whose "/" is no mount point, RestrictNamespaces=),
    // the worker says so in the log and keeps the rest of its sandbox.
    DIR* root = opendir(("/proc/" + std::to_string(w) + "/root/").c_str());
    ASSERT_NE(root, nullptr);
    int entries = 0;
    while (dirent* e = readdir(root)) entries += e->d_name[0] == '.' ? 0 : 1;
    closedir(root);
    const std::string log = d_.Log();
    const bool fallback = log.find("sandbox: no empty root") != std::string::npos ||
                          log.find("sandbox: no new namespaces") != std::string::npos;
    EXPECT_TRUE(entries == 0 || fallback) << entries << " entries in the worker's root\n" << log;
  }
  const std::string broker = ReadFileOr("/proc/" + std::to_string(d_.pid()) + "/status");
  EXPECT_EQ(field(broker, "Seccomp"), "2") << broker;
  // Crash-loop visibility: sys/health reports the workers.
  // (The spawner reports the workers' state a moment after starting them.)
  json health;
  for (int i = 0; i < 100; ++i) {
    health = json::parse(d_.Call("GET", "/v1/sys/health").body);
    if (health["strongroom_workers"]["running"] == 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(health["strongroom_workers"]["configured"], 2) << health.dump();
  EXPECT_EQ(health["strongroom_workers"]["running"], 2) << health.dump();
  EXPECT_EQ(health["strongroom_workers"]["crash_loop"], false) << health.dump();
}

TEST_F(DaemonTest, NothingOnDiskHoldsAWrittenSecretAndTheKekStaysInTheToken) {
  d_.Init();
  ASSERT_EQ(d_.Root("POST", "/v1/sys/mounts/secret", {{"type", "kv-v2"}}).status, 204);
  const std::string marker = "Sup3r-Secret-Marker-7f3a9c";
  auto w = d_.Root("POST", "/v1/secret/data/app", {{"data", {{"api_key", marker}}}});
  ASSERT_EQ(w.status, 200) << w.body;
  EXPECT_EQ(d_.Root("GET", "/v1/secret/data/app").Json()["data"]["data"]["api_key"], marker);
  ASSERT_EQ(d_.Stop(), 0);
  size_t files = 0;
  for (const auto& root : {d_.data_dir(), d_.token().dir()}) {
    for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
      if (!e.is_regular_file()) continue;
      ++files;
      std::string content = ReadFileOr(e.path());
      EXPECT_EQ(content.find(marker), std::string::npos) << e.path();
      EXPECT_EQ(content.find(d_.root_token()), std::string::npos) << e.path();
    }
  }
  EXPECT_GT(files, 3u);
  EXPECT_THAT(d_.Log(), Not(HasSubstr(marker)));

  auto token = OpenToken();
  ASSERT_TRUE(token.ok()) << token.status();
  auto kek = (*token)->FindSecretKey("strongroom-kek");
  ASSERT_TRUE(kek.ok()) << kek.status();
  auto attrs = (*token)->GetKeyAttributes(*kek);
  ASSERT_TRUE(attrs.ok());
  EXPECT_FALSE(attrs->extractable);
  EXPECT_TRUE(attrs->sensitive);
  EXPECT_FALSE(attrs->encrypt);
  EXPECT_FALSE(attrs->decrypt);
  EXPECT_TRUE(attrs->wrap && attrs->unwrap);
  EXPECT_TRUE(attrs->token);
}

TEST_F(DaemonTest, RestartUnsealsByItselfWithDataIntact) {
  d_.Init();
  ASSERT_EQ(d_.Root("POST", "/v1/sys/mounts/secret", {{"type", "kv-v2"}}).status, 204);
  ASSERT_EQ(d_.Root("POST", "/v1/secret/data/a", {{"data", {{"k", "v1"}}}}).status, 200);
  ASSERT_EQ(d_.Root("POST", "/v1/secret/data/a", {{"data", {{"k", "v2"}}}}).status, 200);
  ASSERT_TRUE(d_.Restart()) << d_.Log();
  EXPECT_EQ(d_.Call("GET", "/v1/sys/health").status, 200) << d_.Log();
  EXPECT_EQ(d_.Root("GET", "/v1/secret/data/a").Json()["data"]["data"]["k"], "v2");
  EXPECT_EQ(d_.Root("GET", "/v1/secret/data/a?version=1").Json()["data"]["data"]["k"], "v1");
  EXPECT_TRUE(d_.WaitForLog("unsealed with the KEK in the PKCS#11 token"));
}

TEST_F(DaemonTest, WrongPinStaysSealedAnswers503AndLogsTheCause) {
  d_.Init();
  d_.Stop();
  d_.options().pin_override = "000000";
  ASSERT_TRUE(d_.Start()) << d_.Log();
  auto st = d_.Call("GET", "/v1/sys/seal-status").Json();
  EXPECT_EQ(st["sealed"], true);
  EXPECT_EQ(st["initialized"], true);
  EXPECT_EQ(d_.Call("GET", "/v1/sys/health").status, 503);
  auto r = d_.Root("GET", "/v1/sys/mounts");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.Json()["errors"][0], "Vault is sealed");
  EXPECT_TRUE(d_.WaitForLog("CKR_PIN_INCORRECT")) << d_.Log();
  EXPECT_THAT(d_.Log(), HasSubstr("staying sealed"));
}

TEST_F(DaemonTest, MissingKekStaysSealed) {
  d_.Init();
  d_.Stop();
  {
    // An operator (or an attacker with the SO PIN) removed the KEK from the token.
    auto token = OpenToken();
    ASSERT_TRUE(token.ok()) << token.status();
    auto kek = (*token)->FindSecretKey("strongroom-kek");
    ASSERT_TRUE(kek.ok());
    auto lease = (*token)->Acquire();
    ASSERT_TRUE(lease.ok());
    ASSERT_EQ(lease->fn()->C_DestroyObject(lease->handle(), *kek), CKR_OK);
  }
  ASSERT_TRUE(d_.Start()) << d_.Log();
  EXPECT_EQ(d_.Call("GET", "/v1/sys/seal-status").Json()["sealed"], true);
  EXPECT_EQ(d_.Root("GET", "/v1/sys/mounts").status, 503);
  EXPECT_TRUE(d_.WaitForLog("no key labelled \"strongroom-kek\"")) << d_.Log();
}

TEST_F(DaemonTest, SealThenUnsealWithRecoveryShares) {
  d_.Init(3, 2);
  // sys/step-down without HA (no Raft): answered, and nothing changes (as Vault).
  EXPECT_EQ(d_.Root("PUT", "/v1/sys/step-down").status, 204);
  EXPECT_EQ(d_.Call("GET", "/v1/sys/health").status, 200);
  ASSERT_EQ(d_.Root("PUT", "/v1/sys/seal").status, 204);
  EXPECT_EQ(d_.Root("GET", "/v1/sys/mounts").status, 503);
  auto bad = d_.Call("PUT", "/v1/sys/unseal", R"({"key":"zz"})");
  EXPECT_EQ(bad.status, 400);
  auto p1 = d_.Call("PUT", "/v1/sys/unseal", json{{"key", d_.recovery_keys()[0]}}.dump()).Json();
  EXPECT_EQ(p1["sealed"], true);
  EXPECT_EQ(p1["progress"], 1);
  auto dup = d_.Call("PUT", "/v1/sys/unseal", json{{"key", d_.recovery_keys()[0]}}.dump());
  EXPECT_EQ(dup.status, 400);
  auto p2 = d_.Call("PUT", "/v1/sys/unseal", json{{"key", d_.recovery_keys()[2]}}.dump()).Json();
  EXPECT_EQ(p2["sealed"], false);
  EXPECT_EQ(d_.Root("GET", "/v1/sys/mounts").status, 200);
}

// The recovery shares are combined by a process that never split them (a restarted node, or a
// node that joined a cluster): libgfshare scrubs with its random hook when it frees a context,
// so the hook must be set for combining too. This crashed the broker (SIGSEGV, a call through
// a null pointer) on the first sys/unseal after any restart.
TEST_F(DaemonTest, RestartedNodeUnsealsWithRecoveryShares) {
  d_.Init(3, 2);
  ASSERT_TRUE(d_.Restart()) << d_.Log();
  ASSERT_TRUE(d_.WaitForLog("unsealed with the KEK in the PKCS#11 token")) << d_.Log();
  ASSERT_EQ(d_.Root("PUT", "/v1/sys/seal").status, 204);
  auto p1 = d_.Call("PUT", "/v1/sys/unseal", json{{"key", d_.recovery_keys()[1]}}.dump()).Json();
  EXPECT_EQ(p1["progress"], 1);
  auto p2 = d_.Call("PUT", "/v1/sys/unseal", json{{"key", d_.recovery_keys()[0]}}.dump());
  ASSERT_EQ(p2.status, 200) << d_.Log();
  EXPECT_EQ(p2.Json()["sealed"], false);
  EXPECT_EQ(d_.Root("GET", "/v1/sys/mounts").status, 200);
}

TEST_F(DaemonTest, RotateKeepsOldValuesReadableAcrossRestart) {
  d_.Init();
  ASSERT_EQ(d_.Root("POST", "/v1/sys/mounts/kv", {{"type", "kv"}}).status, 204);
  ASSERT_EQ(d_.Root("PUT", "/v1/kv/old", {{"v", "before"}}).status, 204);
  EXPECT_EQ(d_.Root("GET", "/v1/sys/key-status").Json()["term"], 1);
  ASSERT_EQ(d_.Root("PUT", "/v1/sys/rotate").status, 204);
  json ks = d_.Root("GET", "/v1/sys/key-status").Json();
  EXPECT_EQ(ks["data"]["term"], 2);
  EXPECT_EQ(ks["term"], 2);
  ASSERT_EQ(d_.Root("PUT", "/v1/kv/new", {{"v", "after"}}).status, 204);
  ASSERT_TRUE(d_.Restart()) << d_.Log();
  EXPECT_EQ(d_.Root("GET", "/v1/kv/old").Json()["data"]["v"], "before");
  EXPECT_EQ(d_.Root("GET", "/v1/kv/new").Json()["data"]["v"], "after");
  EXPECT_EQ(d_.Root("GET", "/v1/sys/key-status").Json()["term"], 2);
}

TEST_F(DaemonTest, BadInputGetsVaultStyleErrors) {
  d_.Init();
  const auto tok =
      std::vector<std::pair<std::string, std::string>>{{"X-Vault-Token", d_.root_token()}};
  auto malformed = d_.Call("POST", "/v1/sys/mounts/x", "{\"type\": ", tok);
  EXPECT_EQ(malformed.status, 400);
  EXPECT_THAT(malformed.Json()["errors"][0].get<std::string>(),
              HasSubstr("failed to parse JSON input"));
  EXPECT_EQ(d_.Call("POST", "/v1/sys/mounts/x", "[1,2]", tok).status, 400);
  // Deeper than max_json_depth: refused before parsing, with Vault's status and text.
  std::string deep(200, '[');
  auto too_deep = d_.Call("POST", "/v1/sys/mounts/x", "{\"a\":" + deep, tok);
  EXPECT_EQ(too_deep.status, 500);
  EXPECT_EQ(too_deep.Json()["errors"][0], "JSON input exceeds allowed nesting depth");
  EXPECT_EQ(d_.Call("POST", "/v1/sys/mounts/x", R"({"type": 5})", tok).status, 400);

  std::string big(33u << 20, 'a');
  auto huge = d_.Call("POST", "/v1/sys/mounts/x", "{\"type\":\"" + big + "\"}", tok);
  EXPECT_EQ(huge.status, 413);

  auto unknown = d_.Call("GET", "/v1/nope/thing", "", tok);
  EXPECT_EQ(unknown.status, 404);
  EXPECT_THAT(unknown.Json()["errors"][0].get<std::string>(), HasSubstr("no handler for route"));
  EXPECT_EQ(d_.Call("GET", "/not-v1", "", tok).status, 404);
  EXPECT_EQ(d_.Call("BREW", "/v1/sys/mounts", "", tok).status, 405);
  EXPECT_EQ(d_.Call("POST", "/v1/sys/seal-status", "", tok).status, 405);
  auto patch = d_.Call("PATCH", "/v1/sys/mounts/x", "{}", tok);
  EXPECT_EQ(patch.status, 415);
  EXPECT_THAT(patch.Json()["errors"][0].get<std::string>(),
              HasSubstr("application/merge-patch+json"));

  auto none = d_.Call("GET", "/v1/sys/mounts");
  EXPECT_EQ(none.status, 403);
  EXPECT_EQ(none.Json()["errors"][0], "permission denied");
  auto forged =
      d_.Call("GET", "/v1/sys/mounts", "", {{"X-Vault-Token", "hvs.forgedforgedforgedforged"}});
  EXPECT_EQ(forged.status, 403);
  EXPECT_THAT(forged.Json()["errors"][0].get<std::string>(), HasSubstr("invalid token"));
  auto bearer =
      d_.Call("GET", "/v1/sys/mounts", "", {{"Authorization", "Bearer " + d_.root_token()}});
  EXPECT_EQ(bearer.status, 200);

  // The server is still healthy after all that.
  EXPECT_EQ(d_.Call("GET", "/v1/sys/health").status, 200);
}

TEST_F(DaemonTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  d_.Init();
  std::string req = "GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n";
  std::string out = SendRaw("127.0.0.1", d_.port(), req + req + req, 1500);
  size_t count = 0, at = 0;
  while ((at = out.find("HTTP/1.1 200", at)) != std::string::npos) {
    ++count;
    ++at;
  }
  EXPECT_EQ(count, 3u) << out;
}

// Type=notify: the daemon tells systemd it is ready (and stopping) over $NOTIFY_SOCKET, and
// keeps STATUS= current when it is initialised or unsealed (issue 15, item 15e).
TEST(DaemonSystemd, NotifiesReadinessAndStoppingOverNotifySocket) {
  char dir_template[] = "/tmp/sr-notify-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string path = std::string(dir_template) + "/notify";
  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, path.c_str(), path.size());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  setenv("NOTIFY_SOCKET", path.c_str(), 1);
  std::string received;
  {
    Daemon d;
    const bool started = d.Start();
    unsetenv("NOTIFY_SOCKET");
    ASSERT_TRUE(started) << d.Log();
    pollfd p{fd, POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, 10000), 1) << d.Log();
    char buf[512];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    ASSERT_GT(n, 0);
    received.assign(buf, static_cast<size_t>(n));
    EXPECT_THAT(received, HasSubstr("READY=1\n"));
    EXPECT_THAT(received, HasSubstr("STATUS=serving on 127.0.0.1:"));
    EXPECT_THAT(received, HasSubstr("not initialised"));
    EXPECT_THAT(received, HasSubstr("MAINPID=" + std::to_string(d.pid())));
    // READY=1 came while uninitialised (sys/init must be served); STATUS= follows the change.
    // (A transient "sealed" between initialised and unsealed may come first.)
    d.Init();
    std::string status;
    for (int i = 0; i < 3 && status.find("; unsealed") == std::string::npos; ++i) {
      ASSERT_EQ(poll(&p, 1, 10000), 1) << d.Log();
      const ssize_t k = recv(fd, buf, sizeof buf, 0);
      ASSERT_GT(k, 0);
      status.assign(buf, static_cast<size_t>(k));
      EXPECT_THAT(status, HasSubstr("STATUS=serving on 127.0.0.1:"));
      EXPECT_THAT(status, ::testing::Not(HasSubstr("READY=1")));
    }
    EXPECT_THAT(status, HasSubstr("; unsealed"));
    d.Stop();
    ASSERT_EQ(poll(&p, 1, 10000), 1);
    const ssize_t m = recv(fd, buf, sizeof buf, 0);
    EXPECT_EQ(std::string(buf, static_cast<size_t>(std::max<ssize_t>(m, 0))), "STOPPING=1");
  }
  close(fd);
  unlink(path.c_str());
  rmdir(dir_template);
}

TEST(DaemonConfig, BadConfigIsAClearErrorAndNonZeroExit) {
  char tmpl[] = "/tmp/strongroom-cfg-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  auto write = [&](const std::string& text) {
    std::ofstream(dir + "/c.hcl") << text;
    return RunStrongroomd({"-config=" + dir + "/c.hcl"});
  };
  auto unknown = write(
      "listener \"tcp\" {\n  address = \"127.0.0.1:0\"\n  tls_disable = true\n  colour = "
      "\"red\"\n}\n");
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_THAT(unknown.output, HasSubstr("line 4, column 3: unknown key \"colour\""));
  auto missing =
      write("listener \"tcp\" {\n  address = \"127.0.0.1:0\"\n  tls_disable = true\n}\n");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_THAT(missing.output, HasSubstr("storage block is required"));
  auto tls = write(
      "listener \"tcp\" { address = \"127.0.0.1:0\" }\nstorage \"rocksdb\" { path = \"/tmp/x\" "
      "}\n");
  EXPECT_NE(tls.exit_code, 0);
  EXPECT_THAT(tls.output, HasSubstr("tls_cert_file and tls_key_label (a key in the token) or "
                                    "tls_key_file are required"));
  auto syntax = write("listener \"tcp\" {\n  address = \n");
  EXPECT_NE(syntax.exit_code, 0);
  EXPECT_THAT(syntax.output, HasSubstr("line 3"));
  auto nofile = RunStrongroomd({"-config=" + dir + "/absent.hcl"});
  EXPECT_NE(nofile.exit_code, 0);
  EXPECT_THAT(nofile.output, HasSubstr("cannot read configuration file"));
  auto flags = RunStrongroomd({"-bogus"});
  EXPECT_EQ(flags.exit_code, 2);
  EXPECT_THAT(flags.output, HasSubstr("unknown flag -bogus"));
  std::filesystem::remove_all(dir);
}

TEST(DevMode, StartsInitialisedUnsealedWithKvAndCleansUp) {
  char tmpl[] = "/tmp/strongroom-devtest-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  const std::string out = dir + "/out";
  std::vector<std::string> args = {BuildDir() + "/strongroomd", "-dev",
                                   "-dev-root-token-id=devroot", "-dev-listen-address=127.0.0.1:0"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  std::string log;
  int port = 0;
  for (int i = 0; i < 400 && port == 0; ++i) {
    log = ReadFileOr(out);
    auto at = log.find("Root Token: ");
    auto api = log.find("API on http://127.0.0.1:");
    if (at != std::string::npos && api != std::string::npos)
      port = std::atoi(log.c_str() + api + 24);
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_GT(port, 0) << log;
  EXPECT_THAT(log, HasSubstr("Root Token: devroot"));
  EXPECT_THAT(log, HasSubstr("Unseal Key: "));
  auto dev_dir_at = log.find("/tmp/strongroom-dev-");
  ASSERT_NE(dev_dir_at, std::string::npos);
  std::string dev_dir = log.substr(dev_dir_at, std::string("/tmp/strongroom-dev-XXXXXX").size());
  EXPECT_TRUE(std::filesystem::exists(dev_dir));
  HttpRequest h;
  h.path = "/v1/sys/health";
  for (int i = 0; i < 100 && SendHttp("127.0.0.1", port, h).status != 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_EQ(SendHttp("127.0.0.1", port, h).status, 200);
  HttpRequest w{
      "POST", "/v1/secret/data/hello", R"({"data":{"foo":"bar"}})", {{"X-Vault-Token", "devroot"}}};
  EXPECT_EQ(SendHttp("127.0.0.1", port, w).status, 200);
  HttpRequest r{"GET", "/v1/secret/data/hello", "", {{"X-Vault-Token", "devroot"}}};
  auto got = SendHttp("127.0.0.1", port, r);
  EXPECT_EQ(got.Json()["data"]["data"]["foo"], "bar");
  EXPECT_EQ(got.Json()["mount_type"], "kv");
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << ReadFileOr(out);
  EXPECT_FALSE(std::filesystem::exists(dev_dir)) << dev_dir;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace strongroom::testing

namespace strongroom::testing {
namespace {

int Sh(const std::string& cmd) {
  int rc = system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

TEST(DaemonTls, ServesHttpsFromTheConfiguredCertificateAndKey) {
  char tmpl[] = "/tmp/strongroom-tls-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  ASSERT_EQ(Sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
               "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 -keyout " +
               dir + "/key.pem -out " + dir + "/cert.pem >/dev/null 2>&1"),
            0);
  Daemon::Options opts;
  opts.extra_listener =
      "  tls_cert_file = \"" + dir + "/cert.pem\"\n  tls_key_file = \"" + dir + "/key.pem\"\n";
  Daemon d(opts);
  ASSERT_TRUE(d.Start(/*tls=*/true)) << d.Log();
  EXPECT_THAT(d.Log(), HasSubstr("API on https://"));
  const std::string url = "https://127.0.0.1:" + std::to_string(d.port()) + "/v1/sys/health";
  EXPECT_EQ(Sh("curl -s -o /dev/null -w '%{http_code}' --cacert " + dir + "/cert.pem " + url +
               " | grep -qx 501"),
            0);
  // Plain HTTP on the TLS port gets no Vault answer.
  EXPECT_EQ(d.Call("GET", "/v1/sys/health").status, 0);
  // An untrusted client (no CA) fails the handshake; the server keeps serving.
  EXPECT_NE(Sh("curl -s -o /dev/null " + url), 0);
  EXPECT_EQ(Sh("curl -s -o /dev/null -w '%{http_code}' --cacert " + dir + "/cert.pem " + url +
               " | grep -qx 501"),
            0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace strongroom::testing
