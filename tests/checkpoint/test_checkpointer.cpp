// Checkpointer on real MPI ranks with synthetic slices: round trip, async commit, the slice copy
// on the writer thread, keep-K pruning, checksum failures falling back to the previous
// checkpoint, partial directories, a different model, failed saves counting towards
// max_failed_attempts, and the interval policy (checkpoint_interval.h).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/mpi_comm.h"
#include "core/run_layout.h"
#include "tests/checkpoint/synthetic.h"
#include "train/checkpoint/checkpoint_interval.h"
#include "train/checkpoint/checkpoint_reader.h"
#include "train/checkpoint/checkpointer.h"
#include "train/checkpoint/manifest.h"
#include "train/checkpoint/rank_file.h"

namespace flam::train {
namespace {

namespace fs = std::filesystem;
using run_layout::list_checkpoints;
using run_layout::rank_file_name;
using run_layout::step_dir_name;
using testing::check_slices;
using testing::StateSource;
using testing::synthetic_layout;
using testing::synthetic_state;

class CheckpointerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    comm_ = std::make_unique<MpiComm>(MPI_COMM_WORLD, MpiCommOptions{60.0});
    int64_t id = comm_->rank() == 0 ? static_cast<int64_t>(getpid()) : 0;
    comm_->broadcast(&id, 1, DType::kInt64, 0);
    run_ = "/tmp/flam_test_ckpt_" + std::to_string(id) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    if (rank() == 0) fs::remove_all(run_);
    comm_->barrier();
    layout_ = synthetic_layout(size());
  }
  void TearDown() override {
    comm_->barrier();
    if (rank() == 0) fs::remove_all(run_);
  }
  int rank() const { return comm_->rank(); }
  int size() const { return comm_->size(); }
  std::string ckpt_dir() const { return run_ + "/checkpoints"; }
  std::string step_dir(int64_t step) const { return ckpt_dir() + "/" + step_dir_name(step); }

  std::unique_ptr<MpiComm> comm_;
  std::string run_;
  FlatLayout layout_;
  CheckpointOptions options_;
};

TEST_F(CheckpointerTest, RoundTripRestoresEveryField) {
  Checkpointer ckpt(options_, run_, *comm_, "hash-a");
  const RankState state = synthetic_state(layout_, rank(), 5);
  StateSource source(layout_, state);
  ASSERT_TRUE(ckpt.save(5, source, /*sync=*/true));
  ASSERT_TRUE(ckpt.last_outcome()->committed);
  EXPECT_EQ(read_file(ckpt_dir() + "/latest"), "step_00000005\n");
  EXPECT_FALSE(fs::exists(step_dir(5) + ".tmp"));

  Checkpointer fresh(options_, run_, *comm_, "hash-a");
  auto loaded = fresh.load_latest(layout_);
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->step, 5);
  EXPECT_EQ(loaded->old_world_size, size());
  EXPECT_EQ(check_slices(layout_, rank(), 5, loaded->state), "");
  EXPECT_EQ(loaded->state.rng, state.rng);
  EXPECT_EQ(loaded->state.loader_laion, state.loader_laion);
  EXPECT_EQ(loaded->state.loader_mmc4, state.loader_mmc4);
  EXPECT_EQ(loaded->state.skipped_steps, state.skipped_steps);
  EXPECT_EQ(loaded->state.optimizer_step, state.optimizer_step);
  ASSERT_EQ(static_cast<int>(loaded->loader_mmc4_all.size()), size());
  for (int r = 0; r < size(); ++r) {
    EXPECT_EQ(loaded->loader_mmc4_all[r], synthetic_state(layout_, r, 5).loader_mmc4);
    EXPECT_EQ(loaded->loader_laion_all[r], synthetic_state(layout_, r, 5).loader_laion);
  }
  const Manifest m = read_manifest(step_dir(5));
  EXPECT_EQ(m.world_size, size());
  EXPECT_EQ(m.config_hash, "hash-a");
  EXPECT_EQ(m.layout.units.size(), layout_.units.size());
  EXPECT_EQ(m.layout.units[1].params[1].name,
            "lang_encoder.gated_cross_attn_layers.0.attn.to_q.weight");
}

