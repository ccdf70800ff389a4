#include "appliance/broker/read_index.h"

#include <utility>

namespace strongroom::broker {

absl::StatusOr<uint64_t> ReadIndex::Confirm() {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t mine = started_ + 1;  // the first round to begin from now on
  while (finished_ < mine) {
    if (running_) {
      ++waiting_;
      done_.wait(lock);
      --waiting_;
      continue;
    }
    running_ = true;
    const uint64_t round = ++started_;
    lock.unlock();
    absl::StatusOr<uint64_t> result = round_();
    lock.lock();
    running_ = false;
    finished_ = round;
    last_ = std::move(result);
    done_.notify_all();
  }
  return last_;
}

uint64_t ReadIndex::rounds() {
  std::lock_guard<std::mutex> lock(mu_);
  return finished_;
}

int ReadIndex::waiting() {
  std::lock_guard<std::mutex> lock(mu_);
  return waiting_;
}

}  // namespace strongroom::broker
