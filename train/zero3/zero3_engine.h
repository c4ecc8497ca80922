// Zero3Engine: ZeRO-3 training of a model's trained parameters across the ranks of a Comm.
//
// The trained parameters come as units (model::Flamingo::trained_units(): per-layer units in
// call order, then "rest"). Each unit is one flat buffer (train/zero3/flat_layout.h) padded to
// a multiple of the world size; rank r keeps only its slice: fp32 master weights, AdamW moments
// and an fp32 gradient accumulator (4 + 8 + 4 bytes per element of the slice). The model's
// parameter tensors hold no storage except while their unit is gathered:
//   - per-layer units: the model calls them through run() (the model::UnitRunner seam). run()
//     all-gathers the unit, computes, and frees it; the next unit's gather is started before
//     the current unit computes. In backward a custom autograd function gathers the unit
//     again, recomputes it (activation checkpointing of the unit), takes the input and
//     parameter gradients, and reduce-scatters (average over ranks) the parameter gradients into
//     the owner's slice at once.
//   - "rest" (the last unit): gathered by begin_step() and kept for the whole step; autograd
//     accumulates its gradients in the parameters' .grad, reduce-scattered once by step().
// The checkpointing policy (train.checkpointing, train/plan.h) decides what backward recomputes:
//   - kNone: every trained unit is handled as "rest" (gathered for the whole step, run once,
//     its activations saved by autograd): no recompute, the most memory;
//   - kCrossAttention: per-layer units recomputed in backward as above;
//   - kEveryLayer: also the frozen units listed in `recomputed_frozen` (the decoder layers) are
//     recomputed from their saved input when frozen weights are replicated (sharded frozen units
//     are always recomputed, see below).
// With fp32 compute, the gradients of units gathered for the step accumulate in place in one flat
// fp32 buffer per unit (the parameters' .grad are views of it). On one rank nothing is gathered:
// a unit whose master is in the compute dtype (fp32 trained units, every frozen unit) is
// installed as views of its master slice, and gradients accumulate into the gradient slice.
// Zero3Traffic counts these as gathers and reduce-scatters all the same.
// step() then clips by the global gradient norm (all-reduce of the slices' squared norms) and
// runs AdamW on the slices.
//
// With train.optimizer.offload the master and moment slices live in host memory (pinned when the
// device is a GPU) and AdamW runs there on a host copy of the gradient slice; the device keeps
// the gradient slice and a copy of the master slice in the compute dtype, which the gathers send
// (and which one rank installs as the parameters' storage, as it would the master), refreshed
// after each step. The same numbers as without offload: the gathers sent the master in the
// compute dtype already.
//
// Frozen parameters are replicated by default (the engine never sees them). Passed as frozen
// units (train.shard_frozen), each is one more flat buffer of which rank r keeps only its slice,
// in the compute dtype (no master, moments or gradient); the model calls them through
// run_frozen(), which gathers the unit (prefetched in the same queue as the trained units),
// computes and frees it. In backward it gathers the unit again and recomputes it to take the
// input gradients (activation checkpointing of the unit; no parameter gradients). A frozen unit
// called with no input requiring grad (or under NoGradGuard) records nothing for backward.
//
// Collectives: every rank must run the same forward/backward graph structure in the same order
// (same units called the same number of times), as every collective is issued in call order.
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
#include "train/plan.h"
#include "train/zero3/flat_layout.h"

namespace flam::train {

// Bytes this rank holds (exact, from the layout) and the peak of gathered full units.
struct Zero3Memory {
  int64_t master_bytes = 0;         // fp32 master slice: 4 x sum of slice_numel
  int64_t moment_bytes = 0;         // exp_avg + exp_avg_sq: 8 x sum of slice_numel
  int64_t grad_bytes = 0;           // fp32 gradient slice: 4 x sum of slice_numel
  bool offloaded = false;           // master and moments in host memory (optimizer.offload)
  int64_t device_copy_bytes = 0;    // offloaded: the compute-dtype master copy on the device
  int64_t rest_bytes = 0;           // the "rest" unit gathered for the step (compute dtype)
  int64_t frozen_bytes = 0;         // frozen slices: element size x sum of frozen slice_numel
  int64_t gathered_peak_bytes = 0;  // most bytes of gathered units alive at once (rest included)
};

// Bytes of full buffers moved through collectives, cumulative since construction: an all-gather
// of a unit counts padded_numel x element size (the gathered buffer), a reduce-scatter
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

class Zero3Engine : public model::UnitRunner {
 public:
  // Takes over `units` (the last one is "rest", possibly empty): broadcasts every unit's
  // current values from rank 0 (so all ranks start equal), keeps this rank's slice as the fp32
  // master, and frees the parameters' storage. Parameters are gathered in `compute_dtype`
  // (kFloat or kBFloat16). `weight_decay(name)` says which parameters AdamW decays.
  // Collective.
  //
  // `frozen` (may be empty): frozen units in call order, parameters not requiring grad, holding
  // the same values on every rank (loaded weights); each rank keeps its slice of each in the
  // compute dtype and frees the parameters' storage. Nothing is broadcast for them. A shape-only
  // parameter (model::is_shape_only) gets its values from `frozen_values(name)` (a tensor of its
  // shape, any device and float dtype), called only for those whose elements overlap this
  // rank's slice, one at a time, so that a rank never holds more than one such tensor.
  //
  // `checkpointing`: see the class comment. `recomputed_frozen`: indices of run_frozen() units
  // recomputed in backward under kEveryLayer when `frozen` is empty (weights replicated).
  Zero3Engine(std::vector<model::ParamUnit> units,
              const std::function<bool(const std::string&)>& weight_decay, Comm& comm,
              const OptimizerOptions& optimizer, at::ScalarType compute_dtype = at::kFloat,
              std::vector<model::ParamUnit> frozen = {},
              Checkpointing checkpointing = Checkpointing::kCrossAttention,
              std::vector<size_t> recomputed_frozen = {},
              const std::function<at::Tensor(const std::string&)>& frozen_values = {});
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

