#include "train/zero3/zero3_engine.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <span>

#include "core/check.h"
#include "train/tensor_comm.h"

namespace flam::train {

struct Zero3Engine::Unit {
  std::vector<at::Tensor> params;  // the model's parameter tensors, in layout order (aliases)
  at::Tensor master;               // [slice] fp32; a frozen unit's: [slice] compute dtype
  at::Tensor exp_avg;              // [slice] fp32
  at::Tensor exp_avg_sq;           // [slice] fp32
  at::Tensor grad;                 // [slice] fp32, averaged over ranks, summed over micro-steps
  Ranges decay;                    // ranges of the slice that AdamW decays
  at::Tensor full;                 // [padded] compute dtype, defined while installed
  bool resident = false;           // gathered for the whole step: "rest", all under kNone
  at::Tensor full_grad;  // resident, fp32 compute: [padded] fp32, the parameters' .grad views
  // optimizer.offload: master, exp_avg and exp_avg_sq are on the host, and this [slice] copy of
  // the master in the compute dtype on the device is what gathers send. Undefined otherwise.
  at::Tensor device_copy;
};

struct Zero3Engine::Gather {
  size_t unit = 0;
  at::Tensor send;  // [slice] compute dtype
  at::Tensor full;  // [padded] compute dtype
  std::unique_ptr<Work> work;
};

struct Zero3Engine::PendingReduce {
  size_t unit = 0;
  at::Tensor send;  // [padded] fp32 gradient of the whole unit
  at::Tensor recv;  // [slice] fp32 averaged gradient of this rank's slice
  std::unique_ptr<Work> work;
};

struct Zero3Engine::Call {
  size_t unit = 0;       // unit id (trained unit or frozen unit)
  bool gathered = true;  // false: a replicated frozen layer, recomputed without a gather
  std::function<at::Tensor(const std::vector<at::Tensor>&)> fn;
  size_t index = 0;                 // position among this micro-step's forward calls
  std::vector<bool> requires_grad;  // per input (without the anchor)
};

namespace {

// Units between the engine's gathers: outputs = fn(inputs) with the unit's parameters; the
// backward re-gathers and recomputes (Zero3Engine::backward_call).
class UnitFunction : public torch::autograd::Function<UnitFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, at::TensorList inputs,
                            int64_t call_id, Zero3Engine* engine) {
    ctx->saved_data["call"] = call_id;
    ctx->saved_data["engine"] = reinterpret_cast<int64_t>(engine);
    ctx->save_for_backward(inputs.vec());
    return engine->forward_call(call_id, inputs.vec());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    auto* engine = reinterpret_cast<Zero3Engine*>(ctx->saved_data["engine"].toInt());
    torch::autograd::variable_list grads = engine->backward_call(
        ctx->saved_data["call"].toInt(), ctx->get_saved_variables(), grad_outputs[0]);
    grads.emplace_back();  // call_id
    grads.emplace_back();  // engine
    return grads;
  }
};

int64_t element_size(at::ScalarType type) { return static_cast<int64_t>(c10::elementSize(type)); }

// What a unit's gathers send: its master slice, or the device copy of an offloaded one.
const at::Tensor& gather_source(const at::Tensor& master, const at::Tensor& device_copy) {
  return device_copy.defined() ? device_copy : master;
}

}  // namespace

