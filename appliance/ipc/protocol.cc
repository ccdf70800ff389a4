#include "appliance/ipc/protocol.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

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

absl::Status CheckLength(uint32_t len, size_t cap) {
  if (len > cap) {
    return absl::ResourceExhaustedError(absl::StrCat("frame of ", len, " bytes over cap ", cap));
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
  std::string bytes(4, '\0');
  auto* p = reinterpret_cast<uint8_t*>(bytes.data());
  bool eof = false;
  absl::Status s = ReadAll(fd, p, 4, &eof);
  if (!s.ok()) return s;
  // The length is checked before any memory is set aside for the body.
  const uint32_t len = DecodeLength(p);
  s = CheckLength(len, cap);
  if (!s.ok()) return s;
  bytes.resize(4 + size_t{len});
  s = ReadAll(fd, reinterpret_cast<uint8_t*>(bytes.data()) + 4, len, nullptr);
  if (!s.ok()) return s;
  size_t consumed = 0;
  return DecodeFrame(bytes, cap, &consumed);
}

bool FrameReader::HasBufferedFrame() const {
  const size_t avail = end_ - start_;
  if (avail < 4) return false;
  const uint32_t len = DecodeLength(reinterpret_cast<const uint8_t*>(buf_.data() + start_));
  return len <= cap_ && avail - 4 >= len;
}

absl::StatusOr<Frame> FrameReader::Next() {
  for (;;) {
    const size_t avail = end_ - start_;
    size_t need = 4;
    if (avail >= 4) {
      const uint32_t len = DecodeLength(reinterpret_cast<const uint8_t*>(buf_.data() + start_));
      // The length is checked before any memory is set aside for the body.
      if (absl::Status s = CheckLength(len, cap_); !s.ok()) return s;
      need = 4 + size_t{len};
      if (avail >= need) {
        size_t consumed = 0;
        absl::StatusOr<Frame> frame =
            DecodeFrame(std::string_view(buf_.data() + start_, need), cap_, &consumed);
        start_ += need;
        if (start_ == end_) {
          start_ = end_ = 0;
          if (buf_.size() > kReadChunk) {
            buf_.resize(kReadChunk);
            buf_.shrink_to_fit();
          }
        }
        return frame;
      }
    }
    // Room for the rest of this frame (at least a chunk): what is buffered moves to the front.
    if (buf_.size() - start_ < std::max(need, kReadChunk)) {
      if (start_ > 0) {
        std::memmove(buf_.data(), buf_.data() + start_, avail);
        start_ = 0;
        end_ = avail;
      }
      if (buf_.size() < std::max(need, kReadChunk)) buf_.resize(std::max(need, kReadChunk));
    }
    const ssize_t r = read(fd_, buf_.data() + end_, buf_.size() - end_);
    if (r == 0) {
      if (avail == 0) return absl::NotFoundError("peer closed");
      return absl::DataLossError("peer closed mid-frame");
    }
    if (r < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError(absl::StrCat("read: ", strerror(errno)));
    }
    end_ += static_cast<size_t>(r);
  }
}

absl::StatusOr<Frame> DecodeFrame(std::string_view bytes, size_t cap, size_t* consumed) {
  if (bytes.empty()) return absl::NotFoundError("no frame");
  if (bytes.size() < 4) return absl::DataLossError("frame ends inside its length");
  const uint32_t len = DecodeLength(reinterpret_cast<const uint8_t*>(bytes.data()));
  if (absl::Status s = CheckLength(len, cap); !s.ok()) return s;
  if (bytes.size() - 4 < len) return absl::DataLossError("frame ends inside its body");
  Frame frame;
  // len <= cap <= kMaxAnyFrame, far below INT_MAX.
  if (!frame.ParseFromArray(bytes.data() + 4, static_cast<int>(len))) {
    return absl::InvalidArgumentError("frame does not parse");
  }
  if (frame.message_case() == Frame::MESSAGE_NOT_SET) {
    return absl::InvalidArgumentError("frame carries no message");
  }
  const MessageRule* rule = FindRule(frame.message_case());
  if (rule == nullptr || len > rule->max_frame_bytes) {
    return absl::ResourceExhaustedError("frame over its message's cap");
  }
  *consumed = 4 + size_t{len};
  return frame;
}

absl::Status CheckFromWorker(const Frame& frame, PeerState state) {
  const MessageRule* rule = FindRule(frame.message_case());
  if (rule == nullptr || rule->direction != Direction::kWorkerToBroker) {
    return absl::FailedPreconditionError("message not allowed from a worker");
  }
  if (rule->accepted_in != state) return absl::FailedPreconditionError("message out of order");
  if (frame.has_hello() && frame.hello().protocol_version() != kProtocolVersion) {
    return absl::FailedPreconditionError("wrong protocol version");
  }
  return absl::OkStatus();
}

absl::Status WriteFrame(int fd, const Frame& frame) { return WriteAll(fd, EncodeFrame(frame)); }

absl::Status WriteAll(int fd, std::string_view bytes) {
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

unsigned HttpStatusFor(int code) {
  switch (static_cast<absl::StatusCode>(code)) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kAlreadyExists:
      return 400;
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kUnimplemented:
      return 405;
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

unsigned ResponseHttpStatus(const Response& r) {
  switch (r.kind()) {
    case Response::EMPTY:
      return 204;
    case Response::ERROR:
      return r.http_status() ? r.http_status() : HttpStatusFor(r.error_code());
    case Response::RAW:
    case Response::LOGICAL:
      return r.http_status() ? r.http_status() : 200;
    default:
      return 500;
  }
}

}  // namespace strongroom::ipc
