// Trainer: `flam train`'s loop, in trainer.cpp's run_training(): setup (the Flamingo model with
// random frozen weights or pretrained ones from model.weights, placed per train/precision.h; its
// trained blocks in a Zero3Engine over `device`; one LAION and one MMC4 Loader for this rank),
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

}  // namespace flam::train
