// ShardQueue on many real MPI ranks (registered at 64, oversubscribed): every shard id is handed
// out exactly once over all ranks; a rank that stops early (leave()) gives the rest to the
// others; more ranks than shards is fine (most ranks get -1 at once and return while the others
// still work); the progress counters add up the reports.
#include <gtest/gtest.h>
#include <mpi.h>

#include <map>
#include <vector>

#include "shard/shard_queue.h"

namespace flam::shard {
namespace {

int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
int world_size() {
  int n = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

// Every rank's ids, gathered on rank 0 (empty elsewhere).
std::vector<int64_t> gather_ids(const std::vector<int64_t>& mine) {
  const int n = world_size();
  int len = static_cast<int>(mine.size());
  std::vector<int> lens(n), offsets(n, 0);
  MPI_Gather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
  for (int i = 1; i < n; ++i) offsets[i] = offsets[i - 1] + lens[i - 1];
  std::vector<int64_t> all(world_rank() == 0 ? offsets[n - 1] + lens[n - 1] : 0);
  MPI_Gatherv(mine.data(), len, MPI_INT64_T, all.data(), lens.data(), offsets.data(), MPI_INT64_T,
              0, MPI_COMM_WORLD);
  return all;
}

std::vector<int64_t> ids(int64_t first, int64_t count) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < count; ++i) out.push_back(first + 3 * i);  // not 0..N-1: ids are ids
  return out;
}

// Runs one queue over `todo` (read on rank 0); a rank stops after `limit(rank)` shards (-1: no
// limit) and calls leave(). Returns the ids this rank was given.
template <class Limit>
std::vector<int64_t> drain(const std::vector<int64_t>& todo, Limit limit) {
  QueueOptions o;
  o.progress_seconds = 1e9;  // only the final line
  o.shards_total = static_cast<int64_t>(todo.size());
  ShardQueue queue(world_rank() == 0 ? todo : std::vector<int64_t>{}, o);
  std::vector<int64_t> mine;
  ShardStats last;
  const int64_t cap = limit(world_rank());
  while (cap < 0 || static_cast<int64_t>(mine.size()) < cap) {
    const int64_t id = queue.next(mine.empty() ? nullptr : &last);
    if (id < 0) break;
    mine.push_back(id);
    last = ShardStats{};
    last.shard = id;
    last.samples = 10;
    last.successes = 9;
  }
  if (cap >= 0 && static_cast<int64_t>(mine.size()) == cap)
    queue.leave(mine.empty() ? nullptr : &last);
  queue.finish();
  return mine;
}

void expect_each_once(const std::vector<int64_t>& todo, const std::vector<int64_t>& mine) {
  const std::vector<int64_t> all = gather_ids(mine);
  if (world_rank() != 0) return;
  std::map<int64_t, int> count;
  for (int64_t id : all) ++count[id];
  EXPECT_EQ(all.size(), todo.size());
  for (int64_t id : todo) EXPECT_EQ(count[id], 1) << "shard " << id;
  EXPECT_EQ(count.size(), todo.size()) << "an id that was not in the list was handed out";
}

TEST(ShardQueueScale, EveryShardOnceOverAllRanks) {
  const std::vector<int64_t> todo = ids(5, 40 * world_size());
  const std::vector<int64_t> mine = drain(todo, [](int) { return int64_t{-1}; });
  expect_each_once(todo, mine);
}

TEST(ShardQueueScale, FewerShardsThanRanks) {
  const std::vector<int64_t> todo = ids(0, world_size() / 3 + 1);
  const std::vector<int64_t> mine = drain(todo, [](int) { return int64_t{-1}; });
  expect_each_once(todo, mine);
}

TEST(ShardQueueScale, RanksLeavingEarlyGiveTheirShareToTheOthers) {
  const std::vector<int64_t> todo = ids(1, 20 * world_size());
  // Every third rank (rank 0 among them) stops after a few shards, one stops before any.
  const std::vector<int64_t> mine =
      drain(todo, [](int rank) { return rank % 3 == 0 ? int64_t{rank % 4} : int64_t{-1}; });
  if (world_rank() % 3 == 0) {
    EXPECT_LE(static_cast<int>(mine.size()), world_rank() % 4);
  }
  expect_each_once(todo, mine);
}

TEST(ShardQueueScale, EmptyList) {
  const std::vector<int64_t> mine = drain({}, [](int) { return int64_t{-1}; });
  EXPECT_TRUE(mine.empty());
  expect_each_once({}, mine);
}

}  // namespace
}  // namespace flam::shard
