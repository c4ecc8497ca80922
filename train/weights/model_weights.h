// Pretrained weights in and trained weights out of a Flamingo (train/model/flamingo.h):
//   - Hugging Face `openai/clip-vit-large-patch14` (CLIPModel or CLIPVisionModel names,
//     `vision_model.*`) onto `vision_encoder.*` (open_clip names; q/k/v concatenated into
//     in_proj). Text tower, projections and logit_scale are ignored.
//   - Hugging Face LLaMA (`model.embed_tokens.weight`, `model.layers.N.self_attn.q_proj.weight`,
//     ..., `lm_head.weight`) onto `lang_encoder.*`. The embedding and LM-head tables may have the
//     base vocabulary (rows of the three new tokens keep their initialisation) or already the
//     resized one. Rotary `inv_freq` buffers are ignored.
//   - OpenFlamingo's `checkpoint.pt` (a torch.save'd state dict, optionally under
//     "model_state_dict", names optionally prefixed "module.") via LibTorch's pickle loader.
//     Duplicate names that OpenFlamingo's FlamingoLayer wrapper creates
//     (`lang_encoder.model.layers.N.gated_cross_attn_layer.*`, `lang_encoder.old_decoder_blocks.*`)
//     are skipped; `lang_encoder.model.embed_tokens.weight` sets the table and the two trained
//     rows. Every trained parameter must be present.
//   - Export of the trained parameters under OpenFlamingo names (the two trained rows written
//     back into the full `lang_encoder.model.embed_tokens.weight`), as .safetensors or as a .pt
//     that `torch.load` + `Flamingo.load_state_dict(strict=False)` accept.
// Every loader copies into the existing parameters (keeping their dtype and device) under
// NoGradGuard, and throws flam::Error(kData) naming missing, unexpected and mis-shaped tensors.
// Shape-only parameters (model::is_shape_only, a model built FrozenStorage::kShapesOnly) are
// left as they are, and their tensors are not read from the files.
//
// Thread safety: call from the thread that owns the model, outside forward/backward.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <string>

#include "train/model/options.h"
#include "train/weights/safetensors.h"

namespace torch::nn {
class Module;
}

namespace flam::model {
class FlamingoImpl;
class Flamingo;
}  // namespace flam::model

namespace flam::weights {

// Copies `tensors` into `module`'s parameters by name. `source` names where they came from in
// errors. With require_all, every parameter of the module must be given.
void load_into(torch::nn::Module& module, const std::map<std::string, at::Tensor>& tensors,
               const std::string& source, bool require_all);

void load_clip_vision(model::FlamingoImpl& model, const TensorSource& source);
void load_llama(model::FlamingoImpl& model, const TensorSource& source);
void load_openflamingo_checkpoint(model::FlamingoImpl& model, const std::string& path);
// Each non-empty path of `weights`, in the order hf_flamingo, vision, lang,
// openflamingo_checkpoint. Each may be an s3:// name: a checkpoint.pt is read whole from the
// bucket, safetensors files (and an index's shards) and an HF folder ("s3://bucket/prefix/")
// are fetched into the local cache first (pipeline/s3.h, S3Client::local_copy).
void load_pretrained(model::FlamingoImpl& model, const model::WeightsOptions& weights);
// The model as every training rank builds it: torch::manual_seed(seed), the random init of
// `options` (fp32, CPU), then load_pretrained(options.weights). Frozen weights a run does not
// load from files are therefore the same for every rank, every restart and `flam export`.
// kShapesOnly: frozen parameters are placeholders; PretrainedTensors (pretrained_tensors.h)
// gives their values one tensor at a time.
model::Flamingo build_pretrained(const model::ModelOptions& options, int64_t seed,
                                 model::FrozenStorage frozen = model::FrozenStorage::kValues);

// The trained parameters under OpenFlamingo names, fp32 CPU copies.
NamedTensors export_trainable(model::FlamingoImpl& model);
void export_trainable_safetensors(model::FlamingoImpl& model, const std::string& path);
void export_trainable_pt(model::FlamingoImpl& model, const std::string& path);
// Writes `tensors` as a state dict in torch.save's zip format that `torch.load` reads with its
// default weights_only=True (torch >= 2.6): plain dict, no TorchScript type tags. Atomic.
void write_state_dict_pt(const std::string& path, const NamedTensors& tensors);
// As above, streamed: the same file, each tensor's record written as fetch(i) returns it.
void write_state_dict_pt(const std::string& path, const std::vector<TensorSpec>& specs,
                         const TensorFetch& fetch);

}  // namespace flam::weights
