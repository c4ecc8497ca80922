// ModelOptions: the `model:` section: shapes of the Flamingo network (train/model/flamingo.h)
// and where its pretrained weights come from. Defaults are OpenFlamingo-9B's shapes.
#pragma once

#include <cstdint>
#include <string>

#include "core/config_map.h"

namespace flam::model {

struct VisionOptions {  // CLIP ViT (OpenAI layout, QuickGELU)
  int image_size = 224;
  int patch_size = 14;
  int width = 1024;
  int layers = 24;
  int heads = 16;
  int mlp_dim = 4096;
  // OpenFlamingo-9B was trained on patch tokens taken before ln_post (open_clip of its time).
  bool tokens_after_ln_post = false;
};

struct LanguageOptions {   // LLaMA decoder
  int vocab_size = 32000;  // before the three new tokens (<|endofchunk|>, <image>, <PAD>)
  int dim = 4096;
  int layers = 32;
  int heads = 32;
  int ffn_dim = 11008;
  double norm_eps = 1e-6;
  double rope_theta = 10000.0;
  int max_seq_len = 2048;
};

struct PerceiverOptions {
  int depth = 6;
  int heads = 8;
  int dim_head = 64;
  int num_latents = 64;
  int ff_mult = 4;
  int max_num_media = 0;   // 0: no media-time embedding
  int max_num_frames = 0;  // 0: no frame embedding
};

struct CrossAttentionOptions {
  int every_n_layers = 4;  // a block before decoder layer i when (i + 1) % n == 0
  int heads = 8;
  int dim_head = 64;
  int ff_mult = 4;
  bool only_attend_immediate_media = true;
};

struct WeightsOptions {
  std::string vision;  // HF openai/clip-vit-large-patch14 safetensors (or index.json)
  std::string lang;    // HF LLaMA safetensors (or index.json)
  std::string openflamingo_checkpoint;  // OpenFlamingo checkpoint.pt (trainable weights)
  // The OpenFlamingo-9B-HF folder (train/weights/hf_flamingo.h): every weight, frozen and
  // trained; excludes vision, lang and openflamingo_checkpoint.
  std::string hf_flamingo;
};

// Whether a model's frozen parameters (the vision encoder; of the LLaMA every parameter but the
// trained special token rows) hold values: kShapesOnly for train.shard_frozen, whose engine
// fills them (train/model/flamingo.h).
enum class FrozenStorage { kValues, kShapesOnly };

struct ModelOptions {
  VisionOptions vision;
  LanguageOptions lang;
  PerceiverOptions perceiver;
  CrossAttentionOptions xattn;
  WeightsOptions weights;
  // OpenFlamingo's --freeze_lm_embeddings: when true the <image> and <|endofchunk|> input rows
  // stay frozen too, and no backward runs below the first cross-attention block.
  bool freeze_lm_embeddings = false;
};

inline void describe(ConfigMap& m, VisionOptions& o) {
  m.field("image_size", o.image_size, Bounds::at_least(1));
  m.field("patch_size", o.patch_size, Bounds::at_least(1));
  m.field("width", o.width, Bounds::at_least(1));
  m.field("layers", o.layers, Bounds::at_least(1));
  m.field("heads", o.heads, Bounds::at_least(1));
  m.field("mlp_dim", o.mlp_dim, Bounds::at_least(1));
  m.field("tokens_after_ln_post", o.tokens_after_ln_post);
  if (m.reading() && o.width % o.heads != 0) m.fail("heads", "width must be divisible by heads");
  if (m.reading() && o.image_size % o.patch_size != 0)
    m.fail("patch_size", "image_size must be divisible by patch_size");
}

inline void describe(ConfigMap& m, LanguageOptions& o) {
  m.field("vocab_size", o.vocab_size, Bounds::at_least(1));
  m.field("dim", o.dim, Bounds::at_least(1));
  m.field("layers", o.layers, Bounds::at_least(1));
  m.field("heads", o.heads, Bounds::at_least(1));
  m.field("ffn_dim", o.ffn_dim, Bounds::at_least(1));
  m.field("norm_eps", o.norm_eps, Bounds::positive());
  m.field("rope_theta", o.rope_theta, Bounds::positive());
  m.field("max_seq_len", o.max_seq_len, Bounds::at_least(1));
  if (m.reading() && o.dim % o.heads != 0) m.fail("heads", "dim must be divisible by heads");
}

inline void describe(ConfigMap& m, PerceiverOptions& o) {
  m.field("depth", o.depth, Bounds::at_least(1));
  m.field("heads", o.heads, Bounds::at_least(1));
  m.field("dim_head", o.dim_head, Bounds::at_least(1));
  m.field("num_latents", o.num_latents, Bounds::at_least(1));
  m.field("ff_mult", o.ff_mult, Bounds::at_least(1));
  m.field("max_num_media", o.max_num_media, Bounds::non_negative());
  m.field("max_num_frames", o.max_num_frames, Bounds::non_negative());
}

inline void describe(ConfigMap& m, CrossAttentionOptions& o) {
  m.field("every_n_layers", o.every_n_layers, Bounds::at_least(1));
  m.field("heads", o.heads, Bounds::at_least(1));
  m.field("dim_head", o.dim_head, Bounds::at_least(1));
  m.field("ff_mult", o.ff_mult, Bounds::at_least(1));
  m.field("only_attend_immediate_media", o.only_attend_immediate_media);
}

inline void describe(ConfigMap& m, WeightsOptions& o) {
  m.field("vision", o.vision);
  m.field("lang", o.lang);
  m.field("openflamingo_checkpoint", o.openflamingo_checkpoint);
  m.field("hf_flamingo", o.hf_flamingo);
  if (m.reading() && !o.hf_flamingo.empty() &&
      !(o.vision.empty() && o.lang.empty() && o.openflamingo_checkpoint.empty())) {
    m.fail("hf_flamingo",
           "the OpenFlamingo-9B-HF folder holds every weight: leave vision, lang and "
           "openflamingo_checkpoint empty");
  }
}

inline void describe(ConfigMap& m, ModelOptions& o) {
  m.section("vision", o.vision);
  m.section("lang", o.lang);
  m.section("perceiver", o.perceiver);
  m.section("xattn", o.xattn);
  m.section("weights", o.weights);
  m.field("freeze_lm_embeddings", o.freeze_lm_embeddings);
}

}  // namespace flam::model
