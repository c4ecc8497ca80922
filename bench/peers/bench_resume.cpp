// Our exact mid-epoch resume, for bench/peers/resume.sh: the time from a fresh Loader to its first
// batch after restore() at global sample TARGET of a LAION shard list of equal shards of
// PER_SHARD samples (one rank). The state restored is the one the loader itself serialises, taken
// from a fresh loader and moved to TARGET: "share" [epoch 0, shard TARGET / PER_SHARD, ordinal
// TARGET % PER_SHARD] (the epoch's own order, not listed), with a full shuffle buffer of the
// samples just before TARGET (they are re-read from their shard, as after a real resume).
// Prints the seconds for each of a few resumes (fresh loader each time).
//   bench_peers_resume TOKENIZER SHARD_SPEC PER_SHARD TARGET REPEATS
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "pipeline/loader.h"
#include "pipeline/tokenizer.h"

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s TOKENIZER SHARDS PER_SHARD TARGET REPEATS\n", argv[0]);
    return 2;
  }
  using flam::pipeline::DatasetKind;
  const int64_t per_shard = std::atoll(argv[3]), target = std::atoll(argv[4]);
  const int repeats = std::atoi(argv[5]);
  flam::pipeline::DataOptions o;  // defaults: batch 32 x 32 tokens, 224 px, buffer 1000
  o.tokenizer = argv[1];
  o.laion.shards = {argv[2]};
  o.loader.threads = 1;
  const flam::pipeline::Tokenizer tok(o.tokenizer);
  std::string state;
  {
    flam::pipeline::Loader fresh(flam::pipeline::dataset_spec(o, DatasetKind::kLaion, tok), 0, 1,
                                 1234);
    fresh.next();
    nlohmann::json j = nlohmann::json::parse(fresh.state());
    const int64_t shard = target / per_shard, ordinal = target % per_shard;
    j["share"] = {0, shard, ordinal};
    j["units"] = nlohmann::json::array();
    // The buffer after reading up to TARGET: the last shuffle_buffer samples before it, taken
    // from the shard before it (all shards here hold the same number of samples).
    nlohmann::json buffer = nlohmann::json::array();
    const int64_t prev_shard = j["buffer"].empty() ? 0 : j["buffer"][0][1].get<int64_t>();
    for (int64_t i = 0; i < o.loader.shuffle_buffer; ++i)
      buffer.push_back({0, prev_shard, per_shard - o.loader.shuffle_buffer + i});
    j["buffer"] = buffer;
    state = j.dump();
  }
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    flam::pipeline::Loader loader(flam::pipeline::dataset_spec(o, DatasetKind::kLaion, tok), 0, 1,
                                  1234);
    loader.restore({state});
    const flam::pipeline::Batch b = loader.next();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("resume_s %.4f first_key %s\n", s, b.keys[0].c_str());
  }
  return 0;
}