Zero3Engine::Zero3Engine(std::vector<model::ParamUnit> units,
                         const std::function<bool(const std::string&)>& weight_decay, Comm& comm,
                         const OptimizerOptions& optimizer, at::ScalarType compute_dtype,
                         std::vector<model::ParamUnit> frozen, Checkpointing checkpointing,
                         std::vector<size_t> recomputed_frozen,
                         const std::function<at::Tensor(const std::string&)>& frozen_values)
    : comm_(comm),
      optimizer_(optimizer),
      compute_dtype_(compute_dtype),
      checkpointing_(checkpointing),
      recomputed_frozen_(std::move(recomputed_frozen)) {
  if (checkpointing_ != Checkpointing::kEveryLayer) recomputed_frozen_.clear();
  std::sort(recomputed_frozen_.begin(), recomputed_frozen_.end());
  FLAM_CHECK(!units.empty() && units.back().name == "rest")
      << "trained units must end with \"rest\"";
  FLAM_CHECK(compute_dtype == at::kFloat || compute_dtype == at::kBFloat16)
      << "compute dtype " << compute_dtype;
  std::vector<UnitSpec> specs;
  for (const model::ParamUnit& unit : units) {
    UnitSpec spec{unit.name, {}};
    for (const auto& [name, tensor] : unit.params)
      spec.second.emplace_back(name, tensor.sizes().vec());
    specs.push_back(std::move(spec));
  }
  layout_ = make_flat_layout(specs, comm.size());
  rest_ = units.size() - 1;

  torch::NoGradGuard no_grad;
  at::Device device = at::kCPU;
  for (const model::ParamUnit& unit : units) {
    if (!unit.params.empty()) device = unit.params.front().second.device();
  }
  const auto fp32 = at::TensorOptions().dtype(at::kFloat).device(device);
  // Where the master and moments live: the device, or (offload) the host, pinned for a GPU.
  const auto state_options =
      optimizer_.offload ? at::TensorOptions().dtype(at::kFloat).pinned_memory(device.is_cuda())
                         : fp32;
  anchor_ = torch::zeros({1}, fp32).requires_grad_(true);
  units_.resize(units.size());
  for (size_t b = 0; b < units.size(); ++b) {
    const UnitLayout& layout = layout_.units[b];
    const int64_t slice = layout_.slice_numel(b);
    const int64_t begin = comm.rank() * slice;
    at::Tensor full = torch::zeros({layout.padded_numel}, fp32);
    Unit& state = units_[b];
    for (size_t p = 0; p < layout.params.size(); ++p) {
      const ParamSlot& slot = layout.params[p];
      const at::Tensor& param = units[b].params[p].second;
      FLAM_CHECK(param.requires_grad()) << slot.name << " is trained but does not require grad";
      full.narrow(0, slot.offset, slot.numel).copy_(param.reshape(-1));
      state.params.push_back(param);
      if (weight_decay(slot.name)) {
        const int64_t start = std::max(slot.offset, begin);
        const int64_t end = std::min(slot.offset + slot.numel, begin + slice);
        if (start < end) state.decay.emplace_back(start - begin, end - start);
      }
    }
    broadcast(comm, full, 0);
    state.master = torch::empty({slice}, state_options);
    state.master.copy_(full.narrow(0, begin, slice));
    state.exp_avg = torch::zeros({slice}, state_options);
    state.exp_avg_sq = torch::zeros({slice}, state_options);
    if (optimizer_.offload) state.device_copy = full.narrow(0, begin, slice).to(compute_dtype_);
    state.grad = torch::zeros({slice}, fp32);
    state.resident = b == rest_ || checkpointing_ == Checkpointing::kNone;
    for (at::Tensor& param : state.params) {
      param.set_data(torch::empty({0}, param.options().dtype(compute_dtype_)));
    }
  }

  std::vector<UnitSpec> frozen_specs;
  for (const model::ParamUnit& unit : frozen) {
    UnitSpec spec{unit.name, {}};
    for (const auto& [name, tensor] : unit.params)
      spec.second.emplace_back(name, tensor.sizes().vec());
    frozen_specs.push_back(std::move(spec));
  }
  frozen_layout_ = make_flat_layout(frozen_specs, comm.size());
  for (size_t f = 0; f < frozen.size(); ++f) {
    const UnitLayout& layout = frozen_layout_.units[f];
    const int64_t slice = frozen_layout_.slice_numel(f);
    const int64_t begin = comm.rank() * slice;
    Unit state;
    state.master = torch::zeros({slice}, fp32.dtype(compute_dtype_));
    for (size_t p = 0; p < layout.params.size(); ++p) {
      const ParamSlot& slot = layout.params[p];
      const at::Tensor& param = frozen[f].params[p].second;
      FLAM_CHECK(!param.requires_grad()) << slot.name << " is frozen but requires grad";
      // This rank's part of the slot: [start, end) of the unit's flat buffer.
      const int64_t start = std::max(slot.offset, begin);
      const int64_t end = std::min(slot.offset + slot.numel, begin + slice);
      if (start < end) {
        at::Tensor values = param;
        if (model::is_shape_only(param)) {
          FLAM_CHECK(frozen_values) << slot.name << " is shape-only and no frozen_values is given";
          values = frozen_values(slot.name);
          FLAM_CHECK(values.sizes().equals(param.sizes()))
              << slot.name << ": frozen_values gave " << values.sizes() << ", not "
              << param.sizes();
        }
        state.master.narrow(0, start - begin, end - start)
            .copy_(values.reshape(-1).narrow(0, start - slot.offset, end - start));
      }
      state.params.push_back(param);
    }
    for (at::Tensor& param : state.params) {
      param.set_data(torch::empty({0}, fp32.dtype(compute_dtype_)));
    }
    units_.push_back(std::move(state));
  }
}

