// MemoryPlan: what one rank of a ZeRO-3 Flamingo run holds on its device, line by line, computed
// from parameter counts and batch shapes alone (no tensors, no torch), so `flam plan` can size
// OpenFlamingo-9B for 24 GB GPUs on a laptop and `flam train` can refuse a run that will not fit.
//
// The model of memory follows what the engine and the model code allocate:
//   - frozen weights in the compute dtype: replicated (P_frozen per rank) or, with
//     train.shard_frozen, one padded slice per frozen unit (sum of ceil(n_u / N));
//   - trained state: fp32 master, AdamW moments and fp32 gradient slice, 16 bytes per element of
//     the padded slices (train/zero3/flat_layout.h); with train.optimizer.offload the device
//     keeps the gradient slice and a compute-dtype copy of the master (4 + e bytes), and the
//     12 bytes of master and moments go to host memory (MemoryPlan::host_bytes);
//   - gather buffers: "rest" for the whole step, plus three per-layer units at once (the one in
//     use and two prefetched), frozen units included when sharded; reduce-scatter buffers: three
//     fp32 full units in flight plus one unit's gradients in the compute dtype;
//   - activations of one micro-step of one dataset (LAION and MMC4 run one after the other, so
//     the peak is the larger), from what autograd saves per token under the checkpointing policy;
//   - a fixed workspace (CUDA context, cuBLAS and NCCL buffers, allocator slack).
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pipeline/options.h"
#include "train/model/options.h"
#include "train/options.h"

namespace flam::train {

// What is recomputed in backward instead of saved (train.checkpointing; the engine does it,
// train/zero3/zero3_engine.h). kNone saves everything and keeps every trained unit gathered for
// the step; kCrossAttention recomputes the Perceiver layers and gated cross-attention blocks (the
// trained per-layer units); kEveryLayer also recomputes every decoder layer from its saved input.
// Sharded frozen decoder layers (train.shard_frozen) are recomputed under every policy.
enum class Checkpointing { kNone, kCrossAttention, kEveryLayer };
const char* checkpointing_name(Checkpointing policy);  // "none", "cross_attention", "every_layer"
// train.checkpointing's value -> the policies the plan considers: "auto" all three (least
// recomputing first), a policy's name that one.
std::vector<Checkpointing> checkpointing_policies(const std::string& value);

struct PlanDataset {
  std::string name;    // "laion", "mmc4"
  int batch_size = 1;  // configured micro-batch per rank (sequences)
  int seq_len = 1;     // tokens per sequence
  int images_per_sequence = 1;
};

struct PlanInput {
  model::ModelOptions model;
  int ranks = 1;
  int64_t device_bytes = 0;  // memory of one device
  int compute_bytes = 2;     // element size of the compute dtype: 2 (bf16) or 4 (fp32)
  bool shard_frozen = false;
  bool offload_optimizer = false;  // train.optimizer.offload
  // The policies to consider, least recomputing first: the plan takes the first in which every
  // dataset fits at its configured micro-batch, else the last one with smaller micro-batches
  // (train.checkpointing: auto is all three; a named policy is a list of one).
  std::vector<Checkpointing> policies = {Checkpointing::kNone, Checkpointing::kCrossAttention,
                                         Checkpointing::kEveryLayer};
  int grad_accum = 1;  // configured micro-steps per optimizer step
  int64_t workspace_bytes = 0;
  std::vector<PlanDataset> datasets;
};

struct PlanLine {
  std::string name;
  int64_t bytes = 0;
  std::string detail;  // how it is computed, for the printout
};

struct DatasetPlan {
  std::string name;
  int micro_batch = 0;                   // chosen sequences per micro-step (0: not even 1 fits)
  int grad_accum = 0;                    // micro-steps that keep batch_size x grad_accum sequences
  int64_t activation_bytes = 0;          // at micro_batch
  std::vector<PlanLine> activations;     // the activation lines at micro_batch
  std::vector<int> largest_micro_batch;  // per policy of PlanInput (same order)
};

struct MemoryPlan {
  Checkpointing policy = Checkpointing::kCrossAttention;
  std::vector<PlanLine> fixed;  // everything but activations
  int64_t fixed_bytes = 0;
  std::vector<DatasetPlan> datasets;
  int64_t peak_bytes = 0;  // fixed + the largest dataset's activations
  int64_t host_bytes = 0;  // per rank in host memory: the offloaded master and moments, else 0
  bool fits = false;       // peak <= device and every dataset has micro_batch >= 1
};

// Activations of one micro-step: lines (saved tensors, the recompute and loss workspace) for
// `batch` sequences of `dataset` under `policy`.
std::vector<PlanLine> activation_lines(const PlanInput& input, const PlanDataset& dataset,
                                       Checkpointing policy, int64_t batch);

// REQUIRES: input.ranks >= 1, input.policies not empty, every dataset's fields >= 1.
MemoryPlan plan_memory(const PlanInput& input);

// The plan's input for a run's configuration on `ranks` ranks of `device_bytes` each, with the
// default workspace of train.device (1.5 GiB on cuda, 512 MiB on cpu) unless `workspace_bytes`
// > 0. Datasets: those with shards (both when neither has).
PlanInput plan_input(const model::ModelOptions& model, const pipeline::DataOptions& data,
                     const TrainOptions& train, int ranks, int64_t device_bytes,
                     int64_t workspace_bytes = 0);
// The keys to change when a plan does not fit: "data.laion.batch_size / ... train.grad_accum,
// train.checkpointing, train.shard_frozen: true, train.optimizer.offload: true (those unless
// set), or more ranks".
std::string keys_to_change(const PlanInput& input);

// "24GiB", "24 GB", "512MiB", "1.5TiB", "1000000": bytes (binary units for both KiB and KB
// spellings: GPU memory is sold in GiB). Throws flam::Error(kUsage) naming `text` otherwise.
int64_t parse_bytes(const std::string& text);
// 3 significant digits in binary units: "13.1 GiB".
std::string format_bytes(int64_t bytes);

}  // namespace flam::train
