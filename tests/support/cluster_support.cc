#include "tests/support/cluster_support.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

namespace strongroom::testing {

ClusterCerts MakeClusterCerts(const std::string& dir, const std::string& name) {
  std::string cmd = "set -e; mkdir -p '" + dir + "'; cd '" + dir + "'; " +
                    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                    "-keyout " +
                    name + "-ca.key -out " + name + "-ca.pem -days 1 -subj /CN=" + name +
                    "-ca 2>/dev/null; "
                    "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " +
                    name + ".key -out " + name + ".csr -subj /CN=" + name +
                    "-node 2>/dev/null; "
                    "openssl x509 -req -in " +
                    name + ".csr -CA " + name + "-ca.pem -CAkey " + name +
                    "-ca.key -CAcreateserial -out " + name + ".pem -days 1 2>/dev/null";
  if (std::system(cmd.c_str()) != 0) return {};
  const std::string p = dir + "/" + name;
  return {p + "-ca.pem", p + ".pem", p + ".key"};
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
