// kvread_bench: the CPU cost of one KV v2 read through the whole stack (HTTP worker -> IPC ->
// broker -> token -> ACL -> barrier -> RocksDB), measured as CPU seconds of the broker and its
// workers per 1,000 requests (load-insensitive: what the issue 22 notes compare before/after),
// beside the throughput of the same run. With --perf=DIR it also records perf profiles of the
// broker and of the workers during the read phase (DIR/broker.data, DIR/worker.data).
// Not a test: nothing here asserts a time.
//
// Usage: kvread_bench [--seconds=N] [--clients=N] [--bin=DIR] [--keys=N] [--token=root|policy]
//                     [--perf=DIR] [--stat=FILE] [--strace=FILE] [--bare]
//                     [--write]
//   --keys=1 reads one hot key; --keys=N reads N keys round robin (each client its own order).
//   --token=policy reads with a non-root service token holding a policy that grants read on
//   secret/data/* (token lookup and the ACL as an ordinary client pays them); root by default.
//   --bare measures the floor instead: kv_bench's bare Beast responder, in a child process.
//   --write writes the keys (1 KiB bodies) instead of reading them: where a write's JSON goes.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
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
using strongroom::bench::ProcessCpuSeconds;
using strongroom::bench::ReadAllProcStats;
using strongroom::bench::Result;
using strongroom::bench::RunLoad;
using strongroom::bench::SpawnTool;
using strongroom::bench::StopTool;

// The strongroomd started by this process, and the workers below it.
struct Tree {
  pid_t broker = 0;
  std::vector<pid_t> workers;
};

// The workers below `broker` (their parent is the spawner, whose parent is the broker).
Tree FindTree(pid_t broker) {
  Tree t;
  t.broker = broker;
  const auto procs = ReadAllProcStats();
  for (const auto& [pid, p] : procs) {
    if (p.comm.rfind("strongroom-work", 0) != 0) continue;
    auto parent = procs.find(p.ppid);
    if (parent != procs.end() && (p.ppid == t.broker || parent->second.ppid == t.broker)) {
      t.workers.push_back(pid);
    }
  }
  return t;
}

struct Cpu {
  double broker = 0;
  double workers = 0;
};

Cpu ReadCpu(const Tree& t) {
  Cpu c;
  const auto procs = ReadAllProcStats();
  if (auto it = procs.find(t.broker); it != procs.end()) c.broker = it->second.cpu_s;
  for (pid_t w : t.workers) {
    if (auto it = procs.find(w); it != procs.end()) c.workers += it->second.cpu_s;
  }
  return c;
}

// --bare: the floor to compare with, the bare Boost.Beast responder of kv_bench (a thread per
// connection, a fixed body of a KV read's size), in a child process of its own so that its CPU
// time is measured the same way. Returns the child's pid; *port is its port.
pid_t StartBareServer(int* port) {
  int fds[2];
  if (pipe(fds) != 0) return 0;
  const pid_t pid = fork();
  if (pid != 0) {
    close(fds[1]);
    int p = 0;
    if (pid < 0 || read(fds[0], &p, sizeof p) != static_cast<ssize_t>(sizeof p)) p = 0;
    close(fds[0]);
    *port = p;
    return pid > 0 ? pid : 0;
  }
  close(fds[0]);
  BareServer server(std::string(1024 + 330, 'b'));
  const int p = server.port();
  if (write(fds[1], &p, sizeof p) != static_cast<ssize_t>(sizeof p)) _exit(1);
  close(fds[1]);
  for (;;) pause();  // until the parent kills it
}

