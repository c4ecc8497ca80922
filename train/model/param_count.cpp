#include "train/model/param_count.h"

namespace flam::model {
namespace {

int64_t feed_forward(int64_t dim, int64_t mult) { return 2 * dim + 2 * dim * dim * mult; }

int64_t perceiver_count(const ModelOptions& o) {
  const int64_t d = o.vision.width;
  const int64_t inner = int64_t{o.perceiver.heads} * o.perceiver.dim_head;
  const int64_t layer =
      4 * d + d * inner + d * 2 * inner + inner * d + feed_forward(d, o.perceiver.ff_mult);
  return o.perceiver.depth * layer + int64_t{o.perceiver.num_latents} * d + 2 * d +
         int64_t{o.perceiver.max_num_media} * d + int64_t{o.perceiver.max_num_frames} * d;
}

int64_t xattn_count(const ModelOptions& o) {
  const int64_t d = o.lang.dim, dv = o.vision.width;
  const int64_t inner = int64_t{o.xattn.heads} * o.xattn.dim_head;
  const int64_t block =
      2 * d + d * inner + dv * 2 * inner + inner * d + 2 + feed_forward(d, o.xattn.ff_mult);
  return (o.lang.layers / o.xattn.every_n_layers) * block;
}

}  // namespace

std::vector<ComponentCount> count_parameters(const ModelOptions& o) {
  const int64_t w = o.vision.width, m = o.vision.mlp_dim, p = o.vision.patch_size;
  const int64_t grid = o.vision.image_size / o.vision.patch_size;
  const int64_t vision_layer =
      2 * w + 3 * w * w + 3 * w + w * w + w + 2 * w + w * m + m + m * w + w;
  const int64_t vision =
      w * 3 * p * p + w + (grid * grid + 1) * w + 2 * w + o.vision.layers * vision_layer + 2 * w;
  const int64_t d = o.lang.dim, f = o.lang.ffn_dim, vocab = o.lang.vocab_size + 3;
  const int64_t decoder = o.lang.layers * (4 * d * d + 3 * d * f + 2 * d) + d;
  const int64_t perceiver = perceiver_count(o), xattn = xattn_count(o);
  return {{"vision_encoder", vision, 0},
          {"perceiver", perceiver, perceiver},
          {"lang_encoder.embed_tokens", vocab * d, 0},
          {"lang_encoder.special_token_embeddings", 2 * d, o.freeze_lm_embeddings ? 0 : 2 * d},
          {"lang_encoder.decoder", decoder, 0},
          {"lang_encoder.gated_cross_attn_layers", xattn, xattn},
          {"lang_encoder.lm_head", vocab * d, 0}};
}

int64_t openflamingo_trainable_count(const ModelOptions& o) {
  const int64_t embeddings =
      o.freeze_lm_embeddings ? 0 : (int64_t{o.lang.vocab_size} + 3) * o.lang.dim;
  return perceiver_count(o) + xattn_count(o) + embeddings;
}

}  // namespace flam::model
