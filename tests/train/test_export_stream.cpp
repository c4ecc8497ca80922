// Streamed export (train/weights/pretrained_tensors.h, the streamed export_hf_flamingo): the
// model's parameters one at a time, without building it, equal build_pretrained's for random
// init only, for CLIP + LLaMA files whose vocabulary tables lack the three new rows (the
// OpenFlamingo-9B case: those rows come from the replayed init), for full-vocabulary files and for
// an OpenFlamingo-HF folder (safetensors; a .bin folder builds the model instead); a multi-shard
// OpenFlamingo-HF export streamed from them writes the same bytes as the export of the built
// model, and loads back into the same parameters. The shape-only build of train.shard_frozen keeps
// the trained parameters of the full build.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/model/tiny_model.h"
#include "train/model/flamingo.h"
#include "train/weights/hf_flamingo.h"
#include "train/weights/model_weights.h"
#include "train/weights/pretrained_tensors.h"
#include "train/weights/safetensors.h"

namespace flam::weights {
namespace {

namespace fs = std::filesystem;
using model::Flamingo;
using model::testing::tiny_options;

constexpr int64_t kSeed = 7;

class ExportStreamTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() /
                        ("flam_export_stream_" + std::to_string(::getpid())));
    fs::create_directories(*dir_);
    torch::manual_seed(2);
    Flamingo src(tiny_options());
    export_trainable_safetensors(*src, path("trained.safetensors"));
    const std::string cmd = std::string(FLAM_PYTHON) + " " + FLAM_SOURCE_DIR +
                            "/tests/train/test_hf_flamingo_fixture.py " + path("") + " " +
                            path("trained.safetensors");
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    // LLaMA as published: the base vocabulary only, no rows for the three new tokens.
    const TensorSource full(path("of/llama.safetensors"));
    NamedTensors base;
    for (const std::string& name : full.names()) {
      at::Tensor t = full.load(name);
      if (name == "model.embed_tokens.weight" || name == "lm_head.weight") {
        t = t.narrow(0, 0, tiny_options().lang.vocab_size).clone();
      }
      base.emplace_back(name, t);
    }
    write_safetensors(path("llama_base.safetensors"), base);
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static std::string path(const std::string& name) { return (*dir_ / name).string(); }

  // Every parameter of build_pretrained(o, kSeed) equals PretrainedTensors' (all wanted).
  static void expect_same(const model::ModelOptions& o, bool streamed) {
    Flamingo built = build_pretrained(o, kSeed);
    const PretrainedTensors stream(o, kSeed, [](const std::string&) { return true; });
    EXPECT_EQ(stream.streamed(), streamed);
    auto params = built->named_parameters();
    ASSERT_EQ(stream.parameters().size(), params.size());
    for (const TensorSpec& spec : stream.parameters()) {
      SCOPED_TRACE(spec.name);
      ASSERT_TRUE(params.contains(spec.name));
      EXPECT_EQ(params[spec.name].sizes().vec(), spec.shape);
      EXPECT_TRUE(torch::equal(stream.get(spec.name), params[spec.name]));
    }
  }

  static std::string bytes(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }

  static fs::path* dir_;
};
fs::path* ExportStreamTest::dir_ = nullptr;

TEST_F(ExportStreamTest, ReplayedInitEqualsTheBuiltModel) { expect_same(tiny_options(), true); }

TEST_F(ExportStreamTest, BaseVocabularyFilesTakeTheNewRowsFromTheInit) {
  model::ModelOptions o = tiny_options();
  o.weights.vision = path("of/clip.safetensors");
  o.weights.lang = path("llama_base.safetensors");
  expect_same(o, true);
  o.weights.lang = path("of/llama.safetensors");  // full vocabulary
  expect_same(o, true);
}

TEST_F(ExportStreamTest, HfFlamingoFolders) {
  model::ModelOptions o = tiny_options();
  o.weights.hf_flamingo = path("hf_st");
  expect_same(o, true);
  o.weights.hf_flamingo = path("hf_bin");  // pickled shards: the model is built
  expect_same(o, false);
}

// train.shard_frozen's set-up: build_pretrained(kShapesOnly) gives the trained parameters of
// build_pretrained (loaded or drawn) and a shape-only placeholder of every frozen one but the
// special token rows, for every kind of weight file.
TEST_F(ExportStreamTest, ShapesOnlyBuildKeepsTheTrainedValues) {
  model::ModelOptions o = tiny_options();
  std::vector<model::WeightsOptions> cases(5);
  cases[1].vision = path("of/clip.safetensors");
  cases[1].lang = path("llama_base.safetensors");
  cases[2].lang = path("of/llama.safetensors");
  cases[2].openflamingo_checkpoint = path("of/checkpoint.pt");
  cases[3].hf_flamingo = path("hf_st");
  cases[4].hf_flamingo = path("hf_bin");
  for (size_t c = 0; c < cases.size(); ++c) {
    SCOPED_TRACE("case " + std::to_string(c));
    o.weights = cases[c];
    Flamingo built = build_pretrained(o, kSeed);
    Flamingo shapes = build_pretrained(o, kSeed, model::FrozenStorage::kShapesOnly);
    auto want = built->named_parameters();
    int64_t shape_only = 0;
    for (const auto& item : shapes->named_parameters()) {
      SCOPED_TRACE(item.key());
      const at::Tensor& ref = want[item.key()];
      EXPECT_EQ(item.value().sizes(), ref.sizes());
      if (!ref.requires_grad() && item.key() != model::kSpecialTokenEmbeddings) {
        EXPECT_TRUE(model::is_shape_only(item.value()) || ref.numel() == 1);
        shape_only += model::is_shape_only(item.value());
      } else {
        EXPECT_TRUE(torch::equal(item.value(), ref));
      }
    }
    EXPECT_GT(shape_only, 10);
  }
}

TEST_F(ExportStreamTest, StreamedHfExportEqualsTheBuiltModelsAndLoadsBack) {
  model::ModelOptions o = tiny_options();
  o.weights.vision = path("of/clip.safetensors");
  o.weights.lang = path("llama_base.safetensors");
  Flamingo built = build_pretrained(o, kSeed);
  const uint64_t max_shard = 16 * 1024;
  export_hf_flamingo(*built, path("from_model"), max_shard);
  {
    const PretrainedTensors stream(o, kSeed, [](const std::string&) { return true; });
    export_hf_flamingo(
        o, stream.parameters(), [&](const std::string& name) { return stream.get(name); },
        path("streamed"), max_shard);
  }
  size_t shards = 0;
  for (const auto& entry : fs::directory_iterator(path("from_model"))) {
    SCOPED_TRACE(entry.path().filename().string());
    const fs::path other = fs::path(path("streamed")) / entry.path().filename();
    ASSERT_TRUE(fs::exists(other));
    EXPECT_EQ(bytes(entry.path()), bytes(other));
    shards += entry.path().extension() == ".safetensors";
  }
  EXPECT_GT(shards, 2u);
  EXPECT_EQ(std::distance(fs::directory_iterator(path("streamed")), fs::directory_iterator()),
            std::distance(fs::directory_iterator(path("from_model")), fs::directory_iterator()));
  torch::manual_seed(99);
  Flamingo again(tiny_options());
  load_hf_flamingo(*again, path("streamed"));
  auto want = built->named_parameters();
  for (const auto& item : again->named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value(), want[item.key()])) << item.key();
  }
}

}  // namespace
}  // namespace flam::weights
