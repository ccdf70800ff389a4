// cluster_bench: what replication costs. KV v2 writes and reads on a three-node strongroomd Raft
// cluster (own SoftHSM2 token each, one machine), on its leader and through a standby, next to
// the raw limits measured in the same run:
//   * RocksDB 1 KiB sync puts, N writers;
//   * raw libraft through its C API, no strongroom code: three nodes in this process (a libuv
//     loop and thread each), libraft's own disk I/O (its log written and synced as ours is) and
//     its own TCP transport on loopback (with TCP_NODELAY set on its sockets, as our transport
//     sets it), an FSM that only counts, and 1 KiB entries kept in flight on the leader: as many
//     as there are clients, and 64 (pipelined);
//   * a bare three-node RaftStorage (libraft, the TLS transport, the RocksDB state machine) in
//     this process, N writers putting 1 KiB.
// Next to each figure, the CPU time it cost: user+system seconds of the processes doing the
// work (this process for the in-process limits, with its load generator; every strongroomd,
// spawner and worker for the cluster, and which node spent it) per operation. CPU per operation
// is what to compare while other work shares the machine; throughput only on a quiet one.
// Not a test: run bench/run.sh.
//
// Usage: cluster_bench [--seconds=N] [--clients=N] [--bin=DIR] [--only=raw|cluster]
//                      [--phases=lw,sw,lr,sr,lrm,srm]
// --phases picks the cluster's phases (leader/standby write, read of one key, read of many keys);
// each one's start is written to stderr ("phase lw: pids 1 2 3"), for a profiler to attach.
#include <rocksdb/db.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "appliance/raft/libraft.h"  // libraft's C headers only (for the raw limit)
#include "appliance/raft/raft_storage.h"
#include "bench/bench_util.h"
#include "tests/support/cluster_support.h"

