// Precision: the dtypes of training, and the only places where values change dtype.
//
//   master dtype:  fp32, always: the Zero3Engine's master slices, AdamW moments and gradient
//                  accumulators, and so the checkpoints (Precision::kMaster).
//   compute dtype: train.precision (fp32 | bf16): frozen parameters and buffers, trained
//                  parameters as gathered for forward and backward, activations, input images.
//
// The casts, in the order a step meets them:
//   1. place_model() (once, before the Zero3Engine exists): frozen parameters and buffers to the
//      compute dtype on the device; trained parameters stay fp32, so that the engine's master
//      copy is their fp32 values (random init or imported weights) bitwise.
//   2. the trainer's to_device() (each batch): uint8 images -> fp32, CLIP-normalised -> compute
//      dtype.
//   3. Zero3Engine: fp32 master -> compute dtype at each gather; gradients -> fp32 into the
//      slice at each reduce-scatter (train/zero3/zero3_engine.h).
//   4. FlamingoImpl::loss: logits -> fp32 before the cross-entropy (train/model/flamingo.h).
//
// Thread safety: call from the training thread.
#pragma once

#include <torch/torch.h>

#include "train/model/flamingo.h"
#include "train/options.h"

namespace flam::train {

struct Precision {
  static constexpr torch::Dtype kMaster = torch::kFloat;
  torch::Dtype compute = torch::kFloat;
};

inline Precision precision_of(const TrainOptions& options) {
  return Precision{options.precision == "bf16" ? torch::kBFloat16 : torch::kFloat};
}

// Cast 1 above: moves `model` to `device`, frozen parameters and buffers in the compute dtype,
// trained parameters (model.trained_units()) in the master dtype. Shape-only frozen parameters
// (model::FrozenStorage::kShapesOnly) stay placeholders, now of the device and compute dtype.
// REQUIRES: no Zero3Engine holds the model's trained parameters yet.
inline void place_model(model::FlamingoImpl& model, torch::Device device,
                        const Precision& precision) {
  torch::NoGradGuard no_grad;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> trained;  // parameter, its master value
  for (const model::ParamUnit& unit : model.trained_units()) {
    for (const auto& [name, param] : unit.params) {
      trained.emplace_back(param, param.detach().to(device, Precision::kMaster));
    }
  }
  std::vector<std::pair<torch::Tensor, std::vector<int64_t>>> shape_only;  // parameter, shape
  for (torch::Tensor& param : model.parameters()) {
    if (!model::is_shape_only(param)) continue;
    shape_only.emplace_back(param, param.sizes().vec());
    param.set_data(torch::empty({0}, param.options()));  // nothing for model.to() to copy
  }
  model.to(device, precision.compute);
  for (auto& [param, sizes] : shape_only) {
    param.set_data(model::shape_only_placeholder(sizes, param.options()));
  }
  for (auto& [param, value] : trained) param.set_data(value);
}

}  // namespace flam::train
