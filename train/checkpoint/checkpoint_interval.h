// Checkpoint interval: when a checkpoint is due (train.checkpoint.every_steps, every_minutes and
// the Young/Daly interval for a configured mean time between failures, mtbf_hours).
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>

#include "train/options.h"

namespace flam::train {

// Whether a checkpoint is due after `step` optimizer steps: every `every_steps` steps, and/or
// when `every_minutes` minutes have passed since the last save, and/or (mtbf_hours > 0) when the
// Young/Daly interval for the measured `save_seconds` (the last save's cost; <= 0: not measured
// yet, so due at once) has passed. Clocks differ across ranks: pass rank 0's seconds (broadcast)
// or all-reduce the answer so every rank agrees.
bool checkpoint_due(const CheckpointOptions& options, int64_t step, double seconds_since_last_save,
                    double save_seconds = 0.0);

// Young/Daly optimal interval in seconds: sqrt(2 * save_seconds * mtbf_seconds).
double young_daly_interval_seconds(double save_seconds, double mtbf_seconds);

}  // namespace flam::train
