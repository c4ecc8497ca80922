#include "train/optim/adamw.h"

#include <cmath>

#include "core/check.h"

namespace flam::train {

void adamw_step(const at::Tensor& param, const at::Tensor& grad, const at::Tensor& exp_avg,
                const at::Tensor& exp_avg_sq, int64_t step, double lr,
                const OptimizerOptions& options, const Ranges& decay) {
  FLAM_CHECK(step >= 1) << "AdamW step is 1-based";
  if (options.weight_decay != 0.0) {
    for (const auto& [start, length] : decay) {
      param.narrow(0, start, length).mul_(1.0 - lr * options.weight_decay);
    }
  }
  const double bias_correction1 = 1.0 - std::pow(options.beta1, static_cast<double>(step));
  const double bias_correction2 = 1.0 - std::pow(options.beta2, static_cast<double>(step));
  exp_avg.mul_(options.beta1).add_(grad, 1.0 - options.beta1);
  exp_avg_sq.mul_(options.beta2).addcmul_(grad, grad, 1.0 - options.beta2);
  at::Tensor denom = exp_avg_sq.sqrt().div_(std::sqrt(bias_correction2)).add_(options.eps);
  param.addcdiv_(exp_avg, denom, -lr / bias_correction1);
}

}  // namespace flam::train