  // model::UnitRunner. Collective (gathers); see the class comment.
  at::Tensor run(size_t unit, const std::function<at::Tensor(const std::vector<at::Tensor>&)>& fn,
                 const std::vector<at::Tensor>& inputs) override;

  // model::UnitRunner. Collective (gathers). Frozen unit `unit` (index into the constructor's
  // `frozen`) computing fn(inputs), as run() does for trained units; see the class comment.
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

  // This rank's slices, per unit [slice_numel(b)] fp32 (CPU copies), copied into the given
  // vectors' storage where it is large enough (pass the previous snapshot's to avoid page faults).
  void export_slices(std::vector<std::vector<float>>* master,
                     std::vector<std::vector<float>>* exp_avg,
                     std::vector<std::vector<float>>* exp_avg_sq) const;
  // Replaces this rank's slices and the step clock (a resumed checkpoint).
  // REQUIRES: one vector per unit of slice_numel(b) floats each.
  void import_slices(const std::vector<std::vector<float>>& master,
                     const std::vector<std::vector<float>>& exp_avg,
                     const std::vector<std::vector<float>>& exp_avg_sq, int64_t optimizer_step);

  // Collective. Every trained parameter in full (fp32, CPU), by name: for tests and export.
  std::map<std::string, at::Tensor> full_parameters();
  // Collective, for tests: the gradient step() would apply now (averaged over ranks, summed over
  // micro-steps, before clipping) of every trained parameter in full (fp32, CPU), by name. Call
  // after the micro-steps' backward, before step().
  std::map<std::string, at::Tensor> full_gradients();

  Zero3Memory memory() const;
  const Zero3Traffic& traffic() const { return traffic_; }

  // Used by the autograd function of run(); not for callers.
  struct Call;
  at::Tensor forward_call(int64_t call_id, const std::vector<at::Tensor>& inputs);
  std::vector<at::Tensor> backward_call(int64_t call_id, const std::vector<at::Tensor>& inputs,
                                        const at::Tensor& grad_output);

 private:
  struct Unit;
  struct Gather;
  struct PendingReduce;

  void start_gather(size_t unit);
  bool aliases_master(size_t unit) const;  // one rank, master in the compute dtype
  void install(size_t unit);               // parameters <- views of the unit's `full`
  void acquire(size_t unit);               // gathered and installed into the parameters
  void release(size_t unit);               // parameters emptied, buffer dropped
  void prefetch(size_t unit);
  // After the forward call at `index` of this micro-step: the unit the last micro-step called
  // next (or, in the first micro-step, the next id).
  void prefetch_next(size_t unit, size_t index);
  void reduce_gradients(size_t unit, const std::vector<at::Tensor>& grads);
  void reduce_flat_gradient(size_t unit);  // a unit gathered for the step: its full_grad
  void finish_reduce(PendingReduce& pending);
  void drain();
  void add_gathered(int64_t bytes);
  at::Tensor call_unit(size_t id,
                       const std::function<at::Tensor(const std::vector<at::Tensor>&)>& fn,
                       const std::vector<at::Tensor>& inputs);
  // Records fn(inputs) for backward through the engine's autograd function (recomputed there);
  // `gathered` false: a replicated frozen unit (no gather, nothing reduced).
  at::Tensor record(size_t unit, bool gathered,
                    const std::function<at::Tensor(const std::vector<at::Tensor>&)>& fn,
                    const std::vector<at::Tensor>& inputs);
  bool is_frozen(size_t id) const { return id > rest_; }
  const UnitLayout& unit_layout(size_t id) const;

  Comm& comm_;
  OptimizerOptions optimizer_;
  at::ScalarType compute_dtype_;
  Checkpointing checkpointing_;
  std::vector<size_t> recomputed_frozen_;  // sorted
  FlatLayout layout_;
  FlatLayout frozen_layout_;
  // Trained units, then "rest", then the frozen units: a unit id indexes this vector.
  std::vector<Unit> units_;
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
