#include "tests/support/fake_kube.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <system_error>
#include <thread>

extern char** environ;

namespace strongroom::testing {

using json = nlohmann::json;

std::unique_ptr<FakeKube> FakeKube::Start(const std::vector<std::string>& args) {
  (void)signal(SIGPIPE, SIG_IGN);  // a dead fake must fail the test, not kill it
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2 failed";
    return nullptr;
  }
  std::vector<std::string> argv_s = {SR_NODE_BINARY, SR_FAKE_KUBE_SERVER};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  argv.reserve(argv_s.size() + 1);
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(in[0]);
  close(out[1]);
  auto fake = std::unique_ptr<FakeKube>(new FakeKube(rc == 0 ? pid : -1, in[1], out[0]));
  if (rc != 0) {
    ADD_FAILURE() << "cannot run " << SR_NODE_BINARY << ": " << std::system_category().message(rc)
                  << " (node is required for this test)";
    return nullptr;
  }
  std::string line;
  if (!fake->ReadLine(&line, 30000)) {
    ADD_FAILURE() << "fake_kube_server.js printed no set-up line";
    return nullptr;
  }
  fake->info_ = json::parse(line, nullptr, false);
  if (!fake->info_.is_object()) {
    ADD_FAILURE() << "fake_kube_server.js printed: " << line;
    return nullptr;
  }
  return fake;
}

FakeKube::~FakeKube() {
  if (in_fd_ >= 0) close(in_fd_);  // the fake exits when its stdin closes
  if (pid_ > 0) {
    int status = 0;
    for (int i = 0; i < 400 && waitpid(pid_, &status, WNOHANG) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    if (kill(pid_, 0) == 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
    }
  }
  if (out_fd_ >= 0) close(out_fd_);
}

json FakeKube::Command(const std::string& line) {
  const std::string data = line + "\n";
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = write(in_fd_, data.data() + off, data.size() - off);
    if (n <= 0) return json();
    off += static_cast<size_t>(n);
  }
  std::string answer;
  if (!ReadLine(&answer, 10000)) return json();
  return json::parse(answer, nullptr, false);
}

json FakeKube::LastRequest() {
  json all = Command("requests");
  return all.is_array() && !all.empty() ? all.back() : json();
}

std::string FakeKube::Token(const json& options) {
  json answer = Command("token " + options.dump());
  if (!answer.is_object() || !answer.contains("token")) {
    ADD_FAILURE() << "fake_kube_server.js token: " << answer;
    return "";
  }
  return answer["token"].get<std::string>();
}

bool FakeKube::ReadLine(std::string* line, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    const size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      *line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return true;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{out_fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char chunk[65536];
    const ssize_t n = read(out_fd_, chunk, sizeof(chunk));
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

}  // namespace strongroom::testing
