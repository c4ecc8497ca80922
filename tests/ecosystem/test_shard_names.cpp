// configs/of-9b.yaml names the shards exactly as `flam shard` writes them (shard_tar_path), for
// every LAION-2B and MMC4 shard, across the 5-to-6-digit boundary at shard 100000.
#include <gtest/gtest.h>

#include <filesystem>

#include "cli/config.h"
#include "pipeline/shard_list.h"
#include "shard/shard_worker.h"

namespace flam {
namespace {

void expect_written_names(const std::vector<std::string>& specs, const std::string& dir,
                          int64_t count) {
  const std::vector<std::string> names = pipeline::expand_shard_list(specs);
  ASSERT_EQ(static_cast<int64_t>(names.size()), count);
  shard::ShardOptions written;
  written.output_dir = dir;
  for (int64_t s = 0; s < count; ++s) {
    ASSERT_EQ(names[static_cast<size_t>(s)], shard::shard_tar_path(written, s)) << "shard " << s;
  }
}

TEST(ShardNames, Of9bListsTheShardsFlamShardWrites) {
  Config config = load_config(std::string(FLAM_SOURCE_DIR) + "/configs/of-9b.yaml");
  expect_written_names(config.data.laion.shards, "/data/laion2b", 231350);
  expect_written_names(config.data.mmc4.shards, "/data/mmc4", 23099);
}

}  // namespace
}  // namespace flam
