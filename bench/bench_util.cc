#include "bench/bench_util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

extern char** environ;

namespace strongroom::bench {

Options ParseOptions(int argc, char** argv, std::string default_bin) {
  Options o;
  o.bin = std::move(default_bin);
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--seconds=", 0) == 0) o.seconds = std::atof(a.c_str() + 10);
    if (a.rfind("--clients=", 0) == 0) o.clients = std::atoi(a.c_str() + 10);
    if (a.rfind("--bin=", 0) == 0) o.bin = a.substr(6);
  }
  return o;
}

Result Summarize(std::vector<std::vector<double>>& per_thread, double seconds) {
  std::vector<double> all;
  for (auto& v : per_thread) all.insert(all.end(), v.begin(), v.end());
  Result r;
  if (all.empty()) return r;
  std::sort(all.begin(), all.end());
  r.ops = all.size();
  r.ops_per_s = static_cast<double>(all.size()) / seconds;
  r.p50_us = all[all.size() / 2];
  r.p99_us = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  return r;
}

Result RunLoad(int threads, double seconds,
               const std::function<std::function<bool()>(int)>& make_op) {
  std::vector<std::vector<double>> lat(static_cast<size_t>(threads));
  std::vector<std::thread> ts;
  std::atomic<bool> stop{false};
  for (int i = 0; i < threads; ++i) {
    ts.emplace_back([&, i] {
      auto op = make_op(i);
      while (!stop.load(std::memory_order_relaxed)) {
        auto t0 = Clock::now();
        if (!op()) break;
        lat[static_cast<size_t>(i)].push_back(
            std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : ts) t.join();
  return Summarize(lat, seconds);
}

void Print(const char* name, const Result& r, const Result* limit, const char* of) {
  std::printf("%-38s %10.0f ops/s  p50 %8.1f us  p99 %8.1f us", name, r.ops_per_s, r.p50_us,
              r.p99_us);
  if (limit != nullptr && limit->ops_per_s > 0)
    std::printf("   = %5.1f%% of %s", 100.0 * r.ops_per_s / limit->ops_per_s, of);
  if (r.cpu_us_per_op >= 0) {
    std::printf("\n%-38s   cpu %7.1f us/op  rss: broker %6.1f MiB, workers %6.1f MiB", "",
                r.cpu_us_per_op, r.broker_rss_mib, r.workers_rss_mib);
  }
  std::printf("\n");
}

void Report(const char* key, double value) {
  std::printf("RESULT %s %.6g\n", key, value);
  std::fflush(stdout);
}

void Report(const std::string& prefix, const Result& r) {
  Report((prefix + "_ops").c_str(), r.ops_per_s);
  Report((prefix + "_p50_us").c_str(), r.p50_us);
  Report((prefix + "_p99_us").c_str(), r.p99_us);
  if (r.cpu_us_per_op >= 0) {
    Report((prefix + "_cpu_us_per_op").c_str(), r.cpu_us_per_op);
    Report((prefix + "_broker_rss_mib").c_str(), r.broker_rss_mib);
    Report((prefix + "_workers_rss_mib").c_str(), r.workers_rss_mib);
  }
}

void ReportRatio(const char* key, const Result& a, const Result& b) {
  if (b.ops_per_s > 0) Report(key, a.ops_per_s / b.ops_per_s);
}

namespace {

// VmRSS, VmHWM and RssAnon of /proc/<pid>/status, in MiB (0 when absent).
void ReadRss(pid_t pid, double* rss_mib, double* hwm_mib, double* anon_mib = nullptr) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  *rss_mib = *hwm_mib = 0;
  if (anon_mib != nullptr) *anon_mib = 0;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) *rss_mib = std::atof(line.c_str() + 6) / 1024;
    if (line.rfind("VmHWM:", 0) == 0) *hwm_mib = std::atof(line.c_str() + 6) / 1024;
    if (anon_mib != nullptr && line.rfind("RssAnon:", 0) == 0) {
      *anon_mib = std::atof(line.c_str() + 8) / 1024;
    }
  }
}

}  // namespace

// /proc/<pid>/stat: the command name in parentheses (it may hold spaces and parentheses: the
// last ')' ends it), then the state, ppid, ... utime (14th field) and stime (15th) in ticks.
std::optional<ProcStat> ReadProcStat(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(in, text)) return std::nullopt;
  const size_t open = text.find('(');
  const size_t close = text.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) {
    return std::nullopt;
  }
  ProcStat out;
  out.comm = text.substr(open + 1, close - open - 1);
  std::istringstream rest(text.substr(close + 1));
  std::string field;
  std::vector<std::string> f;  // f[0] is the state (field 3)
  while (f.size() < 13 && rest >> field) f.push_back(field);
  if (f.size() < 13) return std::nullopt;
  out.ppid = static_cast<pid_t>(std::atol(f[1].c_str()));
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  out.cpu_s = (std::strtod(f[11].c_str(), nullptr) + std::strtod(f[12].c_str(), nullptr)) / ticks;
  return out;
}

