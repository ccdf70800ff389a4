// Shared machinery of the benchmarks (kv_bench, transit_bench, scale_bench, ...): command line,
// load generator, summary, printing, machine-readable RESULT lines, a minimal keep-alive HTTP/1.1
// client, a strongroomd child process and the CPU time and memory of its processes (/proc).
//
// RESULT lines: besides its human output every benchmark prints lines
//   RESULT <key> <value>
// one figure each, for bench/run.sh to collect into the targets table. <key> is
// [a-z0-9_.]+, "<bench>.<figure>", with the unit as its suffix (_ops: operations per second,
// _us/_ms/_s: time, _mib: memory) or none for a ratio (higher is better unless the name says
// otherwise); <value> is a plain decimal number. A key is printed at most once per run.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace strongroom::bench {

using Clock = std::chrono::steady_clock;

// The SoftHSM2 module and the user PIN of the benchmarks' throwaway tokens.
inline constexpr const char* kSoftHsmLib = "/usr/lib/softhsm/libsofthsm2.so";
inline constexpr const char* kPin = "1234";

// Seconds since `since`.
inline double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// A cheap pseudo-random sequence (splitmix64) for picking keys and tokens; one per thread.
struct Rng {
  uint64_t s;
  uint64_t Next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
};

// Command line shared by every benchmark: [--seconds=N] [--clients=N] [--bin=DIR].
struct Options {
  double seconds = 5;
  int clients = 8;
  std::string bin;  // directory of strongroomd and strongroom-worker
};
Options ParseOptions(int argc, char** argv, std::string default_bin);

struct Result {
  double ops_per_s = 0;
  double p50_us = 0;
  double p99_us = 0;
  uint64_t ops = 0;  // operations counted
  // Set by RunLoadOn (negative: not measured): CPU time of the appliance's processes (broker,
  // workers and spawner, user + system) per operation, and their resident memory after the phase.
  double cpu_us_per_op = -1;
  double broker_rss_mib = -1;
  double workers_rss_mib = -1;  // summed over the workers
};

Result Summarize(std::vector<std::vector<double>>& per_thread, double seconds);

// Runs `op` in `threads` threads for `seconds`; each call's latency is recorded. make_op(i) is
// called once in thread i to build that thread's operation; an operation returning false ends
// its thread early.
Result RunLoad(int threads, double seconds,
               const std::function<std::function<bool()>(int)>& make_op);

// One result line; with `limit`, also the ratio "= X% of <of>"; with the process figures of
// RunLoadOn, also CPU per operation and the broker's and workers' resident memory.
void Print(const char* name, const Result& r, const Result* limit, const char* of = "reference");

// "RESULT <key> <value>" (see the top of this file).
void Report(const char* key, double value);
// RESULT lines <prefix>_ops, <prefix>_p50_us, <prefix>_p99_us, and when measured
// <prefix>_cpu_us_per_op, <prefix>_broker_rss_mib, <prefix>_workers_rss_mib.
void Report(const std::string& prefix, const Result& r);
// RESULT <key> a.ops_per_s / b.ops_per_s (nothing when b has none).
void ReportRatio(const char* key, const Result& a, const Result& b);

// One process as /proc/<pid>/stat shows it: its parent, its command name (at most 15 bytes) and
// the CPU time of all its threads (user + system).
struct ProcStat {
  pid_t ppid = 0;
  std::string comm;
  double cpu_s = 0;
};
// Nothing when the process is gone or its stat line cannot be parsed.
std::optional<ProcStat> ReadProcStat(pid_t pid);
// Every process readable in /proc now, by pid.
std::map<pid_t, ProcStat> ReadAllProcStats();
// Whether `pid` is below `root` in `all` (its parent chain reaches `root`; bounded depth).
bool IsDescendant(const std::map<pid_t, ProcStat>& all, pid_t pid, pid_t root);
// CPU seconds of one process (0 when it is gone).
double ProcessCpuSeconds(pid_t pid);
// CPU seconds of `root` and every process below it (0 when `root` is gone).
double TreeCpuSeconds(pid_t root);
// CPU seconds of this process (getrusage: user + system).
double SelfCpuSeconds();

// The processes of one appliance, read from /proc: the broker (the daemon's own pid), the
// workers (descendants whose command name starts "strongroom-work") and any other descendant
// (the spawner).
struct ProcessSample {
  bool ok = false;  // the broker was found
  double broker_cpu_s = 0;
  double workers_cpu_s = 0;
  double others_cpu_s = 0;
  double broker_rss_mib = 0;
  double broker_anon_rss_mib = 0;   // RssAnon: what the kernel cannot drop (no file behind it)
  double broker_peak_rss_mib = 0;   // VmHWM
  double workers_rss_mib = 0;       // summed
  double workers_peak_rss_mib = 0;  // VmHWM, summed
  int workers = 0;
  std::vector<pid_t> pids;  // the broker first, then its descendants
  double cpu_s() const { return broker_cpu_s + workers_cpu_s + others_cpu_s; }
};
ProcessSample SampleProcesses(pid_t broker);
// VmRSS of one process, in MiB (0 when it cannot be read).
double RssMib(pid_t pid);

// RunLoad, plus the appliance's CPU time per operation and memory after the phase.
Result RunLoadOn(pid_t broker, int threads, double seconds,
                 const std::function<std::function<bool()>(int)>& make_op);

// A keep-alive HTTP/1.1 client on one TCP connection to 127.0.0.1:port.
class Conn {
 public:
  explicit Conn(int port);
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Returns the status code (0 on error); the response body goes to *response_body if given.
  int Do(const std::string& method, const std::string& path, const std::string& token,
         const std::string& body, std::string* response_body = nullptr);

 private:
  int fd_ = -1;
  std::string buf_;
};

// A fresh directory /tmp/strongroom-bench-XXXXXX; RemoveTree deletes it (rm -rf).
std::string MakeTempDir();
bool RemoveTree(const std::string& dir);

// strongroomd as a child process, stdout and stderr into `log_path`.
class Daemon {
 public:
  Daemon() = default;
  ~Daemon();  // Stop()
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Spawns args[0] with `args` and waits (up to `timeout_s`) for "API on http://127.0.0.1:PORT"
  // in the log. False if the spawn fails, the process exits or the line does not come.
  bool Start(const std::vector<std::string>& args, const std::string& log_path,
             double timeout_s = 10);
  // `<bin>/strongroomd -dev` with the root token "bench" on a free loopback port, its log in
  // `<dir>/daemon.log`; on failure says so on stderr, with where the log is.
  bool StartDev(const std::string& bin, const std::string& dir);
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // SIGTERM and wait for the exit; no-op when not running.
  void Stop();

 private:
  pid_t pid_ = 0;
  int port_ = 0;
};

// Runs argv (looked up in PATH) with stdio on /dev/null; true when it exits 0.
bool RunQuiet(const std::vector<std::string>& args);
// Starts argv (looked up in PATH: perf, strace, ...) in the background with stdout and stderr
// into `out_path` (created or truncated), or this process's own when `out_path` is empty; its
// pid, 0 when it cannot start. StopTool ends it (SIGINT) and waits for it; no-op for pid <= 0.
pid_t SpawnTool(const std::vector<std::string>& args, const std::string& out_path = "/dev/null");
void StopTool(pid_t pid);
// The value of a string field in a JSON body (first occurrence; enough for our own responses).
std::string JsonString(const std::string& body, const std::string& key);

}  // namespace strongroom::bench
