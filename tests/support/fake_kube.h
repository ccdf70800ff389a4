// tests/e2e/fake_kube_server.js (the fake Kubernetes API server of tests/e2e/fake_kube.js) as a
// child process, for C++ tests: one JSON line of set-up on stdout (its URL, CA, reviewer token
// and ready-made service account tokens), then one JSON answer line per command line written to
// its stdin ("requests", "revoke <uid>", "respond-next <json>", "token <json>"); it exits when
// stdin closes. Needs node: without it Start() records a test failure (tests fail, not skip).
#pragma once

#include <sys/types.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace strongroom::testing {

class FakeKube {
 public:
  // Empty on failure (with a gtest failure recorded). `args`: fake_kube_server.js's options.
  static std::unique_ptr<FakeKube> Start(const std::vector<std::string>& args = {});
  ~FakeKube();

  const nlohmann::json& info() const { return info_; }
  std::string Str(const char* key) const { return info_.value(key, std::string()); }

  // One command line; its JSON answer (null when the fake did not answer).
  nlohmann::json Command(const std::string& line);
  // The request the fake recorded last.
  nlohmann::json LastRequest();
  // A projected service account token signed by the fake's key (the "token" command).
  std::string Token(const nlohmann::json& options);

 private:
  FakeKube(pid_t pid, int in_fd, int out_fd) : pid_(pid), in_fd_(in_fd), out_fd_(out_fd) {}
  bool ReadLine(std::string* line, int timeout_ms);

  pid_t pid_;
  int in_fd_, out_fd_;
  std::string buffer_;
  nlohmann::json info_;
};

}  // namespace strongroom::testing
