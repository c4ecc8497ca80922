// frozen_units(): a Flamingo's frozen parameters grouped into the units that Zero3Engine shards
// under train.shard_frozen, in call order and with the names model::frozen_units() (the memory
// plan's count) gives: "vision_encoder" (patch and position embeddings, ln_pre, ln_post),
// vision_encoder.transformer.resblocks.i, lang_encoder.model.embed_tokens (with the two special
// rows when they are frozen), lang_encoder.model.layers.i.decoder_layer, "lang_encoder.head"
// (final norm and lm_head). Unit u is what the model passes to Zero3Engine::run_frozen(u, ...).
//
// Tensors alias the model's parameters. Thread safety: as the model (one thread).
#pragma once

#include <vector>

#include "train/model/flamingo.h"

namespace flam::train {

std::vector<model::ParamUnit> frozen_units(model::FlamingoImpl& model);
// The units of the LLaMA decoder layers in that order (L_v + 2 + i for layer i): what
// train.checkpointing: every_layer recomputes in backward.
std::vector<size_t> decoder_layer_units(const model::ModelOptions& options);

}  // namespace flam::train