namespace {

using strongroom::bench::Conn;
using strongroom::bench::JsonString;
using strongroom::bench::kPin;
using strongroom::bench::kSoftHsmLib;
using strongroom::bench::Report;
using strongroom::bench::ReportRatio;
using strongroom::bench::Result;
using strongroom::bench::RunLoad;
using strongroom::bench::RunQuiet;
using strongroom::bench::SelfCpuSeconds;
using strongroom::bench::TreeCpuSeconds;
using strongroom::testing::ClusterCerts;
using strongroom::testing::FreeLoopbackPort;
using strongroom::testing::FreeLoopbackPortPair;
using strongroom::testing::MakeClusterCerts;

constexpr size_t kEntryBytes = 1024;

// --- CPU accounting -------------------------------------------------------------------------

// A result and the CPU it cost: `cpu_s` seconds in all, `node_s` of it per node (cluster).
struct Costed {
  Result r;
  double cpu_s = 0;
  std::vector<double> node_s;
};

// `seconds`: the phase's length (ops_per_s counts what completed within it).
void PrintCosted(const char* name, const Costed& c, const Costed* limit, const char* of,
                 double seconds) {
  std::printf("%-46s %8.0f ops/s  p50 %8.1f us  p99 %8.1f us", name, c.r.ops_per_s, c.r.p50_us,
              c.r.p99_us);
  if (limit != nullptr && limit->r.ops_per_s > 0) {
    std::printf("  = %5.1f%% of %s", 100.0 * c.r.ops_per_s / limit->r.ops_per_s, of);
  }
  std::printf("\n");
  const double ops = c.r.ops_per_s * seconds;
  if (ops > 0 && c.cpu_s > 0) {
    std::printf("%-46s %8.1f us CPU/op", "", c.cpu_s * 1e6 / ops);
    if (!c.node_s.empty()) {
      std::printf("  (");
      for (size_t i = 0; i < c.node_s.size(); ++i) {
        std::printf("%sn%zu %.1f", i == 0 ? "" : ", ", i + 1, c.node_s[i] * 1e6 / ops);
      }
      std::printf(")");
    }
    if (limit != nullptr && limit->cpu_s > 0 && limit->r.ops_per_s > 0) {
      std::printf("  = %.2fx the CPU/op of %s",
                  (c.cpu_s / ops) / (limit->cpu_s / (limit->r.ops_per_s * seconds)), of);
    }
    std::printf("\n");
  }
}

// --- raw libraft ----------------------------------------------------------------------------
//
// Three libraft nodes in this process, each with a libuv loop on a thread of its own, libraft's
// own disk I/O (raft_uv_init) and TCP transport (raft_uv_tcp_init), bootstrapped with the same
// three-voter configuration. The leader's loop keeps `in_flight` raft_apply calls of 1 KiB under
// way; each one's latency runs from the call to its callback (committed by a majority, applied).
namespace rawraft {

// libraft's TCP transport leaves Nagle on; its sockets get TCP_NODELAY here (as our TLS
// transport sets it), so the raw figure is not held back by 40 ms delayed-ACK stalls. libraft
// passes the same callbacks to every transport, so one saved copy of each serves all three.
raft_uv_accept_cb g_accept = nullptr;
raft_uv_connect_cb g_connected = nullptr;
int (*g_listen)(raft_uv_transport*, raft_uv_accept_cb) = nullptr;
int (*g_connect)(raft_uv_transport*, raft_uv_connect*, raft_id, const char*,
                 raft_uv_connect_cb) = nullptr;

void NoDelay(uv_stream_t* stream) {
  if (stream != nullptr && stream->type == UV_TCP) {
    uv_tcp_nodelay(reinterpret_cast<uv_tcp_t*>(stream), 1);
  }
}
void Accepted(raft_uv_transport* t, raft_id id, const char* address, uv_stream_t* stream) {
  NoDelay(stream);
  g_accept(t, id, address, stream);
}
void Connected(raft_uv_connect* req, uv_stream_t* stream, int status) {
  if (status == 0) NoDelay(stream);
  g_connected(req, stream, status);
}
int Listen(raft_uv_transport* t, raft_uv_accept_cb cb) {
  g_accept = cb;
  return g_listen(t, &Accepted);
}
int Connect(raft_uv_transport* t, raft_uv_connect* req, raft_id id, const char* address,
            raft_uv_connect_cb cb) {
  g_connected = cb;
  return g_connect(t, req, id, address, &Connected);
}

// The FSM: counts the entries it is given; its snapshot is 8 bytes.
int FsmApply(raft_fsm* fsm, const raft_buffer*, void** result) {
  ++*static_cast<uint64_t*>(fsm->data);
  *result = nullptr;
  return 0;
}
int FsmSnapshot(raft_fsm* fsm, raft_buffer* bufs[], unsigned* n_bufs) {
  *bufs = static_cast<raft_buffer*>(raft_malloc(sizeof(raft_buffer)));
  if (*bufs == nullptr) return RAFT_NOMEM;
  (*bufs)[0].len = 8;
  (*bufs)[0].base = raft_malloc(8);
  if ((*bufs)[0].base == nullptr) {
    raft_free(*bufs);
    return RAFT_NOMEM;
  }
  std::memcpy((*bufs)[0].base, fsm->data, 8);
  *n_bufs = 1;
  return 0;
}
int FsmRestore(raft_fsm* fsm, raft_buffer* buf) {
  if (buf->len == 8) std::memcpy(fsm->data, buf->base, 8);
  raft_free(buf->base);
  return 0;
}

struct Node;

// The load on the leader (its loop thread only, apart from `stop` and `outstanding`).
struct Load {
  Node* node = nullptr;
  unsigned target = 0;  // applies kept in flight
  std::atomic<bool> stop{false};
  std::atomic<unsigned> outstanding{0};
  std::vector<double> latencies_us;
  uint64_t failures = 0;
};

struct Apply {
  struct raft_apply req {};
  Load* load = nullptr;
  uint64_t start_ns = 0;
};

struct Node {
  raft_id id = 0;
  std::string address;
  std::string dir;
  uv_loop_t loop{};
  raft_uv_transport transport{};
  raft_io io{};
  raft_fsm fsm{};
  struct raft raft {};
  uint64_t applied = 0;
  uv_async_t wake{};
  std::mutex mu;
  std::deque<std::function<void()>> queue;  // mu
  std::thread thread;
  Load* load = nullptr;  // loop thread

