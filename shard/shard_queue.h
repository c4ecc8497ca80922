// ShardQueue: hands out shard ids to the ranks of one MPI job, one at a time, so that fast ranks
// do more. Rank 0 keeps the list; a dispatcher thread on rank 0 answers the other ranks'
// requests (MPI point-to-point) while rank 0's own worker takes ids from the same list directly.
// Each request carries the counters of the requester's previous shard, so rank 0 knows the job's
// progress; rank 0's dispatcher prints the progress line. A rank that dies loses only the shard
// it was making (no stats file: the next run redoes it). A rank that stops early on purpose
// (leave()) hands its report in and the shards it never asked for go to the others.
//
// Thread safety: construct, next() and finish() on one thread per rank (the rank's main thread).
// MPI is called by the dispatcher thread on rank 0 and by the main thread elsewhere, never by
// two threads of one process at once (MPI_THREAD_SERIALIZED is enough).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "shard/shard_stats.h"

namespace flam::shard {

struct QueueOptions {
  double progress_seconds = 5.0;
  int64_t shards_total = 0;  // for the progress line (done shards included)
  int64_t shards_done = 0;   // already done before this run
};

class ShardQueue {
 public:
  // Collective over all ranks. `todo` (the shard ids still to make, in order) is read on rank 0
  // only. The queue talks on its own duplicate of MPI_COMM_WORLD, so queues made one after
  // another never mix their messages.
  ShardQueue(std::vector<int64_t> todo, QueueOptions options);
  // Joins the dispatcher (rank 0) after finish().
  ~ShardQueue();
  ShardQueue(const ShardQueue&) = delete;
  ShardQueue& operator=(const ShardQueue&) = delete;

  // Reports the stats of this rank's previous shard (nullptr for none) and returns the next shard
  // id for this rank, or -1 when there are none left. After -1, do not call again.
  // Throws flam::Error(kComm) when MPI fails.
  int64_t next(const ShardStats* finished);
  // Reports the stats of this rank's previous shard (nullptr for none) and asks for no more: the
  // shards left go to the other ranks. REQUIRES: next() has not returned -1. After leave(), call
  // only finish(). Throws flam::Error(kComm) when MPI fails.
  void leave(const ShardStats* finished);
  // Rank 0: waits until every other rank has been told -1 or has left (so every shard is
  // finished) and prints the final progress line. Other ranks: returns at once.
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flam::shard
