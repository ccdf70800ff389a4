// The broker's side of the workers' signing channels (the protocol is in tls/sign_channel.h):
// one thread per worker channel reads a digest, checks it strictly (one packet of an allowed
// digest length, nothing else), has the token sign it and answers with the DER signature.
//
// The broker becomes a signing oracle for the TLS key to a compromised worker (see
// sign_channel.h); it bounds that oracle: only digests, one request in flight, at most
// kSignaturesPerSecond per worker (answers beyond the rate are delayed, not refused, so a busy
// but honest worker is slowed rather than broken), and any protocol violation closes the
// channel and ends the worker.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace strongroom::broker {

class TlsSignServer {
 public:
  // Returns the DER ECDSA signature over an (already length-checked) digest.
  using Signer = std::function<absl::StatusOr<std::string>(std::span<const uint8_t> digest)>;

  static constexpr double kSignaturesPerSecond = 1000;

  explicit TlsSignServer(std::function<void(pid_t)> kill_worker,
                         double signatures_per_second = kSignaturesPerSecond);
  ~TlsSignServer();
  TlsSignServer(const TlsSignServer&) = delete;
  TlsSignServer& operator=(const TlsSignServer&) = delete;

  // Until a signer is set (the token opens after the first workers exist), requests are
  // answered with kSignFailed.
  void SetSigner(Signer signer);
  // Takes ownership of `fd` (the broker end of the worker's signing socketpair).
  void AddWorker(int index, int fd, pid_t pid);
  // Closes every channel and joins the threads; no Signer call is running when it returns.
  void Stop();

 private:
  struct Channel {
    int index = 0;
    int fd = -1;
    pid_t pid = 0;
    std::thread thread;
    std::atomic<bool> done{false};
  };
  void Serve(Channel* ch);
  // The reply to one request: the signature, or the one-byte failure answer.
  std::string AnswerSign(const Channel& ch, std::span<const uint8_t> digest);
  void ReapLocked();  // joins and closes channels whose worker has gone

  std::function<void(pid_t)> kill_worker_;
  const double rate_;
  std::mutex mu_;
  std::shared_ptr<const Signer> signer_;          // guarded by mu_
  std::list<std::unique_ptr<Channel>> channels_;  // guarded by mu_
  bool stopped_ = false;                          // guarded by mu_
};

}  // namespace strongroom::broker
