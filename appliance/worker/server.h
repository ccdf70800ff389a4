// The worker process: HTTP/1.1 (optionally TLS) on the inherited listening socket, each request
// decoded (codec.h), sent to the broker over the inherited socketpair, and answered.
// Single-threaded event loop; after start-up it opens no files and no outgoing sockets.
#pragma once

#include "sandbox/worker_sandbox.h"

namespace strongroom::worker {

// fd 3: socketpair to the broker; fd 4: listening TCP socket; fd 5: the TLS signing channel
// to the broker (used when the TLS key is in the broker's token). Returns the exit code.
// Enters the sandbox (`sandbox_options`) once its sockets are set up, before serving.
int RunWorker(int worker_index, int ipc_fd, int listen_fd, int sign_fd,
              const sandbox::WorkerSandboxOptions& sandbox_options);

}  // namespace strongroom::worker