const UnitLayout& Zero3Engine::unit_layout(size_t id) const {
  return is_frozen(id) ? frozen_layout_.units[id - rest_ - 1] : layout_.units[id];
}

Zero3Engine::~Zero3Engine() = default;

void Zero3Engine::add_gathered(int64_t bytes) {
  gathered_bytes_ += bytes;
  gathered_peak_bytes_ = std::max(gathered_peak_bytes_, gathered_bytes_);
}

void Zero3Engine::start_gather(size_t unit) {
  auto gather = std::make_unique<Gather>();
  gather->unit = unit;
  const Unit& state = units_[unit];
  gather->send = gather_source(state.master, state.device_copy).to(compute_dtype_).contiguous();
  gather->full = torch::empty({unit_layout(unit).padded_numel}, gather->send.options());
  gather->work = start_all_gather(comm_, gather->send, gather->full);
  const int64_t bytes = gather->full.numel() * element_size(compute_dtype_);
  traffic_.gathers += 1;
  traffic_.gather_bytes += bytes;
  add_gathered(bytes);
  gathers_.push_back(std::move(gather));
}

void Zero3Engine::prefetch_next(size_t unit, size_t index) {
  if (index + 1 < previous_sequence_.size()) {
    prefetch(previous_sequence_[index + 1]);
  } else if (previous_sequence_.empty()) {
    prefetch(unit + 1);
  }
}

void Zero3Engine::prefetch(size_t unit) {
  if (unit == rest_ || unit >= units_.size() || units_[unit].full.defined()) return;
  if (aliases_master(unit)) return;
  for (const auto& gather : gathers_) {
    if (gather->unit == unit) return;
  }
  if (gathers_.size() >= 2) return;  // at most two units ahead
  start_gather(unit);
}

bool Zero3Engine::aliases_master(size_t unit) const {
  const Unit& state = units_[unit];
  return comm_.size() == 1 &&
         gather_source(state.master, state.device_copy).scalar_type() == compute_dtype_;
}

void Zero3Engine::install(size_t unit) {
  Unit& state = units_[unit];
  const UnitLayout& layout = unit_layout(unit);
  for (size_t p = 0; p < layout.params.size(); ++p) {
    const ParamSlot& slot = layout.params[p];
    state.params[p].set_data(state.full.narrow(0, slot.offset, slot.numel).view(slot.shape));
  }
}

void Zero3Engine::acquire(size_t unit) {
  Unit& state = units_[unit];
  if (state.full.defined()) return;
  if (aliases_master(unit)) {  // one rank: the master slice is the whole unit, nothing to gather
    traffic_.gathers += 1;
    traffic_.gather_bytes += unit_layout(unit).padded_numel * element_size(compute_dtype_);
    state.full = gather_source(state.master, state.device_copy);
    install(unit);
    return;
  }
  auto it = std::find_if(gathers_.begin(), gathers_.end(),
                         [&](const auto& gather) { return gather->unit == unit; });
  if (it == gathers_.end()) {
    start_gather(unit);
    it = gathers_.end() - 1;
  }
  std::unique_ptr<Gather> gather = std::move(*it);
  gathers_.erase(it);
  gather->work->wait();
  state.full = gather->full;
  install(unit);
}

void Zero3Engine::release(size_t unit) {
  Unit& state = units_[unit];
  if (!state.full.defined()) return;
  for (at::Tensor& param : state.params) {
    param.set_data(torch::empty({0}, param.options()));
  }
  if (!state.full.is_same(gather_source(state.master, state.device_copy))) {
    gathered_bytes_ -= state.full.numel() * element_size(compute_dtype_);
  }
  state.full = at::Tensor();
}

