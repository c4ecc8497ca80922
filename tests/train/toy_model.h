// A small model made like Flamingo for the ZeRO-3 tests: per-layer trained units called through
// the model::UnitRunner seam, plus a "rest" (input scale and output head) used directly.
//   x [B, 8] -> x * scale -> block_i: x + gelu(W_i x + b_i) (i < 3) -> head -> logits [B, 4]
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "train/model/flamingo.h"

namespace flam::train::testing {

struct ToyModel : torch::nn::Module {
  static constexpr int kDim = 8;
  static constexpr int kClasses = 4;
  static constexpr int kUnits = 3;

  ToyModel() {
    scale = register_parameter("scale", torch::ones({kDim}) + 0.1 * torch::randn({kDim}));
    for (int i = 0; i < kUnits; ++i) {
      layers.push_back(register_module("block" + std::to_string(i), torch::nn::Linear(kDim, kDim)));
    }
    head = register_module("head", torch::nn::Linear(kDim, kClasses));
  }

  torch::Tensor forward(const torch::Tensor& input) {
    torch::Tensor x = input * scale;
    for (int i = 0; i < kUnits; ++i) {
      auto fn = [this, i](const std::vector<torch::Tensor>& in) {
        return in[0] + torch::gelu(layers[i](in[0]));
      };
      x = runner ? runner->run(i, fn, {x}) : fn({x});
    }
    return head(x);
  }

  std::vector<model::ParamUnit> trained_units() {
    std::vector<model::ParamUnit> units;
    for (int i = 0; i < kUnits; ++i) {
      const std::string name = "block" + std::to_string(i);
      units.push_back(
          {name, {{name + ".weight", layers[i]->weight}, {name + ".bias", layers[i]->bias}}});
    }
    units.push_back(
        {"rest", {{"scale", scale}, {"head.weight", head->weight}, {"head.bias", head->bias}}});
    return units;
  }

  static bool weight_decay(const std::string& name) { return name.rfind("block", 0) == 0; }

  torch::Tensor scale;
  std::vector<torch::nn::Linear> layers;
  torch::nn::Linear head{nullptr};
  model::UnitRunner* runner = nullptr;
};

}  // namespace flam::train::testing
