#include "hci_admission/common/worker_pool.hpp"

#include <thread>

namespace hci_admission {

WorkerPool::WorkerPool(size_t max_threads, std::chrono::milliseconds idle_ttl)
    : max_threads_(max_threads == 0 ? 1 : max_threads), idle_ttl_(idle_ttl) {}

WorkerPool::~WorkerPool() { shutdown(); }

void WorkerPool::enqueue(std::function<void()> job) {
  std::unique_lock<std::mutex> lock(mutex_);
  jobs_.push_back(std::move(job));
  if (idle_ >= jobs_.size() || threads_ >= max_threads_) {
    job_ready_.notify_one();
    return;
  }
  ++threads_;
  lock.unlock();
  // Detached: the pool counts its threads and waits for them in shutdown().
  std::thread([this] { work(); }).detach();
}

void WorkerPool::work() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    if (jobs_.empty()) {
      if (stopping_) break;
      ++idle_;
      const bool woke = job_ready_.wait_for(lock, idle_ttl_, [this] { return !jobs_.empty() || stopping_; });
      --idle_;
      if (!woke) break;  // idle too long: give the memory back
      continue;
    }
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    job();
    lock.lock();
  }
  if (--threads_ == 0) all_exited_.notify_all();
}

void WorkerPool::shutdown() {
  std::unique_lock<std::mutex> lock(mutex_);
  stopping_ = true;
  job_ready_.notify_all();
  all_exited_.wait(lock, [this] { return threads_ == 0; });
}

PeriodicTask::PeriodicTask(std::chrono::milliseconds first_wait,
                           std::function<std::chrono::milliseconds()> tick) {
  thread_ = std::thread([this, wait = first_wait, tick = std::move(tick)]() mutable {
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        if (wake_.wait_for(lock, wait, [this] { return stopping_; })) return;
      }
      wait = tick();
    }
  });
}

PeriodicTask::~PeriodicTask() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

}  // namespace hci_admission
