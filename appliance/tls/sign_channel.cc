#include "appliance/tls/sign_channel.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "appliance/tls/remote_ec_key.h"

namespace strongroom::tls {

absl::StatusOr<std::string> RequestSignature(int fd, std::span<const uint8_t> digest) {
  if (!IsAllowedDigestLength(digest.size())) {
    return absl::InvalidArgumentError("digest length not allowed");
  }
  iovec out{const_cast<uint8_t*>(digest.data()), digest.size()};
  msghdr msg{};
  msg.msg_iov = &out;
  msg.msg_iovlen = 1;
  ssize_t n;
  do {
    n = sendmsg(fd, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(digest.size())) {
    return absl::UnavailableError(
        absl::StrCat("signing channel: send failed: ", n < 0 ? strerror(errno) : "short write"));
  }
  uint8_t buf[kMaxSignatureBytes];
  iovec in{buf, sizeof buf};
  msghdr reply{};
  reply.msg_iov = &in;
  reply.msg_iovlen = 1;
  do {
    n = recvmsg(fd, &reply, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    return absl::UnavailableError(absl::StrCat(
        "signing channel: ",
        errno == EAGAIN || errno == EWOULDBLOCK ? "no answer from the broker" : strerror(errno)));
  }
  if (n == 0) return absl::UnavailableError("signing channel closed by the broker");
  if ((reply.msg_flags & MSG_TRUNC) != 0 || (n > 1 && buf[0] != 0x30)) {
    return absl::UnavailableError("signing channel: malformed answer from the broker");
  }
  if (n == 1) {
    if (buf[0] == kSignFailed) return absl::InternalError("the broker could not sign");
    return absl::UnavailableError("signing channel: malformed answer from the broker");
  }
  return std::string(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
}

}  // namespace strongroom::tls