void Zero3Engine::begin_step() {
  FLAM_CHECK(gathers_.empty() && reduces_.empty()) << "begin_step() inside a step";
  calls_.clear();
  begin_micro_step();
  for (size_t unit = 0; unit <= rest_; ++unit) {
    Unit& state = units_[unit];
    if (!state.resident) continue;
    acquire(unit);
    if (compute_dtype_ != at::kFloat) continue;  // bf16 gradients: autograd's .grad, cast later
    // Autograd accumulates into the parameters' .grad in place: make them views of one flat
    // fp32 buffer (on one rank the gradient slice itself), reduce-scattered by step().
    state.full_grad = comm_.size() == 1
                          ? state.grad
                          : torch::zeros({layout_.units[unit].padded_numel}, state.grad.options());
    const UnitLayout& layout = layout_.units[unit];
    for (size_t p = 0; p < layout.params.size(); ++p) {
      const ParamSlot& slot = layout.params[p];
      state.params[p].mutable_grad() =
          state.full_grad.narrow(0, slot.offset, slot.numel).view(slot.shape);
    }
  }
}

void Zero3Engine::begin_micro_step() {
  if (!sequence_.empty()) previous_sequence_ = std::move(sequence_);
  sequence_.clear();
  recorded_.clear();
}

at::Tensor Zero3Engine::run(size_t unit,
                            const std::function<at::Tensor(const std::vector<at::Tensor>&)>& fn,
                            const std::vector<at::Tensor>& inputs) {
  FLAM_CHECK(unit < rest_) << "unit " << unit << " is not a per-layer unit";
  if (units_[unit].resident) return fn(inputs);  // gathered for the step, saved for backward
  return call_unit(unit, fn, inputs);
}

at::Tensor Zero3Engine::run_frozen(
    size_t unit, const std::function<at::Tensor(const std::vector<at::Tensor>&)>& fn,
    const std::vector<at::Tensor>& inputs) {
  if (units_.size() == rest_ + 1) {  // frozen weights replicated
    if (!std::binary_search(recomputed_frozen_.begin(), recomputed_frozen_.end(), unit))
      return fn(inputs);
    return record(rest_ + 1 + unit, /*gathered=*/false, fn, inputs);
  }
  FLAM_CHECK(rest_ + 1 + unit < units_.size()) << "frozen unit " << unit << " out of range";
  return call_unit(rest_ + 1 + unit, fn, inputs);
}

at::Tensor Zero3Engine::call_unit(
    size_t unit, const std::function<at::Tensor(const std::vector<at::Tensor>&)>& fn,
    const std::vector<at::Tensor>& inputs) {
  const bool grad_mode = at::GradMode::is_enabled();
  bool needs_backward = grad_mode && !is_frozen(unit);
  for (const at::Tensor& input : inputs)
    needs_backward = needs_backward || (grad_mode && input.defined() && input.requires_grad());
  if (!needs_backward) {
    acquire(unit);
    if (grad_mode) {  // a training forward: part of the call order the prefetch learns
      sequence_.push_back(unit);
      recorded_.push_back(false);
      prefetch_next(unit, sequence_.size() - 1);
    } else if (is_frozen(unit)) {  // e.g. the vision encoder: frozen units run in id order
      prefetch(unit + 1);
    }
    at::Tensor out = fn(inputs);
    release(unit);
    return out;
  }
  return record(unit, /*gathered=*/true, fn, inputs);
}

at::Tensor Zero3Engine::record(size_t unit, bool gathered,
                               const std::function<at::Tensor(const std::vector<at::Tensor>&)>& fn,
                               const std::vector<at::Tensor>& inputs) {
  bool needs_backward = false;
  for (const at::Tensor& input : inputs)
    needs_backward = needs_backward || (input.defined() && input.requires_grad());
  if (!gathered && !(at::GradMode::is_enabled() && needs_backward)) return fn(inputs);
  const int64_t id = next_call_id_++;
  auto call = std::make_unique<Call>();
  call->unit = unit;
  call->gathered = gathered;
  call->fn = fn;
  call->index = sequence_.size();
  for (const at::Tensor& input : inputs) call->requires_grad.push_back(input.requires_grad());
  calls_[id] = std::move(call);
  std::vector<at::Tensor> with_anchor = inputs;
  with_anchor.push_back(anchor_);
  return UnitFunction::apply(at::TensorList(with_anchor), id, this);
}

