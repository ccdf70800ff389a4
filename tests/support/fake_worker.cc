// strongroom-fake-worker: a stand-in for strongroom-worker that breaks the worker protocol on
// purpose, for tests of the broker's side of it (tests/integration/worker_protocol_test.cc).
//
// The test copies strongroomd into a temporary folder and puts this program next to it as
// "strongroom-worker". Two files in that folder steer it (the broker starts workers with an empty
// environment, so no variables):
//   fake-worker-mode   what worker 0 does on its broker socket (fd 3): a mode of Misbehave()
//   real-worker-path   the real strongroom-worker, which every other index execs, same argv
// Worker 0 never accepts on the listener (fd 4), so every client is served by the real workers.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "absl/strings/numbers.h"
#include "appliance/ipc/protocol.h"
#include "base/log.h"
#include "base/strings.h"
#include "sandbox/worker_sandbox.h"

namespace {

namespace ipc = strongroom::ipc;
using strongroom::LogError;
using strongroom::LogInfo;

constexpr int kBrokerFd = 3;

std::string OwnDir() {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  const std::string self(buf, static_cast<size_t>(n));
  return self.substr(0, self.rfind('/'));
}

std::string ReadTrimmed(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

bool SendRaw(const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = write(kBrokerFd, bytes.data() + sent, bytes.size() - sent);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

std::string Prefix(uint32_t len) {
  return {static_cast<char>(len >> 24), static_cast<char>(len >> 16), static_cast<char>(len >> 8),
          static_cast<char>(len)};
}

ipc::Frame Hello(uint32_t version = ipc::kProtocolVersion) {
  ipc::Frame f;
  f.mutable_hello()->set_protocol_version(version);
  f.mutable_hello()->set_worker_index(0);
  return f;
}

ipc::Frame HealthRequest(uint64_t id) {
  ipc::Frame f;
  f.mutable_request()->set_id(id);
  f.mutable_request()->set_operation(ipc::OP_READ);
  f.mutable_request()->set_path("sys/health");
  f.mutable_request()->set_data_json("{}");
  return f;
}

// The handshake as the real worker does it.
bool Handshake() {
  if (!ipc::WriteFrame(kBrokerFd, Hello()).ok()) return false;
  auto settings = ipc::ReadFrame(kBrokerFd, ipc::kMaxAnyFrame);
  return settings.ok() && settings->has_settings();
}

// Each mode breaks the protocol once; the comment names what the broker should log.
bool Misbehave(std::string_view mode) {
  if (mode == "forbidden-syscall") {  // dies of SIGSYS under the real worker filter
    if (!Handshake() || !strongroom::sandbox::InstallWorkerFilter().ok()) return false;
    (void)!open("/etc/passwd", O_RDONLY);  // openat: outside the policy
    return false;                          // not reached
  }
  if (mode == "garbage") {  // "frame does not parse"
    return SendRaw(Prefix(16) + std::string(16, '\xff'));
  }
  if (mode == "oversized-length") {  // "frame of 4294967295 bytes over cap"
    return SendRaw(Prefix(0xffffffff) + "junk");
  }
  if (mode == "hello-over-cap") {  // "frame over its message's cap"
    // A Hello padded with an unknown field (number 1000, 200 bytes) past its 64-byte cap.
    const std::string body =
        Hello().SerializeAsString() + std::string("\xc2\x3e\xc8\x01", 4) + std::string(200, 'x');
    return SendRaw(Prefix(static_cast<uint32_t>(body.size())) + body);
  }
  if (mode == "wrong-version") {  // "wrong protocol version"
    return ipc::WriteFrame(kBrokerFd, Hello(ipc::kProtocolVersion + 1)).ok();
  }
  if (mode == "request-before-hello") {  // "message out of order"
    return ipc::WriteFrame(kBrokerFd, HealthRequest(1)).ok();
  }
  if (mode == "second-hello") {  // "message out of order"
    return Handshake() && ipc::WriteFrame(kBrokerFd, Hello()).ok();
  }
  if (mode == "broker-message") {  // "message not allowed from a worker"
    ipc::Frame f;
    f.mutable_response()->set_id(1);
    f.mutable_response()->set_kind(ipc::Response::RAW);
    return Handshake() && ipc::WriteFrame(kBrokerFd, f).ok();
  }
  if (mode == "truncated") {  // "peer closed mid-frame"
    if (!Handshake()) return false;
    const std::string frame = ipc::EncodeFrame(HealthRequest(1));
    SendRaw(frame.substr(0, frame.size() / 2));
    std::_Exit(0);
  }
  if (mode == "flood-unread") {  // valid requests, but their answers are never read
    if (!Handshake()) return false;
    for (uint64_t id = 1; id <= 20000; ++id) {
      if (!ipc::WriteFrame(kBrokerFd, HealthRequest(id)).ok()) return false;
    }
    return true;
  }
  if (mode == "forged-remote-address") {  // "forged-remote-address: answered ..."
    // A compromised worker asserts the client's address. One with a line break would forge a
    // line of the broker's log (approle logs the address of a refused login); it asks until
    // the broker has answered the login itself (approle mounted) or refused the address.
    if (!Handshake()) return false;
    const std::string forged = "10.0.0.1\n1970-01-01T00:00:00Z [error] broker[1]: FORGED";
    for (uint64_t id = 1;; ++id) {
      ipc::Frame f;
      ipc::Request* r = f.mutable_request();
      r->set_id(id);
      r->set_operation(ipc::OP_UPDATE);
      r->set_path("auth/approle/login");
      r->set_data_json(R"({"role_id":"forged","secret_id":"forged"})");
      r->set_has_data(true);
      r->set_remote_address(forged);
      if (!ipc::WriteFrame(kBrokerFd, f).ok()) return false;
      auto answer = ipc::ReadFrame(kBrokerFd, ipc::kMaxAnyFrame);
      if (!answer.ok() || !answer->has_response()) return false;
      std::string errors;
      for (const auto& e : answer->response().errors()) errors += e + ";";
      if (errors.find("bad remote address") != std::string::npos ||
          errors.find("invalid role or secret ID") != std::string::npos) {
        LogInfo("forged-remote-address: answered %s", errors);
        return true;
      }
      usleep(200 * 1000);
    }
  }
  if (mode == "json-flood") {  // "json-flood: answered ..."
    // A compromised worker passes on what the real one refuses for its JSON limits: a request
    // with no token whose data is 32 MiB of tiny strings. The broker must refuse it before it
    // parses the data into values. Sent once the broker is initialised (so that the test can
    // take the broker's memory before it, and the request meets the whole pipeline).
    if (!Handshake()) return false;
    for (uint64_t id = 100;; ++id) {
      if (!ipc::WriteFrame(kBrokerFd, HealthRequest(id)).ok()) return false;
      auto health = ipc::ReadFrame(kBrokerFd, ipc::kMaxAnyFrame);
      if (!health.ok() || !health->has_response()) return false;
      if (health->response().data_json().find("\"initialized\":true") != std::string::npos) break;
      usleep(100 * 1000);
    }
    ipc::Frame f;
    ipc::Request* r = f.mutable_request();
    r->set_id(1);
    r->set_operation(ipc::OP_UPDATE);
    r->set_path("secret/data/x");
    std::string data = R"({"k":[)";
    data.reserve(32 * ipc::kMiB);
    while (data.size() < 32 * ipc::kMiB - 4096) data += R"("a",)";
    data += R"("a"]})";
    r->set_data_json(std::move(data));
    r->set_has_data(true);
    r->set_remote_address("127.0.0.1");
    if (!ipc::WriteFrame(kBrokerFd, f).ok()) return false;
    auto answer = ipc::ReadFrame(kBrokerFd, ipc::kMaxAnyFrame);
    if (!answer.ok() || !answer->has_response()) return false;
    std::string errors;
    for (const auto& e : answer->response().errors()) errors += e + ";";
    LogInfo("json-flood: answered %s", errors);
    return true;
  }
  LogError("unknown mode \"%s\"", std::string(mode));
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  int index = -1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a.starts_with("--worker-index=") &&
        !absl::SimpleAtoi(strongroom::Av(a.substr(15)), &index)) {
      return 2;
    }
  }
  const std::string dir = OwnDir();
  if (index != 0) {
    const std::string real = ReadTrimmed(dir + "/real-worker-path");
    execv(real.c_str(), argv);
    return 127;
  }
  strongroom::SetLogRole("fake-worker[0]");
  alarm(120);  // never outlive a test that went wrong (SIGALRM ends the process)
  const std::string mode = ReadTrimmed(dir + "/fake-worker-mode");
  LogInfo("misbehaving: %s", mode);
  if (!Misbehave(mode)) {
    LogError("could not carry out \"%s\"", mode);
    return 3;
  }
  // Wait to be ended by the broker, never reading (a flood's answers stay unread).
  for (;;) pause();
}
