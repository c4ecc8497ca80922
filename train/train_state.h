// TrainState: everything of one rank that a checkpoint holds and a resume restores: the
// Zero3Engine's slices and AdamW clock, the LAION and MMC4 loaders' positions, the CPU
// generator, the step, the skipped-step count and the step of the last in-training evaluation
// (train.eval). It is the Checkpointer's SnapshotSource, and
// it owns the one ordering rule between the two: the optimizer update (step()) first waits until
// an in-flight save has copied the slices it is about to change.
//
// Thread safety: the training thread, except copy_slices() (the Checkpointer's writer thread,
// which reads the engine's slices while the training thread computes the next step's forward
// and backward, which do not change them).
#pragma once

#include <cstdint>
#include <future>

#include "pipeline/loader.h"
#include "train/checkpoint/checkpointer.h"
#include "train/zero3/zero3_engine.h"

namespace flam::train {

class TrainState final : public SnapshotSource {
 public:
  // The engine and loaders must outlive the TrainState.
  TrainState(Zero3Engine& engine, pipeline::Loader& laion, pipeline::Loader& mmc4);

  int64_t step() const { return step_; }
  int64_t skipped_steps() const { return skipped_steps_; }
  // The step the last in-training evaluation ran at; -1 before the first.
  int64_t eval_step() const { return eval_step_; }
  void set_eval_step(int64_t step) { eval_step_ = step; }

  // Continues from `loaded` (Checkpointer::load_latest) on rank `rank` of `world_size`: slices,
  // AdamW clock, counters, loader positions and, for the same world size, the generator; on a
  // new world size each rank's generator is seeded from (seed, step, rank) instead, the same on
  // every resume of this reshard. The evaluation step travels in the rank's "rng" section
  // (kRngMagic, int64 little-endian, then the generator's bytes); a reshard, which drops that
  // section, takes the checkpoint's step (an evaluation due at a step runs before that step's
  // checkpoint is taken), and a section without the magic (older checkpoints) gives -1.
  void restore(const LoadedCheckpoint& loaded, int rank, int world_size, uint64_t seed);

  // The optimizer update of one step (Zero3Engine::step), after any in-flight slice copy; then
  // the step and skipped-step counters advance. Adds the time waited to the stall.
  Zero3StepResult step(double lr, double max_norm, bool skip);

  // Training-thread seconds spent waiting for slice copies since the last take_stall_seconds().
  double take_stall_seconds();

  // SnapshotSource.
  const FlatLayout& layout() const override { return engine_.layout(); }
  void snapshot(RankState& state) override;
  void copy_slices(RankState& state) const override;
  void hold_updates(std::shared_future<void> copied) override { copied_ = std::move(copied); }

 private:
  Zero3Engine& engine_;
  pipeline::Loader& laion_;
  pipeline::Loader& mmc4_;
  int64_t step_ = 0;
  int64_t skipped_steps_ = 0;
  int64_t eval_step_ = -1;
  std::shared_future<void> copied_;  // of the save in flight, if any
  double stall_seconds_ = 0.0;
};

}  // namespace flam::train
