// gtest main for multi-rank tests: every rank runs every test and prints its own results.
// A failure on any rank makes that rank exit non-zero, which fails mpirun and the ctest entry.
#include <gtest/gtest.h>

#include "core/world.h"

int main(int argc, char** argv) {
  flam::World::init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  int rc = RUN_ALL_TESTS();
  flam::World::finalize();
  return rc;
}
