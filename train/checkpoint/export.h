// Export of a checkpoint's trained weights, consolidated from every rank's slices: one fp32
// tensor per parameter of the flat layout, under the layout's names (OpenFlamingo state-dict
// names, as the trainer registers them), written as .safetensors or as a torch.save-compatible
// .pt (a pickled dict of str -> Tensor, loadable by `torch.load` and by
// train/weights' OpenFlamingo importer); or the run's whole model as an OpenFlamingo-HF folder.
// Every export streams: the checkpoint is read a parameter at a time (CheckpointReader::read_flat)
// and frozen tensors come one at a time from the run's weight files
// (weights::PretrainedTensors), so host memory stays near the largest tensor, not the model.
//
// Thread safety: none needed; single-process, run by `flam export` and `flam inspect`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "train/model/options.h"
#include "train/weights/safetensors.h"

namespace flam::train {

// A step directory (holding manifest.json) as is; a run directory or its checkpoints/ folder:
// the newest committed checkpoint in it (verification is the caller's). Throws
// flam::Error(kIo) naming `path` when it holds none.
std::string resolve_checkpoint_dir(const std::string& path);

// A checkpoint as `flam eval`, `flam export` and `flam inspect checkpoint` take it: a step
// directory, a run directory or its checkpoints/ folder (resolve_checkpoint_dir), or the same in
// a bucket ("s3://bucket/prefix/step_N", or the checkpoints prefix for its newest committed
// step), whose step is downloaded (download_checkpoint) into a temporary folder under $TMPDIR
// (default /tmp), removed with this object. Throws what those throw, kIo naming the folder when
// it cannot be made. Verification is the caller's.
class LocalCheckpoint {
 public:
  explicit LocalCheckpoint(const std::string& name);
  ~LocalCheckpoint();
  LocalCheckpoint(const LocalCheckpoint&) = delete;
  LocalCheckpoint& operator=(const LocalCheckpoint&) = delete;

  const std::string& dir() const { return dir_; }  // the local step directory
  // The step's name for messages and reports: its s3:// URL for a bucket's, else dir().
  const std::string& name() const { return name_; }
  bool downloaded() const { return !scratch_.empty(); }
  // Every committed step beside it (its checkpoints folder or prefix), oldest first.
  const std::vector<int64_t>& committed() const { return committed_; }
  // `text` with the temporary folder's path replaced by name() (a reader's error message).
  std::string named(std::string text) const;
  // Runs fn(); a flam::Error it throws about a downloaded step is thrown again with named() text.
  template <typename Fn>
  void named_errors(Fn&& fn) const {
    try {
      fn();
    } catch (const Error& e) {
      if (!downloaded()) throw;
      throw Error(e.kind(), named(e.what()));
    }
  }

 private:
  std::string scratch_;  // the temporary folder, empty for a local checkpoint
  std::string dir_;
  std::string name_;
  std::vector<int64_t> committed_;
};

// Verifies every rank file of `step_dir` against its manifest (throws flam::Error(kData) on a
// mismatch), then returns the trained parameters in layout order, fp32 CPU tensors. Holds every
// trained tensor at once: for small models (eval, tests); export streams instead.
weights::NamedTensors consolidate_checkpoint(const std::string& step_dir);

// The run a checkpoint belongs to, for export_checkpoint: its model options and run.seed.
struct ExportModel {
  model::ModelOptions options;
  int64_t seed = 0;
};

// The checkpoint's trained tensors written to `out_path`: *.safetensors or *.pt (else kUsage),
// after verifying every rank file (kData on a mismatch, nothing written). When the checkpoint
// trains the <|endofchunk|> and <image> rows (lang_encoder.special_token_embeddings), the file
// holds them as OpenFlamingo does instead: written into the full input table
// lang_encoder.model.embed_tokens.weight [V + 3, D], whose other rows are frozen and not in the
// checkpoint. So `model` is then required (kUsage if null): that table is the one
// weights::build_pretrained gives the run (weights::PretrainedTensors).
void export_checkpoint(const std::string& step_dir, const std::string& out_path,
                       const ExportModel* model = nullptr);

// The run's whole model (build_pretrained(model.options, model.seed) with the checkpoint's
// trained tensors) as an OpenFlamingo-HF folder in `out_dir` (weights::export_hf_flamingo), in
// shards of at most `max_shard_bytes`. Verifies the checkpoint first; a checkpoint tensor that is
// not a parameter of the model, or of another shape, is kData naming it.
void export_hf_flamingo_checkpoint(const std::string& step_dir, const std::string& out_dir,
                                   const ExportModel& model,
                                   uint64_t max_shard_bytes = 5'000'000'000);

}  // namespace flam::train
