// Parameter counts of a Flamingo, computed from ModelOptions alone (no tensors allocated), so
// `flam inspect model` can describe OpenFlamingo-9B on a laptop. tests/model checks them against
// a constructed model's named_parameters().
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "train/model/options.h"

namespace flam::model {

struct ComponentCount {
  std::string name;  // "vision_encoder", "perceiver", "lang_encoder.decoder", ...
  int64_t params = 0;
  int64_t trainable = 0;
};

// Components in model order: vision_encoder, perceiver, lang_encoder.embed_tokens,
// lang_encoder.special_token_embeddings, lang_encoder.decoder (layers + final norm),
// lang_encoder.gated_cross_attn_layers, lang_encoder.lm_head.
std::vector<ComponentCount> count_parameters(const ModelOptions& options);

// What OpenFlamingo's factory.py prints as "trainable parameters": the Perceiver, the gated
// cross-attention blocks and the whole input-embedding table (it sets requires_grad on the table
// and masks all but two rows' gradients in train.py).
int64_t openflamingo_trainable_count(const ModelOptions& options);

// One ZeRO-3 unit: the parameters gathered together.
struct UnitCount {
  std::string name;
  int64_t params = 0;
};

// The trained units in the engine's order (model::Flamingo::trained_units()):
// perceiver.layers.i, lang_encoder.gated_cross_attn_layers.K (ascending K), then "rest".
std::vector<UnitCount> trained_units(const ModelOptions& options);

// The frozen units in call order, as sharded under train.shard_frozen: "vision_encoder" (patch
// and position embeddings, ln_pre, ln_post), vision_encoder.transformer.resblocks.i,
// lang_encoder.model.embed_tokens (with the two special rows when model.freeze_lm_embeddings),
// lang_encoder.model.layers.i.decoder_layer, and
// "lang_encoder.head" (final norm and lm_head). Sums to the frozen total of count_parameters().
std::vector<UnitCount> frozen_units(const ModelOptions& options);

}  // namespace flam::model
