// ZeRO-3 on 1..4 real MPI ranks (16 in tests/scale) against plain single-process training of the
// same model: the same global batch split across the ranks (and across micro-steps with
// accumulation), K steps of Zero3Engine end with the parameters torch::optim::AdamW +
// clip_grad_norm_ reach on the whole batch, with the optimizer state on the device or offloaded to
// the host (train.optimizer.offload; here both are the CPU, so the test covers the engine's
// bookkeeping of the device copy, not the transfers). Also the engine's memory and traffic
// reports against the layout's arithmetic.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <string>
#include <tuple>

#include "core/mpi_comm.h"
#include "tests/train/toy_model.h"
#include "train/optim/schedule.h"
#include "train/zero3/zero3_engine.h"

namespace flam::train {
namespace {

using testing::ToyModel;

// Divisible by ranks x micro-steps for 1..4 ranks and 16 (tests/scale), 1..2 micro-steps.
constexpr int kGlobalBatch = 96;
constexpr int kSteps = 4;
constexpr double kMaxNorm = 0.5;

OptimizerOptions optimizer_options(bool offload = false) {
  OptimizerOptions o;
  o.lr = 2e-2;
  o.weight_decay = 0.1;
  o.offload = offload;
  return o;
}

ScheduleOptions schedule_options() {
  ScheduleOptions s;
  s.kind = "cosine";
  s.warmup_steps = 2;
  return s;
}

struct Data {
  torch::Tensor inputs;  // [K, 24, 8]
  torch::Tensor labels;  // [K, 24]
};

Data make_data() {
  torch::manual_seed(7);
  return {torch::randn({kSteps, kGlobalBatch, ToyModel::kDim}),
          torch::randint(0, ToyModel::kClasses, {kSteps, kGlobalBatch})};
}

std::map<std::string, torch::Tensor> reference_training(const Data& data) {
  torch::manual_seed(1);
  auto model = std::make_shared<ToyModel>();
  std::vector<torch::Tensor> decayed, plain;
  for (auto& item : model->named_parameters()) {
    (ToyModel::weight_decay(item.key()) ? decayed : plain).push_back(item.value());
  }
  const OptimizerOptions o = optimizer_options();
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decayed, std::make_unique<torch::optim::AdamWOptions>(
                                   torch::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay)));
  groups.emplace_back(plain, std::make_unique<torch::optim::AdamWOptions>(
                                 torch::optim::AdamWOptions(o.lr).weight_decay(0.0)));
  torch::optim::AdamW optimizer(groups, torch::optim::AdamWOptions(o.lr));
  for (int step = 0; step < kSteps; ++step) {
    const double lr = scheduled_lr(schedule_options(), o.lr, step, kSteps);
    for (auto& group : optimizer.param_groups()) {
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    }
    optimizer.zero_grad();
    torch::nn::functional::cross_entropy(model->forward(data.inputs[step]), data.labels[step])
        .backward();
    torch::nn::utils::clip_grad_norm_(model->parameters(), kMaxNorm);
    optimizer.step();
  }
  std::map<std::string, torch::Tensor> out;
  for (auto& item : model->named_parameters()) out[item.key()] = item.value().detach().clone();
  return out;
}

// (micro-steps, offload)
class Zero3EngineTest : public ::testing::TestWithParam<std::tuple<int, bool>> {
 protected:
  void SetUp() override { at::set_num_threads(1); }
  MpiComm comm;
};

TEST_P(Zero3EngineTest, MatchesSingleProcessTraining) {
  const auto [accum, offload] = GetParam();
  const Data data = make_data();
  const auto expected = reference_training(data);

  torch::manual_seed(1);
  auto model = std::make_shared<ToyModel>();
  Zero3Engine engine(model->trained_units(), ToyModel::weight_decay, comm,
                     optimizer_options(offload));
  model->runner = &engine;
  ASSERT_EQ(kGlobalBatch % (accum * comm.size()), 0) << "the batch must split evenly";
  const int local = kGlobalBatch / (accum * comm.size());
  for (int step = 0; step < kSteps; ++step) {
    engine.begin_step();
    for (int micro = 0; micro < accum; ++micro) {
      if (micro > 0) engine.begin_micro_step();
      const int64_t first = (micro * comm.size() + comm.rank()) * local;
      torch::Tensor loss = torch::nn::functional::cross_entropy(
          model->forward(data.inputs[step].narrow(0, first, local)),
          data.labels[step].narrow(0, first, local));
      (loss / accum).backward();
    }
    const double lr = scheduled_lr(schedule_options(), optimizer_options().lr, step, kSteps);
    const Zero3StepResult result = engine.step(lr, kMaxNorm);
    EXPECT_FALSE(result.skipped);
    EXPECT_GT(result.grad_norm, 0.0);
  }
  EXPECT_EQ(engine.optimizer_step(), kSteps);
  const auto actual = engine.full_parameters();
  ASSERT_EQ(actual.size(), expected.size());
  for (const auto& [name, want] : expected) {
    ASSERT_TRUE(actual.count(name)) << name;
    const torch::Tensor& got = actual.at(name);
    ASSERT_EQ(got.sizes(), want.sizes()) << name;
    const double scale = std::max(1.0, want.abs().max().item<double>());
    EXPECT_LE((got - want).abs().max().item<double>(), 1e-5 * scale) << name;
  }
  // Training moved the parameters (the comparison is not vacuous).
  torch::manual_seed(1);
  ToyModel initial;
  EXPECT_GT((expected.at("block1.weight") - initial.layers[1]->weight).abs().max().item<double>(),
            1e-3);
}

