// Weight import/export: Hugging Face CLIP-vision and LLaMA names onto ours, OpenFlamingo
// checkpoint.pt written by Python's torch.save (with the duplicate names OpenFlamingo's wrapper
// creates) loaded by us, our .pt export loaded by Python's torch.load, and errors that name
// missing, unexpected and mis-shaped tensors.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "tests/model/tiny_model.h"
#include "train/model/flamingo.h"
#include "train/model/layers.h"
#include "train/weights/model_weights.h"
#include "train/weights/safetensors.h"

namespace flam::weights {
namespace {

namespace fs = std::filesystem;
using model::Flamingo;
using model::testing::tiny_options;

class WeightsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("flam_weights_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

torch::Tensor param(Flamingo& m, const std::string& name) { return m->named_parameters()[name]; }

// The vision tower of `m` under Hugging Face CLIPModel names.
NamedTensors to_hf_clip(Flamingo& m) {
  const std::string v = "vision_encoder.", h = "vision_model.";
  NamedTensors out = {
      {h + "embeddings.patch_embedding.weight", param(m, v + "conv1.weight")},
      {h + "embeddings.class_embedding", param(m, v + "class_embedding")},
      {h + "embeddings.position_embedding.weight", param(m, v + "positional_embedding")},
      {"text_model.embeddings.token_embedding.weight", torch::randn({5, 4})},
      {"logit_scale", torch::tensor(2.0f)}};
  for (const char* w : {"weight", "bias"}) {
    out.emplace_back(h + "pre_layrnorm." + w, param(m, v + "ln_pre." + w));
    out.emplace_back(h + "post_layernorm." + w, param(m, v + "ln_post." + w));
  }
  for (int l = 0; l < m->options().vision.layers; ++l) {
    const std::string hf = h + "encoder.layers." + std::to_string(l) + ".";
    const std::string us = v + "transformer.resblocks." + std::to_string(l) + ".";
    for (const std::string w : {"weight", "bias"}) {
      auto qkv = param(m, us + "attn.in_proj_" + w).chunk(3, 0);
      out.emplace_back(hf + "self_attn.q_proj." + w, qkv[0]);
      out.emplace_back(hf + "self_attn.k_proj." + w, qkv[1]);
      out.emplace_back(hf + "self_attn.v_proj." + w, qkv[2]);
      out.emplace_back(hf + "self_attn.out_proj." + w, param(m, us + "attn.out_proj." + w));
      out.emplace_back(hf + "layer_norm1." + w, param(m, us + "ln_1." + w));
      out.emplace_back(hf + "layer_norm2." + w, param(m, us + "ln_2." + w));
      out.emplace_back(hf + "mlp.fc1." + w, param(m, us + "mlp.c_fc." + w));
      out.emplace_back(hf + "mlp.fc2." + w, param(m, us + "mlp.c_proj." + w));
    }
  }
  return out;
}

// The decoder of `m` under Hugging Face LLaMA names, with the base vocabulary only.
NamedTensors to_hf_llama(Flamingo& m) {
  const int64_t v = m->options().lang.vocab_size;
  NamedTensors out = {{"model.embed_tokens.weight",
                       param(m, "lang_encoder.model.embed_tokens.weight").narrow(0, 0, v)},
                      {"lm_head.weight", param(m, "lang_encoder.lm_head.weight").narrow(0, 0, v)},
                      {"model.norm.weight", param(m, "lang_encoder.model.norm.weight")},
                      {"model.layers.0.self_attn.rotary_emb.inv_freq", torch::randn({4})}};
  const std::string prefix = "lang_encoder.model.layers.";
  for (const auto& item : m->named_parameters()) {
    const auto& k = item.key();
    if (k.rfind(prefix, 0) != 0) continue;
    const auto pos = k.find(".decoder_layer.");
    out.emplace_back(
        "model.layers." + k.substr(prefix.size(), pos - prefix.size()) + k.substr(pos + 14),
        item.value());
  }
  return out;
}

bool same_params(Flamingo& a, Flamingo& b, const std::string& prefix) {
  auto pb = b->named_parameters();
  for (const auto& item : a->named_parameters()) {
    if (item.key().rfind(prefix, 0) != 0) continue;
    if (!torch::equal(item.value(), pb[item.key()])) {
      ADD_FAILURE() << item.key() << " differs";
      return false;
    }
  }
  return true;
}

TEST_F(WeightsTest, HuggingFaceClipAndLlama) {
  torch::manual_seed(1);
  Flamingo src(tiny_options()), dst(tiny_options());
  write_safetensors(path("clip.safetensors"), to_hf_clip(src));
  write_sharded_safetensors(path("llama"), to_hf_llama(src), 20000, torch::kFloat32);
  model::WeightsOptions w;
  w.vision = path("clip.safetensors");
  w.lang = path("llama/model.safetensors.index.json");
  auto new_rows = param(dst, "lang_encoder.model.embed_tokens.weight").narrow(0, 40, 3).clone();
  load_pretrained(*dst, w);
  EXPECT_TRUE(same_params(src, dst, "vision_encoder."));
  EXPECT_TRUE(same_params(src, dst, "lang_encoder.model.layers."));
  const int64_t v = 40;
  EXPECT_TRUE(torch::equal(param(dst, "lang_encoder.model.embed_tokens.weight").narrow(0, 0, v),
                           param(src, "lang_encoder.model.embed_tokens.weight").narrow(0, 0, v)));
  // Rows of the three new tokens keep their initialisation.
  EXPECT_TRUE(
      torch::equal(param(dst, "lang_encoder.model.embed_tokens.weight").narrow(0, v, 3), new_rows));
  // The loaded vision tower computes what the source computes.
  auto images = torch::randn({1, 2, 1, 3, 28, 28});
  EXPECT_TRUE(torch::equal(src->encode_images(images), dst->encode_images(images)));
}

TEST_F(WeightsTest, ErrorsNameTheTensors) {
  Flamingo m(tiny_options());
  auto clip = to_hf_clip(m);
  clip.erase(clip.begin());  // drop the patch embedding
  write_safetensors(path("missing.safetensors"), clip);
  try {
    load_clip_vision(*m, TensorSource(path("missing.safetensors")));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("vision_model.embeddings.patch_embedding.weight"),
              std::string::npos)
        << e.what();
  }
  auto llama = to_hf_llama(m);
  llama.emplace_back("model.extra.weight", torch::randn({2}));
  write_safetensors(path("extra.safetensors"), llama);
  try {
    load_llama(*m, TensorSource(path("extra.safetensors")));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unexpected tensors: model.extra.weight"),
              std::string::npos)
        << e.what();
  }
  llama.pop_back();
  for (auto& [name, t] : llama)
    if (name == "model.layers.1.mlp.up_proj.weight") t = torch::randn({3, 3});
  write_safetensors(path("shape.safetensors"), llama);
  try {
    load_llama(*m, TensorSource(path("shape.safetensors")));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("mis-shaped tensors: model.layers.1.decoder_layer.mlp."
                                         "up_proj.weight [3, 3] (expected [64, 32])"),
              std::string::npos)
        << e.what();
  }
}

