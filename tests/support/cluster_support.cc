#include "tests/support/cluster_support.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
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

int FreeLoopbackPort(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  int bound = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    socklen_t len = sizeof(a);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    bound = ntohs(a.sin_port);
  }
  ::close(fd);
  return bound;
}

int FreeLoopbackPortPair() {
  for (;;) {
    const int p = FreeLoopbackPort();
    if (p > 0 && p < 65000 && FreeLoopbackPort(p + 1) == p + 1) return p;
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