std::map<pid_t, ProcStat> ReadAllProcStats() {
  std::map<pid_t, ProcStat> all;
  DIR* d = opendir("/proc");
  if (d == nullptr) return all;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    if (auto st = ReadProcStat(static_cast<pid_t>(pid))) all[static_cast<pid_t>(pid)] = *st;
  }
  closedir(d);
  return all;
}

bool IsDescendant(const std::map<pid_t, ProcStat>& all, pid_t pid, pid_t root) {
  auto it = all.find(pid);
  if (it == all.end() || pid == root) return false;
  // Bounded: pid chains are short, and a cycle cannot pass the bound.
  pid_t up = it->second.ppid;
  for (int depth = 0; depth < 16 && up > 1; ++depth) {
    if (up == root) return true;
    auto p = all.find(up);
    if (p == all.end()) return false;
    up = p->second.ppid;
  }
  return false;
}

double ProcessCpuSeconds(pid_t pid) {
  const std::optional<ProcStat> st = ReadProcStat(pid);
  return st ? st->cpu_s : 0;
}

double TreeCpuSeconds(pid_t root) {
  const std::map<pid_t, ProcStat> all = ReadAllProcStats();
  double total = 0;
  for (const auto& [pid, st] : all) {
    if (pid == root || IsDescendant(all, pid, root)) total += st.cpu_s;
  }
  return total;
}

double SelfCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double RssMib(pid_t pid) {
  double rss = 0, hwm = 0;
  ReadRss(pid, &rss, &hwm);
  return rss;
}

ProcessSample SampleProcesses(pid_t broker) {
  ProcessSample s;
  if (broker <= 0) return s;
  const std::map<pid_t, ProcStat> all = ReadAllProcStats();
  auto it = all.find(broker);
  if (it == all.end()) return s;
  s.ok = true;
  s.pids.push_back(broker);
  s.broker_cpu_s = it->second.cpu_s;
  ReadRss(broker, &s.broker_rss_mib, &s.broker_peak_rss_mib, &s.broker_anon_rss_mib);
  for (const auto& [pid, st] : all) {
    if (!IsDescendant(all, pid, broker)) continue;
    s.pids.push_back(pid);
    if (st.comm.rfind("strongroom-work", 0) == 0) {
      double rss = 0, hwm = 0;
      ReadRss(pid, &rss, &hwm);
      s.workers_cpu_s += st.cpu_s;
      s.workers_rss_mib += rss;
      s.workers_peak_rss_mib += hwm;
      ++s.workers;
    } else {
      s.others_cpu_s += st.cpu_s;
    }
  }
  return s;
}

Result RunLoadOn(pid_t broker, int threads, double seconds,
                 const std::function<std::function<bool()>(int)>& make_op) {
  const ProcessSample before = SampleProcesses(broker);
  Result r = RunLoad(threads, seconds, make_op);
  const ProcessSample after = SampleProcesses(broker);
  if (before.ok && after.ok && r.ops > 0) {
    // Workers restarted meanwhile would make the difference wrong (their time is lost): clamp.
    r.cpu_us_per_op =
        std::max(0.0, after.cpu_s() - before.cpu_s()) * 1e6 / static_cast<double>(r.ops);
    r.broker_rss_mib = after.broker_rss_mib;
    r.workers_rss_mib = after.workers_rss_mib;
  }
  return r;
}

