// run_layout (core/run_layout.h): the names of a run directory's files, the step directory name
// and its parser, and the listing of committed checkpoints.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/run_layout.h"

namespace flam::run_layout {
namespace {

namespace fs = std::filesystem;

TEST(RunLayout, NamesEveryFileOfARun) {
  EXPECT_EQ(config_file("/r"), "/r/config.yaml");
  EXPECT_EQ(state_file("/r"), "/r/state.json");
  EXPECT_EQ(orchestrator_log("/r"), "/r/orchestrator.log");
  EXPECT_EQ(metrics_file("/r"), "/r/metrics.jsonl");
  EXPECT_EQ(cancel_marker("/r"), "/r/cancel");
  EXPECT_EQ(job_script("/r"), "/r/job.sbatch");
  EXPECT_EQ(jobs_dir("/r"), "/r/jobs");
  EXPECT_EQ(job_exit_file("/r", "42"), "/r/jobs/42.exit");
  EXPECT_EQ(job_output_pattern("/r"), "/r/jobs/slurm-%j.out");
  EXPECT_EQ(checkpoints_dir("/r"), "/r/checkpoints");
  EXPECT_EQ(step_dir("/r/checkpoints", 1234), "/r/checkpoints/step_00001234");
  EXPECT_EQ(tmp_dir("/r/checkpoints/step_00000001"), "/r/checkpoints/step_00000001.tmp");
  EXPECT_EQ(latest_file("/c"), "/c/latest");
  EXPECT_EQ(manifest_file("/c/step_00000001"), "/c/step_00000001/manifest.json");
  EXPECT_EQ(rank_file("/s", 3), "/s/rank_00003.bin");
}

TEST(RunLayout, StepDirNamesRoundTripAndNothingElseParses) {
  for (int64_t step : {0L, 7L, 12345678L, 123456789012L}) {
    EXPECT_EQ(parse_step_dir_name(step_dir_name(step)), step);
  }
  for (const char* name :
       {"step_", "step_12.tmp", "step_1a", "latest", "xstep_1", "step_99999999999999999999"}) {
    EXPECT_EQ(parse_step_dir_name(name), std::nullopt) << name;
  }
  EXPECT_TRUE(is_tmp_name("step_00000001.tmp"));
  EXPECT_FALSE(is_tmp_name(".tmp"));
  EXPECT_FALSE(is_tmp_name("step_00000001"));
}

TEST(RunLayout, ListsCommittedCheckpointsNewestFirst) {
  const fs::path dir = fs::temp_directory_path() / ("flam_run_layout_" + std::to_string(getpid()));
  for (int64_t step : {20, 3, 100}) {
    fs::create_directories(step_dir(dir.string(), step));
    std::ofstream(manifest_file(step_dir(dir.string(), step))) << "{}";
  }
  fs::create_directories(tmp_dir(step_dir(dir.string(), 200)));  // in progress
  std::ofstream(manifest_file(tmp_dir(step_dir(dir.string(), 200)))) << "{}";
  fs::create_directories(step_dir(dir.string(), 300));  // no manifest yet
  std::ofstream(latest_file(dir.string())) << "step_00000100\n";
  EXPECT_EQ(list_checkpoints(dir.string()), (std::vector<int64_t>{100, 20, 3}));
  EXPECT_TRUE(list_checkpoints((dir / "absent").string()).empty());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace flam::run_layout
