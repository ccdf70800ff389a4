// kv_write_bench: the durable KV v2 write path alone, with its cost. Starts `strongroomd -dev`
// from --bin, drives KV v2 writes of 1 KiB from N keep-alive clients over many keys (or one hot
// key with --keys=1), and reports ops/s, p50/p99, the CPU seconds the broker and its workers
// spent per 1,000 writes (from /proc, load-insensitive) and the WAL syncs per write (RocksDB's
// own counter is not reachable from outside the broker, so the syncs are counted by `perf stat`
// on fdatasync when --count-syncs is given). Next to it, the raw limit in the same run: RocksDB
// 1 KiB sync puts from 1 and from N writer threads, with RocksDB's count of WAL syncs (how many
// writers shared each sync). Not a test: run by hand, never in .ci/run.
//
// Usage: kv_write_bench [--seconds=N] [--clients=N] [--bin=DIR] [--keys=N] [--cas]
//                       [--no-raw] [--no-appliance] [--perf=FILE [--dwarf]] [--count-syncs]
//                       [--read]
//   --cas       every write carries options.cas with the version it expects (each client owns
//               its keys, so none fails): the check-and-set path under load
//   --perf=FILE perf record -g on the broker during the write phase
//   --read      GETs of the same keys instead of writes: the cost the write path shares with a
//               read (HTTP, IPC, token, ACL), to tell the write's own cost apart
#include <rocksdb/db.h>
#include <rocksdb/statistics.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "appliance/storage/rocksdb_storage.h"
#include "bench/bench_util.h"

namespace {

using strongroom::bench::Conn;
using strongroom::bench::Print;
using strongroom::bench::ProcessCpuSeconds;
using strongroom::bench::Result;
using strongroom::bench::RunLoad;
using strongroom::bench::SpawnTool;
using strongroom::bench::StopTool;
using strongroom::bench::TreeCpuSeconds;

std::string Arg(int argc, char** argv, const std::string& name, const std::string& def) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind(name + "=", 0) == 0) return a.substr(name.size() + 1);
    if (a == name) return "1";
  }
  return def;
}

// RocksDB 1 KiB sync puts from `writers` threads, as kv_bench measures them, plus RocksDB's own
// counts: WAL syncs and writes done by another thread's group leader.
// `tuning`: RocksDB write-thread options to compare ("noyield", "serialmem", "pipelined").
void RawRocks(const std::string& dir, int writers, double seconds, const std::string& tuning) {
  rocksdb::Options o;
  o.create_if_missing = true;
  if (tuning.find("noyield") != std::string::npos) o.enable_write_thread_adaptive_yield = false;
  if (tuning.find("serialmem") != std::string::npos) o.allow_concurrent_memtable_write = false;
  if (tuning.find("pipelined") != std::string::npos) o.enable_pipelined_write = true;
  o.statistics = rocksdb::CreateDBStatistics();
  rocksdb::DB* db = nullptr;
  if (!rocksdb::DB::Open(o, dir, &db).ok()) {
    std::fprintf(stderr, "cannot open %s\n", dir.c_str());
    return;
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  std::atomic<uint64_t> n{0};
  const std::string v1k(1024, 'v');
  const uint64_t syncs0 = o.statistics->getTickerCount(rocksdb::WAL_FILE_SYNCED);
  const double cpu0 = TreeCpuSeconds(getpid());
  Result r = RunLoad(writers, seconds, [&](int) {
    return [&] { return db->Put(wo, "k" + std::to_string(n++ % 10000), v1k).ok(); };
  });
  const double cpu = TreeCpuSeconds(getpid()) - cpu0;
  const uint64_t syncs = o.statistics->getTickerCount(rocksdb::WAL_FILE_SYNCED) - syncs0;
  const double puts = r.ops_per_s * seconds;
  char name[64];
  std::snprintf(name, sizeof name, "raw RocksDB sync put, %d writer%s %s", writers,
                writers == 1 ? "" : "s", tuning.c_str());
  Print(name, r, nullptr);
  std::printf("    %.3f WAL syncs per put, %.1f CPU ms per 1000 puts (this process)\n",
              puts > 0 ? static_cast<double>(syncs) / puts : 0, puts > 0 ? cpu * 1e6 / puts : 0);
  delete db;
}

// The same puts through strongroom's own RocksDbStorage (its commit queue: one sync per group).
void OurStorage(const std::string& dir, int writers, double seconds) {
  auto opened = strongroom::storage::RocksDbStorage::Open(dir, true);
  if (!opened.ok()) {
    std::fprintf(stderr, "cannot open %s\n", dir.c_str());
    return;
  }
  auto& store = **opened;
  std::atomic<uint64_t> n{0};
  const std::string v1k(1024, 'v');
  const auto stats0 = store.commit_stats();
  const double cpu0 = TreeCpuSeconds(getpid());
  Result r = RunLoad(writers, seconds, [&](int) {
    return [&] { return store.Put("k" + std::to_string(n++ % 10000), v1k).ok(); };
  });
  const double cpu = TreeCpuSeconds(getpid()) - cpu0;
  const auto stats = store.commit_stats();
  const double puts = r.ops_per_s * seconds;
  char name[64];
  std::snprintf(name, sizeof name, "RocksDbStorage put, %d writer%s", writers,
                writers == 1 ? "" : "s");
  Print(name, r, nullptr);
  std::printf("    %.3f syncs (groups) per put, %.1f CPU ms per 1000 puts (this process)\n",
              puts > 0 ? static_cast<double>(stats.groups - stats0.groups) / puts : 0,
              puts > 0 ? cpu * 1e6 / puts : 0);
}

}  // namespace