TEST_F(CheckpointerTest, AsyncSaveCommitsOnPollWithoutAnotherSave) {
  Checkpointer ckpt(options_, run_, *comm_, "h");
  StateSource source(layout_, synthetic_state(layout_, rank(), 7));
  ASSERT_TRUE(ckpt.save(7, source, /*sync=*/false));
  EXPECT_FALSE(ckpt.last_outcome()) << "nothing has finished yet";
  for (int i = 0; i < 2000 && !ckpt.last_outcome(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ckpt.poll();
  }
  ASSERT_TRUE(ckpt.last_outcome()) << "poll() never committed the save";
  EXPECT_EQ(ckpt.last_outcome()->step, 7);
  EXPECT_TRUE(ckpt.last_outcome()->committed);
  EXPECT_TRUE(fs::exists(step_dir(7) + "/manifest.json"));
  EXPECT_GT(ckpt.last_outcome()->bytes, 0);
}

TEST_F(CheckpointerTest, SliceCopyOnTheWriterThreadSnapshotsBeforeTheCallerMovesOn) {
  Checkpointer ckpt(options_, run_, *comm_, "h");
  StateSource source(layout_, synthetic_state(layout_, rank(), 9));  // the "optimizer state"
  ASSERT_TRUE(ckpt.save(9, source, /*sync=*/false));
  source.wait_for_copy();
  EXPECT_NE(source.copier(), std::thread::id());
  EXPECT_NE(source.copier(), std::this_thread::get_id());
  // The next "optimizer step" changes the live state; the checkpoint keeps the copy.
  for (auto& slice : source.live().master) std::fill(slice.begin(), slice.end(), -1.0f);
  ckpt.wait();
  ASSERT_TRUE(ckpt.last_outcome()->committed);
  auto loaded = ckpt.load_latest(layout_);
  ASSERT_TRUE(loaded);
  EXPECT_EQ(check_slices(layout_, rank(), 9, loaded->state), "");
}

TEST_F(CheckpointerTest, KeepsTheNewestK) {
  options_.keep = 3;
  Checkpointer ckpt(options_, run_, *comm_, "h");
  StateSource source(layout_, synthetic_state(layout_, rank(), 1));
  for (int64_t step = 1; step <= 5; ++step) {
    source.set(synthetic_state(layout_, rank(), step));
    ASSERT_TRUE(ckpt.save(step, source, false));
  }
  ckpt.wait();
  comm_->barrier();
  EXPECT_EQ(list_checkpoints(ckpt_dir()), (std::vector<int64_t>{5, 4, 3}));
  for (const auto& entry : fs::directory_iterator(ckpt_dir())) {
    EXPECT_NE(entry.path().extension(), ".tmp") << entry.path();
  }
  auto loaded = ckpt.load_latest(layout_);
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->step, 5);
  EXPECT_EQ(check_slices(layout_, rank(), 5, loaded->state), "");
}

// Flips one byte of the newest checkpoint (in a data section, then in a header) or truncates a
// file: loading must report it and fall back to the previous checkpoint.
class CorruptionTest : public CheckpointerTest,
                       public ::testing::WithParamInterface<std::string> {};

TEST_P(CorruptionTest, FallsBackToThePreviousCheckpoint) {
  {
    Checkpointer ckpt(options_, run_, *comm_, "h");
    StateSource one(layout_, synthetic_state(layout_, rank(), 1));
    StateSource two(layout_, synthetic_state(layout_, rank(), 2));
    ASSERT_TRUE(ckpt.save(1, one, true));
    ASSERT_TRUE(ckpt.save(2, two, true));
  }
  comm_->barrier();
  if (rank() == 0) {
    const std::string victim = step_dir(2) + "/" + rank_file_name(size() - 1);
    const RankFileHeader h = read_rank_file_header(victim);
    const std::string mode = GetParam();
    if (mode == "truncate") {
      fs::resize_file(victim, fs::file_size(victim) - 1);
    } else {
      const uint64_t at = mode == "data" ? h.find("exp_avg/1")->offset + 17 : 20;
      std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
      f.seekg(static_cast<std::streamoff>(at));
      char c = 0;
      f.read(&c, 1);
      c ^= 0x10;
      f.seekp(static_cast<std::streamoff>(at));
      f.write(&c, 1);
    }
  }
  comm_->barrier();
  Checkpointer ckpt(options_, run_, *comm_, "h");
  auto loaded = ckpt.load_latest(layout_);
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->step, 1);
  EXPECT_EQ(check_slices(layout_, rank(), 1, loaded->state), "");
  if (rank() == 0) {
    CheckpointReader reader(step_dir(2));
    EXPECT_THROW(reader.verify_file(size() - 1), Error);
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, CorruptionTest, ::testing::Values("data", "header", "truncate"));

