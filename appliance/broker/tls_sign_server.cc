#include "appliance/broker/tls_sign_server.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "appliance/tls/remote_ec_key.h"
#include "appliance/tls/sign_channel.h"
#include "base/log.h"

namespace strongroom::broker {

TlsSignServer::TlsSignServer(std::function<void(pid_t)> kill_worker, double signatures_per_second)
    : kill_worker_(std::move(kill_worker)), rate_(signatures_per_second) {}

TlsSignServer::~TlsSignServer() { Stop(); }

void TlsSignServer::SetSigner(Signer signer) {
  auto s = std::make_shared<const Signer>(std::move(signer));
  std::lock_guard<std::mutex> lock(mu_);
  signer_ = std::move(s);
}

void TlsSignServer::AddWorker(int index, int fd, pid_t pid) {
  std::lock_guard<std::mutex> lock(mu_);
  ReapLocked();
  if (stopped_) {
    close(fd);
    return;
  }
  auto ch = std::make_unique<Channel>();
  ch->index = index;
  ch->fd = fd;
  ch->pid = pid;
  Channel* raw = ch.get();
  channels_.push_back(std::move(ch));
  raw->thread = std::thread([this, raw] { Serve(raw); });
}

void TlsSignServer::ReapLocked() {
  for (auto it = channels_.begin(); it != channels_.end();) {
    if ((*it)->done.load()) {
      (*it)->thread.join();
      close((*it)->fd);
      it = channels_.erase(it);
    } else {
      ++it;
    }
  }
}

void TlsSignServer::Stop() {
  std::list<std::unique_ptr<Channel>> channels;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
    channels.swap(channels_);
    signer_.reset();
  }
  // The threads take mu_ (for the signer), so they are joined without it.
  for (auto& ch : channels) shutdown(ch->fd, SHUT_RDWR);
  for (auto& ch : channels) {
    if (ch->thread.joinable()) ch->thread.join();
    close(ch->fd);
  }
}

std::string TlsSignServer::AnswerSign(const Channel& ch, std::span<const uint8_t> digest) {
  std::shared_ptr<const Signer> signer;
  {
    std::lock_guard<std::mutex> lock(mu_);
    signer = signer_;
  }
  if (signer == nullptr) return std::string(1, static_cast<char>(tls::kSignFailed));
  absl::StatusOr<std::string> sig = (*signer)(digest);
  if (!sig.ok() || sig->empty() || sig->size() > tls::kMaxSignatureBytes) {
    LogError("worker %d: TLS signature failed: %s", ch.index,
             sig.ok() ? "signature too long" : std::string(sig.status().message()));
    return std::string(1, static_cast<char>(tls::kSignFailed));
  }
  return *std::move(sig);
}

void TlsSignServer::Serve(Channel* ch) {
  using Clock = std::chrono::steady_clock;
  // Token bucket: up to one second's worth of signatures at once, then `rate_` per second.
  double tokens = rate_;
  Clock::time_point last = Clock::now();
  // One byte more than the largest digest, to see an oversized packet even without MSG_TRUNC.
  uint8_t buf[65];
  for (;;) {
    iovec in{buf, sizeof buf};
    msghdr msg{};
    msg.msg_iov = &in;
    msg.msg_iovlen = 1;
    ssize_t n;
    do {
      n = recvmsg(ch->fd, &msg, MSG_TRUNC);  // n: the real length, even when truncated
    } while (n < 0 && errno == EINTR);
    if (n <= 0) break;  // the worker exited (or Stop): its channel ends with it
    if ((msg.msg_flags & MSG_TRUNC) != 0 || !tls::IsAllowedDigestLength(static_cast<size_t>(n))) {
      LogWarn("worker %d: signing channel protocol violation (a %d-byte request); ending it",
              ch->index, static_cast<int>(n));
      kill_worker_(ch->pid);
      break;
    }
    const Clock::time_point now = Clock::now();
    tokens = std::min(rate_, tokens + std::chrono::duration<double>(now - last).count() * rate_);
    last = now;
    if (tokens < 1) {
      std::this_thread::sleep_for(std::chrono::duration<double>((1 - tokens) / rate_));
      tokens = 1;
      last = Clock::now();
    }
    tokens -= 1;
    const std::string answer =
        AnswerSign(*ch, std::span<const uint8_t>(buf, static_cast<size_t>(n)));
    iovec out{const_cast<char*>(answer.data()), answer.size()};
    msghdr reply{};
    reply.msg_iov = &out;
    reply.msg_iovlen = 1;
    do {
      n = sendmsg(ch->fd, &reply, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n != static_cast<ssize_t>(answer.size())) break;
  }
  shutdown(ch->fd, SHUT_RDWR);
  ch->done.store(true);
}

}  // namespace strongroom::broker
