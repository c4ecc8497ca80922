#include "train/zero3/zero3_engine.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <span>

#include "core/check.h"
#include "train/tensor_comm.h"

namespace flam::train {

struct Zero3Engine::Block {
  std::vector<at::Tensor> params;  // the model's parameter tensors, in layout order (aliases)
  at::Tensor master;               // [slice] fp32; a frozen unit's: [slice] compute dtype
  at::Tensor exp_avg;              // [slice] fp32
  at::Tensor exp_avg_sq;           // [slice] fp32
  at::Tensor grad;                 // [slice] fp32, averaged over ranks, summed over micro-steps
  Ranges decay;                    // ranges of the slice that AdamW decays
  at::Tensor full;                 // [padded] compute dtype, defined while installed
};

struct Zero3Engine::Gather {
  size_t block = 0;
  at::Tensor send;  // [slice] compute dtype
  at::Tensor full;  // [padded] compute dtype
  std::unique_ptr<Work> work;
};

struct Zero3Engine::PendingReduce {
  size_t block = 0;
  at::Tensor send;  // [padded] fp32 gradient of the whole block
  at::Tensor recv;  // [slice] fp32 averaged gradient of this rank's slice
  std::unique_ptr<Work> work;
};

struct Zero3Engine::Call {
  size_t block = 0;  // unit id (trained block or frozen unit)
  std::function<at::Tensor(const std::vector<at::Tensor>&)> fn;
  size_t index = 0;                 // position among this micro-step's forward calls
  std::vector<bool> requires_grad;  // per input (without the anchor)
};

namespace {

// Blocks between the engine's gathers: outputs = fn(inputs) with the block's parameters; the
// backward re-gathers and recomputes (Zero3Engine::backward_call).
class BlockFunction : public torch::autograd::Function<BlockFunction> {
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

}  // namespace

Zero3Engine::Zero3Engine(std::vector<model::TrainedBlock> blocks,
                         const std::function<bool(const std::string&)>& weight_decay, Comm& comm,
                         const OptimizerOptions& optimizer, at::ScalarType compute_dtype,
                         std::vector<model::TrainedBlock> frozen)
    : comm_(comm), optimizer_(optimizer), compute_dtype_(compute_dtype) {
  FLAM_CHECK(!blocks.empty() && blocks.back().name == "rest")
      << "trained blocks must end with \"rest\"";
  FLAM_CHECK(compute_dtype == at::kFloat || compute_dtype == at::kBFloat16)
      << "compute dtype " << compute_dtype;
  std::vector<BlockSpec> specs;
  for (const model::TrainedBlock& block : blocks) {
    BlockSpec spec{block.name, {}};
    for (const auto& [name, tensor] : block.params)
      spec.second.emplace_back(name, tensor.sizes().vec());
    specs.push_back(std::move(spec));
  }
  layout_ = make_flat_layout(specs, comm.size());
  rest_ = blocks.size() - 1;

  torch::NoGradGuard no_grad;
  at::Device device = at::kCPU;
  for (const model::TrainedBlock& block : blocks) {
    if (!block.params.empty()) device = block.params.front().second.device();
  }
  const auto fp32 = at::TensorOptions().dtype(at::kFloat).device(device);
  anchor_ = torch::zeros({1}, fp32).requires_grad_(true);
  blocks_.resize(blocks.size());
  for (size_t b = 0; b < blocks.size(); ++b) {
    const BlockLayout& layout = layout_.blocks[b];
    const int64_t slice = layout_.slice_numel(b);
    const int64_t begin = comm.rank() * slice;
    at::Tensor full = torch::zeros({layout.padded_numel}, fp32);
    Block& state = blocks_[b];
    for (size_t p = 0; p < layout.params.size(); ++p) {
      const ParamSlot& slot = layout.params[p];
      const at::Tensor& param = blocks[b].params[p].second;
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
    state.master = full.narrow(0, begin, slice).clone();
    state.exp_avg = torch::zeros({slice}, fp32);
    state.exp_avg_sq = torch::zeros({slice}, fp32);
    state.grad = torch::zeros({slice}, fp32);
    for (at::Tensor& param : state.params) {
      param.set_data(torch::empty({0}, param.options().dtype(compute_dtype_)));
    }
  }

  std::vector<BlockSpec> frozen_specs;
  for (const model::TrainedBlock& unit : frozen) {
    BlockSpec spec{unit.name, {}};
    for (const auto& [name, tensor] : unit.params)
      spec.second.emplace_back(name, tensor.sizes().vec());
    frozen_specs.push_back(std::move(spec));
  }
  frozen_layout_ = make_flat_layout(frozen_specs, comm.size());
  for (size_t f = 0; f < frozen.size(); ++f) {
    const BlockLayout& layout = frozen_layout_.blocks[f];
    const int64_t slice = frozen_layout_.slice_numel(f);
    const int64_t begin = comm.rank() * slice;
    Block state;
    for (size_t p = 0; p < layout.params.size(); ++p) {
      const ParamSlot& slot = layout.params[p];
      const at::Tensor& param = frozen[f].params[p].second;
      FLAM_CHECK(!param.requires_grad()) << slot.name << " is frozen but requires grad";
      if (!state.master.defined()) {
        state.master = torch::zeros({slice}, param.options().dtype(compute_dtype_));
      }
      // This rank's part of the slot: [start, end) of the unit's flat buffer.
      const int64_t start = std::max(slot.offset, begin);
      const int64_t end = std::min(slot.offset + slot.numel, begin + slice);
      if (start < end) {
        state.master.narrow(0, start - begin, end - start)
            .copy_(param.reshape(-1).narrow(0, start - slot.offset, end - start));
      }
      state.params.push_back(param);
    }
    if (!state.master.defined()) state.master = torch::zeros({slice}, fp32.dtype(compute_dtype_));
    for (at::Tensor& param : state.params) {
      param.set_data(torch::empty({0}, param.options().dtype(compute_dtype_)));
    }
    blocks_.push_back(std::move(state));
  }
}

const BlockLayout& Zero3Engine::unit_layout(size_t id) const {
  return is_frozen(id) ? frozen_layout_.blocks[id - rest_ - 1] : layout_.blocks[id];
}

Zero3Engine::~Zero3Engine() = default;

void Zero3Engine::add_gathered(int64_t bytes) {
  gathered_bytes_ += bytes;
  gathered_peak_bytes_ = std::max(gathered_peak_bytes_, gathered_bytes_);
}

void Zero3Engine::start_gather(size_t block) {
  auto gather = std::make_unique<Gather>();
  gather->block = block;
  const Block& state = blocks_[block];
  gather->send = state.master.to(compute_dtype_).contiguous();
  gather->full = torch::empty({unit_layout(block).padded_numel}, gather->send.options());
  gather->work = start_all_gather(comm_, gather->send, gather->full);
  const int64_t bytes = gather->full.numel() * element_size(compute_dtype_);
  traffic_.gathers += 1;
  traffic_.gather_bytes += bytes;
  add_gathered(bytes);
  gathers_.push_back(std::move(gather));
}

void Zero3Engine::prefetch_next(size_t block, size_t index) {
  if (index + 1 < previous_sequence_.size()) {
    prefetch(previous_sequence_[index + 1]);
  } else if (previous_sequence_.empty()) {
    prefetch(block + 1);
  }
}

void Zero3Engine::prefetch(size_t block) {
  if (block == rest_ || block >= blocks_.size() || blocks_[block].full.defined()) return;
  for (const auto& gather : gathers_) {
    if (gather->block == block) return;
  }
  if (gathers_.size() >= 2) return;  // at most two blocks ahead
  start_gather(block);
}

void Zero3Engine::acquire(size_t block) {
  Block& state = blocks_[block];
  if (state.full.defined()) return;
  auto it = std::find_if(gathers_.begin(), gathers_.end(),
                         [&](const auto& gather) { return gather->block == block; });
  if (it == gathers_.end()) {
    start_gather(block);
    it = gathers_.end() - 1;
  }
  std::unique_ptr<Gather> gather = std::move(*it);
  gathers_.erase(it);
  gather->work->wait();
  state.full = gather->full;
  const BlockLayout& layout = unit_layout(block);
  for (size_t p = 0; p < layout.params.size(); ++p) {
    const ParamSlot& slot = layout.params[p];
    state.params[p].set_data(state.full.narrow(0, slot.offset, slot.numel).view(slot.shape));
  }
}

void Zero3Engine::release(size_t block) {
  Block& state = blocks_[block];
  if (!state.full.defined()) return;
  for (at::Tensor& param : state.params) {
    param.set_data(torch::empty({0}, param.options()));
  }
  gathered_bytes_ -= state.full.numel() * element_size(compute_dtype_);
  state.full = at::Tensor();
}

void Zero3Engine::begin_step() {
  FLAM_CHECK(gathers_.empty() && reduces_.empty()) << "begin_step() inside a step";
  calls_.clear();
  begin_micro_step();
  acquire(rest_);
}

void Zero3Engine::begin_micro_step() {
  if (!sequence_.empty()) previous_sequence_ = std::move(sequence_);
  sequence_.clear();
  recorded_.clear();
}

at::Tensor Zero3Engine::run(size_t block,
                            const std::function<at::Tensor(const std::vector<at::Tensor>&)>& fn,
                            const std::vector<at::Tensor>& inputs) {
  FLAM_CHECK(block < rest_) << "block " << block << " is not a per-layer block";
  return call_unit(block, fn, inputs);
}

at::Tensor Zero3Engine::run_frozen(
    size_t unit, const std::function<at::Tensor(const std::vector<at::Tensor>&)>& fn,
    const std::vector<at::Tensor>& inputs) {
  if (blocks_.size() == rest_ + 1) return fn(inputs);  // frozen weights replicated
  FLAM_CHECK(rest_ + 1 + unit < blocks_.size()) << "frozen unit " << unit << " out of range";
  return call_unit(rest_ + 1 + unit, fn, inputs);
}

at::Tensor Zero3Engine::call_unit(
    size_t block, const std::function<at::Tensor(const std::vector<at::Tensor>&)>& fn,
    const std::vector<at::Tensor>& inputs) {
  const bool grad_mode = at::GradMode::is_enabled();
  bool needs_backward = grad_mode && !is_frozen(block);
  for (const at::Tensor& input : inputs)
    needs_backward = needs_backward || (grad_mode && input.defined() && input.requires_grad());
  if (!needs_backward) {
    acquire(block);
    if (grad_mode) {  // a training forward: part of the call order the prefetch learns
      sequence_.push_back(block);
      recorded_.push_back(false);
      prefetch_next(block, sequence_.size() - 1);
    } else if (is_frozen(block)) {  // e.g. the vision encoder: frozen units run in id order
      prefetch(block + 1);
    }
    at::Tensor out = fn(inputs);
    release(block);
    return out;
  }
  const int64_t id = next_call_id_++;
  auto call = std::make_unique<Call>();
  call->block = block;
  call->fn = fn;
  call->index = sequence_.size();
  for (const at::Tensor& input : inputs) call->requires_grad.push_back(input.requires_grad());
  calls_[id] = std::move(call);
  std::vector<at::Tensor> with_anchor = inputs;
  with_anchor.push_back(anchor_);
  return BlockFunction::apply(at::TensorList(with_anchor), id, this);
}

at::Tensor Zero3Engine::forward_call(int64_t call_id, const std::vector<at::Tensor>& inputs) {
  Call& call = *calls_.at(call_id);
  acquire(call.block);
  sequence_.push_back(call.block);
  recorded_.push_back(true);
  prefetch_next(call.block, sequence_.size() - 1);
  std::vector<at::Tensor> args(inputs.begin(), inputs.end() - 1);  // without the anchor
  at::Tensor out = call.fn(args);
  release(call.block);
  return out;
}

std::vector<at::Tensor> Zero3Engine::backward_call(int64_t call_id,
                                                   const std::vector<at::Tensor>& inputs,
                                                   const at::Tensor& grad_output) {
  auto found = calls_.find(call_id);
  FLAM_CHECK(found != calls_.end()) << "backward of a block call twice (retain_graph?)";
  std::unique_ptr<Call> call = std::move(found->second);
  calls_.erase(found);
  const size_t block = call->block;
  acquire(block);
  for (size_t i = std::min(call->index, sequence_.size()); i-- > 0;) {  // the previous backward
    if (recorded_[i]) {
      prefetch(sequence_[i]);
      break;
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
  if (!is_frozen(block)) {
    for (const at::Tensor& param : blocks_[block].params) targets.push_back(param);
  }

  std::vector<at::Tensor> grads;
  {
    torch::AutoGradMode enable(true);
    at::Tensor out = call->fn(args);
    grads = torch::autograd::grad({out}, targets, {grad_output}, /*retain_graph=*/false,
                                  /*create_graph=*/false, /*allow_unused=*/true);
  }
  if (!is_frozen(block)) {
    reduce_gradients(block, std::vector<at::Tensor>(grads.begin() + n_input_targets, grads.end()));
  }
  release(block);

  std::vector<at::Tensor> input_grads(inputs.size());
  for (size_t t = 0; t < n_input_targets; ++t) input_grads[target_inputs[t]] = grads[t];
  return input_grads;
}

void Zero3Engine::reduce_gradients(size_t block, const std::vector<at::Tensor>& grads) {
  const BlockLayout& layout = layout_.blocks[block];
  auto pending = std::make_unique<PendingReduce>();
  pending->block = block;
  pending->send = torch::zeros({layout.padded_numel}, blocks_[block].grad.options());
  for (size_t p = 0; p < layout.params.size(); ++p) {
    if (!grads[p].defined()) continue;
    const ParamSlot& slot = layout.params[p];
    pending->send.narrow(0, slot.offset, slot.numel).copy_(grads[p].reshape(-1));
  }
  pending->recv = torch::empty({layout_.slice_numel(block)}, pending->send.options());
  pending->work = start_reduce_scatter(comm_, pending->send, pending->recv, ReduceOp::kAvg);
  traffic_.reduce_scatters += 1;
  traffic_.reduce_scatter_bytes += pending->send.numel() * 4;
  reduces_.push_back(std::move(pending));
  if (reduces_.size() > 2) {
    finish_reduce(*reduces_.front());
    reduces_.erase(reduces_.begin());
  }
}

void Zero3Engine::finish_reduce(PendingReduce& pending) {
  pending.work->wait();
  blocks_[pending.block].grad.add_(pending.recv);
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
  FLAM_CHECK(calls_.empty()) << calls_.size() << " block calls had no backward";
  {  // "rest": its gradients sit in the parameters' .grad, summed over micro-steps
    Block& rest = blocks_[rest_];
    std::vector<at::Tensor> grads;
    for (at::Tensor& param : rest.params) {
      grads.push_back(param.grad().defined() ? param.grad().to(at::kFloat) : at::Tensor());
      param.mutable_grad() = at::Tensor();
    }
    reduce_gradients(rest_, grads);
    drain();
    release(rest_);
  }

  // Only the trained blocks (ids 0..rest_) have optimizer state.
  const auto trained = std::span(blocks_).first(rest_ + 1);
  at::Tensor squares = torch::zeros({1}, blocks_.front().grad.options());
  for (const Block& block : trained) squares += block.grad.square().sum();
  all_reduce(comm_, squares, ReduceOp::kSum);
  traffic_.all_reduce_bytes += 4;
  Zero3StepResult result;
  result.grad_norm = std::sqrt(squares.item<double>());
  result.skipped = skip || !std::isfinite(result.grad_norm);
  if (!result.skipped) {
    if (max_norm > 0.0) {
      const double coefficient = max_norm / (result.grad_norm + 1e-6);
      if (coefficient < 1.0) {
        for (Block& block : trained) block.grad.mul_(coefficient);
      }
    }
    ++optimizer_step_;
    for (Block& block : trained) {
      adamw_step(block.master, block.grad, block.exp_avg, block.exp_avg_sq, optimizer_step_, lr,
                 optimizer_, block.decay);
    }
  }
  for (Block& block : trained) block.grad.zero_();
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
      const at::Tensor& tensor = blocks_[b].*member;
      std::vector<float>& host = (*out)[b];
      host.resize(static_cast<size_t>(tensor.numel()));
      at::from_blob(host.data(), {tensor.numel()}, at::kFloat).copy_(tensor.reshape({-1}));
    }
  };
  copy(master, &Block::master);
  copy(exp_avg, &Block::exp_avg);
  copy(exp_avg_sq, &Block::exp_avg_sq);
}

void Zero3Engine::import_slices(const std::vector<std::vector<float>>& master,
                                const std::vector<std::vector<float>>& exp_avg,
                                const std::vector<std::vector<float>>& exp_avg_sq,
                                int64_t optimizer_step) {
  const size_t n = rest_ + 1;
  FLAM_CHECK(master.size() == n && exp_avg.size() == n && exp_avg_sq.size() == n)
      << "slices for " << master.size() << " blocks, engine has " << n;
  torch::NoGradGuard no_grad;
  auto paste = [](const std::vector<float>& values, at::Tensor& tensor) {
    FLAM_CHECK(static_cast<int64_t>(values.size()) == tensor.numel())
        << "slice of " << values.size() << " floats for " << tensor.numel();
    tensor.copy_(torch::from_blob(const_cast<float*>(values.data()),
                                  {static_cast<int64_t>(values.size())}, at::kFloat));
  };
  for (size_t b = 0; b < n; ++b) {
    paste(master[b], blocks_[b].master);
    paste(exp_avg[b], blocks_[b].exp_avg);
    paste(exp_avg_sq[b], blocks_[b].exp_avg_sq);
  }
  optimizer_step_ = optimizer_step;
}

std::map<std::string, at::Tensor> Zero3Engine::full_parameters() {
  torch::NoGradGuard no_grad;
  std::map<std::string, at::Tensor> out;
  for (size_t b = 0; b <= rest_; ++b) {
    const BlockLayout& layout = layout_.blocks[b];
    at::Tensor full = torch::empty({layout.padded_numel}, blocks_[b].master.options());
    all_gather(comm_, blocks_[b].master, full);
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
  memory.rest_bytes = layout_.blocks[rest_].padded_numel * element_size(compute_dtype_);
  memory.frozen_bytes = frozen_layout_.total_slice_numel() * element_size(compute_dtype_);
  memory.gathered_peak_bytes = gathered_peak_bytes_;
  return memory;
}

}  // namespace flam::train
