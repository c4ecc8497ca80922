#include "shard/shard_queue.h"

#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "core/mpi_check.h"
#include "core/progress.h"

namespace flam::shard {
namespace {

constexpr int kTagRequest = 4101;
constexpr int kTagReply = 4102;
// A request: {has_report, shard, samples, successes, images, images_ok, bytes_downloaded,
// bytes_written, leaving}. A leaving rank gets no reply.
constexpr int kRequestWords = 9;
// Empty polls the dispatcher answers with a yield before it sleeps 2 ms between polls.
constexpr int kYieldPolls = 2000;
// Polls a waiting rank makes before it sleeps 50 us between polls.
constexpr int kSpinPolls = 16;

void pack(const ShardStats* s, bool leaving, int64_t* msg) {
  msg[0] = s ? 1 : 0;
  msg[1] = s ? s->shard : -1;
  msg[2] = s ? s->samples : 0;
  msg[3] = s ? s->successes : 0;
  msg[4] = s ? s->images : 0;
  msg[5] = s ? s->images_ok : 0;
  msg[6] = s ? s->bytes_downloaded : 0;
  msg[7] = s ? s->bytes_written : 0;
  msg[8] = leaving ? 1 : 0;
}

// Waits for `request` without holding a core: a few polls, then a short sleep between polls. A
// rank waiting for its next id must not spin in MPI_Recv, or on an oversubscribed node (many
// ranks per core) the spinning waiters take the core from rank 0's dispatcher, which alone can
// answer them.
void wait_without_spinning(MPI_Request* request) {
  for (int polls = 0;; ++polls) {
    int done = 0;
    MPI_CHECK(MPI_Test(request, &done, MPI_STATUS_IGNORE));
    if (done) return;
    if (polls < kSpinPolls) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
}

}  // namespace

struct ShardQueue::Impl {
  // A duplicate of MPI_COMM_WORLD: this queue's requests and replies never match another
  // queue's (one after another in a process) or anyone else's messages with the same tags.
  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0;
  int size = 1;
  QueueOptions options;
  // Rank 0 only. `mu` guards everything below it.
  std::mutex mu;
  std::deque<int64_t> todo;
  int64_t made = 0, samples = 0, successes = 0, images = 0, images_ok = 0, bytes_in = 0;
  bool local_finished = false;
  bool abandon = false;  // this rank is failing: stop dispatching at once
  std::thread dispatcher;
  std::exception_ptr failure;
  bool joined = false;

  // Counts the report; returns the next id for the requester (-1: none, or it is leaving).
  int64_t take_locked(const int64_t* report) {
    if (report[0]) {
      made += 1;
      samples += report[2];
      successes += report[3];
      images += report[4];
      images_ok += report[5];
      bytes_in += report[6];
    }
    if (report[8] || todo.empty()) return -1;
    int64_t id = todo.front();
    todo.pop_front();
    return id;
  }

  std::string progress_extra(double elapsed) {
    char buf[200];
    double ok =
        images > 0 ? 100.0 * static_cast<double>(images_ok) / static_cast<double>(images) : 0.0;
    double ips = elapsed > 0 ? static_cast<double>(images) / elapsed : 0.0;
    double mbps = elapsed > 0 ? static_cast<double>(bytes_in) / 1e6 / elapsed : 0.0;
    std::snprintf(buf, sizeof(buf), "images %lld (%.1f/s), ok %.1f%%, %.2f MB/s in",
                  static_cast<long long>(images), ips, ok, mbps);
    std::string s = buf;
    if (options.shards_done > 0) {
      s += ", " + std::to_string(options.shards_done) + " shards done before";
    }
    return s;
  }

