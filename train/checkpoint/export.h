// Export of a checkpoint's trained weights, consolidated from every rank's slices: one fp32
// tensor per parameter of the flat layout, under the layout's names (OpenFlamingo state-dict
// names, as the trainer registers them), written as .safetensors or as a torch.save-compatible
// .pt (a pickled dict of str -> Tensor, loadable by `torch.load` and by
// train/weights' OpenFlamingo importer).
//
// Thread safety: none needed; single-process, run by `flam export` and `flam inspect`.
#pragma once

#include <string>

#include "train/weights/safetensors.h"

namespace flam::train {

// A step directory (holding manifest.json) as is; a run directory or its checkpoints/ folder:
// the newest committed checkpoint in it (verification is the caller's). Throws
// flam::Error(kIo) naming `path` when it holds none.
std::string resolve_checkpoint_dir(const std::string& path);

// Verifies every rank file of `step_dir` against its manifest (throws flam::Error(kData) on a
// mismatch), then returns the trained parameters in layout order, fp32 CPU tensors.
weights::NamedTensors consolidate_checkpoint(const std::string& step_dir);

// consolidate_checkpoint() written to `out_path`: *.safetensors or *.pt (else kUsage).
void export_checkpoint(const std::string& step_dir, const std::string& out_path);

}  // namespace flam::train
