// libraft's network transport (struct raft_uv_transport) over mutual TLS.
//
// libraft's own TCP transport is plaintext and leaves Nagle on (40 ms stalls). Here every peer
// connection is TLS 1.3 with both certificates checked against the cluster CA, TCP_NODELAY and
// keepalive set; the TLS runs on a Boost.Asio thread (the one TU of this module compiling Asio)
// and reaches libraft as the other end of a Unix socketpair, so libraft reads and writes a plain
// uv_pipe_t. After the handshake the connecting node sends who it is:
//   "SRT1" u64:raft_id u16:address_len address     (little-endian)
// which becomes the (id, address) of libraft's accept callback.
//
// Any holder of a certificate issued by the cluster CA is a member: the CA must be the cluster's
// own, never a public or organisation-wide CA.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"

struct raft_uv_transport;
struct uv_loop_s;

namespace strongroom::raft {

struct TlsFiles {
  std::string ca_file;    // PEM: the cluster CA; peers must present a certificate it issued
  std::string cert_file;  // PEM: this node's certificate (chain)
  std::string key_file;   // PEM: its private key
};

class TlsTransport {
 public:
  // The transport's callbacks run on `loop` (libraft's loop). Fails when a file cannot be read
  // or the key does not match the certificate.
  static absl::StatusOr<std::unique_ptr<TlsTransport>> Create(uv_loop_s* loop,
                                                              const TlsFiles& files);
  ~TlsTransport();
  TlsTransport(const TlsTransport&) = delete;
  TlsTransport& operator=(const TlsTransport&) = delete;

  // What raft_uv_init() takes. Valid as long as this object.
  raft_uv_transport* get();

  struct Impl;

 private:
  explicit TlsTransport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace strongroom::raft
