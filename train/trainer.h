// Trainer: `flam train`'s loop, in trainer.cpp's run_training(): setup (the Flamingo model with
// random frozen weights or pretrained ones from model.weights, placed per train/precision.h; its
// trained units in a Zero3Engine over `device`; one LAION and one MMC4 Loader for this rank),
// resume() from the newest valid checkpoint in the run directory, then a loop of train_step(),
// maybe_evaluate(), log_metrics() and maybe_checkpoint() to train.steps optimizer steps.
//
// With train.eval.every > 0 the ranks evaluate together (train/eval/evaluator.h) at step 0 and
// every that many steps, at the step boundary before the checkpoint, once per step (the step
// of the last evaluation is in the checkpoint, so a resumed run neither repeats nor skips one);
// the scores join that step's metrics line as "eval_{task}_{shots}shot" (CIDEr x 100 or VQA
// accuracy x 100) with "eval_seconds" (not counted in step_time).
//
// Writes RUN/metrics.jsonl (rank 0, one JSON object per log step) and checkpoints under
// RUN/checkpoints/ (core/run_layout.h). Stops early, after a synchronous checkpoint, when any rank
// received SIGUSR1 or SIGTERM (core/signals.h; the caller installs the handlers).
//
// Thread safety: call from the main thread of every rank (collective throughout).
#pragma once

#include <string>

#include "core/comm.h"
#include "core/run_options.h"
#include "pipeline/options.h"
#include "train/eval/options.h"
#include "train/model/options.h"
#include "train/options.h"
#include "train/plan.h"

namespace flam::train {

// The sections of the resolved config the trainer reads.
struct TrainerConfig {
  RunOptions run;
  model::ModelOptions model;
  pipeline::DataOptions data;
  TrainOptions train;
  std::string config_hash;  // stored in checkpoints (cli/config.h config_hash())
  int local_rank = 0;       // picks the GPU with train.device: cuda
  eval::EvalOptions eval;   // datasets and generation settings of train.eval
};

// Runs training to train.steps (or until a stop signal). `host` carries the small CPU
// collectives (flags, metrics, checkpoints); `device` the ZeRO-3 traffic on the compute device's
// memory (the same MpiComm on CPU; NcclComm or, for one rank, SingleRankComm on CUDA). Both span
// the same ranks. Returns kExitOk; after a stop signal kExitRequeue once its checkpoint is
// written, or kExitIoError if that checkpoint failed (the previous one is intact). Throws
// flam::Error: kConfig (no tokenizer, no shards, a checkpoint of a different model, train.eval
// with train.shard_frozen or without its datasets), kComm (a peer failed), kIo (no checkpoint
// writable), kData.
int run_training(const TrainerConfig& config, Comm& host, Comm& device);

// The memory plan of this run on `ranks` ranks (train/plan.h) for one device of
// train.memory_limit bytes, else of the GPU's memory on cuda; on cpu without a limit nothing is
// checked. Throws flam::Error(kConfig, at train.memory_limit) with the planned peak and the keys
// to change when the plan does not fit. Returns the checkpointing policy the engine runs:
// train.checkpointing's, or for auto the plan's choice (none when nothing is checked).
// `flam train` calls it before it creates anything; the trainer again for the policy.
Checkpointing check_memory_plan(const TrainerConfig& config, int ranks);

}  // namespace flam::train
