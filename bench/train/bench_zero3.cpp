// Step time of ZeRO-3 (Zero3Engine) against replicated data parallelism (every rank holds the
// whole model and optimizer, gradients all-reduced) at the same global batch, on the ranks of
// this MPI job (run.sh starts 2). Both run in this process, one after the other, on the same
// model shape; rank 0 prints the median step times and their ratio.
//
// Model: kBlocks residual blocks x + gelu(W x + b) of width kDim (trained, sharded by ZeRO-3),
// a trained head to kClasses; cross-entropy loss.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "core/mpi_comm.h"
#include "core/world.h"
#include "train/tensor_comm.h"
#include "train/zero3/zero3_engine.h"

namespace {

constexpr int kDim = 512;
constexpr int kBlocks = 6;
constexpr int kClasses = 16;
constexpr int kGlobalBatch = 64;
constexpr int kSteps = 12;
constexpr int kWarmup = 2;

struct Net : torch::nn::Module {
  Net() {
    for (int i = 0; i < kBlocks; ++i) {
      layers.push_back(register_module("block" + std::to_string(i), torch::nn::Linear(kDim, kDim)));
    }
    head = register_module("head", torch::nn::Linear(kDim, kClasses));
  }
  torch::Tensor forward(torch::Tensor x) {
    for (int i = 0; i < kBlocks; ++i) {
      auto fn = [this, i](const std::vector<torch::Tensor>& in) {
        return in[0] + torch::gelu(layers[i](in[0]));
      };
      x = runner ? runner->run(i, fn, {x}) : fn({x});
    }
    return head(x);
  }
  std::vector<flam::model::ParamUnit> trained_units() {
    std::vector<flam::model::ParamUnit> blocks;
    for (int i = 0; i < kBlocks; ++i) {
      const std::string name = "block" + std::to_string(i);
      blocks.push_back(
          {name, {{name + ".weight", layers[i]->weight}, {name + ".bias", layers[i]->bias}}});
    }
    blocks.push_back({"rest", {{"head.weight", head->weight}, {"head.bias", head->bias}}});
    return blocks;
  }
  std::vector<torch::nn::Linear> layers;
  torch::nn::Linear head{nullptr};
  flam::model::UnitRunner* runner = nullptr;
};

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

double seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double bench_zero3(flam::Comm& comm, const torch::Tensor& x, const torch::Tensor& y) {
  torch::manual_seed(1);
  auto net = std::make_shared<Net>();
  flam::train::OptimizerOptions options;
  flam::train::Zero3Engine engine(
      net->trained_units(), [](const std::string&) { return true; }, comm, options);
  net->runner = &engine;
  std::vector<double> times;
  for (int step = 0; step < kSteps; ++step) {
    comm.barrier();
    const auto start = std::chrono::steady_clock::now();
    engine.begin_step();
    torch::nn::functional::cross_entropy(net->forward(x), y).backward();
    engine.step(1e-4, 1.0);
    if (step >= kWarmup) times.push_back(seconds(start));
  }
  return median(times);
}

double bench_replicated(flam::Comm& comm, const torch::Tensor& x, const torch::Tensor& y) {
  torch::manual_seed(1);
  auto net = std::make_shared<Net>();
  torch::optim::AdamW optimizer(net->parameters(), torch::optim::AdamWOptions(1e-4));
  std::vector<double> times;
  for (int step = 0; step < kSteps; ++step) {
    comm.barrier();
    const auto start = std::chrono::steady_clock::now();
    optimizer.zero_grad();
    torch::nn::functional::cross_entropy(net->forward(x), y).backward();
    std::vector<torch::Tensor> grads;
    for (auto& p : net->parameters()) grads.push_back(p.grad().reshape(-1));
    torch::Tensor flat = torch::cat(grads);
    flam::train::all_reduce(comm, flat, flam::ReduceOp::kAvg);
    int64_t offset = 0;
    for (auto& p : net->parameters()) {
      p.mutable_grad().copy_(flat.narrow(0, offset, p.numel()).view_as(p));
      offset += p.numel();
    }
    torch::nn::utils::clip_grad_norm_(net->parameters(), 1.0);
    optimizer.step();
    if (step >= kWarmup) times.push_back(seconds(start));
  }
  return median(times);
}

}  // namespace

int main(int argc, char** argv) {
  flam::World::init(&argc, &argv);
  at::set_num_threads(1);
  {
    flam::MpiComm comm;
    const int local = kGlobalBatch / comm.size();
    torch::manual_seed(100 + comm.rank());
    torch::Tensor x = torch::randn({local, kDim});
    torch::Tensor y = torch::randint(0, kClasses, {local});
    const double replicated = bench_replicated(comm, x, y);
    const double sharded = bench_zero3(comm, x, y);
    if (comm.rank() == 0) {
      std::printf("train: %d ranks, %d blocks of %dx%d, global batch %d\n", comm.size(), kBlocks,
                  kDim, kDim, kGlobalBatch);
      std::printf("  replicated DP (all-reduce) step  %.2f ms\n", replicated * 1e3);
      std::printf("  ZeRO-3 sharded step              %.2f ms\n", sharded * 1e3);
      std::printf(
          "  ratio sharded / replicated       %.2f x (ZeRO-3 moves 1.5x the bytes and "
          "recomputes each block)\n",
          sharded / replicated);
    }
  }
  flam::World::finalize();
  return 0;
}