int main(int argc, char** argv) {
  const strongroom::bench::Options opt =
      strongroom::bench::ParseOptions(argc, argv, STRONGROOM_BIN_DIR);
  signal(SIGPIPE, SIG_IGN);
  const int keys = std::max(1, std::atoi(Arg(argc, argv, "--keys", "2000").c_str()));
  const bool cas = Arg(argc, argv, "--cas", "") == "1";
  const std::string perf_out = Arg(argc, argv, "--perf", "");
  const bool count_syncs = Arg(argc, argv, "--count-syncs", "") == "1";
  const bool reads = Arg(argc, argv, "--read", "") == "1";
  const std::string dir = strongroom::bench::MakeTempDir();
  if (dir.empty()) return 1;
  std::printf("kv_write_bench: %.0f s, %d clients, %d keys%s, %u cores\n", opt.seconds, opt.clients,
              keys, cas ? ", cas" : "", std::thread::hardware_concurrency());

  if (Arg(argc, argv, "--no-raw", "").empty()) {
    const std::string tuning = Arg(argc, argv, "--raw-tuning", "");
    RawRocks(dir + "/raw1", 1, opt.seconds, tuning);
    RawRocks(dir + "/rawn", opt.clients, opt.seconds, tuning);
    OurStorage(dir + "/ours1", 1, opt.seconds);
    OurStorage(dir + "/oursn", opt.clients, opt.seconds);
  }
  if (!Arg(argc, argv, "--no-appliance", "").empty()) {
    strongroom::bench::RemoveTree(dir);
    return 0;
  }

  strongroom::bench::Daemon daemon;
  if (!daemon.StartDev(opt.bin, dir)) {
    return 1;
  }
  const int port = daemon.port();
  const pid_t broker = daemon.pid();
  const std::string body_data = "\"data\":{\"v\":\"" + std::string(1024 - 40, 'x') + "\"}";
  // Warm up: every key exists (version 1) so the run measures steady-state writes.
  std::vector<int64_t> version(static_cast<size_t>(keys), 0);
  {
    Conn c(port);
    for (int k = 0; k < keys; ++k) {
      if (c.Do("POST", "/v1/secret/data/w" + std::to_string(k), "bench", "{" + body_data + "}") !=
          200) {
        std::fprintf(stderr, "warm-up write failed\n");
        return 1;
      }
      version[static_cast<size_t>(k)] = 1;
    }
  }
  pid_t perf = 0;
  if (!perf_out.empty() && broker > 0) {
    // RocksDB (Debian's static library) has no frame pointers: DWARF unwinding with --dwarf.
    const bool dwarf = Arg(argc, argv, "--dwarf", "") == "1";
    perf = SpawnTool({"perf", "record", "-F", dwarf ? "499" : "999", "--call-graph",
                      dwarf ? "dwarf,16384" : "fp", "-p", std::to_string(broker), "-o", perf_out},
                     dir + "/perf-record.log");
  }
  pid_t stat = 0;
  const std::string stat_out = dir + "/perf-stat.txt";
  if (count_syncs && broker > 0) {
    stat = SpawnTool(
        {"perf", "stat", "-x", ",", "-e", "syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync",
         "-p", std::to_string(broker), "-o", stat_out},
        dir + "/perf-stat.log");
  }
  if (perf > 0 || stat > 0) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  std::atomic<uint64_t> next{0};
  std::atomic<uint64_t> failures{0};
  const double cpu0 = broker > 0 ? TreeCpuSeconds(broker) : 0;
  const double broker0 = broker > 0 ? ProcessCpuSeconds(broker) : 0;
  Result w = RunLoad(opt.clients, opt.seconds, [&](int t) {
    auto c = std::make_shared<Conn>(port);
    return [&, c, t, i = uint64_t{0}]() mutable {
      int k;
      std::string body;
      if (cas) {
        // Client t owns keys t, t+clients, ...: its expected version is always right.
        const int mine = std::max(1, (keys - t + opt.clients - 1) / opt.clients);
        k = t + opt.clients * static_cast<int>(i++ % static_cast<uint64_t>(mine));
        if (k >= keys) k = t % keys;
        body = "{\"options\":{\"cas\":" + std::to_string(version[static_cast<size_t>(k)]) + "}," +
               body_data + "}";
      } else {
        k = static_cast<int>(next++ % static_cast<uint64_t>(keys));
        body = "{" + body_data + "}";
      }
      const int status =
          reads ? c->Do("GET", "/v1/secret/data/w" + std::to_string(k), "bench", "")
                : c->Do("POST", "/v1/secret/data/w" + std::to_string(k), "bench", body);
      if (status != 200) {
        failures++;
        return false;
      }
      if (cas && !reads) version[static_cast<size_t>(k)]++;
      return true;
    };
  });
  const double cpu = broker > 0 ? TreeCpuSeconds(broker) - cpu0 : 0;
  const double broker1 = broker > 0 ? ProcessCpuSeconds(broker) : 0;
  const double broker_cpu = broker1 - broker0;
  StopTool(perf);
  StopTool(stat);
  const double writes = w.ops_per_s * opt.seconds;
  Print(reads ? "KV v2 read (HTTP), for comparison" : "KV v2 write (HTTP, durable)", w, nullptr);
  std::printf("    %.1f CPU ms per 1000 requests (broker + workers; broker alone %.1f)%s\n",
              writes > 0 ? cpu * 1e6 / writes : 0, writes > 0 ? broker_cpu * 1e6 / writes : 0,
              failures ? "   SOME WRITES FAILED" : "");
  if (stat > 0) {
    std::ifstream in(stat_out);
    std::string line;
    double syncs = 0;
    while (std::getline(in, line)) {
      // CSV: "<count>,<unit>,<event>,..."
      if (line.find("syscalls:sys_enter_f") != std::string::npos) syncs += std::atof(line.c_str());
    }
    std::printf("    %.3f fsync/fdatasync calls per write (broker, perf stat)\n",
                writes > 0 ? syncs / writes : 0);
  }
  daemon.Stop();
  strongroom::bench::RemoveTree(dir);
  return failures ? 2 : 0;
}