  void dispatch(int64_t total) {
    try {
      Progress progress("shards", total, options.progress_seconds);
      int finished_ranks = 0;
      int idle_polls = 0;  // empty polls in a row
      while (true) {
        {
          std::lock_guard<std::mutex> lock(mu);
          if (abandon) return;
          if (local_finished && finished_ranks == size - 1) {
            progress.finish(made, progress_extra(progress.elapsed_seconds()));
            return;
          }
        }
        int flag = 0;
        MPI_Status status;
        if (size > 1) {
          MPI_CHECK(MPI_Iprobe(MPI_ANY_SOURCE, kTagRequest, comm, &flag, &status));
        }
        if (flag) {
          int64_t msg[kRequestWords];
          MPI_CHECK(MPI_Recv(msg, kRequestWords, MPI_INT64_T, status.MPI_SOURCE, kTagRequest, comm,
                             MPI_STATUS_IGNORE));
          int64_t id;
          {
            std::lock_guard<std::mutex> lock(mu);
            id = take_locked(msg);
          }
          if (!msg[8]) {
            MPI_CHECK(MPI_Send(&id, 1, MPI_INT64_T, status.MPI_SOURCE, kTagReply, comm));
          }
          if (id < 0) ++finished_ranks;
          idle_polls = 0;
          continue;
        }
        // The next request is usually a few microseconds away while ranks are asking: give the
        // core to them (on an oversubscribed node they are the ones to run) and poll again; only
        // a long quiet spell (ranks busy making shards) sleeps, so an idle rank 0 costs nothing.
        if (++idle_polls < kYieldPolls) {
          std::this_thread::yield();
          continue;
        }
        {
          std::lock_guard<std::mutex> lock(mu);
          progress.update(made, progress_extra(progress.elapsed_seconds()));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      failure = std::current_exception();
    }
  }
};

ShardQueue::ShardQueue(std::vector<int64_t> todo, QueueOptions options)
    : impl_(std::make_unique<Impl>()) {
  MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &impl_->comm));
  MPI_CHECK(MPI_Comm_rank(impl_->comm, &impl_->rank));
  MPI_CHECK(MPI_Comm_size(impl_->comm, &impl_->size));
  impl_->options = options;
  if (impl_->rank == 0) {
    const int64_t total = static_cast<int64_t>(todo.size());
    impl_->todo.assign(todo.begin(), todo.end());
    impl_->dispatcher = std::thread([this, total] { impl_->dispatch(total); });
  }
}

ShardQueue::~ShardQueue() {
  if (impl_->dispatcher.joinable()) {
    // Only reached without finish() when this rank is failing: the job is being torn down and
    // the other ranks' requests may never all come, so do not wait for them.
    {
      std::lock_guard<std::mutex> lock(impl_->mu);
      impl_->abandon = true;
    }
    impl_->dispatcher.join();
  }
  // Local in practice (no peer is waited for); an error here cannot be reported any more.
  MPI_Comm_free(&impl_->comm);
}

int64_t ShardQueue::next(const ShardStats* finished) {
  int64_t msg[kRequestWords];
  pack(finished, false, msg);
  if (impl_->rank == 0) {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->failure) std::rethrow_exception(impl_->failure);
    int64_t id = impl_->take_locked(msg);
    if (id < 0) impl_->local_finished = true;
    return id;
  }
  int64_t id = -1;
  MPI_CHECK(MPI_Send(msg, kRequestWords, MPI_INT64_T, 0, kTagRequest, impl_->comm));
  MPI_Request request;
  MPI_CHECK(MPI_Irecv(&id, 1, MPI_INT64_T, 0, kTagReply, impl_->comm, &request));
  wait_without_spinning(&request);
  return id;
}

void ShardQueue::leave(const ShardStats* finished) {
  int64_t msg[kRequestWords];
  pack(finished, true, msg);
  if (impl_->rank == 0) {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->failure) std::rethrow_exception(impl_->failure);
    impl_->take_locked(msg);
    impl_->local_finished = true;
    return;
  }
  MPI_CHECK(MPI_Send(msg, kRequestWords, MPI_INT64_T, 0, kTagRequest, impl_->comm));
}

void ShardQueue::finish() {
  if (impl_->rank != 0 || impl_->joined) return;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->local_finished = true;
  }
  impl_->dispatcher.join();
  impl_->joined = true;
  if (impl_->failure) std::rethrow_exception(impl_->failure);
}

}  // namespace flam::shard
