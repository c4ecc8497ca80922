// Frozen parameters sharded by Zero3Engine (train.shard_frozen) on 1..4 real MPI ranks: each rank
// keeps exactly one compute-dtype slice per frozen unit, the parameters hold no storage between
// calls, backward re-gathers, and training gives the losses and parameters of the same run with
// replicated frozen weights (same seed), also when the frozen parameters are shape-only and their
// values come from the engine's frozen_values.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <string>

#include "core/mpi_comm.h"
#include "train/model/flamingo.h"
#include "train/zero3/zero3_engine.h"

namespace flam::train {
namespace {

// x [B, 8] -> frozen encoder (no grad) -> x * scale -> (frozen_i: x + tanh(F_i x),
// block_i: x + gelu(W_i x + b_i)) for i < 3 -> head -> logits [B, 4]. Trained: scale, block_i,
// head ("rest" = scale and head). Frozen units: encoder, frozen0..2.
struct FrozenToy : torch::nn::Module {
  static constexpr int kDim = 8;
  static constexpr int kClasses = 4;
  static constexpr int kLayers = 3;

  FrozenToy() {
    encoder = register_module("encoder", torch::nn::Linear(kDim, kDim));
    scale = register_parameter("scale", torch::ones({kDim}) + 0.1 * torch::randn({kDim}));
    for (int i = 0; i < kLayers; ++i) {
      frozen.push_back(register_module("frozen" + std::to_string(i),
                                       torch::nn::Linear(torch::nn::LinearOptions(kDim, kDim))));
      layers.push_back(register_module("block" + std::to_string(i), torch::nn::Linear(kDim, kDim)));
    }
    head = register_module("head", torch::nn::Linear(kDim, kClasses));
    for (auto& p : encoder->parameters()) p.set_requires_grad(false);
    for (auto& f : frozen)
      for (auto& p : f->parameters()) p.set_requires_grad(false);
  }

  torch::Tensor call_frozen(
      size_t unit, const std::function<torch::Tensor(const std::vector<torch::Tensor>&)>& fn,
      const torch::Tensor& x) {
    return engine && shard_frozen ? engine->run_frozen(unit, fn, {x}) : fn({x});
  }

  torch::Tensor forward(const torch::Tensor& input) {
    torch::Tensor x;
    {
      torch::NoGradGuard no_grad;
      x = call_frozen(
          0, [this](const auto& in) { return encoder(in[0]); }, input);
    }
    x = x * scale;
    for (int i = 0; i < kLayers; ++i) {
      x = call_frozen(
          1 + i, [this, i](const auto& in) { return in[0] + torch::tanh(frozen[i](in[0])); }, x);
      auto fn = [this, i](const std::vector<torch::Tensor>& in) {
        return in[0] + torch::gelu(layers[i](in[0]));
      };
      x = engine ? engine->run(i, fn, {x}) : fn({x});
    }
    return head(x);
  }

  std::vector<model::ParamUnit> trained_units() {
    std::vector<model::ParamUnit> units;
    for (int i = 0; i < kLayers; ++i) {
      const std::string name = "block" + std::to_string(i);
      units.push_back(
          {name, {{name + ".weight", layers[i]->weight}, {name + ".bias", layers[i]->bias}}});
    }
    units.push_back(
        {"rest", {{"scale", scale}, {"head.weight", head->weight}, {"head.bias", head->bias}}});
    return units;
  }

  std::vector<model::ParamUnit> frozen_units() {
    std::vector<model::ParamUnit> units{
        {"encoder", {{"encoder.weight", encoder->weight}, {"encoder.bias", encoder->bias}}}};
    for (int i = 0; i < kLayers; ++i) {
      const std::string name = "frozen" + std::to_string(i);
      units.push_back(
          {name, {{name + ".weight", frozen[i]->weight}, {name + ".bias", frozen[i]->bias}}});
    }
    return units;
  }

  static bool weight_decay(const std::string& name) { return name.rfind("block", 0) == 0; }

