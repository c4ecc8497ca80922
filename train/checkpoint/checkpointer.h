// Checkpointer: sharded, atomic, asynchronous, verified checkpoints of one rank's training state,
// with resharding onto a new world size. Format: docs/formats.md, "Checkpoints"; the names of the
// files and folders: core/run_layout.h.
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
// A save takes its state from a SnapshotSource (the trainer's TrainState): the small state on the
// training thread, the slices on the writer thread into the previous save's buffers (already
// paged in), overlapping the next step's compute; the source holds back its optimizer update
// until that copy is done (SnapshotSource::hold_updates).
//
// train.checkpoint.dir replaces RUN/checkpoints: another local folder, or "s3://bucket/prefix"
// (pipeline/s3.h). In a bucket the same names are objects: each rank's writer thread uploads its
// file (multipart) after writing it locally under RUN/checkpoints/step_N.tmp/; once every rank
// reports success and rank 0 sees every part whole (HEAD), rank 0 uploads manifest.json (the
// commit point: an object store has no rename) and then `latest`. A step_N/ without a manifest
// never counts and is deleted at the next start; pruning deletes a step's manifest first. The
// local folder keeps the newest `keep` as a cache; load_latest() lists the bucket and reads a
// downloaded copy.
//
// Threads: every public method is called by the training thread of every rank, in the same order
// (they issue collectives on `comm`). One background thread per rank copies the slices and writes
// the rank's file; MPI is only ever called from the training thread.
#pragma once

#include <cstdint>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/comm.h"
#include "train/options.h"
#include "train/zero3/flat_layout.h"

namespace flam::train {

// What one rank saves; host memory.
struct RankState {
  // Per unit of the FlatLayout, this rank's slice: FlatLayout::slice_numel(unit) floats each.
  std::vector<std::vector<float>> master, exp_avg, exp_avg_sq;
  std::string loader_laion, loader_mmc4;  // pipeline::Loader::state() of this rank
  std::string rng;                        // opaque bytes (torch generator state etc.)
  int64_t step = 0;                       // optimizer steps done
  int64_t optimizer_step = 0;             // AdamW's clock (steps taken, skipped ones excluded)
  int64_t skipped_steps = 0;              // steps skipped for a non-finite loss or norm
};

// The live training state a save is taken from. REQUIRES: outlives the save it is passed to
// (until the next save(), poll() that commits, wait() or the Checkpointer's end).
class SnapshotSource {
 public:
  virtual ~SnapshotSource() = default;
  // The flat layout of the slices; layout().world_size == the Checkpointer's comm.size().
  virtual const FlatLayout& layout() const = 0;
  // Training thread, inside save(): everything but the slices (loaders, RNG, counters).
  virtual void snapshot(RankState& state) = 0;
  // Writer thread, after snapshot(): this rank's slices into state.master/exp_avg/exp_avg_sq
  // (layout().units.size() vectors of slice_numel(b) floats each), reusing their storage.
  virtual void copy_slices(RankState& state) const = 0;
  // Training thread, inside save(), before it returns: `copied` is ready once copy_slices()
  // has returned. The source must not change what copy_slices() reads before then.
  virtual void hold_updates(std::shared_future<void> copied) = 0;
};

struct LoadedCheckpoint {
  int64_t step = 0;
  std::string path;  // the step_N directory
  int old_world_size = 1;
  // This rank's slices for the CURRENT world size (resharded from the flat layout when the
  // world size changed). loader_* and rng are this rank's own when the world size is unchanged;
  // after resharding rng and loader_* are empty (use the *_all vectors below) and the counters
  // are old rank 0's.
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
  // `run_dir` is the run directory (checkpoints go to its checkpoints/). `comm` must outlive the
  // Checkpointer. Collective: rank 0 creates the directory and removes partial step_*.tmp
  // directories left by a crash.
  Checkpointer(const CheckpointOptions& options, std::string run_dir, Comm& comm,
               std::string config_hash);
  // Finishes an in-flight write and commits it (collective) unless unwinding from an exception.
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Collective. Waits for and commits the previous save (if any), snapshots `source` (see
  // SnapshotSource) and starts a background thread copying its slices and writing this rank's
  // file. With sync (or options.async == false) also waits and commits before returning.
  // Returns true if the save was started (async) or committed (sync). Throws flam::Error(kIo)
  // once max_failed_attempts consecutive saves have failed.
  bool save(int64_t step, SnapshotSource& source, bool sync);

  // Collective; cheap. Commits an in-flight save if every rank has finished writing it, without
  // waiting otherwise. Call once per step so a finished checkpoint counts at once. A no-op (and
  // no collective) when nothing is in flight. Throws as save().
  void poll();

  // Collective. Finishes and commits any in-flight save. Throws as save().
  void wait();

  // The last finished save attempt; nullopt before the first.
  const std::optional<SaveOutcome>& last_outcome() const { return last_outcome_; }

  // Collective. The newest checkpoint whose manifest and checksums verify (a broken newest one is
  // reported and the previous used); nullopt if none. Reshards when layout.world_size differs
  // from the manifest's. Throws flam::Error(kConfig) if the manifest's units (names, numel) do
  // not match `layout` (a different model).
  std::optional<LoadedCheckpoint> load_latest(const FlatLayout& layout);

 private:
  struct Job;
  struct Remote;
  void finish(bool block);           // collective
  void commit(Job& job);             // collective
  void count_failure(int64_t step);  // logs, throws after max_failed_attempts

  CheckpointOptions options_;
  std::string dir_;  // RUN/checkpoints
  Comm& comm_;
  std::string config_hash_;
  std::unique_ptr<Remote> remote_;  // set for an s3:// train.checkpoint.dir
  std::unique_ptr<Job> job_;
  RankState spare_;  // the last finished save's buffers, reused by the next snapshot
  std::optional<SaveOutcome> last_outcome_;
  int consecutive_failures_ = 0;
};

}  // namespace flam::train
