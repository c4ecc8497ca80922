// Zero3Engine: ZeRO-3 training of a model's trained parameters across the ranks of a Comm.
//
// The trained parameters come as blocks (model::Flamingo::trained_blocks(): per-layer blocks in
// call order, then "rest"). Each block is one flat buffer (train/zero3/flat_layout.h) padded to
// a multiple of the world size; rank r keeps only its slice: fp32 master weights, AdamW moments
// and an fp32 gradient accumulator (4 + 8 + 4 bytes per element of the slice). The model's
// parameter tensors hold no storage except while their block is gathered:
//   - per-layer blocks: the model calls them through run() (the model::BlockRunner seam). run()
//     all-gathers the block, computes, and frees it; the next block's gather is started before
//     the current block computes. In backward a custom autograd function gathers the block
//     again, recomputes it (activation checkpointing of the block), takes the input and
//     parameter gradients, and reduce-scatters (average over ranks) the parameter gradients into
//     the owner's slice at once.
//   - "rest" (the last block): gathered by begin_step() and kept for the whole step; autograd
//     accumulates its gradients in the parameters' .grad, reduce-scattered once by step().
// step() then clips by the global gradient norm (all-reduce of the slices' squared norms) and
// runs AdamW on the slices.
//
// Frozen parameters are replicated by default (the engine never sees them). Passed as frozen
// units (train.shard_frozen), each is one more flat buffer of which rank r keeps only its slice,
// in the compute dtype (no master, moments or gradient); the model calls them through
// run_frozen(), which gathers the unit (prefetched in the same queue as the trained blocks),
// computes and frees it. In backward it gathers the unit again and recomputes it to take the
// input gradients (activation checkpointing of the unit; no parameter gradients). A frozen unit
// called with no input requiring grad (or under NoGradGuard) records nothing for backward.
//
// Collectives: every rank must run the same forward/backward graph structure in the same order
// (same blocks called the same number of times), as every collective is issued in call order.
//
// Thread safety: one thread drives the engine (the training thread; on CUDA the autograd device
// thread runs backward while the training thread waits in backward()). The Comm, the model and
// its parameter tensors must outlive the engine.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/comm.h"
#include "train/model/flamingo.h"
#include "train/optim/adamw.h"
#include "train/options.h"
#include "train/zero3/flat_layout.h"

namespace flam::train {

// Bytes this rank holds (exact, from the layout) and the peak of gathered full blocks.
struct Zero3Memory {
  int64_t master_bytes = 0;         // fp32 master slice: 4 x sum of slice_numel
  int64_t moment_bytes = 0;         // exp_avg + exp_avg_sq: 8 x sum of slice_numel
  int64_t grad_bytes = 0;           // fp32 gradient slice: 4 x sum of slice_numel
  int64_t rest_bytes = 0;           // the "rest" block gathered for the step (compute dtype)
  int64_t frozen_bytes = 0;         // frozen slices: element size x sum of frozen slice_numel
  int64_t gathered_peak_bytes = 0;  // most bytes of gathered blocks alive at once (rest included)
};

// Bytes of full buffers moved through collectives, cumulative since construction: an all-gather
// of a block counts padded_numel x element size (the gathered buffer), a reduce-scatter
// padded_numel x 4 (the fp32 gradient buffer).
struct Zero3Traffic {
  int64_t gathers = 0;
  int64_t gather_bytes = 0;
  int64_t reduce_scatters = 0;
  int64_t reduce_scatter_bytes = 0;
  int64_t all_reduce_bytes = 0;
};

struct Zero3StepResult {
  double grad_norm = 0.0;  // global L2 norm of the averaged gradient, before clipping
  bool skipped = false;    // non-finite gradient norm or skip requested: parameters unchanged
};

class Zero3Engine : public model::BlockRunner {
 public:
  // Takes over `blocks` (the last one is "rest", possibly empty): broadcasts every block's
  // current values from rank 0 (so all ranks start equal), keeps this rank's slice as the fp32
  // master, and frees the parameters' storage. Parameters are gathered in `compute_dtype`
  // (kFloat or kBFloat16). `weight_decay(name)` says which parameters AdamW decays.
  // Collective.
  //
  // `frozen` (may be empty): frozen units in call order, parameters not requiring grad, holding
  // the same values on every rank (loaded weights); each rank keeps its slice of each in the
  // compute dtype and frees the parameters' storage. Nothing is broadcast for them.
  Zero3Engine(std::vector<model::TrainedBlock> blocks,
              const std::function<bool(const std::string&)>& weight_decay, Comm& comm,
              const OptimizerOptions& optimizer, at::ScalarType compute_dtype = at::kFloat,
              std::vector<model::TrainedBlock> frozen = {});
  ~Zero3Engine() override;
  Zero3Engine(const Zero3Engine&) = delete;
  Zero3Engine& operator=(const Zero3Engine&) = delete;

