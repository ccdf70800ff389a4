// audit_cost_bench: what a file audit device costs per KV v2 request, measured as CPU time (user +
// system of the broker and its worker processes, from /proc) and wall time, with the audit device
// off and on, for reads and writes. CPU per request is insensitive to other load on the machine,
// unlike throughput. Also reports the audit log's shape: lines per request and records per
// synced batch (each batch ends with one MAC or checkpoint line and costs one fdatasync).
//
// Usage: audit_cost_bench [--requests=N] [--clients=N] [--bin=DIR] [--perf=DIR] [--perf-workers]
//                         [--perf-stat]
//   --requests      requests per phase (default 20000)
//   --perf          also record `perf record -g` of the broker during each phase into
//                   DIR/<phase>.data
//   --perf-workers  record the worker processes instead of the broker
//   --perf-stat     perf stat (context switches, system calls) into DIR/<phase>.stat instead
// Not a test: a benchmark, run by hand (bench/run.sh runs kv_bench for the throughput ratios).
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"

namespace {

using strongroom::bench::Conn;
using strongroom::bench::ProcessCpuSeconds;
using strongroom::bench::ReadAllProcStats;
using strongroom::bench::SpawnTool;
using strongroom::bench::StopTool;
using strongroom::bench::TreeCpuSeconds;

struct LogShape {
  uint64_t records = 0;
  uint64_t batches = 0;  // lines that end a synced batch: "mac" and "checkpoint"
};

LogShape Shape(const std::string& path) {
  LogShape s;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.find("\"type\":\"mac\"") != std::string::npos ||
        line.find("\"type\":\"checkpoint\"") != std::string::npos) {
      ++s.batches;
    } else {
      ++s.records;
    }
  }
  return s;
}

// perf record of the processes `pids` ("1,2,3") into `out`, or with `stat`, perf stat of the
// events that do not depend on the machine's load: context switches and system calls.
pid_t StartPerf(const std::string& out, const std::string& pids, bool stat) {
  std::vector<std::string> args = {"perf", "record", "-F", "499", "--call-graph", "dwarf,16384",
                                   "-p",   pids,     "-o", out,   "--quiet"};
  if (stat) {
    args = {"perf",
            "stat",
            "-e",
            "context-switches,syscalls:sys_enter_futex,syscalls:sys_enter_fdatasync,"
            "syscalls:sys_enter_write,syscalls:sys_enter_newfstat,syscalls:sys_enter_openat,"
            "syscalls:sys_enter_sched_yield",
            "-p",
            pids,
            "-o",
            out};
  }
  const pid_t p = SpawnTool(args, "");
  if (p > 0) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  return p;
}

struct Phase {
  std::string name;
  double wall = 0;
  double cpu = 0;
  double broker_cpu = 0;  // the broker alone (the rest is its workers)
  uint64_t ok = 0;
  uint64_t requests = 0;
  LogShape log;
};

}  // namespace

