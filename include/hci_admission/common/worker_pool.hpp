// Background threads: workers for work that may block (a policy that reads
// the cluster), and a task that runs again and again on its own thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace hci_admission {

// Grows with demand up to a maximum and lets idle threads go, so an idle
// server stays small.
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

// Runs `tick` on a thread of its own, first after `first_wait`, then after
// whatever wait each run returns, until stopped. Stopping wakes the wait at
// once and lets a run in progress finish.
class PeriodicTask {
 public:
  PeriodicTask(std::chrono::milliseconds first_wait, std::function<std::chrono::milliseconds()> tick);
  ~PeriodicTask();
  PeriodicTask(const PeriodicTask &) = delete;
  PeriodicTask &operator=(const PeriodicTask &) = delete;

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace hci_admission