// Runs a Python snippet with the venv's Python (torch); returns its exit status.
int python(const std::string& code, const std::string& script_path) {
  std::ofstream(script_path) << code;
  return std::system((std::string(FLAM_PYTHON) + " " + script_path).c_str());
}

TEST_F(WeightsTest, OpenFlamingoCheckpointFromPythonAndBack) {
  torch::manual_seed(2);
  Flamingo src(tiny_options());
  {
    torch::NoGradGuard no_grad;
    for (auto& p : src->parameters())
      if (p.requires_grad()) p.add_(0.25);  // make trained values distinguishable
  }
  // Python writes an OpenFlamingo-style checkpoint.pt from our safetensors export: the trained
  // parameters, the duplicate FlamingoLayer names, a "module." prefix, under model_state_dict.
  export_trainable_safetensors(*src, path("trained.safetensors"));
  const std::string tools = std::string(FLAM_SOURCE_DIR) + "/tests/model";
  ASSERT_EQ(python("import sys; sys.path.insert(0, '" + tools +
                       "')\n"
                       "import torch\nfrom reference import load\n"
                       "sd = load('" +
                       path("trained.safetensors") +
                       "')\n"
                       "dup = {k.replace('gated_cross_attn_layers.1.', "
                       "'model.layers.1.gated_cross_attn_layer.'): v for k, v in sd.items() "
                       "if 'gated_cross_attn_layers.1.' in k}\n"
                       "sd.update(dup)\n"
                       "sd = {'module.' + k: v for k, v in sd.items()}\n"
                       "torch.save({'model_state_dict': sd, 'epoch': 3}, '" +
                       path("checkpoint.pt") + "')\n",
                   path("make.py")),
            0);
  Flamingo dst(tiny_options());
  load_openflamingo_checkpoint(*dst, path("checkpoint.pt"));
  EXPECT_TRUE(same_params(src, dst, "perceiver."));
  EXPECT_TRUE(same_params(src, dst, "lang_encoder.gated_cross_attn_layers."));
  EXPECT_TRUE(torch::equal(dst->lang_encoder().special_token_embeddings(),
                           src->lang_encoder().special_token_embeddings()));

  // Our .pt export is read by Python's torch.load with OpenFlamingo's names and rows; Python
  // then writes a copy without one trained tensor.
  export_trainable_pt(*dst, path("export.pt"));
  ASSERT_EQ(python("import torch\n"
                   "sd = torch.load('" +
                       path("export.pt") +
                       "')\n"
                       "assert 'perceiver.layers.1.1.3.weight' in sd, sorted(sd)\n"
                       "assert 'lang_encoder.gated_cross_attn_layers.3.attn_gate' in sd\n"
                       "assert 'lang_encoder.special_token_embeddings' not in sd\n"
                       "e = sd['lang_encoder.model.embed_tokens.weight']\n"
                       "assert tuple(e.shape) == (43, 32), e.shape\n"
                       "del sd['perceiver.latents']\n"
                       "torch.save(sd, '" +
                       path("partial.pt") + "')\n",
                   path("check.py")),
            0);
  Flamingo again(tiny_options());
  load_openflamingo_checkpoint(*again, path("export.pt"));
  EXPECT_TRUE(same_params(dst, again, "perceiver."));
  EXPECT_TRUE(torch::equal(again->lang_encoder().special_token_embeddings(),
                           dst->lang_encoder().special_token_embeddings()));

  // A checkpoint without a trained tensor is rejected, naming it.
  try {
    load_openflamingo_checkpoint(*again, path("partial.pt"));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("perceiver.latents"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace flam::weights
