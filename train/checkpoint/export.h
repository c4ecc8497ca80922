// Export of a checkpoint's trained weights, consolidated from every rank's slices: one fp32
// tensor per parameter of the flat layout, under the layout's names (OpenFlamingo state-dict
// names, as the trainer registers them), written as .safetensors or as a torch.save-compatible
// .pt (a pickled dict of str -> Tensor, loadable by `torch.load` and by
// train/weights' OpenFlamingo importer).
//
// Thread safety: none needed; single-process, run by `flam export` and `flam inspect`.
#pragma once

#include <cstdint>
#include <string>

#include "train/model/options.h"
#include "train/weights/safetensors.h"

namespace flam::train {

// A step directory (holding manifest.json) as is; a run directory or its checkpoints/ folder:
// the newest committed checkpoint in it (verification is the caller's). Throws
// flam::Error(kIo) naming `path` when it holds none.
std::string resolve_checkpoint_dir(const std::string& path);

// Verifies every rank file of `step_dir` against its manifest (throws flam::Error(kData) on a
// mismatch), then returns the trained parameters in layout order, fp32 CPU tensors.
weights::NamedTensors consolidate_checkpoint(const std::string& step_dir);

// The run a checkpoint belongs to, for export_checkpoint: its model options and run.seed.
struct ExportModel {
  model::ModelOptions options;
  int64_t seed = 0;
};

// consolidate_checkpoint() written to `out_path`: *.safetensors or *.pt (else kUsage). When the
// checkpoint trains the <|endofchunk|> and <image> rows (lang_encoder.special_token_embeddings),
// the file holds them as OpenFlamingo does instead: written into the full input table
// lang_encoder.model.embed_tokens.weight [V + 3, D], whose other rows are frozen and not in the
// checkpoint. So `model` is then required (kUsage if null): the model is rebuilt as the trainer
// builds it (weights::build_pretrained), the checkpoint's tensors loaded into it (kData on any
// name or shape mismatch) and weights::export_trainable() written, which needs the model in host
// memory once (fp32: about 33 GB for OpenFlamingo-9B).
void export_checkpoint(const std::string& step_dir, const std::string& out_path,
                       const ExportModel* model = nullptr);

}  // namespace flam::train
