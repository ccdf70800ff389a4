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
// The same port carries the cluster's service calls (a node joining asks a member for the keys):
//   "SRJ1" u32:request_len request   ->   u32:response_len response      (one call per connection)
// answered by the ServiceHandler on a thread of its own, at most 32 at a time: past that a call
// gets an empty response (response_len 0), which ServiceClient::Call reports as
// ResourceExhausted ("busy"). At most 64 connections may be in their TLS handshake and 256 be
// service connections at a time; more are closed at once.
//
// Every Raft connection's peer certificate (peer_identity.h) goes to a PeerCheck with the
// preamble's raft id and address (or the raft id and address this node connected to), and to
// the ServiceHandler with every service call.
#pragma once

#include <openssl/evp.h>
#include <openssl/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "appliance/raft/peer_identity.h"

struct raft_uv_transport;
struct uv_loop_s;
namespace boost::asio::ssl {
class context;
}

namespace strongroom::raft {

// A private key that lives in a PKCS#11 token (cluster_key_label), as OpenSSL uses it: through
// pkcs11-provider, loaded in a library context of its own (`libctx`: the default provider and
// pkcs11-provider), or through strongroom's own signer (tls/remote_ec_key.h; `libctx` null).
// Either way every signature is the token's and no private key is in memory.
struct TokenKey {
  std::shared_ptr<OSSL_LIB_CTX> libctx;  // the TLS contexts are made in it when set
  std::shared_ptr<EVP_PKEY> pkey;
};

struct TlsFiles {
  std::string ca_file;    // PEM: the cluster CA; peers must present a certificate it issued
  std::string cert_file;  // PEM: this node's certificate (chain)
  std::string key_file;   // PEM: its private key, when it is a file (cluster_key_file)
  // Its private key when it lives in the token: used instead of key_file when set. It must not
  // outlive the token.
  std::shared_ptr<const TokenKey> key;
};

// Answers one service request (at most kMaxServiceMessage bytes each way) from the peer the
// verified certificate `peer` names. It may block.
using ServiceHandler =
    std::function<std::string(const PeerIdentity& peer, std::string_view request)>;
// Whether a Raft connection may carry messages: the raft id and address the peer claimed in its
// preamble (accepting), or those this node connected to (connecting), against the identity its
// certificate names. An error is logged and the connection closed. Without one, any member of
// the cluster CA is accepted under any id (tests of the Raft module alone).
using PeerCheck = std::function<absl::Status(uint64_t raft_id, std::string_view address,
                                             const PeerIdentity& peer)>;
// Forwarded requests carry up to max_request_size (32 MiB) of body, base64-encoded in JSON.
inline constexpr size_t kMaxServiceMessage = 48u << 20;

// Service calls to members (host:port), over the same mutual TLS. Connections are kept for
// later calls (up to kMaxIdleConnections, each for at most 30 s idle): a forwarded request then
// costs a round trip, not a handshake. Thread-safe.
class ServiceClient {
 public:
  explicit ServiceClient(TlsFiles files);
  ~ServiceClient();
  ServiceClient(const ServiceClient&) = delete;
  ServiceClient& operator=(const ServiceClient&) = delete;

  // The member's answer. A failure is Unavailable; RequestMayHaveArrived tells whether the
  // member may have received the request (a failure before it was sent is not retried here
  // unless a kept connection turned out closed). With `server`, who answered: the identity its
  // certificate gives (which names the host of `address`).
  absl::StatusOr<std::string> Call(const std::string& address, std::string_view request,
                                   std::chrono::milliseconds timeout,
                                   PeerIdentity* server = nullptr);
  static constexpr size_t kMaxIdleConnections = 16;

 private:
  struct Conn;
  absl::StatusOr<std::unique_ptr<Conn>> Connect(const std::string& address,
                                                std::chrono::steady_clock::time_point deadline);
  TlsFiles files_;
  std::mutex mu_;
  std::unique_ptr<boost::asio::ssl::context> ctx_;  // loaded on first use; guarded by mu_
  std::vector<std::unique_ptr<Conn>> idle_;         // guarded by mu_
};

// Whether a failed ServiceClient::Call may have delivered its request: it had left this node
// whole (or the call timed out while it was leaving) when the connection broke or the deadline
// passed, so the member may or may not have acted on it. False when the call failed before the
// request was sent (no connection, a failed handshake or write) or the member refused it (busy).
bool RequestMayHaveArrived(const absl::Status& failed_call);

// One service call on a connection of its own (a ServiceClient used once).
absl::StatusOr<std::string> CallService(const TlsFiles& files, const std::string& address,
                                        std::string_view request,
                                        std::chrono::milliseconds timeout);

class TlsTransport {
 public:
  // The transport's callbacks run on `loop` (libraft's loop). Fails when a file cannot be read
  // or the key does not match the certificate. Without a handler, service calls are refused.
  static absl::StatusOr<std::unique_ptr<TlsTransport>> Create(uv_loop_s* loop,
                                                              const TlsFiles& files,
                                                              ServiceHandler service = nullptr,
                                                              PeerCheck check = nullptr);
  ~TlsTransport();
  TlsTransport(const TlsTransport&) = delete;
  TlsTransport& operator=(const TlsTransport&) = delete;

  // What raft_uv_init() takes. Valid as long as this object.
  raft_uv_transport* get();

  // Runs the PeerCheck again for every open Raft connection (with the raft id, address and
  // certificate it was admitted with) and closes those it now refuses (libraft sees EOF). For
  // a check whose answer changed (a node removed). Asynchronous; thread-safe.
  void RecheckPeers();

  struct Impl;

 private:
  explicit TlsTransport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace strongroom::raft
