// Learning-rate schedule: linear warmup from 0, then constant, linear decay to 0, or cosine decay
// to 0 at `total_steps`, as Hugging Face's get_{constant,linear,cosine}_schedule_with_warmup
// (which OpenFlamingo's train.py uses): the lr of optimizer step `step` (0-based) is
// base_lr * factor(step), so the very first step of a warmup runs at lr 0.
//
// Thread safety: a pure function.
#pragma once

#include <cstdint>

#include "train/options.h"

namespace flam::train {

double scheduled_lr(const ScheduleOptions& schedule, double base_lr, int64_t step,
                    int64_t total_steps);

}  // namespace flam::train
