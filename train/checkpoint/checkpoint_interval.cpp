#include "train/checkpoint/checkpoint_interval.h"

#include <cmath>

namespace flam::train {

bool checkpoint_due(const CheckpointOptions& options, int64_t step, double seconds_since_last_save,
                    double save_seconds) {
  if (options.every_steps > 0 && step % options.every_steps == 0) return true;
  if (options.every_minutes > 0 && seconds_since_last_save >= options.every_minutes * 60.0) {
    return true;
  }
  if (options.mtbf_hours > 0) {
    if (save_seconds <= 0) return true;
    return seconds_since_last_save >=
           young_daly_interval_seconds(save_seconds, options.mtbf_hours * 3600.0);
  }
  return false;
}

double young_daly_interval_seconds(double save_seconds, double mtbf_seconds) {
  return std::sqrt(2.0 * save_seconds * mtbf_seconds);
}

}  // namespace flam::train