  // Runs `fn` on the loop thread and waits for it.
  void Run(const std::function<void()>& fn) {
    std::mutex done_mu;
    std::condition_variable cv;
    bool done = false;
    {
      std::lock_guard<std::mutex> lock(mu);
      queue.push_back([&] {
        fn();
        std::lock_guard<std::mutex> l(done_mu);
        done = true;
        cv.notify_all();
      });
    }
    uv_async_send(&wake);
    std::unique_lock<std::mutex> lock(done_mu);
    cv.wait(lock, [&] { return done; });
  }

  static void Drain(uv_async_t* a) {
    auto* self = static_cast<Node*>(a->data);
    std::deque<std::function<void()>> batch;
    {
      std::lock_guard<std::mutex> lock(self->mu);
      batch.swap(self->queue);
    }
    for (auto& fn : batch) fn();
    if (self->load != nullptr) TopUp(self->load);
  }

  // Keeps load->target applies in flight (loop thread).
  static void TopUp(Load* load) {
    Node* n = load->node;
    while (!load->stop.load() && load->outstanding.load() < load->target) {
      auto* a = new Apply;
      a->req.data = a;
      a->load = load;
      raft_buffer buf;
      buf.len = kEntryBytes;
      buf.base = raft_malloc(kEntryBytes);
      if (buf.base == nullptr) {
        delete a;
        ++load->failures;
        return;
      }
      std::memset(buf.base, 'v', kEntryBytes);
      a->start_ns = uv_hrtime();
      load->outstanding.fetch_add(1);
      if (raft_apply(&n->raft, &a->req, &buf, 1, &Applied) != 0) {
        load->outstanding.fetch_sub(1);
        ++load->failures;
        delete a;
        return;  // not the leader any more, or out of memory: no retry storm
      }
    }
  }

  static void Applied(struct raft_apply* req, int status, void*) {
    std::unique_ptr<Apply> a(static_cast<Apply*>(req->data));
    Load* load = a->load;
    if (status == 0) {
      load->latencies_us.push_back(static_cast<double>(uv_hrtime() - a->start_ns) / 1000.0);
    } else {
      ++load->failures;
    }
    load->outstanding.fetch_sub(1);
    // Topped up from the loop's next turn (the wake-up), not from inside libraft's callback.
    if (!load->stop.load()) uv_async_send(&load->node->wake);
  }
};

void Closed(struct raft* r) {
  auto* n = static_cast<Node*>(r->data);
  uv_close(reinterpret_cast<uv_handle_t*>(&n->wake), nullptr);
}

// The cluster, started and led; nullptr on a failure (printed).
class Cluster {
 public:
  ~Cluster() {
    for (auto& n : nodes_) {
      if (!n->thread.joinable()) continue;
      n->Run([&n] { raft_close(&n->raft, &Closed); });
      n->thread.join();
      raft_uv_close(&n->io);
      raft_uv_tcp_close(&n->transport);
      uv_loop_close(&n->loop);
    }
  }

