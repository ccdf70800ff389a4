// The message table of the worker <-> broker protocol (strongroom_ipc.proto declares the types).
// One row per message: its Frame field number, direction, size cap and the broker state in
// which it is accepted. The broker checks every received frame against this table before it
// looks at the content (OpenSSH monitor style).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "appliance/ipc/strongroom_ipc.pb.h"

namespace strongroom::ipc {

inline constexpr uint32_t kProtocolVersion = 1;

// The error of a request turned away because the server is at capacity (HTTP 503; Vault's
// limits.ErrCapacity). 429 is for rate-limit quotas, which this is not.
inline constexpr char kServerBusy[] = "Vault server temporarily overloaded";
inline constexpr size_t kMiB = 1024 * 1024;

enum class Direction { kWorkerToBroker, kBrokerToWorker };
enum class PeerState { kNew, kReady };  // broker's view of one worker connection

struct MessageRule {
  Frame::MessageCase message;
  Direction direction;
  size_t max_frame_bytes;
  PeerState accepted_in;
  bool once;
};

// Request frames carry at most a 32 MiB body plus headers and metadata.
inline constexpr size_t kMaxRequestFrame = 32 * kMiB + 64 * 1024;
inline constexpr size_t kMaxResponseFrame = 64 * kMiB;

inline constexpr MessageRule kMessageTable[] = {
    // Hello: protocol version and worker index, the first thing a worker says.
    {Frame::kHello, Direction::kWorkerToBroker, 64, PeerState::kNew, true},
    // WorkerSettings: limits and TLS material, answer to Hello.
    {Frame::kSettings, Direction::kBrokerToWorker, 1 * kMiB, PeerState::kNew, true},
    // Request: one API call.
    {Frame::kRequest, Direction::kWorkerToBroker, kMaxRequestFrame, PeerState::kReady, false},
    // Response: the answer to one Request.
    {Frame::kResponse, Direction::kBrokerToWorker, kMaxResponseFrame, PeerState::kReady, false},
};

const MessageRule* FindRule(Frame::MessageCase message);

// Largest frame either side will read at all (the per-message cap is checked after parsing).
inline constexpr size_t kMaxAnyFrame = kMaxResponseFrame;

// Blocking framing over a stream socket, used by the broker (one thread per worker) and by
// the worker before its event loop starts.
// Reads one frame whose length is at most `cap`. NotFound on clean EOF before a frame starts.
// Everything it checks after reading is DecodeFrame's, on the bytes it read.
absl::StatusOr<Frame> ReadFrame(int fd, size_t cap);
absl::Status WriteFrame(int fd, const Frame& frame);
// Writes all of `bytes` (encoded frames), blocking.
absl::Status WriteAll(int fd, std::string_view bytes);

// Buffered framing over a stream socket for a reader that takes frame after frame (the broker's
// thread per worker): one read(2) takes whatever the peer has sent, up to kReadChunk bytes, so
// frames that arrive together cost one system call between them. Every check ReadFrame makes
// applies (DecodeFrame on each frame's bytes); a frame's length is checked against `cap` before
// memory is set aside for it, and the buffer goes back to kReadChunk once a large frame is
// taken. Not thread-safe: one reader.
class FrameReader {
 public:
  static constexpr size_t kReadChunk = 64 * 1024;
  FrameReader(int fd, size_t cap) : fd_(fd), cap_(cap) {}
  // The next frame; the errors are ReadFrame's (NotFound on a clean EOF between frames).
  absl::StatusOr<Frame> Next();
  // Whether the next frame is wholly buffered already (Next() will not read).
  bool HasBufferedFrame() const;
  // Bytes held (tests: the buffer is bounded).
  size_t capacity() const { return buf_.size(); }

 private:
  int fd_;
  size_t cap_;
  std::string buf_;
  size_t start_ = 0;  // first unconsumed byte
  size_t end_ = 0;    // one past the last byte read
};

// Decodes the frame at the start of `bytes` (4-byte length, then the body) with every check
// ReadFrame makes: NotFound when `bytes` is empty, DataLoss when they end inside the frame,
// ResourceExhausted for a length over `cap` or over its message's cap, InvalidArgument for a
// body that does not parse or carries no message. On success *consumed is the frame's size,
// prefix included. Pure, so that the fuzz target runs the broker's own decoder.
absl::StatusOr<Frame> DecodeFrame(std::string_view bytes, size_t cap, size_t* consumed);

// The broker's check of a decoded frame from a worker whose connection is in `state`: the table's
// direction and state columns, and Hello's protocol version. FailedPrecondition naming the
// violation, which ends the worker.
absl::Status CheckFromWorker(const Frame& frame, PeerState state);

// The HTTP status for an absl::StatusCode carried in Response.error_code (the one map from
// status codes to HTTP: the worker's encoder answers with it, the broker's metrics count it).
unsigned HttpStatusFor(int absl_code);
// The HTTP status a worker answers `response` with.
unsigned ResponseHttpStatus(const Response& response);

// Length prefix helpers for the worker's asynchronous path.
std::string EncodeFrame(const Frame& frame);
uint32_t DecodeLength(const uint8_t header[4]);

}  // namespace strongroom::ipc
