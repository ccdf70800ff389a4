#include "tests/support/cluster_support.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

namespace strongroom::testing {

namespace {

std::string DirOf(const std::string& path) { return path.substr(0, path.rfind('/')); }

}  // namespace

ClusterCerts MakeClusterCerts(const std::string& dir, const std::string& name) {
  const std::string cmd = "mkdir -p '" + dir + "' && '" + STRONGROOM_SOURCE_DIR +
                          "/packaging/cluster-certs.sh' ca '" + dir + "' >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) return {};
  return NodeCerts({dir + "/ca.pem", "", ""}, name);
}

ClusterCerts NodeCerts(const ClusterCerts& ca_of, const std::string& node_id,
                       const std::string& hosts) {
  const std::string dir = DirOf(ca_of.ca);
  ClusterCerts c{ca_of.ca, dir + "/" + node_id + ".pem", dir + "/" + node_id + ".key"};
  if (std::filesystem::exists(c.cert) && std::filesystem::exists(c.key)) return c;
  const std::string cmd = std::string("'") + STRONGROOM_SOURCE_DIR +
                          "/packaging/cluster-certs.sh' node '" + dir + "' '" + node_id + "' " +
                          hosts + " >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) return {};
  return c;
}

bool SignNodeRequest(const ClusterCerts& ca_of, const std::string& node_id, const std::string& csr,
                     const std::string& out, const std::string& hosts) {
  const std::string dir = DirOf(ca_of.ca);
  const std::string cmd = std::string("'") + STRONGROOM_SOURCE_DIR +
                          "/packaging/cluster-certs.sh' sign '" + dir + "' '" + node_id + "' '" +
                          csr + "' " + hosts + " >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) return false;
  std::error_code ec;
  std::filesystem::rename(dir + "/" + node_id + ".pem", out, ec);
  return !ec;
}

namespace {

// Whether `port` on 127.0.0.1 can be bound now.
bool Bindable(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(fd);
  return ok;
}

// The lowest port the kernel hands out to outgoing connections. A test port chosen below it
// cannot be taken by another test's connect() between the choice and the daemon's bind (an
// ephemeral port, bind(0), could be, and was: "cannot start Raft" in a parallel ctest).
int EphemeralLow() {
  std::ifstream f("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 0;
  if (!(f >> low) || low < 2048) low = 32768;
  return low;
}

int RandomTestPort(int span) {
  static std::mt19937 rng(std::random_device{}() ^ static_cast<unsigned>(::getpid()));
  static std::mutex mu;
  const int low = 1024, high = EphemeralLow() - span;
  std::lock_guard<std::mutex> lock(mu);
  return std::uniform_int_distribution<int>(low, high - 1)(rng);
}

}  // namespace

std::string NewTempDir(const std::string& prefix) {
  static std::atomic<int> serial{0};
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      (prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(++serial));
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return std::filesystem::create_directory(dir, ec) ? dir.string() : std::string();
}

int FreeLoopbackPort(int port) {
  if (port != 0) return Bindable(port) ? port : 0;
  for (;;) {
    const int p = RandomTestPort(1);
    if (Bindable(p)) return p;
  }
}

int FreeLoopbackPortPair() {
  for (;;) {
    const int p = RandomTestPort(2);
    if (Bindable(p) && Bindable(p + 1)) return p;
  }
}

bool Eventually(const std::function<bool()>& ok, int seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (ok()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return ok();
}

}  // namespace strongroom::testing
