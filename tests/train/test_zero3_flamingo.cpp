// ZeRO-3 on the real Flamingo (tiny widths) through its UnitRunner seam, on 1..3 real MPI ranks:
// K steps with the global batch split across the ranks end with the trained parameters that
// plain single-process training (torch AdamW with OpenFlamingo's decay groups + clip_grad_norm_)
// reaches on the whole batch. Every rank runs the same units even when its rows have no image.
// With train.shard_frozen the frozen units go through the engine too and training is unchanged.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/mpi_comm.h"
#include "train/model/flamingo.h"
#include "train/zero3/frozen_units.h"
#include "train/zero3/zero3_engine.h"

namespace flam::train {
namespace {

using model::Flamingo;
using model::FlamingoImpl;

constexpr int kSteps = 3;
constexpr int kRows = 6;  // global batch: divisible by 1, 2 and 3 ranks
constexpr int kSeq = 20;
constexpr double kMaxNorm = 0.5;

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

struct Batch {
  torch::Tensor images, ids, mask, labels;
  Batch rows(int64_t first, int64_t n) const {
    return {images.narrow(0, first, n), ids.narrow(0, first, n), mask.narrow(0, first, n),
            labels.narrow(0, first, n)};
  }
};

// Two image slots per row; rows 0 and 3 have no <image> token at all.
std::vector<Batch> make_batches(const model::ModelOptions& o) {
  torch::manual_seed(11);
  const auto special = model::special_tokens(o);
  std::vector<Batch> out;
  for (int s = 0; s < kSteps; ++s) {
    Batch b;
    b.images = torch::randn({kRows, 2, 1, 3, 16, 16});
    b.ids = torch::randint(0, o.lang.vocab_size, {kRows, kSeq});
    for (int r = 0; r < kRows; ++r) {
      if (r % 3 == 0) continue;
      b.ids[r][1] = special.image;
      b.ids[r][9] = special.endofchunk;
      b.ids[r][10] = special.image;
    }
    b.labels = b.ids.clone();
    b.mask = torch::ones({kRows, kSeq}, torch::kLong);
    b.mask[kRows - 1].narrow(0, kSeq - 4, 4).zero_();
    b.labels[kRows - 1].narrow(0, kSeq - 4, 4).fill_(-100);
    out.push_back(b);
  }
  return out;
}

// Adam divides each gradient by its own running RMS, so an element whose gradient is ~0 moves by
// up to lr whatever its sign: float rounding of the split loss can flip such a sign. lr 1e-3
// keeps those flips within the 1e-5 tolerance while the parameters still move by ~3e-3.
OptimizerOptions optimizer() {
  OptimizerOptions o;
  o.lr = 1e-3;
  return o;
}

std::map<std::string, torch::Tensor> reference(const std::vector<Batch>& batches) {
  torch::manual_seed(1);
  Flamingo net(tiny());
  std::vector<torch::Tensor> decayed, other, all;
  std::vector<std::string> names;
  for (const auto& unit : net->trained_units()) {
    for (const auto& [name, p] : unit.params) {
      (net->weight_decay(name) ? decayed : other).push_back(p);
      all.push_back(p);
      names.push_back(name);
    }
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decayed, std::make_unique<torch::optim::AdamWOptions>(
                                   torch::optim::AdamWOptions(optimizer().lr).weight_decay(0.1)));
  groups.emplace_back(other, std::make_unique<torch::optim::AdamWOptions>(
                                 torch::optim::AdamWOptions(optimizer().lr).weight_decay(0.0)));
  torch::optim::AdamW adamw(groups, torch::optim::AdamWOptions(optimizer().lr));
  for (const Batch& b : batches) {
    adamw.zero_grad();
    FlamingoImpl::loss(net->forward(b.images, b.ids, b.mask), b.labels).backward();
    torch::nn::utils::clip_grad_norm_(all, kMaxNorm);
    adamw.step();
  }
  std::map<std::string, torch::Tensor> out;
  for (size_t i = 0; i < all.size(); ++i) out[names[i]] = all[i].detach().clone();
  return out;
}

// The trained parameters after kSteps ZeRO-3 steps on this rank's rows of each global batch,
// with the frozen weights replicated or sharded (train.shard_frozen). `check` runs on the engine
// and model after the steps.
std::map<std::string, torch::Tensor> train_zero3(
    MpiComm& comm, bool shard_frozen,
    const std::function<void(Zero3Engine&, FlamingoImpl&)>& check = nullptr) {
  const auto batches = make_batches(tiny());
  torch::manual_seed(1);
  Flamingo net(tiny());
  Zero3Engine engine(
      net->trained_units(), [&](const std::string& n) { return net->weight_decay(n); }, comm,
      optimizer(), at::kFloat, shard_frozen ? frozen_units(*net) : std::vector<model::ParamUnit>{});
  net->set_unit_runner(&engine);
  const int local = kRows / comm.size();
  for (const Batch& global : batches) {
    // The loss is a mean over target tokens: weight this rank's mean by its share of them, so
    // the average over ranks is the global mean (as the reference computes it).
    const Batch b = global.rows(comm.rank() * local, local);
    const double total = global.labels.narrow(1, 1, kSeq - 1).ne(-100).sum().item<double>();
    const double mine = b.labels.narrow(1, 1, kSeq - 1).ne(-100).sum().item<double>();
    engine.begin_step();
    torch::Tensor loss = FlamingoImpl::loss(net->forward(b.images, b.ids, b.mask), b.labels);
    (loss * (mine * comm.size() / total)).backward();
    EXPECT_FALSE(engine.step(optimizer().lr, kMaxNorm).skipped);
  }
  if (check) check(engine, *net);
  return engine.full_parameters();
}

void expect_close(const std::map<std::string, torch::Tensor>& actual,
                  const std::map<std::string, torch::Tensor>& expected, double tolerance) {
  ASSERT_EQ(actual.size(), expected.size());
  for (const auto& [name, want] : expected) {
    const double scale = std::max(1.0, want.abs().max().item<double>());
    EXPECT_LE((actual.at(name) - want).abs().max().item<double>(), tolerance * scale) << name;
  }
}

TEST(Zero3Flamingo, MatchesSingleProcessTraining) {
  at::set_num_threads(1);
  MpiComm comm;
  expect_close(train_zero3(comm, false), reference(make_batches(tiny())), 1e-5);
}

// train.shard_frozen: every frozen unit of the real model (CLIP embeddings and resblocks, token
// embedding, decoder layers, head) goes through the engine; each rank holds exactly one
// ceil(n_u / N)-element fp32 slice per unit and the parameters hold no storage between calls;
// training ends where the replicated run ends (1e-6), and a rank whose batch has no images still
// takes part in every gather (a forward with images on rank 0 only completes).
TEST(Zero3Flamingo, ShardedFrozenWeightsTrainAsReplicated) {
  at::set_num_threads(1);
  MpiComm comm;
  const auto replicated = train_zero3(comm, false);
  const auto sharded = train_zero3(comm, true, [&](Zero3Engine& engine, FlamingoImpl& net) {
    Flamingo whole(tiny());  // the unit sizes, from a model that still holds its weights
    const auto units = frozen_units(*whole);
    EXPECT_EQ(units.size(), 3u + static_cast<size_t>(tiny().vision.layers + tiny().lang.layers));
    int64_t want = 0;
    for (const auto& unit : units) {
      int64_t n = 0;
      for (const auto& [name, p] : unit.params) n += p.numel();
      want += (n + comm.size() - 1) / comm.size() * 4;
    }
    for (const auto& unit : frozen_units(net)) {
      for (const auto& [name, p] : unit.params)
        EXPECT_EQ(p.numel(), 0) << name << " keeps its storage between calls";
    }
    EXPECT_EQ(engine.memory().frozen_bytes, want);
    torch::NoGradGuard no_grad;
    const Batch b = make_batches(tiny())[0].rows(0, 2);
    engine.begin_step();
    auto logits = net.forward(comm.rank() == 0 ? b.images : torch::Tensor(), b.ids, b.mask);
    EXPECT_EQ(logits.size(0), 2);
    engine.step(0.0, 0.0, /*skip=*/true);
  });
  expect_close(sharded, replicated, 1e-6);
}

// train.checkpointing: none (every trained unit gathered for the step, run once, nothing
// recomputed), cross_attention (trained per-layer units recomputed in backward) and every_layer
// (decoder layers recomputed too), with frozen weights replicated or sharded: the same losses
// and the same averaged gradients of every trained parameter (1e-6, fp32) over two micro-steps,
// and the same parameters after two optimizer steps.
TEST(Zero3Flamingo, CheckpointingPoliciesGiveTheSameLossesAndGradients) {
  at::set_num_threads(1);
  MpiComm comm;
  const auto batches = make_batches(tiny());
  const int local = kRows / comm.size();
  struct Result {
    std::vector<double> losses;
    std::vector<std::map<std::string, torch::Tensor>> grads;
    std::map<std::string, torch::Tensor> params;
  };
  auto run = [&](Checkpointing policy, bool shard_frozen) {
    torch::manual_seed(1);
    Flamingo net(tiny());
    Zero3Engine engine(
        net->trained_units(), [&](const std::string& n) { return net->weight_decay(n); }, comm,
        optimizer(), at::kFloat,
        shard_frozen ? frozen_units(*net) : std::vector<model::ParamUnit>{}, policy,
        decoder_layer_units(tiny()));
    net->set_unit_runner(&engine);
    Result r;
    for (int step = 0; step < 2; ++step) {
      engine.begin_step();
      for (int micro = 0; micro < 2; ++micro) {
        if (micro > 0) engine.begin_micro_step();
        const Batch b = batches[(step * 2 + micro) % kSteps].rows(comm.rank() * local, local);
        torch::Tensor loss = FlamingoImpl::loss(net->forward(b.images, b.ids, b.mask), b.labels);
        r.losses.push_back(loss.item<double>());
        loss.backward();
      }
      r.grads.push_back(engine.full_gradients());
      EXPECT_FALSE(engine.step(optimizer().lr, kMaxNorm).skipped);
    }
    r.params = engine.full_parameters();
    return r;
  };
  const Result base = run(Checkpointing::kCrossAttention, false);
  for (bool shard_frozen : {false, true}) {
    for (Checkpointing policy :
         {Checkpointing::kNone, Checkpointing::kCrossAttention, Checkpointing::kEveryLayer}) {
      SCOPED_TRACE(std::string(checkpointing_name(policy)) + (shard_frozen ? " sharded" : ""));
      const Result r = run(policy, shard_frozen);
      ASSERT_EQ(r.losses.size(), base.losses.size());
      for (size_t i = 0; i < r.losses.size(); ++i)
        EXPECT_NEAR(r.losses[i], base.losses[i], 1e-6 * std::max(1.0, std::abs(base.losses[i])));
      for (size_t s = 0; s < r.grads.size(); ++s) expect_close(r.grads[s], base.grads[s], 1e-6);
      expect_close(r.params, base.params, 1e-6);
    }
  }
}

}  // namespace
}  // namespace flam::train
