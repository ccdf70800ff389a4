#include "appliance/ipc/protocol.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"

namespace strongroom::ipc {
namespace {

absl::Status ReadAll(int fd, uint8_t* p, size_t n, bool* eof_at_start) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, p + got, n - got);
    if (r == 0) {
      if (got == 0 && eof_at_start != nullptr) {
        *eof_at_start = true;
        return absl::NotFoundError("peer closed");
      }
      return absl::DataLossError("peer closed mid-frame");
    }
    if (r < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError(absl::StrCat("read: ", strerror(errno)));
    }
    got += static_cast<size_t>(r);
  }
  return absl::OkStatus();
}

}  // namespace

const MessageRule* FindRule(Frame::MessageCase message) {
  for (const auto& rule : kMessageTable) {
    if (rule.message == message) return &rule;
  }
  return nullptr;
}

uint32_t DecodeLength(const uint8_t h[4]) {
  return (uint32_t{h[0]} << 24) | (uint32_t{h[1]} << 16) | (uint32_t{h[2]} << 8) | uint32_t{h[3]};
}

std::string EncodeFrame(const Frame& frame) {
  std::string body = frame.SerializeAsString();
  const auto n = static_cast<uint32_t>(body.size());
  std::string out;
  out.reserve(4 + body.size());
  out.push_back(static_cast<char>(n >> 24));
  out.push_back(static_cast<char>(n >> 16));
  out.push_back(static_cast<char>(n >> 8));
  out.push_back(static_cast<char>(n));
  out.append(body);
  return out;
}

absl::StatusOr<Frame> ReadFrame(int fd, size_t cap) {
  uint8_t header[4];
  bool eof = false;
  absl::Status s = ReadAll(fd, header, 4, &eof);
  if (!s.ok()) return s;
  const uint32_t len = DecodeLength(header);
  if (len > cap) {
    return absl::ResourceExhaustedError(absl::StrCat("frame of ", len, " bytes over cap ", cap));
  }
  std::string body(len, '\0');
  s = ReadAll(fd, reinterpret_cast<uint8_t*>(body.data()), len, nullptr);
  if (!s.ok()) return s;
  Frame frame;
  if (!frame.ParseFromString(body)) return absl::InvalidArgumentError("frame does not parse");
  if (frame.message_case() == Frame::MESSAGE_NOT_SET) {
    return absl::InvalidArgumentError("frame carries no message");
  }
  const MessageRule* rule = FindRule(frame.message_case());
  if (rule == nullptr || len > rule->max_frame_bytes) {
    return absl::ResourceExhaustedError("frame over its message's cap");
  }
  return frame;
}

absl::Status WriteFrame(int fd, const Frame& frame) {
  const std::string bytes = EncodeFrame(frame);
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t r = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (r < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError(absl::StrCat("write: ", strerror(errno)));
    }
    sent += static_cast<size_t>(r);
  }
  return absl::OkStatus();
}

}  // namespace strongroom::ipc