INSTANTIATE_TEST_SUITE_P(AccumulationAndOffload, Zero3EngineTest,
                         ::testing::Combine(::testing::Values(1, 2), ::testing::Bool()));

TEST(Zero3Memory, StateIsTwelveBytesPerSliceElement) {
  MpiComm comm;
  torch::manual_seed(1);
  auto model = std::make_shared<ToyModel>();
  int64_t expected_slices = 0;
  for (const auto& unit : model->trained_units()) {
    int64_t numel = 0;
    for (const auto& [name, param] : unit.params) numel += param.numel();
    expected_slices += (numel + comm.size() - 1) / comm.size();  // ceil(P_unit / N)
  }
  Zero3Engine engine(model->trained_units(), ToyModel::weight_decay, comm, optimizer_options());
  const Zero3Memory memory = engine.memory();
  EXPECT_EQ(memory.master_bytes + memory.moment_bytes, 12 * expected_slices);
  EXPECT_EQ(memory.grad_bytes, 4 * expected_slices);
  EXPECT_FALSE(memory.offloaded);
  EXPECT_EQ(memory.device_copy_bytes, 0);
  // The model keeps no storage for trained parameters outside a step.
  for (const auto& unit : model->trained_units()) {
    for (const auto& [name, param] : unit.params) EXPECT_EQ(param.numel(), 0) << name;
  }
  torch::manual_seed(1);
  auto offloaded_model = std::make_shared<ToyModel>();
  Zero3Engine offloaded(offloaded_model->trained_units(), ToyModel::weight_decay, comm,
                        optimizer_options(/*offload=*/true));
  const Zero3Memory offloaded_memory = offloaded.memory();
  EXPECT_TRUE(offloaded_memory.offloaded);
  EXPECT_EQ(offloaded_memory.master_bytes + offloaded_memory.moment_bytes, 12 * expected_slices);
  EXPECT_EQ(offloaded_memory.device_copy_bytes, 4 * expected_slices);  // fp32 compute
}

TEST(Zero3Traffic, TwoGathersAndOneReduceScatterPerUnitCall) {
  MpiComm comm;
  torch::manual_seed(1);
  auto model = std::make_shared<ToyModel>();
  Zero3Engine engine(model->trained_units(), ToyModel::weight_decay, comm, optimizer_options());
  model->runner = &engine;
  const FlatLayout& layout = engine.layout();
  const int accum = 2;
  torch::Tensor input = torch::randn({4, ToyModel::kDim});
  torch::Tensor labels = torch::randint(0, ToyModel::kClasses, {4});
  for (int step = 0; step < 2; ++step) {  // the second step runs with the learnt prefetch order
    const Zero3Traffic before = engine.traffic();
    const int64_t peak_before = engine.memory().gathered_peak_bytes;
    engine.begin_step();
    for (int micro = 0; micro < accum; ++micro) {
      if (micro > 0) engine.begin_micro_step();
      torch::nn::functional::cross_entropy(model->forward(input), labels).backward();
    }
    engine.step(1e-3, 1.0);
    const Zero3Traffic after = engine.traffic();
    int64_t layer_bytes = 0;
    for (size_t b = 0; b + 1 < layout.units.size(); ++b)
      layer_bytes += 4 * layout.units[b].padded_numel;
    const int64_t rest_bytes = 4 * layout.units.back().padded_numel;
    EXPECT_EQ(after.gather_bytes - before.gather_bytes, accum * 2 * layer_bytes + rest_bytes);
    EXPECT_EQ(after.reduce_scatter_bytes - before.reduce_scatter_bytes,
              accum * layer_bytes + rest_bytes);
    EXPECT_EQ(after.gathers - before.gathers, accum * 2 * ToyModel::kUnits + 1);
    // At most rest plus two units are gathered at once.
    int64_t biggest = 0;
    for (size_t b = 0; b + 1 < layout.units.size(); ++b)
      biggest = std::max(biggest, 4 * layout.units[b].padded_numel);
    EXPECT_LE(std::max(peak_before, engine.memory().gathered_peak_bytes), rest_bytes + 2 * biggest);
  }
}

TEST(Zero3Step, SkipLeavesParametersUnchanged) {
  MpiComm comm;
  torch::manual_seed(1);
  auto model = std::make_shared<ToyModel>();
  Zero3Engine engine(model->trained_units(), ToyModel::weight_decay, comm, optimizer_options());
  model->runner = &engine;
  const auto before = engine.full_parameters();
  engine.begin_step();
  torch::Tensor logits = model->forward(torch::randn({2, ToyModel::kDim}));
  (logits.sum() * std::numeric_limits<float>::infinity()).backward();
  const Zero3StepResult result = engine.step(1e-3, 1.0);
  EXPECT_TRUE(result.skipped);
  EXPECT_EQ(engine.optimizer_step(), 0);
  const auto after = engine.full_parameters();
  for (const auto& [name, value] : before) EXPECT_TRUE(torch::equal(value, after.at(name))) << name;
}

}  // namespace
}  // namespace flam::train
