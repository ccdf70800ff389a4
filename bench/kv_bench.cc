// kv_bench: KV v2 read and write throughput and latency through the whole stack (HTTP worker ->
// broker -> barrier -> RocksDB), next to the raw limits measured in the same run on the same
// machine: a bare Boost.Beast responder returning a body of the same size, and raw RocksDB 1 KiB
// sync puts and warm gets. Reads and writes go to one hot key (every client the same path: what
// per-path locking costs) and to many keys (--keys of them, loaded first; reads at random,
// writes in turn). Next to each full-stack figure: the appliance's CPU time per operation
// (broker + workers, /proc) and the broker's and workers' resident memory. Prints ops/s, p50/p99
// and the ratios, and RESULT lines (bench_util.h) for bench/run.sh. Not a test: run bench/run.sh.
//
// Usage: kv_bench [--seconds=N] [--clients=N] [--bin=DIR] [--keys=N]
#include <fcntl.h>
#include <rocksdb/db.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/bare_server.h"
#include "bench/bench_util.h"

namespace {

using strongroom::bench::BareServer;
using strongroom::bench::Conn;
using strongroom::bench::Print;
using strongroom::bench::Report;
using strongroom::bench::ReportRatio;
using strongroom::bench::Result;
using strongroom::bench::Rng;
using strongroom::bench::RunLoad;
using strongroom::bench::RunLoadOn;

std::string Payload() { return std::string(1024 - 40, 'x'); }

// --keys=N (default 10000, at least 1, at most 10 million).
uint64_t KeysOption(int argc, char** argv) {
  uint64_t keys = 10000;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--keys=", 0) == 0) keys = std::strtoull(a.c_str() + 7, nullptr, 10);
  }
  return std::clamp<uint64_t>(keys, 1, 10'000'000);
}

}  // namespace

