#include "train/model/param_count.h"

#include <string>

namespace flam::model {
namespace {

int64_t feed_forward(int64_t dim, int64_t mult) { return 2 * dim + 2 * dim * dim * mult; }

int64_t perceiver_layer_count(const ModelOptions& o) {
  const int64_t d = o.vision.width;
  const int64_t inner = int64_t{o.perceiver.heads} * o.perceiver.dim_head;
  return 4 * d + d * inner + d * 2 * inner + inner * d + feed_forward(d, o.perceiver.ff_mult);
}

// latents, final norm, media-time and frame embeddings.
int64_t perceiver_rest_count(const ModelOptions& o) {
  const int64_t d = o.vision.width;
  return int64_t{o.perceiver.num_latents} * d + 2 * d + int64_t{o.perceiver.max_num_media} * d +
         int64_t{o.perceiver.max_num_frames} * d;
}

int64_t perceiver_count(const ModelOptions& o) {
  return o.perceiver.depth * perceiver_layer_count(o) + perceiver_rest_count(o);
}

int64_t xattn_block_count(const ModelOptions& o) {
  const int64_t d = o.lang.dim, dv = o.vision.width;
  const int64_t inner = int64_t{o.xattn.heads} * o.xattn.dim_head;
  return 2 * d + d * inner + dv * 2 * inner + inner * d + 2 + feed_forward(d, o.xattn.ff_mult);
}

int64_t xattn_count(const ModelOptions& o) {
  return (o.lang.layers / o.xattn.every_n_layers) * xattn_block_count(o);
}

int64_t vision_block_count(const ModelOptions& o) {
  const int64_t w = o.vision.width, m = o.vision.mlp_dim;
  return 2 * w + 3 * w * w + 3 * w + w * w + w + 2 * w + w * m + m + m * w + w;
}

int64_t vision_stem_count(const ModelOptions& o) {
  const int64_t w = o.vision.width, p = o.vision.patch_size;
  const int64_t grid = o.vision.image_size / o.vision.patch_size;
  return w * 3 * p * p + w + (grid * grid + 1) * w + 2 * w + 2 * w;
}

int64_t decoder_layer_count(const ModelOptions& o) {
  const int64_t d = o.lang.dim, f = o.lang.ffn_dim;
  return 4 * d * d + 3 * d * f + 2 * d;
}

int64_t embedding_count(const ModelOptions& o) {
  return (int64_t{o.lang.vocab_size} + 3) * o.lang.dim;
}

}  // namespace

std::vector<ComponentCount> count_parameters(const ModelOptions& o) {
  const int64_t vision = vision_stem_count(o) + o.vision.layers * vision_block_count(o);
  const int64_t d = o.lang.dim;
  const int64_t decoder = o.lang.layers * decoder_layer_count(o) + d;
  const int64_t perceiver = perceiver_count(o), xattn = xattn_count(o);
  return {{"vision_encoder", vision, 0},
          {"perceiver", perceiver, perceiver},
          {"lang_encoder.embed_tokens", embedding_count(o), 0},
          {"lang_encoder.special_token_embeddings", 2 * d, o.freeze_lm_embeddings ? 0 : 2 * d},
          {"lang_encoder.decoder", decoder, 0},
          {"lang_encoder.gated_cross_attn_layers", xattn, xattn},
          {"lang_encoder.lm_head", embedding_count(o), 0}};
}

int64_t openflamingo_trainable_count(const ModelOptions& o) {
  const int64_t embeddings = o.freeze_lm_embeddings ? 0 : embedding_count(o);
  return perceiver_count(o) + xattn_count(o) + embeddings;
}

std::vector<UnitCount> trained_units(const ModelOptions& o) {
  std::vector<UnitCount> units;
  for (int i = 0; i < o.perceiver.depth; ++i)
    units.push_back({"perceiver.layers." + std::to_string(i), perceiver_layer_count(o)});
  for (int i = 0; i < o.lang.layers; ++i) {
    if ((i + 1) % o.xattn.every_n_layers == 0) {
      units.push_back(
          {"lang_encoder.gated_cross_attn_layers." + std::to_string(i), xattn_block_count(o)});
    }
  }
  const int64_t special = o.freeze_lm_embeddings ? 0 : 2 * int64_t{o.lang.dim};
  units.push_back({"rest", perceiver_rest_count(o) + special});
  return units;
}

std::vector<UnitCount> frozen_units(const ModelOptions& o) {
  std::vector<UnitCount> units{{"vision_encoder", vision_stem_count(o)}};
  for (int i = 0; i < o.vision.layers; ++i) {
    units.push_back(
        {"vision_encoder.transformer.resblocks." + std::to_string(i), vision_block_count(o)});
  }
  const int64_t special = o.freeze_lm_embeddings ? 2 * int64_t{o.lang.dim} : 0;
  units.push_back({"lang_encoder.model.embed_tokens", embedding_count(o) + special});
  for (int i = 0; i < o.lang.layers; ++i) {
    units.push_back({"lang_encoder.model.layers." + std::to_string(i) + ".decoder_layer",
                     decoder_layer_count(o)});
  }
  units.push_back({"lang_encoder.head", int64_t{o.lang.dim} + embedding_count(o)});
  return units;
}

}  // namespace flam::model
