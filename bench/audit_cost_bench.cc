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
#include <dirent.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"

extern char** environ;

namespace {

using strongroom::bench::Conn;

// utime + stime of one process, in clock ticks; 0 if it is gone.
uint64_t ProcessTicks(pid_t pid, pid_t* ppid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string f[13];
  for (auto& x : f)
    fields >> x;  // state ppid pgrp session tty tpgid flags minflt cminflt
                  // majflt cmajflt utime stime
  if (ppid != nullptr) *ppid = static_cast<pid_t>(std::atol(f[1].c_str()));
  return std::strtoull(f[11].c_str(), nullptr, 10) + std::strtoull(f[12].c_str(), nullptr, 10);
}

// `root` and every process below it.
std::vector<pid_t> Tree(pid_t root) {
  std::vector<std::pair<pid_t, pid_t>> procs;  // pid, ppid
  if (DIR* d = opendir("/proc")) {
    while (dirent* e = readdir(d)) {
      const pid_t pid = static_cast<pid_t>(std::atol(e->d_name));
      if (pid <= 0) continue;
      pid_t ppid = 0;
      ProcessTicks(pid, &ppid);
      procs.emplace_back(pid, ppid);
    }
    closedir(d);
  }
  std::vector<pid_t> tree{root};
  for (size_t i = 0; i < tree.size(); ++i) {
    for (const auto& [pid, ppid] : procs) {
      if (ppid == tree[i]) tree.push_back(pid);
    }
  }
  return tree;
}

// CPU seconds of `root` and every process below it.
double TreeCpuSeconds(pid_t root) {
  std::vector<std::pair<pid_t, pid_t>> procs;  // pid, ppid
  std::vector<uint64_t> ticks;
  if (DIR* d = opendir("/proc")) {
    while (dirent* e = readdir(d)) {
      const pid_t pid = static_cast<pid_t>(std::atol(e->d_name));
      if (pid <= 0) continue;
      pid_t ppid = 0;
      const uint64_t t = ProcessTicks(pid, &ppid);
      procs.emplace_back(pid, ppid);
      ticks.push_back(t);
    }
    closedir(d);
  }
  std::vector<pid_t> tree{root};
  uint64_t total = 0;
  for (size_t i = 0; i < tree.size(); ++i) {
    for (size_t j = 0; j < procs.size(); ++j) {
      if (procs[j].first == tree[i]) total += ticks[j];
      if (procs[j].second == tree[i]) tree.push_back(procs[j].first);
    }
  }
  return static_cast<double>(total) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// The strongroomd child of this process.
pid_t DaemonPid() {
  pid_t found = 0;
  if (DIR* d = opendir("/proc")) {
    while (dirent* e = readdir(d)) {
      const pid_t pid = static_cast<pid_t>(std::atol(e->d_name));
      if (pid <= 0) continue;
      pid_t ppid = 0;
      ProcessTicks(pid, &ppid);
      std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
      std::string name;
      comm >> name;
      if (ppid == getpid() && name.rfind("strongroomd", 0) == 0) found = pid;
    }
    closedir(d);
  }
  return found;
}

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
  std::vector<char*> av;
  for (auto& a : args) av.push_back(a.data());
  av.push_back(nullptr);
  pid_t p = 0;
  if (posix_spawnp(&p, "perf", nullptr, nullptr, av.data(), environ) != 0) return 0;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  return p;
}

void StopPerf(pid_t p) {
  if (p <= 0) return;
  kill(p, SIGINT);
  int status = 0;
  waitpid(p, &status, 0);
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
  if (!daemon.Start({bin + "/strongroomd", "-dev", "-dev-root-token-id=bench",
                     "-dev-listen-address=127.0.0.1:0"},
                    dir + "/daemon.log")) {
    std::fprintf(stderr, "strongroomd did not start; see %s/daemon.log\n", dir.c_str());
    return 1;
  }
  const pid_t broker = DaemonPid();
  if (broker <= 0) return 1;
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
      for (pid_t worker : Tree(broker)) {
        if (worker == broker) continue;
        pids += (pids.empty() ? "" : ",") + std::to_string(worker);
      }
    }
    const pid_t perf =
        perf_dir.empty()
            ? 0
            : StartPerf(perf_dir + "/" + name + (perf_stat ? ".stat" : ".data"), pids, perf_stat);
    const double cpu0 = TreeCpuSeconds(broker);
    const double broker0 = static_cast<double>(ProcessTicks(broker, nullptr));
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
    p.broker_cpu = (static_cast<double>(ProcessTicks(broker, nullptr)) - broker0) /
                   static_cast<double>(sysconf(_SC_CLK_TCK));
    StopPerf(perf);
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