int main(int argc, char** argv) {
  uint64_t requests = 20000;
  int clients = 8;
  std::string bin = STRONGROOM_BIN_DIR;
  std::string perf_dir;
  bool perf_workers = false;
  bool perf_stat = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--requests=", 0) == 0) {
      requests = std::strtoull(a.c_str() + 11, nullptr, 10);
    } else if (a.rfind("--clients=", 0) == 0) {
      clients = std::atoi(a.c_str() + 10);
    } else if (a.rfind("--bin=", 0) == 0) {
      bin = a.substr(6);
    } else if (a.rfind("--perf=", 0) == 0) {
      perf_dir = a.substr(7);
    } else if (a == "--perf-workers") {
      perf_workers = true;
    } else if (a == "--perf-stat") {
      perf_stat = true;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--requests=N] [--clients=N] [--bin=DIR] [--perf=DIR] "
                   "[--perf-workers] [--perf-stat]\n",
                   argv[0]);
      return 2;
    }
  }
  if (clients < 1 || requests < static_cast<uint64_t>(clients)) return 2;
  signal(SIGPIPE, SIG_IGN);
  const std::string dir = strongroom::bench::MakeTempDir();
  if (dir.empty()) return 1;
  strongroom::bench::Daemon daemon;
  if (!daemon.StartDev(bin, dir)) {
    return 1;
  }
  const pid_t broker = daemon.pid();
  const int port = daemon.port();
  const std::string body = "{\"data\":{\"v\":\"" + std::string(1024 - 40, 'x') + "\"}}";
  {
    Conn c(port);
    if (c.Do("POST", "/v1/secret/data/bench", "bench", body) != 200) return 1;
  }
  const std::string log = dir + "/audit.log";
  std::atomic<uint64_t> key{0};

  const auto run = [&](const std::string& name, bool write) {
    Phase p;
    p.name = name;
    p.requests = requests;
    const LogShape before = Shape(log);
    std::string pids = std::to_string(broker);
    if (perf_workers) {
      pids.clear();
      const auto all = ReadAllProcStats();
      for (const auto& [worker, st] : all) {
        if (!strongroom::bench::IsDescendant(all, worker, broker)) continue;
        pids += (pids.empty() ? "" : ",") + std::to_string(worker);
      }
    }
    const pid_t perf =
        perf_dir.empty()
            ? 0
            : StartPerf(perf_dir + "/" + name + (perf_stat ? ".stat" : ".data"), pids, perf_stat);
    const double cpu0 = TreeCpuSeconds(broker);
    const double broker0 = ProcessCpuSeconds(broker);
    const auto t0 = std::chrono::steady_clock::now();
    std::atomic<uint64_t> ok{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < clients; ++t) {
      threads.emplace_back([&, t] {
        Conn c(port);
        const uint64_t mine =
            requests / static_cast<uint64_t>(clients) +
            (static_cast<uint64_t>(t) < requests % static_cast<uint64_t>(clients));
        for (uint64_t i = 0; i < mine; ++i) {
          const int status =
              write
                  ? c.Do("POST", "/v1/secret/data/w" + std::to_string(key++ % 2000), "bench", body)
                  : c.Do("GET", "/v1/secret/data/bench", "bench", "");
          if (status == 200) ++ok;
        }
      });
    }
    for (auto& t : threads) t.join();
    p.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    p.cpu = TreeCpuSeconds(broker) - cpu0;
    p.broker_cpu = ProcessCpuSeconds(broker) - broker0;
    StopTool(perf);
    p.ok = ok;
    const LogShape after = Shape(log);
    p.log.records = after.records - before.records;
    p.log.batches = after.batches - before.batches;
    return p;
  };

  std::vector<Phase> phases;
  run("warmup", false);
  phases.push_back(run("read", false));
  phases.push_back(run("write", true));
  {
    Conn c(port);
    const std::string enable = "{\"type\":\"file\",\"options\":{\"file_path\":\"" + log + "\"}}";
    if (c.Do("PUT", "/v1/sys/audit/file", "bench", enable) != 204) return 1;
  }
  phases.push_back(run("read-audited", false));
  phases.push_back(run("write-audited", true));
  daemon.Stop();

  std::printf("audit_cost_bench: %llu requests per phase, %d clients, %u cores, bin %s\n",
              static_cast<unsigned long long>(requests), clients,
              std::thread::hardware_concurrency(), bin.c_str());
  std::printf("%-14s %9s %9s %12s %12s %12s %10s %10s\n", "phase", "ok", "req/s", "cpu us/req",
              "broker us/req", "wall us/req", "lines/req", "rec/batch");
  for (const auto& p : phases) {
    const double n = static_cast<double>(p.requests);
    std::printf("%-14s %9llu %9.0f %12.1f %12.1f %12.1f %10.2f %10.2f\n", p.name.c_str(),
                static_cast<unsigned long long>(p.ok), n / p.wall, p.cpu * 1e6 / n,
                p.broker_cpu * 1e6 / n, p.wall * 1e6 / n,
                static_cast<double>(p.log.records + p.log.batches) / n,
                p.log.batches == 0
                    ? 0.0
                    : static_cast<double>(p.log.records) / static_cast<double>(p.log.batches));
  }
  std::printf("audit CPU per request: read +%.1f us, write +%.1f us\n",
              (phases[2].cpu - phases[0].cpu) * 1e6 / static_cast<double>(requests),
              (phases[3].cpu - phases[1].cpu) * 1e6 / static_cast<double>(requests));
  for (const auto& p : phases) {
    if (p.ok != p.requests) {
      std::fprintf(stderr, "%s: %llu of %llu requests failed\n", p.name.c_str(),
                   static_cast<unsigned long long>(p.requests - p.ok),
                   static_cast<unsigned long long>(p.requests));
      return 1;
    }
  }
  return strongroom::bench::RemoveTree(dir) ? 0 : 1;
}
