// cluster_bench: what replication costs. KV v2 writes and reads on a three-node strongroomd Raft
// cluster (own SoftHSM2 token each, one machine), on its leader and through a standby (which
// forwards to the leader over the cluster port), next to the raw limits measured in the same
// run: RocksDB 1 KiB sync puts, and 1 KiB puts on a bare three-node RaftStorage (libraft, the TLS
// transport, RocksDB state machine) in this process. Not a test: run bench/run.sh.
//
// Usage: cluster_bench [--seconds=N] [--clients=N] [--bin=DIR]
#include <rocksdb/db.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "appliance/raft/raft_storage.h"
#include "bench/bench_util.h"
#include "tests/support/cluster_support.h"

namespace {

using strongroom::bench::Conn;
using strongroom::bench::JsonString;
using strongroom::bench::kPin;
using strongroom::bench::kSoftHsmLib;
using strongroom::bench::Print;
using strongroom::bench::Result;
using strongroom::bench::RunLoad;
using strongroom::bench::RunQuiet;
using strongroom::testing::ClusterCerts;
using strongroom::testing::FreeLoopbackPortPair;
using strongroom::testing::MakeClusterCerts;

// One SoftHSM2 configuration (made current for the daemons this process spawns) holding a token
// per node: each node still has a token of its own.
bool MakeTokens(const std::string& dir, int n) {
  const std::string tokens = dir + "/tokens";
  if (mkdir(tokens.c_str(), 0700) != 0) return false;
  const std::string conf = dir + "/softhsm2.conf";
  {
    std::ofstream c(conf);
    c << "directories.tokendir = " << tokens
      << "/\nobjectstore.backend = file\nlog.level = ERROR\n";
  }
  setenv("SOFTHSM2_CONF", conf.c_str(), 1);
  for (int i = 1; i <= n; ++i) {
    if (!RunQuiet({"softhsm2-util", "--init-token", "--free", "--label", "n" + std::to_string(i),
                   "--pin", kPin, "--so-pin", "5678"})) {
      return false;
    }
  }
  return true;
}

std::string NodeConfig(const std::string& dir, int i, int port, const ClusterCerts& c) {
  const std::string name = "n" + std::to_string(i);
  const ClusterCerts mine = strongroom::testing::NodeCerts(c, name);  // its own, naming it
  return "api_addr = \"http://127.0.0.1:" + std::to_string(port) + "\"\n" +
         "cluster_addr = \"https://127.0.0.1:" + std::to_string(port + 1) + "\"\n" +
         "workers = 2\n" + "listener \"tcp\" {\n  address = \"127.0.0.1:" + std::to_string(port) +
         "\"\n  tls_disable = true\n}\n" + "storage \"raft\" {\n  path = \"" + dir + "/" + name +
         "\"\n  node_id = \"" + name + "\"\n  cluster_ca_file = \"" + mine.ca +
         "\"\n  cluster_cert_file = \"" + mine.cert + "\"\n  cluster_key_file = \"" + mine.key +
         "\"\n}\n" + "seal \"pkcs11\" {\n  lib = \"" + kSoftHsmLib + "\"\n  token_label = \"" +
         name + "\"\n  pin = \"" + kPin + "\"\n}\n";
}

// The raw limit: three RaftStorage nodes in this process (real disk, real TLS on loopback),
// `clients` writers putting 1 KiB values on the leader.
Result RawRaft(const std::string& dir, const ClusterCerts& c, int clients, double seconds) {
  std::vector<std::unique_ptr<strongroom::raft::RaftStorage>> nodes;
  std::vector<std::string> addresses;
  for (int i = 1; i <= 3; ++i) {
    strongroom::raft::RaftOptions o;
    o.node_id = static_cast<uint64_t>(i);
    o.address = "127.0.0.1:" + std::to_string(FreeLoopbackPortPair());
    o.dir = dir + "/raw-raft-" + std::to_string(i);
    o.tls = {c.ca, c.cert, c.key, nullptr};
    o.bootstrap = i == 1;
    auto node = strongroom::raft::RaftStorage::Start(o);
    if (!node.ok()) {
      std::fprintf(stderr, "raw Raft: %s\n", node.status().ToString().c_str());
      return {};
    }
    nodes.push_back(std::move(*node));
    addresses.push_back(o.address);
  }
  while (!nodes[0]->IsLeader()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  for (size_t i = 1; i < 3; ++i) {
    if (!nodes[0]->AddVoter(i + 1, addresses[i]).ok()) return {};
  }
  std::atomic<uint64_t> n{0};
  const std::string v(1024, 'v');
  return RunLoad(clients, seconds, [&](int) {
    return [&] { return nodes[0]->Put("k" + std::to_string(n++ % 10000), v).ok(); };
  });
}

}  // namespace

int main(int argc, char** argv) {
  const strongroom::bench::Options opt =
      strongroom::bench::ParseOptions(argc, argv, STRONGROOM_BIN_DIR);
  signal(SIGPIPE, SIG_IGN);
  const std::string dir = strongroom::bench::MakeTempDir();
  const ClusterCerts certs = dir.empty() ? ClusterCerts{} : MakeClusterCerts(dir, "bench");
  if (certs.ca.empty() || !MakeTokens(dir, 3)) {
    std::fprintf(stderr, "cluster_bench: set-up failed (openssl, softhsm2-util)\n");
    return 1;
  }
  std::printf("cluster_bench: %.0f s per phase, %d clients, %u cores, 3 nodes on one machine\n\n",
              opt.seconds, opt.clients, std::thread::hardware_concurrency());
  const std::string value(1024 - 40, 'x');
  const std::string body = "{\"data\":{\"v\":\"" + value + "\"}}";

  // --- raw RocksDB: 1 KiB sync puts, N writers.
  Result raw_put;
  {
    rocksdb::Options o;
    o.create_if_missing = true;
    rocksdb::DB* db = nullptr;
    if (!rocksdb::DB::Open(o, dir + "/raw", &db).ok()) return 1;
    rocksdb::WriteOptions wo;
    wo.sync = true;
    std::atomic<uint64_t> n{0};
    const std::string v(1024, 'v');
    raw_put = RunLoad(opt.clients, opt.seconds, [&](int) {
      return [&] { return db->Put(wo, "k" + std::to_string(n++ % 10000), v).ok(); };
    });
    delete db;
  }
  Result raw_raft = RawRaft(dir, certs, opt.clients, opt.seconds);

  // --- the appliance cluster.
  std::vector<std::unique_ptr<strongroom::bench::Daemon>> daemons;
  std::vector<int> ports;
  for (int i = 1; i <= 3; ++i) {
    const int port = FreeLoopbackPortPair();
    const std::string conf = dir + "/n" + std::to_string(i) + ".hcl";
    std::ofstream(conf) << NodeConfig(dir, i, port, certs);
    auto d = std::make_unique<strongroom::bench::Daemon>();
    if (!d->Start({opt.bin + "/strongroomd", "-config=" + conf},
                  dir + "/n" + std::to_string(i) + ".log")) {
      std::fprintf(stderr, "cluster_bench: node %d did not start (%s)\n", i, dir.c_str());
      return 1;
    }
    daemons.push_back(std::move(d));
    ports.push_back(port);
  }
  std::string root;
  {
    Conn c(ports[0]);
    std::string resp;
    if (c.Do("PUT", "/v1/sys/init", "", R"({"recovery_shares":1,"recovery_threshold":1})", &resp) !=
            200 ||
        (root = JsonString(resp, "root_token")).empty() ||
        c.Do("POST", "/v1/sys/mounts/secret", root, R"({"type":"kv","options":{"version":"2"}})") !=
            204 ||
        c.Do("POST", "/v1/secret/data/bench", root, body) != 200) {
      std::fprintf(stderr, "cluster_bench: init failed: %s\n", resp.c_str());
      return 1;
    }
  }
  for (int i = 1; i < 3; ++i) {
    Conn c(ports[static_cast<size_t>(i)]);
    // A join needs a one-time credential minted for the node id on the active node.
    Conn leader(ports[0]);
    std::string minted;
    const std::string mint = "{\"node_id\":\"n" + std::to_string(i + 1) + "\"}";
    if (leader.Do("POST", "/v1/sys/storage/raft/join-token", root, mint, &minted) != 200) {
      std::fprintf(stderr, "cluster_bench: no join token for node %d: %s\n", i + 1, minted.c_str());
      return 1;
    }
    const std::string join = "{\"leader_api_addr\":\"http://127.0.0.1:" + std::to_string(ports[0]) +
                             "\",\"join_token\":\"" + JsonString(minted, "join_token") + "\"}";
    if (c.Do("POST", "/v1/sys/storage/raft/join", "", join) != 200) {
      std::fprintf(stderr, "cluster_bench: node %d could not join\n", i + 1);
      return 1;
    }
  }
  std::atomic<uint64_t> key{0};
  auto writes = [&](int port) {
    return RunLoad(opt.clients, opt.seconds, [&, port](int) {
      auto c = std::make_shared<Conn>(port);
      return [&, c] {
        return c->Do("POST", "/v1/secret/data/w" + std::to_string(key++ % 2000), root, body) == 200;
      };
    });
  };
  auto reads = [&](int port) {
    return RunLoad(opt.clients, opt.seconds, [&, port](int) {
      auto c = std::make_shared<Conn>(port);
      return [&, c] { return c->Do("GET", "/v1/secret/data/bench", root, "") == 200; };
    });
  };
  Result leader_write = writes(ports[0]);
  Result standby_write = writes(ports[1]);
  Result leader_read = reads(ports[0]);
  Result standby_read = reads(ports[1]);
  daemons.clear();

  std::printf("raw limits (same machine, same run)\n");
  Print("RocksDB 1 KiB sync put, N writers", raw_put, nullptr);
  Print("Raft 3 nodes, 1 KiB put (RaftStorage)", raw_raft, &raw_put, "RocksDB sync put");
  std::printf("\ncluster of 3 strongroomd (full stack: HTTP, broker, barrier, Raft)\n");
  Print("KV v2 write on the leader (vs raw Raft put)", leader_write, &raw_raft, "Raft put");
  Print("KV v2 write via a standby (vs on the leader)", standby_write, &leader_write, "leader");
  Print("KV v2 read on the leader", leader_read, nullptr);
  Print("KV v2 read via a standby (vs on the leader)", standby_read, &leader_read, "leader");
  std::printf("\n");
  return strongroom::bench::RemoveTree(dir) ? 0 : 1;
}
