// Checkpointer: sharded, atomic, asynchronous, verified checkpoints of the ZeRO-3 training state,
// with resharding onto a new world size. Format: docs/formats.md, "Checkpoints".
//
//   RUN/checkpoints/step_00001234/rank_00000.bin ...  one file per rank (its slices, loader
//                                                      states, RNG, counters), CRC32C-checked
//   RUN/checkpoints/step_00001234/manifest.json       written last: a checkpoint counts once its
//                                                      manifest is committed
//   RUN/checkpoints/latest                             "step_00001234", replaced atomically
//
// Commit protocol: every rank writes and fsyncs its file in step_N.tmp/; the ranks all-reduce a
// success flag; only then rank 0 writes the manifest, renames step_N.tmp/ to step_N/, fsyncs the
// parent, updates `latest`, and prunes to the newest `keep` checkpoints (never the newest valid).
// A failed save (disk full, read-only directory, a rank's write failing) leaves the previous
// checkpoints untouched, is logged, and counts towards `max_failed_attempts`.
//
// Dead ranks: when `comm` is an MpiComm and options.watchdog_seconds > 0, the Checkpointer also
// runs the job's Watchdog (train/checkpoint/watchdog.h) for its lifetime, so a silent rank ends
// the job with kExitPeerFailure instead of hanging it.
//
// Threads: every public method is called by the training thread of every rank, in the same order
// (they issue collectives on `comm`). One background thread per rank writes the rank's file (and,
// given a SliceCopy, first copies the slices into it); MPI is only ever called from the training
// thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/comm.h"
#include "train/options.h"
#include "train/zero3/flat_layout.h"

namespace flam::train {

class Watchdog;

// What one rank saves; host memory, owned by the Checkpointer once passed to save().
struct RankState {
  // Per block of the FlatLayout, this rank's slice: FlatLayout::slice_numel(block) floats each.
  std::vector<std::vector<float>> master, exp_avg, exp_avg_sq;
  std::string loader_laion, loader_mmc4;  // pipeline::Loader::state() of this rank
  std::string rng;                        // opaque bytes (torch generator state etc.)
  int64_t step = 0;                       // optimizer steps done
  std::map<std::string, double> scalars;  // counters (skipped steps, ...)
};

// Fills a RankState's master/exp_avg/exp_avg_sq (the bulk of a snapshot) from the live training
// state; see Checkpointer::save.
using SliceCopy = std::function<void(RankState& state)>;

struct LoadedCheckpoint {
  int64_t step = 0;
  std::string path;  // the step_N directory
  int old_world_size = 1;
  // This rank's slices for the CURRENT world size (resharded from the flat layout when the
  // world size changed). loader_*, rng and scalars are this rank's own when the world size is
  // unchanged; after resharding, rng is empty, scalars are old rank 0's, loader_* are empty
  // (use the *_all vectors below).
  RankState state;
  // Every OLD rank's loader state, in old rank order, for Loader::restore.
  std::vector<std::string> loader_laion_all, loader_mmc4_all;
};

// Outcome of one finished save attempt; identical on every rank.
struct SaveOutcome {
  int64_t step = -1;
  bool committed = false;
  std::string error;           // why it failed (the first failing rank's message), "" if ok
  double write_seconds = 0.0;  // background write + fsync time of the slowest rank
  int64_t bytes = 0;           // bytes written by all ranks together
};

class Checkpointer {
 public:
  // `run_dir` is the run directory (checkpoints go to run_dir/checkpoints/). `comm` must outlive
  // the Checkpointer. Collective: rank 0 creates the directory and removes partial step_*.tmp
  // directories left by a crash; every rank starts the watchdog (see above).
  Checkpointer(const CheckpointOptions& options, std::string run_dir, Comm& comm,
               std::string config_hash);
  // Finishes an in-flight write and commits it (collective) unless unwinding from an exception.
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Collective. Waits for and commits the previous save (if any), takes `state` (move it in: the
  // copy to host memory is the caller's snapshot), and starts a background thread writing this
  // rank's file. With sync (or options.async == false) also waits and commits before returning.
  // With `copy_slices`, the slices are left out of `state` and copied by that background thread
  // first, overlapping the copy with the next step's compute: the caller must then not change
  // what it reads (the optimizer's master weights and moments) before wait_for_snapshot().
  // Returns true if the save was started (async) or committed (sync). Throws flam::Error(kIo)
  // once max_failed_attempts consecutive saves have failed.
  // REQUIRES: state.master/exp_avg/exp_avg_sq (as given, or as copy_slices fills them) have
  // layout.blocks.size() entries of layout.slice_numel(b) floats; layout.world_size ==
  // comm.size().
  bool save(int64_t step, const FlatLayout& layout, RankState state, bool sync,
            SliceCopy copy_slices = {});

  // Not collective. Blocks until the in-flight save's copy_slices has run (at once if there is
  // none). Call before changing the state it reads.
  void wait_for_snapshot();

  // Collective; cheap. Commits an in-flight save if every rank has finished writing it, without
  // waiting otherwise. Call once per step so a finished checkpoint counts at once. A no-op (and
  // no collective) when nothing is in flight. Throws as save().
  void poll();

  // Collective. Finishes and commits any in-flight save. Throws as save().
  void wait();

  bool in_flight() const { return job_ != nullptr; }
  // The buffers of the last finished save, handed back for the next snapshot: copying into
  // vectors that are already allocated and touched avoids the page faults of fresh ones (most of
  // the snapshot's cost on CPU). Empty if there is none.
  RankState take_spare() { return std::exchange(spare_, RankState{}); }
  // Training-thread seconds spent inside the last save() (snapshot hand-over plus waiting for
  // the previous save), i.e. the stall the checkpoint caused.
  double last_stall_seconds() const { return last_stall_seconds_; }
  const std::optional<SaveOutcome>& last_outcome() const { return last_outcome_; }
  int consecutive_failures() const { return consecutive_failures_; }

  // Collective. The newest checkpoint whose manifest and checksums verify (a broken newest one is
  // reported and the previous used); nullopt if none. Reshards when layout.world_size differs
  // from the manifest's. Throws flam::Error(kConfig) if the manifest's blocks (names, numel) do
  // not match `layout` (a different model).
  std::optional<LoadedCheckpoint> load_latest(const FlatLayout& layout);

  const std::string& checkpoint_dir() const { return dir_; }

 private:
  struct Job;
  void finish(bool block);  // collective
  void commit(Job& job);    // collective

  CheckpointOptions options_;
  std::string run_dir_;
  std::string dir_;
  Comm& comm_;
  std::string config_hash_;
  std::unique_ptr<Job> job_;
  std::unique_ptr<Watchdog> watchdog_;
  RankState spare_;
  double last_stall_seconds_ = 0.0;
  std::optional<SaveOutcome> last_outcome_;
  int consecutive_failures_ = 0;
};

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
