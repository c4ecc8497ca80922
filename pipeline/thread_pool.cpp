#include "pipeline/thread_pool.h"

#include "core/check.h"

namespace flam::pipeline {

ThreadPool::ThreadPool(int threads) {
  FLAM_CHECK(threads >= 1) << "a pool needs a thread, got " << threads;
  for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::submit(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

size_t ThreadPool::cancel_queued() {
  std::lock_guard<std::mutex> lock(mu_);
  const size_t dropped = tasks_.size();
  tasks_.clear();
  return dropped;
}

void ThreadPool::work() {
  while (true) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

}  // namespace flam::pipeline
