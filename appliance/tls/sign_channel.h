// The worker's signing channel to the broker, for TLS handshakes whose key is in the token.
//
// It is a SOCK_SEQPACKET socketpair of its own (fd 5 in the worker), apart from the asynchronous
// IPC channel on fd 3, because OpenSSL asks for the signature synchronously in the middle of a
// handshake: the worker blocks on it (the broker answers in well under a millisecond with
// SoftHSM2; the socket's receive timeout bounds a stuck broker).
//
//   request  (worker -> broker): one packet, exactly the digest to sign: 20, 28, 32, 48 or
//                                64 bytes (SHA-1/224/256/384/512), nothing else;
//   response (broker -> worker): one packet, the DER ECDSA-Sig-Value (at most
//                                kMaxSignatureBytes), or the single byte kSignFailed.
// One request in flight at a time. Anything else from the worker is a protocol violation: the
// broker closes the channel and ends the worker (it is restarted like a crashed one).
//
// Trust: this makes the broker a signing oracle for the TLS key to a compromised worker (it can
// have any digest signed while it runs, at a bounded rate), as it would be with the key in the
// worker's memory; but the key itself never leaves the token and cannot be exported, so a
// compromise ends when the worker does, and no copy of the key exists to be stolen.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "absl/status/statusor.h"

namespace strongroom::tls {

inline constexpr int kWorkerSignFd = 5;
inline constexpr uint8_t kSignFailed = 0x00;
// DER ECDSA-Sig-Value for P-256: SEQUENCE { INTEGER r, INTEGER s }, each up to 33 bytes.
inline constexpr size_t kMaxSignatureBytes = 72;

// Worker side: sends `digest` and waits for the answer. Unavailable when the channel is broken
// (closed, timed out, or an answer that is not one): the worker cannot sign any more and should
// exit to be restarted. Internal when the broker answered kSignFailed (this handshake fails;
// the channel is fine). Uses only sendmsg and recvmsg on `fd`.
absl::StatusOr<std::string> RequestSignature(int fd, std::span<const uint8_t> digest);

}  // namespace strongroom::tls