  torch::nn::Linear encoder{nullptr}, head{nullptr};
  torch::Tensor scale;
  std::vector<torch::nn::Linear> frozen, layers;
  Zero3Engine* engine = nullptr;
  bool shard_frozen = false;
};

constexpr int kGlobalBatch = 24;
constexpr int kSteps = 4;
constexpr int kAccum = 2;

OptimizerOptions optimizer_options() {
  OptimizerOptions o;
  o.lr = 2e-2;
  o.weight_decay = 0.1;
  return o;
}

struct TrainingRun {
  std::vector<double> losses;  // this rank's, per micro-step
  std::map<std::string, torch::Tensor> trained;
  Zero3Memory memory;
  Zero3Traffic traffic;
  int64_t frozen_slice_numel = 0;
  int64_t largest_unit_bytes = 0;  // padded, fp32
  int64_t rest_bytes = 0;
  bool frozen_storage_freed = true;
};

// `shapes_only` (with shard_frozen): the frozen parameters are made shape-only
// (model::drop_values) and the engine reads their values through frozen_values, whose calls
// are recorded in `fetched`.
TrainingRun train(Comm& comm, bool shard_frozen, bool shapes_only = false,
                  std::vector<std::string>* fetched = nullptr) {
  torch::manual_seed(7);
  const torch::Tensor inputs = torch::randn({kSteps, kGlobalBatch, FrozenToy::kDim});
  const torch::Tensor labels = torch::randint(0, FrozenToy::kClasses, {kSteps, kGlobalBatch});
  torch::manual_seed(1);
  auto model = std::make_shared<FrozenToy>();
  std::map<std::string, torch::Tensor> values;  // the frozen parameters' values
  if (shapes_only) {
    for (const auto& unit : model->frozen_units())
      for (const auto& [name, param] : unit.params) values[name] = param.detach().clone();
    model::drop_values(*model->encoder);
    for (auto& f : model->frozen) model::drop_values(*f);
  }
  Zero3Engine engine(model->trained_units(), FrozenToy::weight_decay, comm, optimizer_options(),
                     at::kFloat,
                     shard_frozen ? model->frozen_units() : std::vector<model::ParamUnit>{},
                     Checkpointing::kCrossAttention, {}, [&](const std::string& name) {
                       if (fetched) fetched->push_back(name);
                       return values.at(name);
                     });
  model->engine = &engine;
  model->shard_frozen = shard_frozen;
  TrainingRun run;
  auto check_freed = [&] {
    if (!shard_frozen) return;
    for (const auto& unit : model->frozen_units())
      for (const auto& [name, param] : unit.params)
        run.frozen_storage_freed = run.frozen_storage_freed && param.numel() == 0;
  };
  check_freed();
  const int local = kGlobalBatch / (kAccum * comm.size());
  for (int step = 0; step < kSteps; ++step) {
    engine.begin_step();
    for (int micro = 0; micro < kAccum; ++micro) {
      if (micro > 0) engine.begin_micro_step();
      const int64_t first = (micro * comm.size() + comm.rank()) * local;
      torch::Tensor loss =
          torch::nn::functional::cross_entropy(model->forward(inputs[step].narrow(0, first, local)),
                                               labels[step].narrow(0, first, local));
      run.losses.push_back(loss.item<double>());
      (loss / kAccum).backward();
      check_freed();
    }
    EXPECT_FALSE(engine.step(1e-2, 0.5).skipped);
    check_freed();
  }
  run.trained = engine.full_parameters();
  run.memory = engine.memory();
  run.traffic = engine.traffic();
  run.frozen_slice_numel = engine.frozen_layout().total_slice_numel();
  for (const FlatLayout* layout : {&engine.layout(), &engine.frozen_layout()}) {
    for (const UnitLayout& unit : layout->units) {
      if (unit.name != "rest")
        run.largest_unit_bytes = std::max(run.largest_unit_bytes, 4 * unit.padded_numel);
    }
  }
  run.rest_bytes = 4 * engine.layout().units.back().padded_numel;
  return run;
}

class FrozenShards : public ::testing::Test {
 protected:
  void SetUp() override { at::set_num_threads(1); }
  MpiComm comm;
};

TEST_F(FrozenShards, TrainsAsTheReplicatedRun) {
  const TrainingRun replicated = train(comm, false);
  const TrainingRun sharded = train(comm, true);
  ASSERT_EQ(sharded.losses.size(), replicated.losses.size());
  for (size_t i = 0; i < replicated.losses.size(); ++i)
    EXPECT_NEAR(sharded.losses[i], replicated.losses[i], 1e-6) << "micro-step " << i;
  // Training moved the losses (the comparison is not vacuous).
  EXPECT_GT(std::abs(replicated.losses.front() - replicated.losses.back()), 1e-3);
  ASSERT_EQ(sharded.trained.size(), replicated.trained.size());
  for (const auto& [name, want] : replicated.trained) {
    EXPECT_LE((sharded.trained.at(name) - want).abs().max().item<double>(), 1e-6) << name;
  }
}

TEST_F(FrozenShards, ShapeOnlyParametersGetTheirSlicesFromFrozenValues) {
  std::vector<std::string> fetched;
  const TrainingRun from_values = train(comm, true, /*shapes_only=*/true, &fetched);
  const TrainingRun sharded = train(comm, true);
  ASSERT_EQ(from_values.losses.size(), sharded.losses.size());
  for (size_t i = 0; i < sharded.losses.size(); ++i)
    EXPECT_EQ(from_values.losses[i], sharded.losses[i]) << "micro-step " << i;
  for (const auto& [name, want] : sharded.trained)
    EXPECT_TRUE(torch::equal(from_values.trained.at(name), want)) << name;
  // Fetched: exactly the parameters that overlap this rank's slice of their unit, once each.
  torch::manual_seed(1);
  FrozenToy fresh;
  std::vector<model::ParamUnit> units = fresh.frozen_units();
  std::vector<std::string> overlapping;
  const int64_t n = comm.size();
  for (const model::ParamUnit& unit : units) {
    int64_t numel = 0;
    for (const auto& [name, param] : unit.params) numel += param.numel();
    const int64_t slice = (numel + n - 1) / n, begin = comm.rank() * slice;
    int64_t offset = 0;
    for (const auto& [name, param] : unit.params) {
      if (offset < begin + slice && begin < offset + param.numel()) overlapping.push_back(name);
      offset += param.numel();
    }
  }
  EXPECT_EQ(fetched, overlapping);
  EXPECT_TRUE(from_values.frozen_storage_freed);
}

TEST_F(FrozenShards, EachRankKeepsOneSlicePerUnit) {
  const TrainingRun run = train(comm, true);
  torch::manual_seed(1);
  FrozenToy fresh;
  const int n = comm.size();
  int64_t slices = 0, frozen = 0;
  for (const auto& unit : fresh.frozen_units()) {
    int64_t numel = 0;
    for (const auto& [name, param] : unit.params) numel += param.numel();
    slices += (numel + n - 1) / n;  // ceil(P_unit / N)
    frozen += numel;
  }
  EXPECT_EQ(run.frozen_slice_numel, slices);
  EXPECT_EQ(run.memory.frozen_bytes, 4 * slices);
  // Per-unit padding: less than one element per unit above ceil(P_frozen / N).
  EXPECT_GE(slices, (frozen + n - 1) / n);
  EXPECT_LT(slices, (frozen + n - 1) / n + 4);
  EXPECT_TRUE(run.frozen_storage_freed);
  // Gathered at once: "rest" and at most three units (one in use, two prefetched).
  EXPECT_LE(run.memory.gathered_peak_bytes, run.rest_bytes + 3 * run.largest_unit_bytes);
  // Trained state is untouched by sharding the frozen weights.
  const TrainingRun replicated = train(comm, false);
  EXPECT_EQ(replicated.memory.frozen_bytes, 0);
  EXPECT_EQ(run.memory.master_bytes, replicated.memory.master_bytes);
  // Every micro-step gathers the four frozen units for forward and frozen0..2 again in backward
  // (the encoder runs without grad), on top of the replicated run's gathers.
  EXPECT_GE(run.traffic.gathers - replicated.traffic.gathers, kSteps * kAccum * (4 + 3));
  EXPECT_EQ(run.traffic.reduce_scatters, replicated.traffic.reduce_scatters);
}

}  // namespace
}  // namespace flam::train