at::Tensor Zero3Engine::forward_call(int64_t call_id, const std::vector<at::Tensor>& inputs) {
  Call& call = *calls_.at(call_id);
  std::vector<at::Tensor> args(inputs.begin(), inputs.end() - 1);  // without the anchor
  if (!call.gathered) return call.fn(args);
  acquire(call.unit);
  sequence_.push_back(call.unit);
  recorded_.push_back(true);
  prefetch_next(call.unit, sequence_.size() - 1);
  at::Tensor out = call.fn(args);
  release(call.unit);
  return out;
}

std::vector<at::Tensor> Zero3Engine::backward_call(int64_t call_id,
                                                   const std::vector<at::Tensor>& inputs,
                                                   const at::Tensor& grad_output) {
  auto found = calls_.find(call_id);
  FLAM_CHECK(found != calls_.end()) << "backward of a unit call twice (retain_graph?)";
  std::unique_ptr<Call> call = std::move(found->second);
  calls_.erase(found);
  const size_t unit = call->unit;
  if (call->gathered) {
    acquire(unit);
    for (size_t i = std::min(call->index, sequence_.size()); i-- > 0;) {  // the previous backward
      if (recorded_[i]) {
        prefetch(sequence_[i]);
        break;
      }
    }
  }

  std::vector<at::Tensor> args;
  std::vector<at::Tensor> targets;
  std::vector<size_t> target_inputs;
  for (size_t i = 0; i + 1 < inputs.size(); ++i) {
    if (call->requires_grad[i]) {
      args.push_back(inputs[i].detach().requires_grad_(true));
      targets.push_back(args.back());
      target_inputs.push_back(i);
    } else {
      args.push_back(inputs[i]);
    }
  }
  const size_t n_input_targets = targets.size();
  if (!is_frozen(unit)) {
    for (const at::Tensor& param : units_[unit].params) targets.push_back(param);
  }

  std::vector<at::Tensor> grads;
  {
    torch::AutoGradMode enable(true);
    at::Tensor out = call->fn(args);
    grads = torch::autograd::grad({out}, targets, {grad_output}, /*retain_graph=*/false,
                                  /*create_graph=*/false, /*allow_unused=*/true);
  }
  if (!is_frozen(unit)) {
    reduce_gradients(unit, std::vector<at::Tensor>(grads.begin() + n_input_targets, grads.end()));
  }
  if (call->gathered) release(unit);

  std::vector<at::Tensor> input_grads(inputs.size());
  for (size_t t = 0; t < n_input_targets; ++t) input_grads[target_inputs[t]] = grads[t];
  return input_grads;
}

void Zero3Engine::reduce_gradients(size_t unit, const std::vector<at::Tensor>& grads) {
  const UnitLayout& layout = layout_.units[unit];
  if (comm_.size() == 1) {  // the slice is the whole unit: no buffer, no collective
    for (size_t p = 0; p < layout.params.size(); ++p) {
      if (!grads[p].defined()) continue;
      const ParamSlot& slot = layout.params[p];
      units_[unit].grad.narrow(0, slot.offset, slot.numel).add_(grads[p].reshape(-1));
    }
    traffic_.reduce_scatters += 1;
    traffic_.reduce_scatter_bytes += layout.padded_numel * 4;
    return;
  }
  auto pending = std::make_unique<PendingReduce>();
  pending->unit = unit;
  pending->send = torch::zeros({layout.padded_numel}, units_[unit].grad.options());
  for (size_t p = 0; p < layout.params.size(); ++p) {
    if (!grads[p].defined()) continue;
    const ParamSlot& slot = layout.params[p];
    pending->send.narrow(0, slot.offset, slot.numel).copy_(grads[p].reshape(-1));
  }
  pending->recv = torch::empty({layout_.slice_numel(unit)}, pending->send.options());
  pending->work = start_reduce_scatter(comm_, pending->send, pending->recv, ReduceOp::kAvg);
  traffic_.reduce_scatters += 1;
  traffic_.reduce_scatter_bytes += pending->send.numel() * 4;
  reduces_.push_back(std::move(pending));
  if (reduces_.size() > 2) {
    finish_reduce(*reduces_.front());
    reduces_.erase(reduces_.begin());
  }
}

