#include "tests/support/daemon.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "absl/strings/str_replace.h"
#include "hsm/rv.h"

extern char** environ;

namespace strongroom::testing {
namespace {

pid_t Spawn(const std::vector<std::string>& args, const std::string& out_path,
            const std::string& cwd = "") {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
  // Its own process group (the broker's pid), which its spawner and workers inherit: Kill
  // takes them all, as systemd's control-group kill and a container's end do.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  pid_t pid = -1;
  if (posix_spawn(&pid, args[0].c_str(), &fa, &attr, argv.data(), environ) != 0) pid = -1;
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

// What /proc/<pid>/stat says of each process now: the fields the harness looks at.
struct ProcStat {
  std::string comm;
  char state = '?';
  pid_t ppid = 0;
  pid_t pgrp = 0;
};
std::map<pid_t, ProcStat> ReadProcs() {
  std::map<pid_t, ProcStat> procs;
  DIR* d = opendir("/proc");
  if (d == nullptr) return procs;
  while (dirent* e = readdir(d)) {
    const pid_t p = static_cast<pid_t>(atoi(e->d_name));
    if (p <= 0) continue;
    const std::string stat = ReadFileOr("/proc/" + std::string(e->d_name) + "/stat");
    const size_t lp = stat.find('(');
    const size_t rp = stat.rfind(')');
    if (lp == std::string::npos || rp == std::string::npos || rp < lp) continue;
    ProcStat proc;
    std::istringstream rest(stat.substr(rp + 2));
    rest >> proc.state >> proc.ppid >> proc.pgrp;
    proc.comm = stat.substr(lp + 1, rp - lp - 1);
    procs[p] = std::move(proc);
  }
  closedir(d);
  return procs;
}

// Whether a process of group `pgid` is still alive (zombies, which hold no socket, are not).
bool GroupAlive(pid_t pgid) {
  for (const auto& [p, proc] : ReadProcs()) {
    if (proc.pgrp == pgid && proc.state != 'Z') return true;
  }
  return false;
}

// After the broker exited: waits (bounded) for the rest of its group, then kills what is left.
void EndGroup(pid_t pgid) {
  for (int i = 0; i < 400 && GroupAlive(pgid); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  kill(-pgid, SIGKILL);
  for (int i = 0; i < 400 && GroupAlive(pgid); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::string MakeTempDir() {
  char tmpl[] = "/tmp/strongroom-test-XXXXXX";
  return mkdtemp(tmpl);
}

}  // namespace

std::string BuildDir() {
  if (const char* d = getenv("STRONGROOM_BUILD_BIN")) return d;
  return STRONGROOM_BIN_DIR;  // set by CMake
}

std::string ReadFileOr(const std::string& path, const std::string& fallback) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fallback;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Daemon::Daemon() : Daemon(Options()) {}

Daemon::Daemon(Options options) : options_(std::move(options)) {
  auto token = options_.token_pin.empty()
                   ? test_support::SoftHsmToken::Create()
                   : test_support::SoftHsmToken::Create("strongroom-test", options_.token_pin);
  if (!token.ok()) std::abort();  // no SoftHSM2 on this machine: nothing below can work
  token_ = std::move(*token);
  dir_ = MakeTempDir();
  data_dir_ = dir_ + "/data";
  config_path_ = dir_ + "/strongroom.hcl";
  log_path_ = dir_ + "/daemon.log";
}

Daemon::~Daemon() {
  Stop();
  std::string cmd = "rm -rf '" + dir_ + "'";
  (void)!system(cmd.c_str());
}

void Daemon::WriteConfig(bool tls) {
  const std::string pin = options_.pin_override.empty() ? token_->pin() : options_.pin_override;
  {
    std::ofstream pin_file(dir_ + "/pin");
    pin_file << pin << "\n";
  }
  std::ofstream c(config_path_);
  c << "# written by the test harness\n"
    << "listener \"tcp\" {\n  address = \"" << options_.listen_address << "\"\n"
    << (tls ? "" : "  tls_disable = true\n") << options_.extra_listener << "}\n"
    << (options_.storage_block.empty()
            ? "storage \"rocksdb\" {\n  path = \"" + data_dir_ + "\"\n}\n"
            : absl::StrReplaceAll(options_.storage_block, {{"@DATA@", data_dir_}}) + "\n")
    << "seal \"pkcs11\" {\n  lib = \"" << token_->lib() << "\"\n  token_label = \""
    << token_->label() << "\"\n  pin = \"file://" << dir_
    << "/pin\"\n  key_label = \"strongroom-kek\"\n}\n"
    << "workers = " << options_.workers << "\n"
    << options_.extra_top;
  c.close();
  token_->Activate();
}

bool Daemon::Start(bool tls) {
  tls_ = tls;
  WriteConfig(tls);
  const size_t log_before = Log().size();
  const std::string bin_dir = options_.bin_dir.empty() ? BuildDir() : options_.bin_dir;
  std::vector<std::string> args = {bin_dir + "/strongroomd", "-config=" + config_path_};
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  pid_ = Spawn(args, log_path_, options_.run_in_dir ? dir_ : "");
  if (pid_ <= 0) return false;
  const std::regex api(R"(API on https?://127\.0\.0\.1:(\d+))");
  for (int i = 0; i < 400; ++i) {
    std::string log = Log().substr(log_before);
    std::smatch m;
    if (std::regex_search(log, m, api)) {
      port_ = std::stoi(m[1]);
      // The workers are up once they log that they serve.
      for (int j = 0; j < 200; ++j) {
        std::string l = Log().substr(log_before);
        size_t count = 0, at = 0;
        while ((at = l.find("]: serving", at)) != std::string::npos) {
          ++count;
          ++at;
        }
        const int serving =
            options_.serving_workers >= 0 ? options_.serving_workers : options_.workers;
        if (count >= static_cast<size_t>(serving)) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
      }
      return true;
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      EndGroup(pid_);
      pid_ = -1;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return false;
}

int Daemon::Stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int status = -1;
  for (int i = 0; i < 400; ++i) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      EndGroup(pid_);  // its spawner and workers end after it
      pid_ = -1;
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  kill(-pid_, SIGKILL);
  waitpid(pid_, &status, 0);
  EndGroup(pid_);
  pid_ = -1;
  return status;
}

void Daemon::Kill() {
  if (pid_ <= 0) return;
  kill(-pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  EndGroup(pid_);
  pid_ = -1;
}

bool Daemon::Exited(int* status) {
  if (pid_ <= 0) return false;
  if (waitpid(pid_, status, WNOHANG) != pid_) return false;
  EndGroup(pid_);
  pid_ = -1;
  return true;
}

HttpResponse Daemon::Call(const std::string& method, const std::string& path,
                          const std::string& body,
                          std::vector<std::pair<std::string, std::string>> headers) {
  HttpRequest r;
  r.method = method;
  r.path = path;
  r.body = body;
  r.headers = std::move(headers);
  return SendHttp("127.0.0.1", port_, r);
}

HttpResponse Daemon::Root(const std::string& method, const std::string& path,
                          const nlohmann::json& body) {
  return Call(method, path, body.is_null() ? "" : body.dump(), {{"X-Vault-Token", root_token_}});
}

nlohmann::json Daemon::Init(int shares, int threshold) {
  nlohmann::json body = {{"recovery_shares", shares}, {"recovery_threshold", threshold}};
  HttpResponse r = Call("PUT", "/v1/sys/init", body.dump());
  nlohmann::json j = r.Json();
  if (r.status == 200 && j.is_object()) {
    root_token_ = j.value("root_token", "");
    recovery_keys_.clear();
    for (const auto& k : j["recovery_keys"]) recovery_keys_.push_back(k.get<std::string>());
  }
  return j;
}

bool Daemon::WaitForLog(const std::string& needle, int timeout_ms) const {
  for (int waited = 0; waited < timeout_ms; waited += 25) {
    if (Log().find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return false;
}

// Workers are children of the spawner, itself a child of strongroomd (sandbox/spawner.h).
std::vector<pid_t> Daemon::WorkerPids() const {
  const std::map<pid_t, ProcStat> procs = ReadProcs();
  std::vector<pid_t> out;
  for (const auto& [p, proc] : procs) {
    if (proc.comm.find("strongroom-work") != 0 || proc.state == 'Z') continue;
    auto parent = procs.find(proc.ppid);
    if (parent != procs.end() && parent->second.ppid == pid_) out.push_back(p);
  }
  return out;
}

std::string ReadValueAnswer(hsm::Token& token, CK_OBJECT_HANDLE object) {
  auto lease = token.Acquire();
  if (!lease.ok()) return std::string(lease.status().message());
  uint8_t buf[512];
  CK_ATTRIBUTE value = {CKA_VALUE, buf, sizeof buf};
  return std::string(
      hsm::RvName(lease->fn()->C_GetAttributeValue(lease->handle(), object, &value, 1)));
}

RunResult RunStrongroomd(const std::vector<std::string>& args, int timeout_ms) {
  return RunProgram(BuildDir() + "/strongroomd", args, timeout_ms);
}

std::string AuditVerifierBinary() { return BuildDir() + "/../audit/strongroom-audit"; }

RunResult RunProgram(const std::string& binary, const std::vector<std::string>& args,
                     int timeout_ms) {
  RunResult result;
  std::string dir = MakeTempDir();
  std::string out = dir + "/out";
  std::vector<std::string> full = {binary};
  full.insert(full.end(), args.begin(), args.end());
  pid_t pid = Spawn(full, out);
  int status = 0;
  for (int waited = 0; waited < timeout_ms; waited += 20) {
    if (waitpid(pid, &status, WNOHANG) == pid) {
      result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (result.exit_code == -1) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  result.output = ReadFileOr(out);
  std::string cmd = "rm -rf '" + dir + "'";
  (void)!system(cmd.c_str());
  return result;
}

bool StartWithSyncSpy(Daemon& d, const std::string& spy, const std::string& log,
                      const std::string& suffix, const std::string& stall) {
  setenv("LD_PRELOAD", spy.c_str(), 1);
  setenv("STRONGROOM_SYNC_SPY_LOG", log.c_str(), 1);
  setenv("STRONGROOM_SYNC_SPY_SUFFIX", suffix.c_str(), 1);
  if (!stall.empty()) setenv("STRONGROOM_SYNC_SPY_STALL", stall.c_str(), 1);
#if defined(__SANITIZE_ADDRESS__)
  // ASan wants to be first in the link order; the spy comes first here, on purpose.
  const char* old_asan = getenv("ASAN_OPTIONS");
  const std::string saved_asan = old_asan != nullptr ? old_asan : "";
  setenv("ASAN_OPTIONS", (saved_asan + ":verify_asan_link_order=0").c_str(), 1);
#endif
  const bool started = d.Start();
  unsetenv("LD_PRELOAD");
  unsetenv("STRONGROOM_SYNC_SPY_LOG");
  unsetenv("STRONGROOM_SYNC_SPY_SUFFIX");
  unsetenv("STRONGROOM_SYNC_SPY_STALL");
#if defined(__SANITIZE_ADDRESS__)
  setenv("ASAN_OPTIONS", saved_asan.c_str(), 1);
#endif
  return started;
}

}  // namespace strongroom::testing
