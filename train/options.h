// TrainOptions: the `train:` section: steps, optimizer, schedule, precision, checkpoints,
// in-training evaluation.
// Defaults follow OpenFlamingo's train.py (lr 1e-4, 5000 warmup steps, constant schedule,
// weight decay 0.1 on cross-attention parameters, gradient clip 1.0).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config_map.h"

namespace flam::train {

struct OptimizerOptions {  // AdamW
  double lr = 1e-4;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.1;  // applied to gated cross-attention parameters only
  // The fp32 master weights and moments in host memory, the AdamW step on the CPU; the device
  // keeps the gradient slice and a compute-dtype copy of the master slice, the gathers' source
  // (train/zero3/zero3_engine.h). For small GPUs beside a large host memory.
  bool offload = false;
};

struct ScheduleOptions {
  std::string kind = "constant";  // constant | linear | cosine, after warmup
  int64_t warmup_steps = 5000;
};

struct CheckpointOptions {
  int64_t every_steps = 1000;  // 0: off
  double every_minutes = 0.0;  // 0: off
  int keep = 3;
  bool async = true;
  int max_failed_attempts = 3;      // consecutive failed writes before training stops
  double mtbf_hours = 0.0;          // > 0: also save at the Young/Daly interval for this MTBF
  double watchdog_seconds = 300.0;  // a rank silent this long aborts the job; 0: off
  // Where checkpoints go: "" is RUN/checkpoints; a folder, or s3://bucket/prefix
  // (train/checkpoint/checkpointer.h).
  std::string dir;
};

// In-training evaluation (train.eval): at step 0 and every `every` steps, at the step boundary,
// each task of `tasks` at each shot count of `shots` on `num_samples` held-out queries (the test
// split, drawn once with eval.seed), one trial. Dataset paths, beams, batch size, generation
// length and the demo seed come from the `eval:` section that `flam eval` reads.
struct TrainEvalOptions {
  int64_t every = 0;  // steps; 0: off
  std::vector<std::string> tasks = {"coco"};
  std::vector<int> shots = {0, 4};
  int num_samples = 32;
};

struct TrainOptions {
  int64_t steps = 1000;            // optimizer steps
  int grad_accum = 1;              // micro-steps per optimizer step
  std::string device = "cpu";      // cpu | cuda
  std::string precision = "fp32";  // fp32 | bf16 (compute; master weights stay fp32)
  double grad_clip = 1.0;          // global norm; 0: off
  bool skip_nonfinite = true;      // a NaN/Inf loss or gradient norm skips the step (counted)
  int log_every = 10;
  double comm_timeout_seconds = 600.0;  // a collective slower than this aborts the job
  // Frozen weights (CLIP, LLaMA) sharded like the trained ones: each rank keeps one slice per
  // frozen unit in the compute dtype, gathered just before use (train/zero3/zero3_engine.h).
  bool shard_frozen = false;
  // What backward recomputes instead of saving (train/plan.h, done by the engine): none (as
  // OpenFlamingo without --gradient_checkpointing) | cross_attention | every_layer | auto (the
  // least recomputing policy that fits train.memory_limit, chosen by the memory plan).
  std::string checkpointing = "none";
  // Memory of one device for the plan `flam train` checks before it starts ("24GiB"); empty:
  // the GPU's on cuda, no check on cpu.
  std::string memory_limit;
  OptimizerOptions optimizer;
  ScheduleOptions schedule;
  CheckpointOptions checkpoint;
  TrainEvalOptions eval;
};

inline void describe(ConfigMap& m, OptimizerOptions& o) {
  m.field("lr", o.lr, Bounds::positive());
  m.field("beta1", o.beta1, Bounds::between(0.0, 1.0));
  m.field("beta2", o.beta2, Bounds::between(0.0, 1.0));
  m.field("eps", o.eps, Bounds::positive());
  m.field("weight_decay", o.weight_decay, Bounds::non_negative());
  m.field("offload", o.offload);
}

inline void describe(ConfigMap& m, ScheduleOptions& o) {
  m.choice("kind", o.kind, {"constant", "linear", "cosine"});
  m.field("warmup_steps", o.warmup_steps, Bounds::non_negative());
}

inline void describe(ConfigMap& m, CheckpointOptions& o) {
  m.field("every_steps", o.every_steps, Bounds::non_negative());
  m.field("every_minutes", o.every_minutes, Bounds::non_negative());
  m.field("keep", o.keep, Bounds::at_least(1));
  m.field("async", o.async);
  m.field("max_failed_attempts", o.max_failed_attempts, Bounds::at_least(1));
  m.field("mtbf_hours", o.mtbf_hours, Bounds::non_negative());
  m.field("watchdog_seconds", o.watchdog_seconds, Bounds::non_negative());
  m.field("dir", o.dir);
}

inline void describe(ConfigMap& m, TrainEvalOptions& o) {
  m.field("every", o.every, Bounds::non_negative());
  m.field("tasks", o.tasks);
  if (m.reading()) {
    for (const std::string& t : o.tasks) {
      if (t != "coco" && t != "flickr30k" && t != "vqav2" && t != "ok_vqa" && t != "vizwiz" &&
          t != "textvqa")
        m.fail("tasks",
               "unknown task '" + t + "' (coco | flickr30k | vqav2 | ok_vqa | vizwiz | textvqa)");
    }
  }
  std::vector<double> shots(o.shots.begin(), o.shots.end());
  m.field("shots", shots);
  if (m.reading()) {
    o.shots.clear();
    for (double s : shots) {
      if (s < 0 || s != static_cast<int>(s)) m.fail("shots", "shots are counts >= 0");
      o.shots.push_back(static_cast<int>(s));
    }
  }
  m.field("num_samples", o.num_samples, Bounds::at_least(1));
  if (m.reading() && o.every > 0 && (o.tasks.empty() || o.shots.empty()))
    m.fail("tasks", "train.eval.every > 0 needs at least one task and one shot count");
}

inline void describe(ConfigMap& m, TrainOptions& o) {
  m.field("steps", o.steps, Bounds::at_least(1));
  m.field("grad_accum", o.grad_accum, Bounds::at_least(1));
  m.choice("device", o.device, {"cpu", "cuda"});
  m.choice("precision", o.precision, {"fp32", "bf16"});
  m.field("grad_clip", o.grad_clip, Bounds::non_negative());
  m.field("skip_nonfinite", o.skip_nonfinite);
  m.field("log_every", o.log_every, Bounds::at_least(1));
  m.field("comm_timeout_seconds", o.comm_timeout_seconds, Bounds::positive());
  m.field("shard_frozen", o.shard_frozen);
  m.choice("checkpointing", o.checkpointing, {"none", "cross_attention", "every_layer", "auto"});
  m.field("memory_limit", o.memory_limit);
  m.section("optimizer", o.optimizer);
  m.section("schedule", o.schedule);
  m.section("checkpoint", o.checkpoint);
  m.section("eval", o.eval);
}

}  // namespace flam::train
