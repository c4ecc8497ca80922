// The OpenFlamingo-9B-HF folder layout (as `luodian/openflamingo-9b-hf` publishes it, from
// Otter's conversion of OpenFlamingo's checkpoint.pt), in and out of a Flamingo:
//   config.json   {"model_type": "flamingo", "cross_attn_every_n_layers", "only_attend_previous",
//                  "text_config": HF LLaMA config, "vision_config": HF CLIP vision config}
//   weights       pytorch_model.bin.index.json + pytorch_model-0000K-of-0000M.bin (torch.save zip
//                  pickles), or model.safetensors.index.json + model-0000K-of-0000M.safetensors,
//                  or one unsharded pytorch_model.bin / model.safetensors.
// Names (ours <- theirs):
//   vision_encoder.*            <- vision_encoder.vision_model.* (HF CLIP; q/k/v into in_proj)
//   perceiver.layers.N.0.X      <- perceiver.layers.N.X  (norm_media, norm_latents, to_q, ...)
//   perceiver.layers.N.1.K      <- perceiver.layers.N.feed_forward.K
//   lang_encoder.model.layers.N.decoder_layer.*  <- the same (HF LLaMA layer names)
//   lang_encoder.gated_cross_attn_layers.N.{attn_gate, ff_gate, attn.*, ff.*}
//                               <- lang_encoder.model.layers.N.gated_cross_attn_layer.{...,
//                                  feed_forward.*}
//   lang_encoder.model.embed_tokens.weight (+ the two trained rows) <- the same, [V + 3, D]
//   lang_encoder.model.norm.weight, lang_encoder.lm_head.weight     <- the same
// Skipped on import: rotary inv_freq and CLIP position_ids buffers, and the duplicates that the
// FlamingoLayer wrapper adds (lang_encoder.gated_cross_attn_layers.*,
// lang_encoder.old_decoder_blocks.*). Anything else unknown is an error.
//
// Thread safety: call from the thread that owns the model, outside forward/backward.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "train/model/options.h"
#include "train/weights/safetensors.h"

namespace flam::model {
class FlamingoImpl;
}

namespace flam::weights {

// The shapes config.json gives (vision, lang, xattn.every_n_layers and
// only_attend_immediate_media), over `base` (the Perceiver and cross-attention widths, which the
// file does not give: OpenFlamingo's defaults). Throws flam::Error(kIo) for a missing file,
// kData naming `dir/config.json` and the key for a malformed one or model_type != "flamingo".
model::ModelOptions read_hf_flamingo_config(const std::string& dir,
                                            const model::ModelOptions& base = {});

// Loads the folder into `model` (copies, converting to the parameters' dtype), after checking
// config.json against model.options() (kData naming the key that disagrees). Only tensors whose
// our-name `wanted` accepts are read (all when empty), and only the weight files holding one are
// opened; .bin files are unpickled one at a time, safetensors read tensor by tensor from the
// mapping, so no more than one weight file is in host memory at once. Every wanted parameter
// must be in the folder; unknown, missing and mis-shaped tensors throw kData naming them.
void load_hf_flamingo(model::FlamingoImpl& model, const std::string& dir,
                      const std::function<bool(const std::string&)>& wanted = {});

// Our parameter `ours` backed by `t` under the folder's names: (HF name, view of `t`) pairs (the
// vision in_proj splits into q, k and v; every other parameter is one pair). Any device, meta
// included.
NamedTensors to_hf_flamingo(const std::string& ours, const at::Tensor& t);

// Writes the whole model (frozen and trained, in the parameters' dtype) to `dir` in the same
// layout: config.json, model-0000K-of-0000M.safetensors of at most `max_shard_bytes` each and
// model.safetensors.index.json. Creates `dir`; throws kIo naming a path that cannot be written.
void export_hf_flamingo(model::FlamingoImpl& model, const std::string& dir,
                        uint64_t max_shard_bytes = 5'000'000'000);

// The same folder without the model: `parameters` are the model's (our names, dtypes, shapes),
// get(name) one parameter's value (any device), called for each file tensor in the files' order
// (twice for embed_tokens, whose rows <|endofchunk|> and <image> come from
// special_token_embeddings), so that one parameter and one file tensor are in memory at a time;
// each shard is written as it fills.
void export_hf_flamingo(const model::ModelOptions& options,
                        const std::vector<TensorSpec>& parameters,
                        const std::function<at::Tensor(const std::string&)>& get,
                        const std::string& dir, uint64_t max_shard_bytes = 5'000'000'000);

}  // namespace flam::weights