void Zero3Engine::reduce_flat_gradient(size_t unit) {
  Unit& state = units_[unit];
  traffic_.reduce_scatters += 1;
  traffic_.reduce_scatter_bytes += state.full_grad.numel() * 4;
  if (state.full_grad.is_same(state.grad)) return;  // one rank: accumulated in place
  auto pending = std::make_unique<PendingReduce>();
  pending->unit = unit;
  pending->send = state.full_grad;
  pending->recv = torch::empty({layout_.slice_numel(unit)}, state.grad.options());
  pending->work = start_reduce_scatter(comm_, pending->send, pending->recv, ReduceOp::kAvg);
  reduces_.push_back(std::move(pending));
}

void Zero3Engine::finish_reduce(PendingReduce& pending) {
  pending.work->wait();
  units_[pending.unit].grad.add_(pending.recv);
}

void Zero3Engine::drain() {
  for (auto& pending : reduces_) finish_reduce(*pending);
  reduces_.clear();
  for (auto& gather : gathers_) {  // a prefetch that was not used: complete it, drop it
    gather->work->wait();
    gathered_bytes_ -= gather->full.numel() * element_size(compute_dtype_);
  }
  gathers_.clear();
}

Zero3StepResult Zero3Engine::step(double lr, double max_norm, bool skip) {
  torch::NoGradGuard no_grad;
  drain();
  FLAM_CHECK(calls_.empty()) << calls_.size() << " unit calls had no backward";
  for (size_t unit = 0; unit <= rest_; ++unit) {  // gradients summed over micro-steps in .grad
    Unit& state = units_[unit];
    if (!state.resident) continue;
    if (state.full_grad.defined()) {
      reduce_flat_gradient(unit);
    } else {
      std::vector<at::Tensor> grads;
      for (at::Tensor& param : state.params)
        grads.push_back(param.grad().defined() ? param.grad().to(at::kFloat) : at::Tensor());
      reduce_gradients(unit, grads);
    }
    for (at::Tensor& param : state.params) param.mutable_grad() = at::Tensor();
    state.full_grad = at::Tensor();
  }
  drain();
  for (size_t unit = 0; unit <= rest_; ++unit) {
    if (units_[unit].resident) release(unit);
  }

  // Only the trained units (ids 0..rest_) have optimizer state.
  const auto trained = std::span(units_).first(rest_ + 1);
  at::Tensor squares = torch::zeros({1}, units_.front().grad.options());
  for (const Unit& unit : trained) squares += unit.grad.square().sum();
  all_reduce(comm_, squares, ReduceOp::kSum);
  traffic_.all_reduce_bytes += 4;
  Zero3StepResult result;
  result.grad_norm = std::sqrt(squares.item<double>());
  result.skipped = skip || !std::isfinite(result.grad_norm);
  if (!result.skipped) {
    if (max_norm > 0.0) {
      const double coefficient = max_norm / (result.grad_norm + 1e-6);
      if (coefficient < 1.0) {
        for (Unit& unit : trained) unit.grad.mul_(coefficient);
      }
    }
    ++optimizer_step_;
    for (Unit& unit : trained) {
      // Offloaded: the step on the host (a no-op copy when the device is the CPU).
      const at::Tensor grad = unit.device_copy.defined() ? unit.grad.to(at::kCPU) : unit.grad;
      adamw_step(unit.master, grad, unit.exp_avg, unit.exp_avg_sq, optimizer_step_, lr, optimizer_,
                 unit.decay);
      if (unit.device_copy.defined()) unit.device_copy.copy_(unit.master);
    }
  }
  for (Unit& unit : trained) unit.grad.zero_();
  return result;
}

void Zero3Engine::export_slices(std::vector<std::vector<float>>* master,
                                std::vector<std::vector<float>>* exp_avg,
                                std::vector<std::vector<float>>* exp_avg_sq) const {
  // Copies into the vectors' existing storage when it is large enough (the checkpointer hands
  // the previous save's buffers back), straight from the device on GPU.
  auto copy = [&](std::vector<std::vector<float>>* out, auto member) {
    out->resize(rest_ + 1);
    for (size_t b = 0; b <= rest_; ++b) {
      const at::Tensor& tensor = units_[b].*member;
      std::vector<float>& host = (*out)[b];
      host.resize(static_cast<size_t>(tensor.numel()));
      at::from_blob(host.data(), {tensor.numel()}, at::kFloat).copy_(tensor.reshape({-1}));
    }
  };
  copy(master, &Unit::master);
  copy(exp_avg, &Unit::exp_avg);
  copy(exp_avg_sq, &Unit::exp_avg_sq);
}