  const FlatLayout& layout() const { return layout_; }
  // The frozen units' layout (empty when frozen weights are replicated); not checkpointed.
  const FlatLayout& frozen_layout() const { return frozen_layout_; }

  // Collective. Starts an optimizer step: gathers "rest" for the step. Call once per step
  // before the first forward.
  void begin_step();
  // Marks a micro-step boundary (the forward prefetch learns the call order per micro-step).
  void begin_micro_step();

  // model::BlockRunner. Collective (gathers); see the class comment.
  at::Tensor run(size_t block, const std::function<at::Tensor(const std::vector<at::Tensor>&)>& fn,
                 const std::vector<at::Tensor>& inputs) override;

  // model::BlockRunner. Collective (gathers). Frozen unit `unit` (index into the constructor's
  // `frozen`) computing fn(inputs), as run() does for trained blocks; see the class comment.
  // Without frozen units (frozen weights replicated) it calls fn(inputs) directly.
  at::Tensor run_frozen(size_t unit,
                        const std::function<at::Tensor(const std::vector<at::Tensor>&)>& fn,
                        const std::vector<at::Tensor>& inputs) override;

  // Collective. Ends the step: reduce-scatters the outstanding gradients, clips the averaged
  // gradient to `max_norm` (0: no clipping), runs AdamW at `lr` (unless `skip` or the norm is
  // not finite), zeroes the gradients and frees "rest". Every rank must pass the same `skip`.
  Zero3StepResult step(double lr, double max_norm, bool skip = false);

  // Optimizer steps taken (skipped ones excluded); the AdamW bias-correction clock.
  int64_t optimizer_step() const { return optimizer_step_; }

  // This rank's slices, per block [slice_numel(b)] fp32 (CPU copies), copied into the given
  // vectors' storage where it is large enough (pass the previous snapshot's to avoid page faults).
  void export_slices(std::vector<std::vector<float>>* master,
                     std::vector<std::vector<float>>* exp_avg,
                     std::vector<std::vector<float>>* exp_avg_sq) const;
  // Replaces this rank's slices and the step clock (a resumed checkpoint).
  // REQUIRES: one vector per block of slice_numel(b) floats each.
  void import_slices(const std::vector<std::vector<float>>& master,
                     const std::vector<std::vector<float>>& exp_avg,
                     const std::vector<std::vector<float>>& exp_avg_sq, int64_t optimizer_step);

  // Collective. Every trained parameter in full (fp32, CPU), by name: for tests and export.
  std::map<std::string, at::Tensor> full_parameters();

  Zero3Memory memory() const;
  const Zero3Traffic& traffic() const { return traffic_; }

  // Used by the autograd function of run(); not for callers.
  struct Call;
  at::Tensor forward_call(int64_t call_id, const std::vector<at::Tensor>& inputs);
  std::vector<at::Tensor> backward_call(int64_t call_id, const std::vector<at::Tensor>& inputs,
                                        const at::Tensor& grad_output);

 private:
  struct Block;
  struct Gather;
  struct PendingReduce;

  void start_gather(size_t block);
  void acquire(size_t block);  // gathered and installed into the parameters
  void release(size_t block);  // parameters emptied, buffer dropped
  void prefetch(size_t block);
  // After the forward call at `index` of this micro-step: the unit the last micro-step called
  // next (or, in the first micro-step, the next id).
  void prefetch_next(size_t block, size_t index);
  void reduce_gradients(size_t block, const std::vector<at::Tensor>& grads);
  void finish_reduce(PendingReduce& pending);
  void drain();
  void add_gathered(int64_t bytes);
  at::Tensor call_unit(size_t id,
                       const std::function<at::Tensor(const std::vector<at::Tensor>&)>& fn,
                       const std::vector<at::Tensor>& inputs);
  bool is_frozen(size_t id) const { return id > rest_; }
  const BlockLayout& unit_layout(size_t id) const;

  Comm& comm_;
  OptimizerOptions optimizer_;
  at::ScalarType compute_dtype_;
  FlatLayout layout_;
  FlatLayout frozen_layout_;
  // Trained blocks, then "rest", then the frozen units: a unit id indexes this vector.
  std::vector<Block> blocks_;
  size_t rest_ = 0;                                      // index of "rest"
  std::vector<std::unique_ptr<Gather>> gathers_;         // issued, oldest first
  std::vector<std::unique_ptr<PendingReduce>> reduces_;  // issued, oldest first
  std::map<int64_t, std::unique_ptr<Call>> calls_;
  int64_t next_call_id_ = 0;
  // Unit ids of this / the last micro-step's forward calls, and whether each has a backward.
  std::vector<size_t> sequence_, previous_sequence_;
  std::vector<bool> recorded_;
  at::Tensor anchor_;  // requires grad, so that run()'s autograd node is always recorded
  int64_t optimizer_step_ = 0;
  int64_t gathered_bytes_ = 0;
  int64_t gathered_peak_bytes_ = 0;
  Zero3Traffic traffic_;
};

}  // namespace flam::train
