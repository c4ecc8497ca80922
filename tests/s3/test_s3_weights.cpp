// Weight files in a bucket (train/weights/safetensors.h TensorSource on s3:// names), against the
// moto server of tests/s3/with_s3.py: a sharded safetensors checkpoint whose index and shards are
// objects loads the same tensors as from disk, through the local cache; a missing shard is an
// error naming its s3:// URL.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "core/error.h"
#include "pipeline/s3.h"
#include "train/weights/safetensors.h"

namespace flam::weights {
namespace {

namespace fs = std::filesystem;

TEST(S3Weights, ShardedSafetensorsFromABucketEqualTheLocalFiles) {
  const fs::path dir =
      fs::temp_directory_path() / ("flam_s3_weights_" + std::to_string(::getpid()));
  torch::manual_seed(3);
  const NamedTensors tensors{{"a.weight", torch::randn({64, 32})},
                             {"b.weight", torch::randn({128, 16})},
                             {"c.bias", torch::randn({7})}};
  const std::string index = write_sharded_safetensors(dir.string(), tensors, 8192);
  const pipeline::S3Client& s3 = pipeline::default_s3_client();
  int shards = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    s3.put_file("s3://flam-test/weights/llama/" + name, entry.path().string());
    shards += name.find("-of-") != std::string::npos;
  }
  ASSERT_GE(shards, 2);

  const TensorSource local(index);
  const TensorSource remote("s3://flam-test/weights/llama/model.safetensors.index.json");
  EXPECT_EQ(remote.path(), "s3://flam-test/weights/llama/model.safetensors.index.json");
  ASSERT_EQ(remote.names(), local.names());
  for (const auto& name : local.names()) {
    EXPECT_TRUE(torch::equal(remote.load(name), local.load(name))) << name;
  }

  for (const auto& object : s3.list("s3://flam-test/weights/llama/model-00001-of-")) {
    s3.remove(object.url);
  }
  const std::string cache = std::string(std::getenv("HOME")) + "/.cache/flamboyance/s3";
  fs::remove_all(cache);
  try {
    TensorSource again("s3://flam-test/weights/llama/model.safetensors.index.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.context().url.rfind("s3://flam-test/weights/llama/model-00001-of-", 0), 0u)
        << e.what();
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace flam::weights
