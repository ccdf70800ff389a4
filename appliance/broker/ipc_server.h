// The broker's side of the worker protocol: one reader thread per worker connection checks
// every frame against the message table (ipc/protocol.h), validates each field as hostile input,
// and hands requests to a small thread pool that runs the core pipeline and writes the answer.
// A protocol violation ends that worker (it is killed and the supervisor restarts it).
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "appliance/core/core.h"
#include "appliance/ipc/protocol.h"

namespace strongroom::broker {

class ThreadPool {
 public:
  explicit ThreadPool(size_t threads);
  ~ThreadPool();
  void Post(std::function<void()> task);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
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

  // Turns a validated ipc::Request into a core request (exposed for the fuzz target and tests).
  static absl::StatusOr<core::Request> ToCoreRequest(const ipc::Request& r);
  static ipc::Response ToIpcResponse(uint64_t id, const std::string& request_id,
                                     const absl::StatusOr<core::Response>& result,
                                     const std::string& mount_type);
  // The whole request: ToCoreRequest, the core pipeline, ToIpcResponse.
  static ipc::Response Process(core::Core* core, const ipc::Request& req);

  // A Raft standby's forwarding: the answer from the active node, or nullopt to answer here.
  // Set before the first worker is added.
  using Forwarder = std::function<std::optional<ipc::Response>(const ipc::Request&)>;
  void SetForwarder(Forwarder forwarder) { forwarder_ = std::move(forwarder); }

 private:
  struct Channel;
  void Serve(std::shared_ptr<Channel> ch);
  void Answer(std::shared_ptr<Channel> ch, ipc::Request req);

  core::Core* core_;
  ipc::WorkerSettings settings_;
  std::function<void(pid_t)> kill_worker_;
  Forwarder forwarder_;
  ThreadPool pool_;
  std::mutex mu_;
  std::vector<std::weak_ptr<Channel>> channels_;
};

}  // namespace strongroom::broker