void Zero3Engine::import_slices(const std::vector<std::vector<float>>& master,
                                const std::vector<std::vector<float>>& exp_avg,
                                const std::vector<std::vector<float>>& exp_avg_sq,
                                int64_t optimizer_step) {
  const size_t n = rest_ + 1;
  FLAM_CHECK(master.size() == n && exp_avg.size() == n && exp_avg_sq.size() == n)
      << "slices for " << master.size() << " units, engine has " << n;
  torch::NoGradGuard no_grad;
  auto paste = [](const std::vector<float>& values, at::Tensor& tensor) {
    FLAM_CHECK(static_cast<int64_t>(values.size()) == tensor.numel())
        << "slice of " << values.size() << " floats for " << tensor.numel();
    tensor.copy_(torch::from_blob(const_cast<float*>(values.data()),
                                  {static_cast<int64_t>(values.size())}, at::kFloat));
  };
  for (size_t b = 0; b < n; ++b) {
    paste(master[b], units_[b].master);
    paste(exp_avg[b], units_[b].exp_avg);
    paste(exp_avg_sq[b], units_[b].exp_avg_sq);
    if (units_[b].device_copy.defined()) units_[b].device_copy.copy_(units_[b].master);
  }
  optimizer_step_ = optimizer_step;
}

std::map<std::string, at::Tensor> Zero3Engine::full_parameters() {
  torch::NoGradGuard no_grad;
  std::map<std::string, at::Tensor> out;
  for (size_t b = 0; b <= rest_; ++b) {
    const UnitLayout& layout = layout_.units[b];
    const at::Tensor master = units_[b].master.to(anchor_.device());  // offloaded: from the host
    at::Tensor full = torch::empty({layout.padded_numel}, master.options());
    all_gather(comm_, master, full);
    full = full.to(at::kCPU);
    for (const ParamSlot& slot : layout.params) {
      out[slot.name] = full.narrow(0, slot.offset, slot.numel).view(slot.shape).clone();
    }
  }
  return out;
}

std::map<std::string, at::Tensor> Zero3Engine::full_gradients() {
  torch::NoGradGuard no_grad;
  for (auto& pending : reduces_) finish_reduce(*pending);
  reduces_.clear();
  std::map<std::string, at::Tensor> out;
  for (size_t b = 0; b <= rest_; ++b) {
    const Unit& state = units_[b];
    const UnitLayout& layout = layout_.units[b];
    at::Tensor full = torch::empty({layout.padded_numel}, state.grad.options());
    all_gather(comm_, state.grad, full);
    if (state.resident) {  // this rank's sum over micro-steps, in .grad: average over ranks
      at::Tensor local = torch::zeros({layout.padded_numel}, state.grad.options());
      if (!state.full_grad.is_same(state.grad)) {
        for (size_t p = 0; p < layout.params.size(); ++p) {
          const at::Tensor& grad = state.params[p].grad();
          const ParamSlot& slot = layout.params[p];
          if (grad.defined()) local.narrow(0, slot.offset, slot.numel).copy_(grad.reshape(-1));
        }
        all_reduce(comm_, local, ReduceOp::kSum);
        full += local / comm_.size();
      }
    }
    full = full.to(at::kCPU);
    for (const ParamSlot& slot : layout.params) {
      out[slot.name] = full.narrow(0, slot.offset, slot.numel).view(slot.shape).clone();
    }
  }
  return out;
}

Zero3Memory Zero3Engine::memory() const {
  Zero3Memory memory;
  const int64_t slice = layout_.total_slice_numel();
  memory.master_bytes = 4 * slice;
  memory.moment_bytes = 8 * slice;
  memory.grad_bytes = 4 * slice;
  memory.offloaded = optimizer_.offload;
  memory.device_copy_bytes = optimizer_.offload ? slice * element_size(compute_dtype_) : 0;
  memory.rest_bytes = layout_.units[rest_].padded_numel * element_size(compute_dtype_);
  memory.frozen_bytes = frozen_layout_.total_slice_numel() * element_size(compute_dtype_);
  memory.gathered_peak_bytes = gathered_peak_bytes_;
  return memory;
}

}  // namespace flam::train
