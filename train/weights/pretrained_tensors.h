// PretrainedTensors: the parameters of weights::build_pretrained(options, seed)
// (model_weights.h), one tensor at a time, without building the model. For export, whose host
// memory must stay near one tensor, not the whole model (about 33 GB fp32 for OpenFlamingo-9B),
// and for train.shard_frozen's set-up, which fills each rank's frozen slices from it.
//
// A parameter's value is its random initialisation, overwritten by the run's weight files in
// load_pretrained's order (weights.hf_flamingo, then vision, then lang). The initialisation is
// replayed once, at construction: under torch::manual_seed(seed) the model's modules are built one
// at a time in the order the model builds them, so every random draw is build_pretrained's, and
// of each module only the `wanted` parameters that the weight files do not cover completely are
// kept (for OpenFlamingo-9B trained from LLaMA-7B: embed_tokens and lm_head, whose three new rows
// are not in the file). Weight files are memory-mapped safetensors, read per tensor. Runs whose
// weights are not all safetensors (weights.openflamingo_checkpoint, a pickled .bin HF folder)
// build the model once as build_pretrained does instead, and get() copies from it.
//
// Thread safety: none; use from one thread.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "train/model/options.h"
#include "train/weights/safetensors.h"

namespace flam::weights {

class PretrainedTensors {
 public:
  // Opens the run's weight files and replays the initialisation (seconds to minutes: the random
  // init of the whole model, a module at a time). Throws what the weight files' readers throw.
  PretrainedTensors(const model::ModelOptions& options, int64_t seed,
                    const std::function<bool(const std::string&)>& wanted);
  ~PretrainedTensors();
  PretrainedTensors(const PretrainedTensors&) = delete;
  PretrainedTensors& operator=(const PretrainedTensors&) = delete;

  // Every parameter of the model (fp32; our names, as Flamingo registers them).
  const std::vector<TensorSpec>& parameters() const { return parameters_; }
  // False when the model was built whole (weights not all safetensors; see above).
  bool streamed() const;
  // REQUIRES: wanted(name). A fresh fp32 CPU tensor equal to build_pretrained's parameter `name`.
  // Throws flam::Error(kData) naming the weight file and tensor when a file's tensor does not fit.
  at::Tensor get(const std::string& name) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<TensorSpec> parameters_;
};

}  // namespace flam::weights
