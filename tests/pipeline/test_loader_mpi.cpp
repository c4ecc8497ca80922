// Loader repartitioning on real MPI ranks: N ranks read, exchange their states, and continue on
// another world size (2 -> 3 -> 1 under `mpirun -np 2`, 3 -> 1 under `-np 3`, N -> 3N/4 -> 1 for
// N >= 4, e.g. 32 -> 24 -> 1 in tests/scale; a real rank hosts the new ranks r' with
// r' % N == rank). Every sample of epoch 0 must be read exactly once over all phases together.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "pipeline/loader.h"
#include "pipeline_fixture.h"

namespace flam::pipeline {
namespace {

// At least 7 shards, and two per rank on many ranks (so no rank reads a repeat). On many ranks
// each reads one batch before the first repartition, so every phase has epoch 0 left to read.
int shard_count(int world) { return std::max(7, 2 * world); }
int per_shard(int world) { return world >= 4 ? 5 : 10; }
int first_steps(int world) { return world >= 4 ? 1 : 3; }

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

std::vector<std::string> allgather(const std::string& mine) {
  const int n = world_size();
  int len = static_cast<int>(mine.size());
  std::vector<int> lens(n), offsets(n, 0);
  MPI_Allgather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, MPI_COMM_WORLD);
  for (int i = 1; i < n; ++i) offsets[i] = offsets[i - 1] + lens[i - 1];
  std::string all(offsets[n - 1] + lens[n - 1], '\0');
  MPI_Allgatherv(mine.data(), len, MPI_CHAR, all.data(), lens.data(), offsets.data(), MPI_CHAR,
                 MPI_COMM_WORLD);
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(all.substr(offsets[i], lens[i]));
  return out;
}

using Seen = std::vector<std::pair<int64_t, std::string>>;

void take(Loader& loader, int steps, Seen& seen) {
  for (int s = 0; s < steps; ++s) {
    const Batch b = loader.next();
    for (size_t r = 0; r < b.keys.size(); ++r) seen.emplace_back(b.epochs[r], b.keys[r]);
  }
}

// Runs the hosted new ranks of world `new_world` from `states` for `steps` batches; returns all
// new ranks' states in rank order (on every real rank).
std::vector<std::string> phase(const DataOptions& o, const Tokenizer& tok,
                               const std::vector<std::string>& states, int new_world, int steps,
                               Seen& seen) {
  nlohmann::json mine = nlohmann::json::object();
  for (int r = world_rank(); r < new_world; r += world_size()) {
    Loader loader(dataset_spec(o, DatasetKind::kLaion, tok), r, new_world, 17);
    loader.restore(states);
    take(loader, steps, seen);
    mine[std::to_string(r)] = loader.state();
  }
  std::vector<std::string> out(new_world);
  for (const std::string& part : allgather(mine.dump())) {
    const nlohmann::json parsed = nlohmann::json::parse(part);
    for (auto it = parsed.begin(); it != parsed.end(); ++it)
      out[std::stoi(it.key())] = it.value().get<std::string>();
  }
  return out;
}

TEST(LoaderMpi, RepartitionReadsEachSampleOncePerEpoch) {
  const int n = world_size();
  // Rank 0 makes the tokenizer and the shards; every rank uses the same paths.
  std::string setup;
  if (world_rank() == 0) {
    const std::string dir = testing::make_temp_dir("mpi-laion");
    nlohmann::json j;
    j["tokenizer"] = testing::tiny_tokenizer_path();
    for (int s = 0; s < shard_count(n); ++s)
      j["shards"].push_back(testing::write_laion_shard(dir, s, per_shard(n)));
    setup = j.dump();
  }
  setup = allgather(setup)[0];
  const nlohmann::json j = nlohmann::json::parse(setup);
  DataOptions o = testing::small_options();
  o.tokenizer = j["tokenizer"].get<std::string>();
  o.laion.shards = j["shards"].get<std::vector<std::string>>();
  const Tokenizer tok(o.tokenizer);

  Seen seen;
  std::vector<std::string> states;
  {
    Loader loader(dataset_spec(o, DatasetKind::kLaion, tok), world_rank(), n, 17);
    take(loader, first_steps(n), seen);
    states = allgather(loader.state());
  }
  if (n == 2) states = phase(o, tok, states, 3, 2, seen);          // 2 -> 3
  if (n >= 4) states = phase(o, tok, states, 3 * n / 4, 1, seen);  // 32 -> 24
  // -> 1, hosted by rank 0, which first collects what every rank has read.
  nlohmann::json seen_json = seen;
  Seen all;
  for (const std::string& part : allgather(seen_json.dump())) {
    const Seen s = nlohmann::json::parse(part).get<Seen>();
    all.insert(all.end(), s.begin(), s.end());
  }
  if (world_rank() == 0) {
    Loader last(dataset_spec(o, DatasetKind::kLaion, tok), 0, 1, 17);
    last.restore(states);
    auto epoch0 = [&] {
      int count = 0;
      for (const auto& [e, k] : all) count += e == 0;
      return count;
    };
    const int samples = shard_count(n) * per_shard(n);
    // The work left by the old ranks comes in old-rank order, the later epochs' leftovers
    // between: reading all of epoch 0 can take up to a few epochs' worth of batches.
    const int bound = 4 * samples / o.laion.batch_size + 100;
    for (int i = 0; i < bound && epoch0() < samples; ++i) take(last, 1, all);
    std::map<std::string, int> count;
    for (const auto& [e, k] : all)
      if (e == 0) ++count[k];
    EXPECT_EQ(count.size(), static_cast<size_t>(samples));
    for (const auto& [k, c] : count) EXPECT_EQ(c, 1) << k;
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

}  // namespace
}  // namespace flam::pipeline