TEST_F(CheckpointerTest, PartialDirectoriesAreIgnoredAndCleaned) {
  {
    Checkpointer ckpt(options_, run_, *comm_, "h");
    StateSource source(layout_, synthetic_state(layout_, rank(), 3));
    ASSERT_TRUE(ckpt.save(3, source, true));
  }
  comm_->barrier();
  if (rank() == 0) {
    // A crash mid-write (no manifest yet) and a step directory without a manifest.
    fs::create_directories(step_dir(9) + ".tmp");
    std::ofstream(step_dir(9) + ".tmp/" + rank_file_name(0)) << "half a file";
    fs::create_directories(step_dir(8));
    std::ofstream(step_dir(8) + "/" + rank_file_name(0)) << "no manifest";
  }
  comm_->barrier();
  Checkpointer ckpt(options_, run_, *comm_, "h");
  comm_->barrier();
  EXPECT_FALSE(fs::exists(step_dir(9) + ".tmp"));
  auto loaded = ckpt.load_latest(layout_);
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->step, 3);
}

TEST_F(CheckpointerTest, NoCheckpointGivesNullopt) {
  Checkpointer ckpt(options_, run_, *comm_, "h");
  EXPECT_FALSE(ckpt.load_latest(layout_));
}

TEST_F(CheckpointerTest, DifferentModelIsAConfigError) {
  Checkpointer ckpt(options_, run_, *comm_, "h");
  StateSource source(layout_, synthetic_state(layout_, rank(), 1));
  ASSERT_TRUE(ckpt.save(1, source, true));
  const FlatLayout bigger = synthetic_layout(size(), 2);
  try {
    ckpt.load_latest(bigger);
    FAIL() << "expected a config error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    EXPECT_NE(std::string(e.what()).find("different model"), std::string::npos) << e.what();
  }
}

TEST_F(CheckpointerTest, FailedSavesCountAndThenStopTraining) {
  options_.max_failed_attempts = 2;
  if (rank() == 0) {
    fs::create_directories(run_);
    std::ofstream(ckpt_dir()) << "a file where the checkpoint directory should be";
  }
  comm_->barrier();
  Checkpointer ckpt(options_, run_, *comm_, "h");
  StateSource source(layout_, synthetic_state(layout_, rank(), 1));
  EXPECT_FALSE(ckpt.save(1, source, true));
  EXPECT_FALSE(ckpt.last_outcome()->committed);
  EXPECT_FALSE(ckpt.last_outcome()->error.empty());
  try {
    source.set(synthetic_state(layout_, rank(), 2));
    ckpt.save(2, source, true);
    FAIL() << "expected an I/O error after 2 failed attempts";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
  }
}

TEST_F(CheckpointerTest, DueEveryStepsOrMinutesOrYoungDaly) {
  CheckpointOptions o;
  o.every_steps = 10;
  EXPECT_TRUE(checkpoint_due(o, 20, 0.0));
  EXPECT_FALSE(checkpoint_due(o, 21, 1e9));
  o.every_minutes = 1.0;
  EXPECT_TRUE(checkpoint_due(o, 21, 61.0));
  o = CheckpointOptions{};
  o.every_steps = 0;
  o.mtbf_hours = 2.0;  // 7200 s, save cost 4 s -> sqrt(2 * 4 * 7200) = 240 s
  EXPECT_DOUBLE_EQ(young_daly_interval_seconds(4.0, 7200.0), 240.0);
  EXPECT_TRUE(checkpoint_due(o, 3, 0.0, 0.0));
  EXPECT_FALSE(checkpoint_due(o, 3, 239.0, 4.0));
  EXPECT_TRUE(checkpoint_due(o, 3, 241.0, 4.0));
}

}  // namespace
}  // namespace flam::train
