// Shared machinery of the benchmarks (kv_bench, transit_bench): command line, load generator,
// summary, printing, a minimal keep-alive HTTP/1.1 client and a strongroomd child process.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace strongroom::bench {

using Clock = std::chrono::steady_clock;

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
};

Result Summarize(std::vector<std::vector<double>>& per_thread, double seconds);

// Runs `op` in `threads` threads for `seconds`; each call's latency is recorded. make_op(i) is
// called once in thread i to build that thread's operation; an operation returning false ends
// its thread early.
Result RunLoad(int threads, double seconds,
               const std::function<std::function<bool()>(int)>& make_op);

// One result line; with `limit`, also the ratio "= X% of <of>".
void Print(const char* name, const Result& r, const Result* limit, const char* of = "reference");

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

  // Spawns args[0] with `args` and waits (up to 10 s) for "API on http://127.0.0.1:PORT" in the
  // log. False if the spawn fails, the process exits or the line does not come.
  bool Start(const std::vector<std::string>& args, const std::string& log_path);
  int port() const { return port_; }
  // SIGTERM and wait for the exit; no-op when not running.
  void Stop();

 private:
  pid_t pid_ = 0;
  int port_ = 0;
};

// Runs argv (looked up in PATH) with stdio on /dev/null; true when it exits 0.
bool RunQuiet(const std::vector<std::string>& args);
// The value of a string field in a JSON body (first occurrence; enough for our own responses).
std::string JsonString(const std::string& body, const std::string& key);

}  // namespace strongroom::bench
