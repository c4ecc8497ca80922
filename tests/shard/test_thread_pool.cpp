// pipeline::ThreadPool, the one pool of the loader's decoders and `flam shard`'s transforms: every
// submitted task runs once (the destructor runs what is queued), cancel_queued() drops exactly the
// tasks no worker started.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "pipeline/thread_pool.h"

namespace flam::pipeline {
namespace {

TEST(ThreadPool, RunsEveryTaskOnceAndDrainsOnDestruction) {
  std::atomic<int> ran{0};
  {
    ThreadPool pool(3);
    EXPECT_EQ(pool.size(), 3);
    for (int i = 0; i < 500; ++i) pool.submit([&] { ++ran; });
  }
  EXPECT_EQ(ran.load(), 500);
}

TEST(ThreadPool, CancelQueuedDropsOnlyTasksNotStarted) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  int started = 0;
  std::atomic<int> ran{0};
  {
    ThreadPool pool(1);
    pool.submit([&] {
      std::unique_lock<std::mutex> lock(mu);
      ++started;
      cv.notify_all();
      cv.wait(lock, [&] { return release; });
      ++ran;
    });
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return started == 1; });  // the one worker is busy
    }
    for (int i = 0; i < 10; ++i) pool.submit([&] { ++ran; });
    EXPECT_EQ(pool.cancel_queued(), 10u);
    {
      std::lock_guard<std::mutex> lock(mu);
      release = true;
    }
    cv.notify_all();
    pool.submit([&] { ++ran; });
  }  // the destructor runs what is still queued: only the task submitted after the cancel
  EXPECT_EQ(ran.load(), 2);
}

}  // namespace
}  // namespace flam::pipeline
