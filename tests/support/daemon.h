// Starts the real strongroomd (which starts the real workers) as a separate process against a
// fresh SoftHSM2 token and a RocksDB data directory in a temporary folder, and talks HTTP to it.
#pragma once

#include <sys/types.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hsm/token.h"
#include "tests/support/cluster_support.h"
#include "tests/support/http_client.h"
#include "tests/support/softhsm_token.h"

namespace strongroom::testing {

std::string BuildDir();  // folder holding strongroomd and strongroom-worker
std::string ReadFileOr(const std::string& path, const std::string& fallback = "");
// What the token answers (a CKR_ name) to a read of CKA_VALUE of `object` from a new session: a
// key that stays in the token answers CKR_ATTRIBUTE_SENSITIVE.
std::string ReadValueAnswer(hsm::Token& token, CK_OBJECT_HANDLE object);

class Daemon {
 public:
  struct Options {
    int workers = 2;
    std::string pin_override;    // a wrong PIN, for seal tests
    std::string token_pin;       // the test token's user PIN (default "1234")
    std::string extra_listener;  // extra lines in listener "tcp" {}
    std::string extra_top;       // extra top-level lines
    // Folder holding the strongroomd to run (it starts the strongroom-worker next to it);
    // empty: BuildDir().
    std::string bin_dir;
    // Workers Start() waits for to log "serving"; -1: all of them.
    int serving_workers = -1;
    // The listener's address (a fixed port when the config must name it, as api_addr does).
    std::string listen_address = "127.0.0.1:0";
    // Replaces the storage "rocksdb" block; "@DATA@" becomes data_dir().
    std::string storage_block;
    // Start the daemon with dir() as its working directory: an audit file_path under
    // /proc/self/cwd/ then names a file of each daemon's own, as the same path does on machines
    // of their own (a cluster's nodes share their audit device table).
    bool run_in_dir = false;
    // More command-line arguments for strongroomd (after -config=FILE).
    std::vector<std::string> extra_args;
  };

  Daemon();
  explicit Daemon(Options options);
  ~Daemon();

  // Writes the config (and activates the test token's SoftHSM2 configuration), without
  // starting anything: for the CLI commands that read it (-tls-generate-key, ...).
  void WriteConfig(bool tls = false);
  // Writes the config and starts the daemon; waits until it listens. False on failure.
  bool Start(bool tls = false);
  // SIGTERM and wait; returns the exit status (as from waitpid) or -1.
  int Stop();
  void Kill();
  // Whether the daemon exited by itself (reaped: it is not running any more); its wait status
  // (as from waitpid) in *status. Does not wait.
  bool Exited(int* status);
  bool Restart() {
    Stop();
    return Start(tls_);
  }

  HttpResponse Call(const std::string& method, const std::string& path,
                    const std::string& body = "",
                    std::vector<std::pair<std::string, std::string>> headers = {});
  // With the root token from Init() in X-Vault-Token.
  HttpResponse Root(const std::string& method, const std::string& path,
                    const nlohmann::json& body = nullptr);
  // PUT sys/init; remembers the root token and recovery keys.
  nlohmann::json Init(int shares = 3, int threshold = 2);

  std::string Log() const { return ReadFileOr(log_path_); }
  bool WaitForLog(const std::string& needle, int timeout_ms = 10000) const;
  pid_t pid() const { return pid_; }
  std::vector<pid_t> WorkerPids() const;
  int port() const { return port_; }
  const std::string& dir() const { return dir_; }
  const std::string& data_dir() const { return data_dir_; }
  const std::string& config_path() const { return config_path_; }
  test_support::SoftHsmToken& token() { return *token_; }
  // The daemon's token, for opening it from the test process (hsm::Token::Open).
  hsm::TokenConfig TokenConfig() const {
    hsm::TokenConfig tc;
    tc.lib = token_->lib();
    tc.token_label = token_->label();
    tc.pin_spec = token_->pin();
    return tc;
  }
  const std::string& root_token() const { return root_token_; }
  void set_root_token(std::string token) { root_token_ = std::move(token); }
  const std::vector<std::string>& recovery_keys() const { return recovery_keys_; }
  Options& options() { return options_; }

 private:
  Options options_;
  std::unique_ptr<test_support::SoftHsmToken> token_;
  std::string dir_, data_dir_, config_path_, log_path_;
  pid_t pid_ = -1;
  int port_ = 0;
  bool tls_ = false;
  std::string root_token_;
  std::vector<std::string> recovery_keys_;
};

// Runs strongroomd with `args` to completion (for flag/config error tests).
struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout + stderr
};
RunResult RunStrongroomd(const std::vector<std::string>& args, int timeout_ms = 20000);
// Runs any program to completion (stdout and stderr captured together).
RunResult RunProgram(const std::string& binary, const std::vector<std::string>& args,
                     int timeout_ms = 20000);
// The offline verifier, strongroom-audit, from the same build.
std::string AuditVerifierBinary();

// Starts `d` with the LD_PRELOAD spy on syncs (tests/support/sync_spy.cc, built at `spy`): it
// logs to `log` each sync of a file whose path ends in `suffix`, and holds those syncs while the
// file `stall` exists (empty: never). The environment is as before once the daemon is up.
bool StartWithSyncSpy(Daemon& d, const std::string& spy, const std::string& log,
                      const std::string& suffix, const std::string& stall = "");

}  // namespace strongroom::testing
