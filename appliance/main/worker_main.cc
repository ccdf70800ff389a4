// strongroom-worker: the sandboxable request worker. Started only by strongroomd (the broker),
// with the broker socketpair on fd 3, the listening socket on fd 4 and the TLS signing channel
// on fd 5.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string_view>

#include "absl/strings/numbers.h"
#include "appliance/worker/server.h"
#include "base/strings.h"
#include "sandbox/worker_sandbox.h"

int main(int argc, char** argv) {
  int index = 0;
  strongroom::sandbox::WorkerSandboxOptions sandbox;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a.starts_with("--worker-index=")) {
      if (!absl::SimpleAtoi(strongroom::Av(a.substr(15)), &index)) return 2;
    } else if (a.starts_with("--uid=")) {
      if (!absl::SimpleAtoi(strongroom::Av(a.substr(6)), &sandbox.uid)) return 2;
      sandbox.drop_privileges = true;
    } else if (a.starts_with("--gid=")) {
      if (!absl::SimpleAtoi(strongroom::Av(a.substr(6)), &sandbox.gid)) return 2;
    } else if (a == "--help" || a == "-h") {
      const char msg[] =
          "strongroom-worker: internal process of strongroomd (HTTP front end).\n"
          "It is started by the broker with its socketpair on fd 3 and the listener on fd 4;\n"
          "do not run it by hand.\n";
      (void)!write(1, msg, sizeof msg - 1);
      return 0;
    }
  }
  // Only stdin/stdout/stderr, the broker socketpair (3), the listener (4) and the signing
  // channel (5) may stay open.
  close_range(6, ~0U, 0);
  return strongroom::worker::RunWorker(index, 3, 4, 5, sandbox);
}
