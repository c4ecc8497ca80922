#include "train/optim/schedule.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"

namespace flam::train {

double scheduled_lr(const ScheduleOptions& schedule, double base_lr, int64_t step,
                    int64_t total_steps) {
  const int64_t warmup = schedule.warmup_steps;
  if (step < warmup) {
    return base_lr * static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup));
  }
  if (schedule.kind == "constant") return base_lr;
  const double span = static_cast<double>(std::max<int64_t>(1, total_steps - warmup));
  const double progress = static_cast<double>(step - warmup) / span;
  if (schedule.kind == "linear") return base_lr * std::max(0.0, 1.0 - progress);
  FLAM_CHECK(schedule.kind == "cosine") << "schedule " << schedule.kind;
  return base_lr * std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * progress)));
}

}  // namespace flam::train
