// Closures handed to a libuv loop from other threads: a queue, and a uv_async_t that wakes the
// loop to run what is queued (in order, on the loop's thread).
#pragma once

#include <uv.h>

#include <deque>
#include <functional>
#include <mutex>
#include <utility>

namespace strongroom::raft {

class LoopInbox {
 public:
  // Call before the loop runs, or on its thread.
  int Init(uv_loop_t* loop) {
    async_.data = this;
    return uv_async_init(loop, &async_, &LoopInbox::Drain);
  }

  // Queues `fn` for the loop thread. False, with `fn` (and what it owns) dropped, once Last()
  // was posted.
  bool Post(std::function<void()> fn) { return Enqueue(std::move(fn), false); }
  // Queues `fn` and refuses everything after it: the last thing the loop will be asked to do.
  bool Last(std::function<void()> fn) { return Enqueue(std::move(fn), true); }

  // On the loop thread: drops what is still queued and closes the handle; `closed` runs on the
  // loop once it is closed.
  void Close(std::function<void()> closed) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      refusing_ = true;
      queue_.clear();
    }
    closed_ = std::move(closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&async_), [](uv_handle_t* h) {
      auto* self = static_cast<LoopInbox*>(h->data);
      if (self->closed_) self->closed_();
    });
  }

 private:
  bool Enqueue(std::function<void()> fn, bool last) {
    std::lock_guard<std::mutex> lock(mu_);
    if (refusing_) return false;
    queue_.push_back(std::move(fn));
    refusing_ = last;
    uv_async_send(&async_);
    return true;
  }

  static void Drain(uv_async_t* handle) {
    auto* self = static_cast<LoopInbox*>(handle->data);
    std::deque<std::function<void()>> batch;
    {
      std::lock_guard<std::mutex> lock(self->mu_);
      batch.swap(self->queue_);
    }
    for (auto& fn : batch) fn();
  }

  uv_async_t async_{};
  std::mutex mu_;
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  bool refusing_ = false;                    // guarded by mu_
  std::function<void()> closed_;
};

}  // namespace strongroom::raft