int main(int argc, char** argv) {
  const strongroom::bench::Options opt =
      strongroom::bench::ParseOptions(argc, argv, STRONGROOM_BIN_DIR);
  const double seconds = opt.seconds;
  const int clients = opt.clients;
  signal(SIGPIPE, SIG_IGN);
  const std::string dir = strongroom::bench::MakeTempDir();
  if (dir.empty()) return 1;
  const std::string value = Payload();
  const uint64_t keys = KeysOption(argc, argv);
  std::printf("kv_bench: %.0f s per phase, %d clients, %llu keys, %u cores\n\n", seconds, clients,
              static_cast<unsigned long long>(keys), std::thread::hardware_concurrency());

  // --- raw RocksDB: 1 KiB sync puts (1 writer and `clients` writers: group commit), warm gets.
  Result raw_put1, raw_putn, raw_get;
  {
    rocksdb::Options o;
    o.create_if_missing = true;
    rocksdb::DB* db = nullptr;
    if (!rocksdb::DB::Open(o, dir + "/raw", &db).ok()) return 1;
    rocksdb::WriteOptions wo;
    wo.sync = true;
    std::atomic<uint64_t> n{0};
    std::string v1k(1024, 'v');
    raw_put1 = RunLoad(1, seconds, [&](int) {
      return [&] { return db->Put(wo, "k" + std::to_string(n++ % 10000), v1k).ok(); };
    });
    raw_putn = RunLoad(clients, seconds, [&](int) {
      return [&] { return db->Put(wo, "k" + std::to_string(n++ % 10000), v1k).ok(); };
    });
    raw_get = RunLoad(clients, seconds, [&](int t) {
      return [&, t, i = uint64_t{0}]() mutable {
        std::string out;
        return db
            ->Get(rocksdb::ReadOptions(),
                  "k" + std::to_string((i++ * 7 + static_cast<uint64_t>(t)) % 10000), &out)
            .ok();
      };
    });
    delete db;
  }

  // --- raw file durability: append a line of an audit record's size and fdatasync it, one
  // writer (the cost one audit batch pays; group commit shares it between waiting requests).
  Result raw_sync1;
  {
    const std::string path = dir + "/raw-sync.log";
    const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return 1;
    const std::string line(1500, 'a');
    raw_sync1 = RunLoad(1, seconds, [&](int) {
      return [&] {
        return ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
               ::fdatasync(fd) == 0;
      };
    });
    ::close(fd);
  }

  // --- the appliance (dev mode: throwaway token, KV v2 at secret/).
  strongroom::bench::Daemon daemon;
  if (!daemon.StartDev(opt.bin, dir)) {
    return 1;
  }
  const int port = daemon.port();
  const pid_t broker = daemon.pid();
  const strongroom::bench::ProcessSample idle = strongroom::bench::SampleProcesses(broker);
  const std::string body = "{\"data\":{\"v\":\"" + value + "\"}}";
  {
    Conn c(port);
    if (c.Do("POST", "/v1/secret/data/bench", "bench", body) != 200) return 1;
  }
  const auto key_path = [](uint64_t i) { return "/v1/secret/data/k" + std::to_string(i); };
  // The many keys, written once by `clients` connections.
  std::atomic<uint64_t> next{0};
  std::atomic<bool> load_failed{false};
  const auto load_start = strongroom::bench::Clock::now();
  {
    std::vector<std::thread> loaders;
    for (int t = 0; t < clients; ++t) {
      loaders.emplace_back([&] {
        Conn c(port);
        for (uint64_t i = next++; i < keys && !load_failed; i = next++) {
          if (c.Do("POST", key_path(i), "bench", body) != 200) load_failed = true;
        }
      });
    }
    for (auto& t : loaders) t.join();
  }
  if (load_failed) {
    std::fprintf(stderr, "kv_bench: loading the keys failed; see %s/daemon.log\n", dir.c_str());
    return 1;
  }
  const double load_s =
      std::chrono::duration<double>(strongroom::bench::Clock::now() - load_start).count();
  const strongroom::bench::ProcessSample loaded = strongroom::bench::SampleProcesses(broker);

  std::atomic<uint64_t> key{0};
  // Writes: many keys in turn (each key rarely twice in a row), or every client on one key.
  const auto write_many = [&](int) {
    auto c = std::make_shared<Conn>(port);
    return [&, c] { return c->Do("POST", key_path(key++ % keys), "bench", body) == 200; };
  };
  const auto write_hot = [&](int) {
    auto c = std::make_shared<Conn>(port);
    return [&, c] { return c->Do("POST", "/v1/secret/data/hot", "bench", body) == 200; };
  };
  // Reads: one hot key (written once), or many keys at random.
  const auto read_hot = [&](int) {
    auto c = std::make_shared<Conn>(port);
    return [c] { return c->Do("GET", "/v1/secret/data/bench", "bench", "") == 200; };
  };
  const auto read_many = [&](int t) {
    auto c = std::make_shared<Conn>(port);
    return [&, c, rng = Rng{static_cast<uint64_t>(t) + 1}]() mutable {
      return c->Do("GET", key_path(rng.Next() % keys), "bench", "") == 200;
    };
  };
  Result kv_write = RunLoadOn(broker, clients, seconds, write_many);
  Result kv_write_hot = RunLoadOn(broker, clients, seconds, write_hot);
  Result kv_read = RunLoadOn(broker, clients, seconds, read_hot);
  Result kv_read_many = RunLoadOn(broker, clients, seconds, read_many);
  // The same with a file audit device on: two chained records per request, each on stable
  // storage before the operation runs / the answer leaves (group commit: one fdatasync and one
  // in-token MAC per batch of waiting records), a signed checkpoint every 1000 records.
  {
    Conn c(port);
    const std::string enable =
        "{\"type\":\"file\",\"options\":{\"file_path\":\"" + dir + "/audit.log\"}}";
    if (c.Do("PUT", "/v1/sys/audit/file", "bench", enable) != 204) return 1;
  }
  Result kv_write_audit = RunLoadOn(broker, clients, seconds, write_many);
  Result kv_read_audit = RunLoadOn(broker, clients, seconds, read_hot);
  const strongroom::bench::ProcessSample end = strongroom::bench::SampleProcesses(broker);
  daemon.Stop();

  // --- bare Beast responder with a body of a KV read's size.
  Result bare;
  {
    BareServer srv(std::string(1024 + 330, 'b'));
    bare = RunLoad(clients, seconds, [&](int) {
      auto c = std::make_shared<Conn>(srv.port());
      return [c] { return c->Do("GET", "/", "", "") == 200; };
    });
  }

  std::printf("raw limits (same machine, same run)\n");
  Print("RocksDB 1 KiB sync put, 1 writer", raw_put1, nullptr);
  Print("RocksDB 1 KiB sync put, N writers", raw_putn, nullptr);
  Print("RocksDB 1 KiB get (warm)", raw_get, nullptr);
  Print("bare Beast responder, ~1.3 KiB body", bare, nullptr);
  Print("append 1.5 KiB + fdatasync, 1 writer", raw_sync1, nullptr);
  std::printf("\nfull stack (HTTP worker -> broker -> barrier -> RocksDB)\n");
  Print("KV v2 read, hot key (vs bare Beast)", kv_read, &bare);
  Print("KV v2 read, many keys (vs bare Beast)", kv_read_many, &bare);
  Print("KV v2 write, many (vs RocksDB sync, N)", kv_write, &raw_putn);
  Print("KV v2 write, hot (vs RocksDB sync, N)", kv_write_hot, &raw_putn);
  std::printf(
      "\nwith the file audit device on, durable (ratio: vs the same operation, audit off)\n");
  Print("KV v2 read, hot key, audited", kv_read_audit, &kv_read);
  Print("KV v2 write, many keys, audited", kv_write_audit, &kv_write);
  std::printf("\nmemory (resident; workers summed)\n");
  std::printf("%-38s broker %6.1f MiB, %d workers %6.1f MiB\n", "idle, empty store",
              idle.broker_rss_mib, idle.workers, idle.workers_rss_mib);
  std::printf("%-38s broker %6.1f MiB, %d workers %6.1f MiB (%.1f s, %.0f writes/s)\n",
              ("after loading " + std::to_string(keys) + " keys").c_str(), loaded.broker_rss_mib,
              loaded.workers, loaded.workers_rss_mib, load_s,
              static_cast<double>(keys) / std::max(load_s, 1e-9));
  std::printf("%-38s broker %6.1f MiB (peak %6.1f), %d workers %6.1f MiB (peak %6.1f)\n", "end",
              end.broker_rss_mib, end.broker_peak_rss_mib, end.workers, end.workers_rss_mib,
              end.workers_peak_rss_mib);
  std::printf("\n");

  Report("kv.keys", static_cast<double>(keys));
  Report("kv.rocksdb_sync_put_1_ops", raw_put1.ops_per_s);
  Report("kv.rocksdb_sync_put_n_ops", raw_putn.ops_per_s);
  Report("kv.rocksdb_get_ops", raw_get.ops_per_s);
  Report("kv.bare_beast_ops", bare.ops_per_s);
  Report("kv.fdatasync_1_ops", raw_sync1.ops_per_s);
  Report("kv.read", kv_read);
  Report("kv.read_many", kv_read_many);
  Report("kv.write", kv_write);
  Report("kv.write_hot", kv_write_hot);
  Report("kv.read_audit", kv_read_audit);
  Report("kv.write_audit", kv_write_audit);
  ReportRatio("kv.read_vs_bare", kv_read, bare);
  ReportRatio("kv.read_many_vs_bare", kv_read_many, bare);
  ReportRatio("kv.write_vs_rocksdb_sync", kv_write, raw_putn);
  ReportRatio("kv.write_hot_vs_rocksdb_sync", kv_write_hot, raw_putn);
  ReportRatio("kv.audit_read_ratio", kv_read_audit, kv_read);
  ReportRatio("kv.audit_write_ratio", kv_write_audit, kv_write);
  Report("kv.idle_broker_rss_mib", idle.broker_rss_mib);
  Report("kv.idle_workers_rss_mib", idle.workers_rss_mib);
  Report("kv.loaded_broker_rss_mib", loaded.broker_rss_mib);
  Report("kv.loaded_workers_rss_mib", loaded.workers_rss_mib);
  Report("kv.broker_peak_rss_mib", end.broker_peak_rss_mib);
  Report("kv.workers_peak_rss_mib", end.workers_peak_rss_mib);
  Report("kv.load_s", load_s);
  return strongroom::bench::RemoveTree(dir) ? 0 : 1;
}
