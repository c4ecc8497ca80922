// World without a launcher: a process started by hand is a one-rank "singleton", whatever
// variables MPI's singleton start-up sets for itself (issue #17: it was logged as "(srun)").
#include <gtest/gtest.h>

#include <cstdlib>

#include "core/world.h"

namespace flam {
namespace {

TEST(World, OneRankWithoutALauncherIsASingleton) {
  ::unsetenv("OMPI_COMM_WORLD_SIZE");
  ::unsetenv("SLURM_STEP_ID");
  ::unsetenv("PMIX_RANK");
  const WorldInfo& info = World::init(nullptr, nullptr);
  EXPECT_EQ(info.size, 1);
  EXPECT_EQ(info.rank, 0);
  EXPECT_EQ(info.launcher, "singleton");
  World::finalize();
}

}  // namespace
}  // namespace flam
