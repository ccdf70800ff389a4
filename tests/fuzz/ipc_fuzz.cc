// libFuzzer target for the broker's side of the worker protocol (appliance/ipc/protocol.h). The
// input is what a hostile worker writes on its socketpair: a stream of length-prefixed frames.
// It goes frame by frame through the broker's decoder (DecodeFrame, which ReadFrame ends in) and
// the message table check (CheckFromWorker), in the broker's states, up to the first violation
// (where the broker ends the worker). Besides crashes, leaks and UB (ASan/UBSan), it checks:
//  - ReadFrame on a socketpair holding the same bytes yields the same frames and the same error;
//  - errors carry only the codes the broker expects, NotFound only at a clean end of the stream;
//  - an accepted frame fits its length prefix, the read cap and its message's own cap;
//  - only Hello is accepted before the handshake and only Request after it;
//  - an accepted frame re-encoded with EncodeFrame (the worker's path) decodes to the same frame.
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "appliance/ipc/protocol.h"
#include "google/protobuf/stubs/logging.h"

namespace {

using strongroom::ipc::CheckFromWorker;
using strongroom::ipc::DecodeFrame;
using strongroom::ipc::DecodeLength;
using strongroom::ipc::EncodeFrame;
using strongroom::ipc::FindRule;
using strongroom::ipc::Frame;
using strongroom::ipc::kMaxRequestFrame;
using strongroom::ipc::MessageRule;
using strongroom::ipc::PeerState;
using strongroom::ipc::ReadFrame;

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "ipc_fuzz invariant violated: %s\n", what);
    std::abort();
  }
}

// The socketpair comparison writes the whole input before reading; a stream socket buffers
// about 200 KiB, so larger inputs (never produced with the default -max_len) skip it.
constexpr size_t kMaxSocketInput = 64 * 1024;

// The same bytes through ReadFrame, the broker's blocking reader. Returns the read end (the
// write end is closed, so the reader sees the end of the stream), or -1.
int SocketHolding(std::string_view bytes) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return -1;
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = send(sv[0], bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  close(sv[0]);
  if (sent != bytes.size()) {
    close(sv[1]);
    return -1;
  }
  return sv[1];
}

void CheckDecoded(std::string_view rest, const absl::StatusOr<Frame>& frame, size_t consumed) {
  if (!frame.ok()) {
    const absl::StatusCode code = frame.status().code();
    Check(code == absl::StatusCode::kDataLoss || code == absl::StatusCode::kResourceExhausted ||
              code == absl::StatusCode::kInvalidArgument ||
              (code == absl::StatusCode::kNotFound && rest.empty()),
          "decoder errors are DataLoss, ResourceExhausted, InvalidArgument or NotFound at the end");
    return;
  }
  Check(rest.size() >= 4, "a frame has a length prefix");
  const uint32_t len = DecodeLength(reinterpret_cast<const uint8_t*>(rest.data()));
  Check(consumed == 4 + size_t{len} && consumed <= rest.size(), "consumed is prefix + length");
  Check(len <= kMaxRequestFrame, "length within the read cap");
  Check(frame->message_case() != Frame::MESSAGE_NOT_SET, "an accepted frame carries a message");
  const MessageRule* rule = FindRule(frame->message_case());
  Check(rule != nullptr && len <= rule->max_frame_bytes, "length within the message's cap");
}

void CheckAdmission(const Frame& frame, PeerState state, const absl::Status& admitted) {
  if (!admitted.ok()) {
    Check(admitted.code() == absl::StatusCode::kFailedPrecondition,
          "violations are FailedPrecondition");
    return;
  }
  if (state == PeerState::kNew) {
    Check(frame.has_hello(), "only Hello before the handshake");
    Check(frame.hello().protocol_version() == strongroom::ipc::kProtocolVersion,
          "Hello with the protocol version");
  } else {
    Check(frame.has_request(), "only Request after the handshake");
  }
}

// What the worker's encoder makes of an accepted frame decodes to the same frame (when the
// re-encoding, which normalises varints and merges repeated fields, still fits the caps).
void CheckReencoding(const Frame& frame, PeerState state, const absl::Status& admitted) {
  const std::string again = EncodeFrame(frame);
  const MessageRule* rule = FindRule(frame.message_case());
  if (again.size() - 4 > kMaxRequestFrame || again.size() - 4 > rule->max_frame_bytes) return;
  size_t consumed = 0;
  absl::StatusOr<Frame> decoded = DecodeFrame(again, kMaxRequestFrame, &consumed);
  Check(decoded.ok(), "a re-encoded frame decodes");
  Check(consumed == again.size(), "a re-encoded frame is consumed whole");
  Check(decoded->SerializeAsString() == frame.SerializeAsString(), "re-encoding is stable");
  Check(CheckFromWorker(*decoded, state).code() == admitted.code(),
        "a re-encoded frame gets the same admission");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Strings with invalid UTF-8 make protobuf log an error per parse; the broker keeps that line,
  // the fuzzer does not need a million of them.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const int fd = size <= kMaxSocketInput ? SocketHolding(input) : -1;
  PeerState state = PeerState::kNew;
  std::string_view rest = input;
  for (;;) {
    size_t consumed = 0;
    absl::StatusOr<Frame> frame = DecodeFrame(rest, kMaxRequestFrame, &consumed);
    CheckDecoded(rest, frame, consumed);
    // When a body ends early, ReadFrame sets aside its declared length (up to 32 MiB) before it
    // meets the end of the stream; comparing that for large lengths slows the fuzzer down
    // fortyfold, and DecodeFrame has covered the case.
    const bool body_cut_short =
        frame.status().code() == absl::StatusCode::kDataLoss && rest.size() >= 4 &&
        DecodeLength(reinterpret_cast<const uint8_t*>(rest.data())) > kMaxSocketInput;
    if (fd >= 0 && !body_cut_short) {
      absl::StatusOr<Frame> read = ReadFrame(fd, kMaxRequestFrame);
      Check(read.status().code() == frame.status().code(), "ReadFrame agrees with DecodeFrame");
      if (read.ok()) {
        Check(read->SerializeAsString() == frame->SerializeAsString(),
              "ReadFrame yields DecodeFrame's frame");
      }
    }
    if (!frame.ok()) break;  // the broker ends the worker (or, at the end, lets it go)
    const absl::Status admitted = CheckFromWorker(*frame, state);
    CheckAdmission(*frame, state, admitted);
    CheckReencoding(*frame, state, admitted);
    if (!admitted.ok()) break;
    if (frame->has_hello()) state = PeerState::kReady;
    rest.remove_prefix(consumed);
  }
  if (fd >= 0) close(fd);
  return 0;
}
