// ThreadPool: a fixed set of worker threads running submitted tasks in FIFO order. The loader's
// decode threads and `flam shard`'s transform threads are one of these.
//
// Thread safety: submit() and cancel_queued() may be called from any thread. The destructor runs
// every task still queued, then joins the workers; a task must not destroy its own pool.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace flam::pipeline {

class ThreadPool {
 public:
  // REQUIRES: threads >= 1.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void submit(std::function<void()> task);
  // Drops the tasks no worker has started; returns how many. Running tasks are not waited for.
  size_t cancel_queued();
  int size() const { return static_cast<int>(workers_.size()); }

 private:
  void work();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;  // guarded by mu_
  bool stop_ = false;                        // guarded by mu_
  std::vector<std::thread> workers_;
};

}  // namespace flam::pipeline
