// Worker threads for work that may block (a policy that reads the cluster):
// grows with demand up to a maximum and lets idle threads go, so an idle
// server stays small.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>

namespace hci_admission {

class WorkerPool {
 public:
  WorkerPool(size_t max_threads, std::chrono::milliseconds idle_ttl);
  ~WorkerPool();
  WorkerPool(const WorkerPool &) = delete;
  WorkerPool &operator=(const WorkerPool &) = delete;

  void enqueue(std::function<void()> job);
  // Runs what is queued, then waits for every thread to finish.
  void shutdown();

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
