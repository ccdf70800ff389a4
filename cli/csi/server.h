// The gRPC server of `strongroom csi-provider`: the driver's v1alpha1.CSIDriverProvider service
// (Version, Mount) on a Unix socket, created mode 0600 (the process umask is 0177 from before
// the bind, so it is never more open) and then given the driver's group and mode when asked.
// One log line per mount: the pod, the objects, which versions changed; never attributes,
// tokens or contents.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/csi/provider.h"

namespace strongroom::csi {

inline constexpr char kRuntimeName[] = "strongroom-csi-provider";
inline constexpr char kApiVersion[] = "v1alpha1";

struct ServerOptions {
  std::string socket_path;
  unsigned socket_mode = 0600;        // 0600, or 0660 with socket_group
  std::optional<gid_t> socket_group;  // chgrp'ed to this group
  int max_threads = 16;               // concurrent calls (each mount runs on one)
  int max_receive_bytes = 2 << 20;    // a MountRequest (attributes are at most 1 MiB)
};

class CsiServer {
 public:
  // Binds the socket (an old socket at the path is removed first; anything else there is an
  // error) and starts serving.
  static absl::StatusOr<std::unique_ptr<CsiServer>> Start(const ServerOptions& options,
                                                          Provider* provider);
  virtual ~CsiServer() = default;
  // Stops accepting calls, waits up to `grace` for the running ones, removes the socket.
  virtual void Shutdown(absl::Duration grace) = 0;
};

// "unix:///path", "unix:/path" or "/path" (the Vault provider's -endpoint takes a path): the
// absolute socket path, short enough for sockaddr_un.
absl::StatusOr<std::string> SocketPathFromEndpoint(std::string_view endpoint);

// Calls Version on the socket as the driver does (the DaemonSet's exec probe): the provider's
// "runtime_name runtime_version" or the error.
absl::StatusOr<std::string> CheckVersion(const std::string& socket_path, absl::Duration timeout);

}  // namespace strongroom::csi
