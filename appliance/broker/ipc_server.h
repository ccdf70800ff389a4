// The broker's side of the worker protocol: one reader thread per worker connection checks
// every frame against the message table (ipc/protocol.h), validates each field as hostile input,
// and hands requests to a small thread pool that runs the core pipeline and writes the answer.
// A protocol violation ends that worker (it is killed and the supervisor restarts it).
//
// Reads (and lists) are answered on the reader thread itself when nothing in them waits on I/O
// beyond storage: a single node (no Raft round trips) without audit devices (no fdatasync per
// batch), and while that worker's reads have been fast (an average under kInlineBudgetUs; slower,
// they go to the pool again, so reads from a cold disk overlap). The hand-off to a pool thread
// cost more than the read (issue 22: a wake-up and two context switches per request). Read
// parallelism is then one request per worker at a time (workers default to one per core).
//
// The pool's queue is bounded (requests and bytes): past it a request is answered at once with
// 503 "Vault server temporarily overloaded" (ipc::kServerBusy) and never held, so a flood of
// work costs the broker no memory beyond the bound. No worker may fill more than its share of a
// queue (a compromised one flooding it leaves room for the others' requests). The status calls
// (sys/health, sys/seal-status, sys/leader) have a lane of their own with its own thread, so that a
// load balancer's health check is answered while every pool thread is busy.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "appliance/core/core.h"
#include "appliance/core/json_limits.h"
#include "appliance/ipc/protocol.h"
#include "base/metrics.h"

namespace strongroom::broker {

// Threads taking tasks from a bounded queue: at most `max_tasks` waiting tasks and
// `max_bytes` of their declared sizes (one task is always taken when none waits, whatever its
// size).
class ThreadPool {
 public:
  ThreadPool(size_t threads, size_t max_tasks, size_t max_bytes);
  ~ThreadPool();
  // Queues `task` (`bytes`: what it holds), or returns false (and drops it) when the queue is
  // full.
  bool TryPost(size_t bytes, std::function<void()> task);

 private:
  struct Task {
    size_t bytes = 0;
    std::function<void()> run;
  };
  const size_t max_tasks_;
  const size_t max_bytes_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> tasks_;
  size_t queued_bytes_ = 0;
  std::vector<std::thread> threads_;
  bool stop_ = false;
};

class IpcServer {
 public:
  IpcServer(core::Core* core, ipc::WorkerSettings settings, size_t threads,
            std::function<void(pid_t)> kill_worker);
  ~IpcServer();

  // Takes ownership of `fd` (the broker end of the worker's socketpair).
  void AddWorker(int index, int fd, pid_t pid);
  void Stop();
  // Waits, at most `timeout`, until no request is queued or being answered (new ones may
  // still arrive): the answers of those in flight are with their workers. False on timeout.
  bool Drain(absl::Duration timeout);

  // Turns a validated ipc::Request into a core request (exposed for the fuzz target and tests).
  // Its data is checked against `limits` before it is parsed, as the worker checked the body
  // (a compromised worker is hostile too): over one is InvalidArgument with the limit's text.
  static absl::StatusOr<core::Request> ToCoreRequest(const ipc::Request& r,
                                                     const core::JsonLimits& limits = {});
  static ipc::Response ToIpcResponse(uint64_t id, const std::string& request_id,
                                     const absl::StatusOr<core::Response>& result,
                                     const std::string& mount_type);
  // The whole request: ToCoreRequest, the core pipeline, ToIpcResponse.
  static ipc::Response Process(core::Core* core, const ipc::Request& req,
                               const core::JsonLimits& limits = {});
  // The JSON limits the workers are given in `settings`, as the broker checks them (0: the
  // default). One number may be longer than its client wrote it (the worker writes numbers
  // anew, e.g. 0.1 as 1E-1), so the length limit is at least 32 here.
  static core::JsonLimits JsonLimitsFor(const ipc::WorkerSettings& settings);

  // The pool's bounds: waiting requests, and the bytes they carry (two 32 MiB requests).
  static constexpr size_t kMaxQueuedRequests = 256;
  static constexpr size_t kMaxQueuedBytes = 64 * ipc::kMiB;
  // The status lane's (its requests carry no body worth counting).
  static constexpr size_t kMaxQueuedStatus = 64;
  // One worker's share of each.
  static constexpr size_t kMaxQueuedPerWorker = kMaxQueuedRequests / 2;
  static constexpr size_t kMaxQueuedStatusPerWorker = kMaxQueuedStatus / 4;
  // Reads that take longer than this on average go to the pool (AnswersInline). A sanitizer
  // build runs every read about ten times slower, so it gets ten times the budget: the same
  // reads are answered inline there as in a release build.
#if defined(__SANITIZE_ADDRESS__)
  static constexpr uint64_t kInlineBudgetUs = 5000;
#else
  static constexpr uint64_t kInlineBudgetUs = 500;
#endif

  // The route class (metrics::kRouteClasses) of a request to `path` that its answer says
  // reached a mount of `mount_type` ("" when it reached none).
  static std::string_view RouteClass(std::string_view path, std::string_view mount_type);

  // A Raft standby's forwarding: the answer from the active node, or nullopt to answer here.
  // Set before the first worker is added.
  using Forwarder = std::function<std::optional<ipc::Response>(const ipc::Request&)>;
  void SetForwarder(Forwarder forwarder) { forwarder_ = std::move(forwarder); }

 private:
  struct Channel;
  // Answers made on a reader thread, not sent yet (Serve).
  struct InlineBatch {
    std::string bytes;  // encoded frames
    size_t answers = 0;
  };
  static constexpr size_t kMaxInlineBatch = 16;
  static constexpr size_t kMaxInlineBatchBytes = 256 * 1024;
  void Serve(std::shared_ptr<Channel> ch);
  // Answers `req`: sent at once, or (`batch`) added to it.
  void Answer(std::shared_ptr<Channel> ch, ipc::Request req, InlineBatch* batch = nullptr);
  void Flush(const std::shared_ptr<Channel>& ch, InlineBatch* batch);
  // Answers `req` on this thread (into `batch`) when AnswersInline says so; else queues it on
  // its lane, or answers it at once with 503 when that lane is full.
  void Dispatch(const std::shared_ptr<Channel>& ch, ipc::Request req, InlineBatch* batch);
  // Whether `req` (a read or a list, not a status call) is answered on `ch`'s reader thread.
  bool AnswersInline(const Channel& ch, const ipc::Request& req);
  // Folds the time a read took since `start` into `ch`'s average.
  static void NoteReadCost(Channel& ch, std::chrono::steady_clock::time_point start);
  void Send(const std::shared_ptr<Channel>& ch, ipc::Response out);
  // core.handle_request and core.response_status_code for one answer.
  static void RecordAnswer(std::string_view path, const ipc::Response& out,
                           std::chrono::steady_clock::time_point start);

  core::Core* core_;
  ipc::WorkerSettings settings_;
  core::JsonLimits json_limits_;
  std::function<void(pid_t)> kill_worker_;
  Forwarder forwarder_;
  ThreadPool pool_;
  ThreadPool status_pool_;
  std::atomic<int64_t> in_flight_{0};             // queued or being answered (Drain)
  std::atomic<uint64_t> refused_{0};              // answered 503 since the last warning
  std::atomic<int64_t> last_refusal_warning_{0};  // steady clock, seconds
  std::mutex mu_;
  std::vector<std::weak_ptr<Channel>> channels_;
  metrics::CollectorHandle metrics_;  // last: unregistered before the members it reads go
};

}  // namespace strongroom::broker
