// AdamW on one rank's flat fp32 slice of a block (ZeRO-3's sharded optimizer), computing exactly
// what torch.optim.AdamW computes per element (decoupled weight decay, bias-corrected moments):
//   p *= 1 - lr * wd                      (only inside `decay` ranges)
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// Elementwise, so a slice gives the same numbers as the whole parameter.
//
// Thread safety: a plain function on caller-owned tensors.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "train/options.h"

namespace flam::train {

// [start, start + length) element ranges of a slice.
using Ranges = std::vector<std::pair<int64_t, int64_t>>;

// One AdamW step. param, grad, exp_avg, exp_avg_sq: [n] fp32, same device. `step` is the 1-based
// optimizer step (for the bias corrections); `decay` the ranges that get options.weight_decay.
void adamw_step(const at::Tensor& param, const at::Tensor& grad, const at::Tensor& exp_avg,
                const at::Tensor& exp_avg_sq, int64_t step, double lr,
                const OptimizerOptions& options, const Ranges& decay);

}  // namespace flam::train
