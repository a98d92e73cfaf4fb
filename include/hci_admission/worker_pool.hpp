// Worker threads for connections: grows with demand up to a maximum and
// lets idle threads go, so an idle server stays small and a busy one is not
// capped at a few threads (each keep-alive connection holds its thread).
#pragma once

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>

namespace hci_admission {

class WorkerPool : public httplib::TaskQueue {
 public:
  WorkerPool(size_t max_threads, std::chrono::milliseconds idle_ttl);
  ~WorkerPool() override;

  void enqueue(std::function<void()> job) override;
  void shutdown() override;

  size_t threads() const;
  size_t queued() const;

 private:
  void work();

  const size_t max_threads_;
  const std::chrono::milliseconds idle_ttl_;
  mutable std::mutex mutex_;
  std::condition_variable job_ready_;
  std::condition_variable all_exited_;
  std::deque<std::function<void()>> jobs_;
  size_t threads_ = 0;
  size_t idle_ = 0;
  bool stopping_ = false;
};

}  // namespace hci_admission