int RunBare(const strongroom::bench::Options& opt) {
  int port = 0;
  const pid_t server = StartBareServer(&port);
  if (server == 0 || port == 0) return 1;
  RunLoad(opt.clients, 1, [&](int) {
    auto c = std::make_shared<Conn>(port);
    return [c] { return c->Do("GET", "/", "", "") == 200; };
  });
  const double before = ProcessCpuSeconds(server);
  Result r = RunLoad(opt.clients, opt.seconds, [&](int) {
    auto c = std::make_shared<Conn>(port);
    return [c] { return c->Do("GET", "/", "", "") == 200; };
  });
  const double after = ProcessCpuSeconds(server);
  kill(server, SIGKILL);
  int status = 0;
  waitpid(server, &status, 0);
  const double n = r.ops_per_s * opt.seconds;
  std::printf("kvread_bench --bare: %.0f s, %d clients\n", opt.seconds, opt.clients);
  Print("bare Beast responder", r, nullptr);
  if (n > 0) {
    std::printf("CPU per request: server %.1f us\n", (after - before) * 1e6 / n);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  strongroom::bench::Options opt = strongroom::bench::ParseOptions(argc, argv, STRONGROOM_BIN_DIR);
  int keys = 1;
  std::string token_kind = "root";
  std::string perf_dir;
  std::string stat_file;
  std::string strace_file;
  bool write = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--keys=", 0) == 0) keys = std::max(1, std::atoi(a.c_str() + 7));
    if (a.rfind("--token=", 0) == 0) token_kind = a.substr(8);
    if (a.rfind("--perf=", 0) == 0) perf_dir = a.substr(7);
    if (a.rfind("--stat=", 0) == 0) stat_file = a.substr(7);
    if (a.rfind("--strace=", 0) == 0) strace_file = a.substr(9);
    if (a == "--write") write = true;
  }
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--bare") {
      signal(SIGPIPE, SIG_IGN);
      return RunBare(opt);
    }
  }
  if (token_kind != "root" && token_kind != "policy") {
    std::fprintf(stderr, "--token is root or policy\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  const std::string dir = strongroom::bench::MakeTempDir();
  if (dir.empty()) return 1;
  strongroom::bench::Daemon daemon;
  if (!daemon.StartDev(opt.bin, dir)) {
    return 1;
  }
  const int port = daemon.port();
  const std::string body = "{\"data\":{\"v\":\"" + std::string(1024 - 40, 'x') + "\"}}";
  std::string token = "bench";
  {
    Conn c(port);
    for (int k = 0; k < keys; ++k) {
      if (c.Do("POST", "/v1/secret/data/r" + std::to_string(k), "bench", body) != 200) return 1;
    }
    if (token_kind == "policy") {
      const std::string policy =
          R"({"policy":"path \"secret/data/*\" { capabilities = [\"read\"] }"})";
      if (c.Do("PUT", "/v1/sys/policies/acl/reader", "bench", policy) != 204) return 1;
      std::string out;
      if (c.Do("POST", "/v1/auth/token/create", "bench", R"({"policies":["reader"]})", &out) !=
          200) {
        return 1;
      }
      token = strongroom::bench::JsonString(out, "client_token");
      if (token.empty()) return 1;
    }
  }
  const Tree tree = FindTree(daemon.pid());
  if (tree.broker == 0 || tree.workers.empty()) {
    std::fprintf(stderr, "cannot find the broker and its workers in /proc\n");
    return 1;
  }
  std::printf("kvread_bench: %.0f s, %d clients, %d key(s), %s token, %u cores, %zu workers\n",
              opt.seconds, opt.clients, keys, token_kind.c_str(),
              std::thread::hardware_concurrency(), tree.workers.size());
  // Warm-up (caches, connections), not counted.
  RunLoad(opt.clients, 1, [&](int) {
    auto c = std::make_shared<Conn>(port);
    return [c, &token] { return c->Do("GET", "/v1/secret/data/r0", token, "") == 200; };
  });
  pid_t perf_broker = 0, perf_worker = 0;
  if (!perf_dir.empty()) {
    // DWARF call graphs: the binaries keep no frame pointers.
    perf_broker = SpawnTool({"perf", "record", "-q", "-F", "499", "--call-graph=dwarf,16384", "-p",
                             std::to_string(tree.broker), "-o", perf_dir + "/broker.data"});
    std::string workers;
    for (pid_t w : tree.workers) workers += (workers.empty() ? "" : ",") + std::to_string(w);
    perf_worker = SpawnTool({"perf", "record", "-q", "-F", "499", "--call-graph=dwarf,16384", "-p",
                             workers, "-o", perf_dir + "/worker.data"});
  }
  // --strace=FILE: system calls of the broker and one worker, counted (strace -c; slows them,
  // so the CPU figures of such a run are not comparable).
  pid_t strace_broker = 0, strace_worker = 0;
  if (!strace_file.empty()) {
    strace_broker = SpawnTool(
        {"strace", "-c", "-f", "-p", std::to_string(tree.broker), "-o", strace_file + ".broker"});
    strace_worker = SpawnTool({"strace", "-c", "-f", "-p", std::to_string(tree.workers[0]), "-o",
                               strace_file + ".worker"});
  }
  // --stat=FILE: perf stat of the broker and the workers over the measured phase (syscalls,
  // context switches, instructions), to divide by the request count printed below.
  pid_t perf_stat = 0, perf_stat_workers = 0;
  if (!stat_file.empty()) {
    const char* events = "raw_syscalls:sys_enter,context-switches,instructions:u,instructions:k";
    std::string workers;
    for (pid_t w : tree.workers) workers += (workers.empty() ? "" : ",") + std::to_string(w);
    perf_stat = SpawnTool({"perf", "stat", "-e", events, "-p", std::to_string(tree.broker), "-o",
                           stat_file + ".broker"});
    perf_stat_workers =
        SpawnTool({"perf", "stat", "-e", events, "-p", workers, "-o", stat_file + ".workers"});
  }
  if (perf_broker != 0 || perf_stat != 0 || strace_broker != 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // perf attaches
  }
  std::atomic<uint64_t> failures{0};
  const Cpu before = ReadCpu(tree);
  Result r = RunLoad(opt.clients, opt.seconds, [&](int t) {
    auto c = std::make_shared<Conn>(port);
    return
        [c, &token, &failures, &body, write, keys, i = static_cast<uint64_t>(t) * 7919]() mutable {
          const std::string path =
              "/v1/secret/data/r" + std::to_string(i++ % static_cast<uint64_t>(keys));
          if (c->Do(write ? "POST" : "GET", path, token, write ? body : "") != 200) {
            ++failures;
            return false;
          }
          return true;
        };
  });
  const Cpu after = ReadCpu(tree);
  StopTool(perf_broker);
  StopTool(perf_worker);
  StopTool(perf_stat);
  StopTool(perf_stat_workers);
  StopTool(strace_broker);
  StopTool(strace_worker);
  daemon.Stop();
  const double n = r.ops_per_s * opt.seconds;
  const double broker_ms = (after.broker - before.broker) * 1e3;
  const double worker_ms = (after.workers - before.workers) * 1e3;
  Print(write ? "KV v2 write" : "KV v2 read", r, nullptr);
  std::printf("requests %.0f, failures %llu\n", n,
              static_cast<unsigned long long>(failures.load()));
  if (n > 0) {
    std::printf("CPU per request: broker %.1f us, workers %.1f us, total %.1f us\n",
                broker_ms * 1e3 / n, worker_ms * 1e3 / n, (broker_ms + worker_ms) * 1e3 / n);
  }
  return strongroom::bench::RemoveTree(dir) && failures == 0 ? 0 : 1;
}
