// Threads that run each posted task at once, kept for later tasks: an idle thread takes a task,
// or a new thread starts for it, up to `max_threads` (then Post refuses). For work that may
// block for long (a service call waiting on the token or the Raft loop), where a fixed pool
// could leave a task queued behind blocked ones, but a thread started for every task costs its
// creation each time. The threads end when the pool is destroyed, which waits for the tasks
// under way.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace strongroom::raft {

class ElasticPool {
 public:
  explicit ElasticPool(size_t max_threads) : max_threads_(max_threads) {}
  ~ElasticPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  ElasticPool(const ElasticPool&) = delete;
  ElasticPool& operator=(const ElasticPool&) = delete;

  // Runs `task` on a thread of the pool, at once: false (and `task` dropped) when every one of
  // max_threads is busy, or no thread can be started.
  bool Post(std::function<void()> task) {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return false;
    // Each waiting task needs an idle thread of its own (it must not wait behind another).
    if (tasks_.size() + 1 > idle_) {
      if (threads_.size() >= max_threads_) return false;
      try {
        threads_.emplace_back([this] { Run(); });
      } catch (const std::system_error&) {
        return false;
      }
    }
    tasks_.push_back(std::move(task));
    cv_.notify_one();
    return true;
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      ++idle_;
      cv_.wait(lock, [this] { return stop_ || !tasks_.empty(); });
      --idle_;
      if (tasks_.empty()) return;  // stopping
      std::function<void()> task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
  }

  const size_t max_threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;  // mu_
  size_t idle_ = 0;                          // mu_: threads waiting for a task
  std::vector<std::thread> threads_;         // mu_ (joined by the destructor)
  bool stop_ = false;                        // mu_
};

}  // namespace strongroom::raft