Conn::Conn(int port) {
  fd_ = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd_);
    fd_ = -1;
  }
}

Conn::~Conn() {
  if (fd_ >= 0) close(fd_);
}

int Conn::Do(const std::string& method, const std::string& path, const std::string& token,
             const std::string& body, std::string* response_body) {
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: b\r\nX-Vault-Token: " + token +
                    "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  if (fd_ < 0 ||
      send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    return 0;
  }
  for (;;) {
    size_t end = buf_.find("\r\n\r\n");
    if (end != std::string::npos) {
      size_t cl = 0;
      std::string head = buf_.substr(0, end);
      for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      size_t at = head.find("content-length:");
      if (at != std::string::npos) cl = std::strtoul(head.c_str() + at + 15, nullptr, 10);
      if (buf_.size() >= end + 4 + cl) {
        int status = std::atoi(buf_.c_str() + 9);
        if (response_body != nullptr) response_body->assign(buf_, end + 4, cl);
        buf_.erase(0, end + 4 + cl);
        return status;
      }
    }
    char tmp[65536];
    ssize_t n = recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return 0;
    buf_.append(tmp, static_cast<size_t>(n));
  }
}

std::string MakeTempDir() {
  char tmpl[] = "/tmp/strongroom-bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return "";
  return tmpl;
}

bool RemoveTree(const std::string& dir) {
  std::string cmd = "rm -rf '" + dir + "'";
  return system(cmd.c_str()) == 0;
}

Daemon::~Daemon() { Stop(); }

bool Daemon::Start(const std::vector<std::string>& args, const std::string& log_path,
                   double timeout_s) {
  std::vector<char*> av;
  for (const auto& a : args) av.push_back(const_cast<char*>(a.c_str()));
  av.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  const int err = posix_spawn(&pid_, av[0], &fa, nullptr, av.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (err != 0) {
    pid_ = 0;
    return false;
  }
  const std::regex api(R"(API on http://127\.0\.0\.1:(\d+))");
  const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  while (port_ == 0 && Clock::now() < deadline) {
    std::ifstream in(log_path);
    std::stringstream ss;
    ss << in.rdbuf();
    std::smatch m;
    std::string text = ss.str();
    if (std::regex_search(text, m, api)) {
      port_ = std::stoi(m[1]);
      break;
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = 0;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return port_ != 0;
}

bool Daemon::StartDev(const std::string& bin, const std::string& dir) {
  if (Start({bin + "/strongroomd", "-dev", "-dev-root-token-id=bench",
             "-dev-listen-address=127.0.0.1:0"},
            dir + "/daemon.log")) {
    return true;
  }
  std::fprintf(stderr, "strongroomd did not start; see %s/daemon.log\n", dir.c_str());
  return false;
}

void Daemon::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = 0;
  port_ = 0;
}

// Runs argv (looked up in PATH) with stdio on /dev/null; true when it exits 0.
bool RunQuiet(const std::vector<std::string>& args) {
  std::vector<char*> av;
  for (const auto& a : args) av.push_back(const_cast<char*>(a.c_str()));
  av.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int err = posix_spawnp(&pid, av[0], &fa, nullptr, av.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (err != 0) return false;
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

pid_t SpawnTool(const std::vector<std::string>& args, const std::string& out_path) {
  std::vector<char*> av;
  for (const auto& a : args) av.push_back(const_cast<char*>(a.c_str()));
  av.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (!out_path.empty()) {
    posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
  }
  pid_t pid = 0;
  const int err = posix_spawnp(&pid, av[0], &fa, nullptr, av.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  return err == 0 ? pid : 0;
}

void StopTool(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
}

// The value of a string field in a JSON body (first occurrence; enough for our own responses).
std::string JsonString(const std::string& body, const std::string& key) {
  std::smatch m;
  if (std::regex_search(body, m, std::regex("\"" + key + "\"\\s*:\\s*\"([^\"]*)\""))) return m[1];
  return "";
}

}  // namespace strongroom::bench
