// ShardQueue assignment rate on all ranks of one mpirun: every rank asks for ids (and does no
// work) until the list is empty. The baseline, run in the same processes just before, is the
// bare transport: rank 0 answers the same request/reply messages with a blocking
// MPI_Recv(MPI_ANY_SOURCE) loop on a thread and nothing else. Prints both rates and their ratio
// (rank 0).
//   mpirun -np 64 bench_shard_queue [ASSIGNMENTS_PER_RANK]
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "core/world.h"
#include "shard/shard_queue.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// The baseline: the same 9-word request and 1-word reply, served by rank 0's thread.
double bare_transport(int rank, int size, int64_t total) {
  constexpr int kTagRequest = 7101, kTagReply = 7102;
  MPI_Barrier(MPI_COMM_WORLD);
  const auto t0 = Clock::now();
  if (rank == 0) {
    std::thread server([&] {
      int64_t left = total;
      int finished = 0;
      int64_t msg[9];
      while (finished < size - 1) {
        MPI_Status st;
        MPI_Recv(msg, 9, MPI_INT64_T, MPI_ANY_SOURCE, kTagRequest, MPI_COMM_WORLD, &st);
        int64_t id = left > 0 ? --left : -1;
        MPI_Send(&id, 1, MPI_INT64_T, st.MPI_SOURCE, kTagReply, MPI_COMM_WORLD);
        if (id < 0) ++finished;
      }
    });
    server.join();
  } else {
    int64_t msg[9] = {}, id = 0;
    while (id >= 0) {
      MPI_Send(msg, 9, MPI_INT64_T, 0, kTagRequest, MPI_COMM_WORLD);
      MPI_Recv(&id, 1, MPI_INT64_T, 0, kTagReply, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
  return seconds_since(t0);
}

double shard_queue(int rank, int64_t total) {
  std::vector<int64_t> todo;
  if (rank == 0) {
    for (int64_t i = 0; i < total; ++i) todo.push_back(i);
  }
  flam::shard::QueueOptions o;
  o.progress_seconds = 1e9;
  o.shards_total = total;
  MPI_Barrier(MPI_COMM_WORLD);
  const auto t0 = Clock::now();
  {
    flam::shard::ShardQueue queue(std::move(todo), o);
    flam::shard::ShardStats stats;
    if (rank == 0) {
      queue.leave(nullptr);  // as in the baseline, only the other ranks take ids
    } else {
      bool have = false;
      while (queue.next(have ? &stats : nullptr) >= 0) have = true;
    }
    queue.finish();
  }
  MPI_Barrier(MPI_COMM_WORLD);
  return seconds_since(t0);
}

}  // namespace

int main(int argc, char** argv) {
  const flam::WorldInfo& w = flam::World::init(&argc, &argv);
  const int64_t per_rank = argc > 1 ? std::atoll(argv[1]) : 200;
  // Rank 0 takes no ids in either (its worker would take them without MPI): both hand out the
  // same number, all over MPI.
  const int64_t total = per_rank * (w.size > 1 ? w.size - 1 : 1);
  const double bare = bare_transport(w.rank, w.size, total);
  const double queue = shard_queue(w.rank, total);
  if (w.rank == 0) {
    const double bare_rate = static_cast<double>(total) / bare;
    const double queue_rate = static_cast<double>(total) / queue;
    std::printf("bare MPI request/reply:  %.0f assignments/s (%lld over %d ranks, %.3f s)\n",
                bare_rate, static_cast<long long>(total), w.size, bare);
    std::printf("shard queue:             %.0f assignments/s (%.3f s)\n", queue_rate, queue);
    std::printf("shard queue ratio queue/bare: %.2f; goal >= 10000 assignments/s: %s\n",
                queue_rate / bare_rate, queue_rate >= 10000 ? "met" : "NOT met");
  }
  flam::World::finalize();
  return 0;
}
