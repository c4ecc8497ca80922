// Learning-rate schedules against Hugging Face's get_*_schedule_with_warmup, evaluated by hand.
#include <gtest/gtest.h>

#include <cmath>

#include "train/optim/schedule.h"

namespace flam::train {
namespace {

ScheduleOptions schedule(const std::string& kind, int64_t warmup) {
  ScheduleOptions s;
  s.kind = kind;
  s.warmup_steps = warmup;
  return s;
}

TEST(Schedule, WarmupStartsAtZeroAndRisesLinearly) {
  for (const char* kind : {"constant", "linear", "cosine"}) {
    EXPECT_DOUBLE_EQ(scheduled_lr(schedule(kind, 10), 1e-3, 0, 100), 0.0) << kind;
    EXPECT_DOUBLE_EQ(scheduled_lr(schedule(kind, 10), 1e-3, 4, 100), 4e-4) << kind;
    EXPECT_DOUBLE_EQ(scheduled_lr(schedule(kind, 10), 1e-3, 10, 100), 1e-3) << kind;
  }
  EXPECT_DOUBLE_EQ(scheduled_lr(schedule("constant", 0), 1e-3, 0, 100), 1e-3);
}

TEST(Schedule, DecaysAfterWarmup) {
  EXPECT_DOUBLE_EQ(scheduled_lr(schedule("constant", 10), 2.0, 99, 100), 2.0);
  EXPECT_DOUBLE_EQ(scheduled_lr(schedule("linear", 10), 2.0, 55, 100), 1.0);
  EXPECT_DOUBLE_EQ(scheduled_lr(schedule("linear", 10), 2.0, 100, 100), 0.0);
  EXPECT_DOUBLE_EQ(scheduled_lr(schedule("linear", 10), 2.0, 150, 100), 0.0);
  EXPECT_NEAR(scheduled_lr(schedule("cosine", 10), 2.0, 55, 100), 1.0, 1e-12);
  EXPECT_NEAR(scheduled_lr(schedule("cosine", 10), 2.0, 100, 100), 0.0, 1e-12);
  EXPECT_NEAR(scheduled_lr(schedule("cosine", 10), 2.0, 42, 100),
              1.0 + std::cos(M_PI * 32.0 / 90.0), 1e-12);
}

}  // namespace
}  // namespace flam::train
