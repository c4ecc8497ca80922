// Precision (train/precision.h) on real MPI ranks: under bf16 compute the Zero3Engine's fp32
// master is the fp32 init bitwise (issue #16.3: the model used to be cast to bf16 first, so the
// master started bf16-rounded), while the frozen parameters are in the compute dtype.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <string>

#include "core/mpi_comm.h"
#include "train/precision.h"
#include "train/weights/model_weights.h"
#include "train/zero3/zero3_engine.h"

namespace flam::train {
namespace {

model::ModelOptions tiny() {
  model::ModelOptions o;
  o.vision.image_size = 16;
  o.vision.patch_size = 8;
  o.vision.width = 16;
  o.vision.layers = 1;
  o.vision.heads = 2;
  o.vision.mlp_dim = 32;
  o.lang.vocab_size = 64;
  o.lang.dim = 32;
  o.lang.layers = 4;
  o.lang.heads = 2;
  o.lang.ffn_dim = 64;
  o.lang.max_seq_len = 64;
  o.perceiver.depth = 2;
  o.perceiver.heads = 2;
  o.perceiver.dim_head = 8;
  o.perceiver.num_latents = 4;
  o.perceiver.ff_mult = 2;
  o.xattn.every_n_layers = 2;
  o.xattn.heads = 2;
  o.xattn.dim_head = 8;
  o.xattn.ff_mult = 2;
  return o;
}

TEST(Precision, Bf16ComputeKeepsTheFp32InitAsTheMasterBitwise) {
  MpiComm comm(MPI_COMM_WORLD);
  const Precision precision{torch::kBFloat16};
  model::Flamingo model = weights::build_pretrained(tiny(), /*seed=*/7);
  std::map<std::string, torch::Tensor> init;  // the fp32 values the master must start from
  for (const model::ParamUnit& unit : model->trained_units()) {
    for (const auto& [name, param] : unit.params) init[name] = param.detach().clone();
  }
  ASSERT_FALSE(init.empty());

  place_model(*model, torch::kCPU, precision);
  for (const auto& item : model->named_parameters()) {
    if (init.count(item.key()) == 0) {
      EXPECT_EQ(item.value().scalar_type(), torch::kBFloat16) << "frozen " << item.key();
    }
  }
  Zero3Engine engine(
      model->trained_units(), [&](const std::string& name) { return model->weight_decay(name); },
      comm, OptimizerOptions{}, precision.compute);
  const std::map<std::string, torch::Tensor> master = engine.full_parameters();

  ASSERT_EQ(master.size(), init.size());
  bool rounding_would_show = false;  // bf16 rounding changes some value, so the test can fail
  for (const auto& [name, want] : init) {
    const torch::Tensor& got = master.at(name);
    EXPECT_EQ(got.scalar_type(), torch::kFloat) << name;
    EXPECT_TRUE(torch::equal(got.reshape(want.sizes()), want)) << name << " is not bitwise fp32";
    rounding_would_show =
        rounding_would_show || !torch::equal(want.to(torch::kBFloat16).to(torch::kFloat), want);
  }
  EXPECT_TRUE(rounding_would_show);
}

}  // namespace
}  // namespace flam::train
