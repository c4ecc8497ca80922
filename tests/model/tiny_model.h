// A tiny Flamingo configuration for the model tests: every component present (2 perceiver
// layers, cross-attention before decoder layers 1 and 3), small enough to train in seconds.
#pragma once

#include "train/model/options.h"

namespace flam::model::testing {

inline ModelOptions tiny_options() {
  ModelOptions o;
  o.vision.image_size = 28;
  o.vision.patch_size = 14;  // 4 patch tokens
  o.vision.width = 16;
  o.vision.layers = 2;
  o.vision.heads = 2;
  o.vision.mlp_dim = 32;
  o.lang.vocab_size = 40;
  o.lang.dim = 32;
  o.lang.layers = 4;
  o.lang.heads = 4;
  o.lang.ffn_dim = 64;
  o.lang.max_seq_len = 64;
  o.perceiver.depth = 2;
  o.perceiver.heads = 2;
  o.perceiver.dim_head = 8;
  o.perceiver.num_latents = 3;
  o.perceiver.ff_mult = 2;
  o.xattn.every_n_layers = 2;
  o.xattn.heads = 2;
  o.xattn.dim_head = 8;
  o.xattn.ff_mult = 2;
  return o;
}

}  // namespace flam::model::testing
