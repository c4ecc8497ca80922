// The OpenFlamingo-9B-HF folder (train/weights/hf_flamingo.h): a tiny folder that Python builds
// from transformers' LlamaForCausalLM and CLIPVisionModel, in .bin and .safetensors shardings,
// loads into the same weights and forward as the same tensors through our OpenFlamingo import
// (CLIP + LLaMA safetensors + checkpoint.pt); exporting it writes the same keys, shapes, dtypes
// and values; only the needed weight files are opened; config.json must agree with the model.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "tests/model/tiny_model.h"
#include "train/model/flamingo.h"
#include "train/weights/hf_flamingo.h"
#include "train/weights/model_weights.h"

namespace flam::weights {
namespace {

namespace fs = std::filesystem;
using model::Flamingo;
using model::testing::tiny_options;

int python(const std::string& args) {
  return std::system(
      (std::string(FLAM_PYTHON) + " " + FLAM_SOURCE_DIR + "/tests/train/" + args).c_str());
}

bool same_parameters(Flamingo& a, Flamingo& b, const std::string& prefix = "") {
  auto pb = b->named_parameters();
  bool same = true;
  for (const auto& item : a->named_parameters()) {
    if (item.key().rfind(prefix, 0) != 0) continue;
    if (!torch::equal(item.value(), pb[item.key()])) {
      ADD_FAILURE() << item.key() << " differs";
      same = false;
    }
  }
  return same;
}

// Built once: the Python fixture and the reference model loaded through our OpenFlamingo path.
class HfFlamingoTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() /
                        ("flam_hf_flamingo_" + std::to_string(::getpid())));
    fs::create_directories(*dir_);
    torch::manual_seed(2);
    Flamingo src(tiny_options());
    {
      torch::NoGradGuard no_grad;  // trained values away from init (gates away from 0)
      for (auto& p : src->parameters())
        if (p.requires_grad()) p.add_(0.25);
    }
    export_trainable_safetensors(*src, path("trained.safetensors"));
    ASSERT_EQ(python("test_hf_flamingo_fixture.py " + path("") + " " + path("trained.safetensors")),
              0);
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static std::string path(const std::string& name) { return (*dir_ / name).string(); }

  static Flamingo reference() {
    model::ModelOptions o = tiny_options();
    o.weights.vision = path("of/clip.safetensors");
    o.weights.lang = path("of/llama.safetensors");
    o.weights.openflamingo_checkpoint = path("of/checkpoint.pt");
    return build_pretrained(o, 11);
  }

  static fs::path* dir_;
};
fs::path* HfFlamingoTest::dir_ = nullptr;

TEST_F(HfFlamingoTest, BothShardingsLoadAsTheOpenFlamingoImport) {
  Flamingo ref = reference();
  const auto o = tiny_options();
  const auto sp = model::special_tokens(o);
  torch::manual_seed(3);
  const torch::Tensor images = torch::randn({2, 2, 1, 3, o.vision.image_size, o.vision.image_size});
  const std::vector<int64_t> rows = {5, sp.image, 7, 8, sp.endofchunk, sp.image, 10, 11, sp.image,
                                     3, 4,        6, 2, sp.endofchunk, 9,        12};
  const torch::Tensor ids = torch::tensor(rows).view({2, 8});
  const torch::Tensor want = ref->forward(images, ids, torch::ones_like(ids));
  for (const char* folder : {"hf_bin", "hf_st"}) {
    SCOPED_TRACE(folder);
    torch::manual_seed(99);  // a different init: everything must come from the folder
    Flamingo m(tiny_options());
    load_hf_flamingo(*m, path(folder));
    EXPECT_TRUE(same_parameters(ref, m));
    const torch::Tensor got = m->forward(images, ids, torch::ones_like(ids));
    EXPECT_TRUE(torch::equal(got, want));
  }
  // The comparison is not vacuous: a fresh model computes something else.
  torch::manual_seed(99);
  Flamingo fresh(tiny_options());
  EXPECT_FALSE(torch::allclose(fresh->forward(images, ids, torch::ones_like(ids)), want));
}

// model.weights.hf_flamingo: the trainer's build_pretrained reads the folder (any init seed).
TEST_F(HfFlamingoTest, ConfigKeyLoadsTheFolder) {
  Flamingo ref = reference();
  model::ModelOptions o = tiny_options();
  o.weights.hf_flamingo = path("hf_st");
  Flamingo m = build_pretrained(o, 99);
  EXPECT_TRUE(same_parameters(ref, m));
}

TEST_F(HfFlamingoTest, ExportWritesTheSameLayout) {
  Flamingo m(tiny_options());
  load_hf_flamingo(*m, path("hf_bin"));
  const uint64_t max_shard = 16 * 1024;
  export_hf_flamingo(*m, path("exported"), max_shard);
  EXPECT_EQ(python("test_hf_flamingo_compare.py " + path("exported") + " " + path("hf_st") + " " +
                   std::to_string(max_shard)),
            0);
  // And it loads back.
  Flamingo again(tiny_options());
  load_hf_flamingo(*again, path("exported"));
  EXPECT_TRUE(same_parameters(m, again));
}

TEST_F(HfFlamingoTest, OpensOnlyTheFilesItNeeds) {
  // A copy of the .bin folder without the shard that holds no perceiver tensor.
  const std::string partial = path("partial");
  fs::copy(path("hf_bin"), partial);
  std::string skipped;
  std::ifstream(path("no_perceiver_shard.txt")) >> skipped;
  ASSERT_TRUE(fs::remove(fs::path(partial) / skipped));
  Flamingo ref = reference();
  torch::manual_seed(99);
  Flamingo m(tiny_options());
  torch::manual_seed(99);
  Flamingo untouched(tiny_options());
  auto perceiver = [](const std::string& name) { return name.rfind("perceiver.", 0) == 0; };
  load_hf_flamingo(*m, partial, perceiver);
  EXPECT_TRUE(same_parameters(ref, m, "perceiver."));
  EXPECT_TRUE(same_parameters(untouched, m, "vision_encoder."));  // not read
  EXPECT_TRUE(same_parameters(untouched, m, "lang_encoder."));
  // Everything wanted: the missing shard is an I/O error naming it.
  try {
    load_hf_flamingo(*m, partial);
    ADD_FAILURE() << "loaded without a shard";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo) << e.what();
    EXPECT_NE(std::string(e.what()).find(skipped), std::string::npos) << e.what();
  }
}

TEST_F(HfFlamingoTest, ConfigMustAgreeWithTheModel) {
  auto o = tiny_options();
  o.lang.ffn_dim = 128;
  Flamingo wide(o);
  try {
    load_hf_flamingo(*wide, path("hf_st"));
    ADD_FAILURE() << "loaded a folder of another shape";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kData);
    EXPECT_NE(std::string(e.what()).find("text_config.intermediate_size"), std::string::npos)
        << e.what();
  }
  const model::ModelOptions read = read_hf_flamingo_config(path("hf_st"));
  EXPECT_EQ(read.lang.dim, 32);
  EXPECT_EQ(read.lang.layers, 4);
  EXPECT_EQ(read.vision.width, 16);
  EXPECT_EQ(read.vision.image_size, 28);
  EXPECT_EQ(read.xattn.every_n_layers, 2);
  EXPECT_TRUE(read.xattn.only_attend_immediate_media);
  // Not a Flamingo folder.
  fs::create_directories(path("llama_only"));
  std::ofstream(path("llama_only/config.json")) << R"({"model_type": "llama"})";
  try {
    read_hf_flamingo_config(path("llama_only"));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model_type"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace flam::weights