  // Node i keeps its files in `prefix`i.
  bool Start(const std::string& prefix) {
    for (int i = 1; i <= 3; ++i) {
      auto n = std::make_unique<Node>();
      n->id = static_cast<raft_id>(i);
      n->address = "127.0.0.1:" + std::to_string(FreeLoopbackPort());
      n->dir = prefix + std::to_string(i);
      if (mkdir(n->dir.c_str(), 0700) != 0) return Fail("mkdir");
      nodes_.push_back(std::move(n));
    }
    for (auto& n : nodes_) {
      if (uv_loop_init(&n->loop) != 0) return Fail("uv_loop_init");
      n->transport.version = 1;
      if (raft_uv_tcp_init(&n->transport, &n->loop) != 0) return Fail(n->transport.errmsg);
      g_listen = n->transport.listen;
      g_connect = n->transport.connect;
      n->transport.listen = &Listen;
      n->transport.connect = &Connect;
      if (raft_uv_init(&n->io, &n->loop, n->dir.c_str(), &n->transport) != 0) {
        return Fail("raft_uv_init");
      }
      n->fsm.version = 1;
      n->fsm.data = &n->applied;
      n->fsm.apply = &FsmApply;
      n->fsm.snapshot = &FsmSnapshot;
      n->fsm.restore = &FsmRestore;
      if (raft_init(&n->raft, &n->io, &n->fsm, n->id, n->address.c_str()) != 0) {
        return Fail(raft_errmsg(&n->raft));
      }
      n->raft.data = n.get();
      // As RaftStorage's defaults.
      raft_set_election_timeout(&n->raft, 1000);
      raft_set_heartbeat_timeout(&n->raft, 100);
      raft_set_snapshot_threshold(&n->raft, 8192);
      raft_set_snapshot_trailing(&n->raft, 1024);
      raft_set_pre_vote(&n->raft, true);
      raft_configuration conf;
      raft_configuration_init(&conf);
      for (auto& m : nodes_) {
        if (raft_configuration_add(&conf, m->id, m->address.c_str(), RAFT_VOTER) != 0) {
          raft_configuration_close(&conf);
          return Fail("raft_configuration_add");
        }
      }
      const int rv = raft_bootstrap(&n->raft, &conf);
      raft_configuration_close(&conf);
      if (rv != 0) return Fail(raft_strerror(rv));
      n->wake.data = n.get();
      if (uv_async_init(&n->loop, &n->wake, &Node::Drain) != 0) return Fail("uv_async_init");
      if (raft_start(&n->raft) != 0) return Fail(raft_errmsg(&n->raft));
      Node* raw = n.get();
      n->thread = std::thread([raw] { uv_run(&raw->loop, UV_RUN_DEFAULT); });
    }
    for (int tries = 0; tries < 1000; ++tries) {
      for (auto& n : nodes_) {
        bool leads = false;
        n->Run([&] { leads = raft_state(&n->raft) == RAFT_LEADER; });
        if (leads) {
          leader_ = n.get();
          return true;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return Fail("no leader was elected");
  }

  // `in_flight` applies kept under way on the leader for `seconds`.
  Result Run(unsigned in_flight, double seconds, uint64_t* failures) {
    Load load;
    load.node = leader_;
    load.target = in_flight;
    load.latencies_us.reserve(1 << 20);
    leader_->Run([&] {
      leader_->load = &load;
      Node::TopUp(&load);
    });
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    load.stop.store(true);
    // The applies still under way complete (or fail) before the load goes.
    while (load.outstanding.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::vector<std::vector<double>> lat;
    leader_->Run([&] {
      leader_->load = nullptr;
      lat.push_back(std::move(load.latencies_us));
    });
    *failures = load.failures;
    return strongroom::bench::Summarize(lat, seconds);
  }

 private:
  bool Fail(const char* what) {
    std::fprintf(stderr, "raw libraft: %s\n", what);
    return false;
  }
  std::vector<std::unique_ptr<Node>> nodes_;
  Node* leader_ = nullptr;
};

}  // namespace rawraft

// --- the cluster of strongroomd -------------------------------------------------------------

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

// Three RaftStorage nodes in this process (real disk, real TLS on loopback), `clients` writers
// putting 1 KiB values on the leader.
Costed RaftStoragePuts(const std::string& dir, const ClusterCerts& c, int clients, double seconds) {
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
      std::fprintf(stderr, "RaftStorage: %s\n", node.status().ToString().c_str());
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
  const std::string v(kEntryBytes, 'v');
  Costed out;
  const double cpu0 = SelfCpuSeconds();
  out.r = RunLoad(clients, seconds, [&](int) {
    return [&] { return nodes[0]->Put("k" + std::to_string(n++ % 10000), v).ok(); };
  });
  out.cpu_s = SelfCpuSeconds() - cpu0;
  return out;
}

// Raw libraft, `in_flight` applies under way on the leader.
Costed RawLibraft(const std::string& prefix, unsigned in_flight, double seconds) {
  Costed out;
  rawraft::Cluster cluster;
  if (!cluster.Start(prefix)) return out;
  uint64_t failures = 0;
  const double cpu0 = SelfCpuSeconds();
  out.r = cluster.Run(in_flight, seconds, &failures);
  out.cpu_s = SelfCpuSeconds() - cpu0;
  if (failures != 0) {
    std::fprintf(stderr, "raw libraft: %llu applies failed\n",
                 static_cast<unsigned long long>(failures));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const strongroom::bench::Options opt =
      strongroom::bench::ParseOptions(argc, argv, STRONGROOM_BIN_DIR);
  signal(SIGPIPE, SIG_IGN);
  std::string only;  // "raw": the raw limits alone; "cluster": the cluster alone
  std::string phases = ",lw,sw,lr,sr,lrm,srm,";
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--only=", 7) == 0) only = argv[i] + 7;
    if (std::strncmp(argv[i], "--phases=", 9) == 0) phases = std::string(",") + (argv[i] + 9) + ",";
  }
  const bool raw = only != "cluster";
  const bool cluster = only != "raw";
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
  Costed raw_put;
  if (raw) {
    rocksdb::Options o;
    o.create_if_missing = true;
    rocksdb::DB* db = nullptr;
    if (!rocksdb::DB::Open(o, dir + "/raw", &db).ok()) return 1;
    rocksdb::WriteOptions wo;
    wo.sync = true;
    std::atomic<uint64_t> n{0};
    const std::string v(kEntryBytes, 'v');
    const double cpu0 = SelfCpuSeconds();
    raw_put.r = RunLoad(opt.clients, opt.seconds, [&](int) {
      return [&] { return db->Put(wo, "k" + std::to_string(n++ % 10000), v).ok(); };
    });
    raw_put.cpu_s = SelfCpuSeconds() - cpu0;
    delete db;
  }
  // Raw libraft first: RaftStorage installs process-wide libraft settings (its heap, its
  // snapshot runner) when it starts.
  const Costed raw_libraft =
      !raw ? Costed{}
           : RawLibraft(dir + "/libraft-n-", static_cast<unsigned>(opt.clients), opt.seconds);
  const Costed raw_libraft_64 = !raw ? Costed{} : RawLibraft(dir + "/libraft-64-", 64, opt.seconds);
  const Costed raft_storage =
      !raw ? Costed{} : RaftStoragePuts(dir, certs, opt.clients, opt.seconds);

  // --- the appliance cluster.
  Costed leader_write, standby_write, leader_read, standby_read, leader_read_many,
      standby_read_many;
  if (cluster) {
    std::vector<std::unique_ptr<strongroom::bench::Daemon>> daemons;
    std::vector<int> ports;
    std::vector<pid_t> pids;
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
      pids.push_back(daemons.back()->pid());
    }
    std::string root;
    {
      Conn c(ports[0]);
      std::string resp;
      if (c.Do("PUT", "/v1/sys/init", "", R"({"recovery_shares":1,"recovery_threshold":1})",
               &resp) != 200 ||
          (root = JsonString(resp, "root_token")).empty() ||
          c.Do("POST", "/v1/sys/mounts/secret", root,
               R"({"type":"kv","options":{"version":"2"}})") != 204 ||
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
        std::fprintf(stderr, "cluster_bench: no join token for node %d: %s\n", i + 1,
                     minted.c_str());
        return 1;
      }
      const std::string join =
          "{\"leader_api_addr\":\"http://127.0.0.1:" + std::to_string(ports[0]) +
          "\",\"join_token\":\"" + JsonString(minted, "join_token") + "\"}";
      if (c.Do("POST", "/v1/sys/storage/raft/join", "", join) != 200) {
        std::fprintf(stderr, "cluster_bench: node %d could not join\n", i + 1);
        return 1;
      }
    }
    // Each phase's CPU: every process of each node (strongroomd, its spawner and workers).
    auto costed = [&](const std::function<Result()>& run) {
      Costed c;
      std::vector<double> before;
      for (pid_t p : pids) before.push_back(p > 0 ? TreeCpuSeconds(p) : 0);
      c.r = run();
      for (size_t i = 0; i < pids.size(); ++i) {
        const double spent = pids[i] > 0 ? TreeCpuSeconds(pids[i]) - before[i] : 0;
        c.node_s.push_back(spent);
        c.cpu_s += spent;
      }
      return c;
    };
    std::atomic<uint64_t> key{0};
    auto writes = [&](int port) {
      return costed([&] {
        return RunLoad(opt.clients, opt.seconds, [&, port](int) {
          auto c = std::make_shared<Conn>(port);
          return [&, c] {
            return c->Do("POST", "/v1/secret/data/w" + std::to_string(key++ % 2000), root, body) ==
                   200;
          };
        });
      });
    };
    // One hot key, or the 2000 keys the writes made (many keys).
    auto reads = [&](int port, bool many) {
      return costed([&] {
        return RunLoad(opt.clients, opt.seconds, [&, port](int i) {
          auto c = std::make_shared<Conn>(port);
          auto next = std::make_shared<uint64_t>(static_cast<uint64_t>(i) * 251);
          return [&, c, next, many] {
            const std::string path = many ? "/v1/secret/data/w" + std::to_string((*next)++ % 2000)
                                          : "/v1/secret/data/bench";
            return c->Do("GET", path, root, "") == 200;
          };
        });
      });
    };
    auto phase = [&](const char* name, const std::function<Costed()>& run) {
      if (phases.find(std::string(",") + name + ",") == std::string::npos) return Costed{};
      std::fprintf(stderr, "phase %s: pids %d %d %d\n", name, pids[0], pids[1], pids[2]);
      std::fflush(stderr);
      return run();
    };
    if (phases.find(",lw,") == std::string::npos && phases.find(",sw,") == std::string::npos &&
        (phases.find(",lrm,") != std::string::npos || phases.find(",srm,") != std::string::npos)) {
      // The many-key reads read what the writes made: made here when they do not run.
      Conn c(ports[0]);
      for (int k = 0; k < 2000; ++k) {
        if (c.Do("POST", "/v1/secret/data/w" + std::to_string(k), root, body) != 200) {
          std::fprintf(stderr, "cluster_bench: cannot write the keys to read\n");
          return 1;
        }
      }
    }
    leader_write = phase("lw", [&] { return writes(ports[0]); });
    standby_write = phase("sw", [&] { return writes(ports[1]); });
    leader_read = phase("lr", [&] { return reads(ports[0], false); });
    standby_read = phase("sr", [&] { return reads(ports[1], false); });
    leader_read_many = phase("lrm", [&] { return reads(ports[0], true); });
    standby_read_many = phase("srm", [&] { return reads(ports[1], true); });
    daemons.clear();
  }

  if (raw) {
    std::printf(
        "raw limits (same machine, same run; CPU: this process, load generator included)\n");
    PrintCosted("RocksDB 1 KiB sync put, N writers", raw_put, nullptr, "", opt.seconds);
    PrintCosted("raw libraft 3 nodes, 1 KiB, N in flight", raw_libraft, nullptr, "", opt.seconds);
    PrintCosted("raw libraft 3 nodes, 1 KiB, 64 in flight", raw_libraft_64, nullptr, "",
                opt.seconds);
    PrintCosted("RaftStorage 3 nodes, 1 KiB put, N writers", raft_storage, &raw_libraft,
                "raw libraft", opt.seconds);
  }
  if (cluster) {
    std::printf(
        "\ncluster of 3 strongroomd (full stack: HTTP, broker, barrier, Raft; n1 leads; CPU of "
        "every node's processes)\n");
    PrintCosted("KV v2 write on the leader", leader_write, &raw_libraft, "raw libraft",
                opt.seconds);
    PrintCosted("KV v2 write via a standby", standby_write, &leader_write, "leader", opt.seconds);
    PrintCosted("KV v2 read on the leader, one key", leader_read, nullptr, "", opt.seconds);
    PrintCosted("KV v2 read via a standby, one key", standby_read, &leader_read, "leader",
                opt.seconds);
    PrintCosted("KV v2 read on the leader, 2000 keys", leader_read_many, nullptr, "", opt.seconds);
    PrintCosted("KV v2 read via a standby, 2000 keys", standby_read_many, &leader_read_many,
                "leader", opt.seconds);
  }
  // RESULT lines for bench/run.sh (a figure only when its phase ran).
  auto measured = [](const Costed& c) { return c.r.ops > 0 || c.r.ops_per_s > 0; };
  auto cpu_per_op = [&](const std::string& key, const Costed& c) {
    const double ops = c.r.ops_per_s * opt.seconds;
    if (ops > 0 && c.cpu_s > 0) Report((key + "_cpu_us_per_op").c_str(), c.cpu_s * 1e6 / ops);
  };
  // A cluster phase's figures and CPU per operation under `key`; with `vs` (when it ran too),
  // also `ratio_key`: this phase's throughput over that of `vs`.
  auto report_phase = [&](const std::string& key, const Costed& c, const Costed* vs = nullptr,
                          const char* ratio_key = nullptr) {
    if (!measured(c)) return;
    Report(key, c.r);
    cpu_per_op(key, c);
    if (vs != nullptr && measured(*vs)) ReportRatio(ratio_key, c.r, vs->r);
  };
  if (raw) {
    if (measured(raw_put)) Report("cluster.rocksdb_sync_put_ops", raw_put.r.ops_per_s);
    if (measured(raft_storage)) {
      Report("cluster.raftstorage_puts", raft_storage.r.ops_per_s);
      cpu_per_op("cluster.raftstorage_puts", raft_storage);
    }
    if (measured(raw_libraft)) {
      Report("cluster.raw_libraft_puts", raw_libraft.r.ops_per_s);
      cpu_per_op("cluster.raw_libraft_puts", raw_libraft);
    }
    if (measured(raw_libraft_64)) Report("cluster.raw_libraft_64_puts", raw_libraft_64.r.ops_per_s);
  }
  if (cluster) {
    if (measured(leader_write)) {
      Report("cluster.write", leader_write.r);
      Report("cluster.write_p99_ms", leader_write.r.p99_us / 1000);
      cpu_per_op("cluster.write", leader_write);
      if (measured(raw_libraft)) {
        ReportRatio("cluster.write_vs_raw_libraft", leader_write.r, raw_libraft.r);
      }
      if (measured(raft_storage)) {
        ReportRatio("cluster.write_vs_raftstorage", leader_write.r, raft_storage.r);
      }
    }
    report_phase("cluster.standby_write", standby_write, &leader_write,
                 "cluster.standby_write_ratio");
    report_phase("cluster.read", leader_read);
    report_phase("cluster.standby_read", standby_read, &leader_read, "cluster.standby_read_ratio");
    report_phase("cluster.read_many", leader_read_many);
    report_phase("cluster.standby_read_many", standby_read_many, &leader_read_many,
                 "cluster.standby_read_many_ratio");
  }
  std::printf("\n");
  return strongroom::bench::RemoveTree(dir) ? 0 : 1;
}
