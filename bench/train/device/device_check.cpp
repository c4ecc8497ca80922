// device_check: the GPU checks of scripts/device-check.sh, also runnable on CPU.
//   device_check parity [cpu|cuda] [single|nccl]
//                                   Flamingo at tiny widths: K steps of Zero3Engine (one rank,
//                                   fp32, over SingleRankComm or, where the build found NCCL,
//                                   NcclComm) == plain training with torch AdamW +
//                                   clip_grad_norm_ on the same batches. Exit 1 if not.
//   device_check time [cuda|cpu]    OpenFlamingo-9B shapes (CLIP ViT-L/14, LLaMA-7B, xattn every
//                                   4th layer, 6-layer Perceiver) with random frozen weights, bf16
//                                   compute, fp32 master weights; LAION B x 32 tokens + MMC4
//                                   B/2 x 256 tokens with 6 images per step, B from 64 down to
//                                   the largest that fits; prints tokens/s, step time and MFU.
//
// FLOPs per step (model FLOPs, recompute not counted), T = text tokens, I = images:
//   vision encoder (frozen, forward only):       2 * P_vit * I * 257          (256 patches + cls)
//   perceiver (trained: fwd + 2x bwd):            6 * P_perceiver * I * 64     (64 latents)
//   LLaMA layers (frozen: fwd + input-grad bwd):  4 * P_llama_layers * T
//   LLaMA self-attention scores:                  3 * 4 * L * d * S * T        (S = seq len)
//   cross-attention blocks (trained):             6 * P_xattn * T
//   lm_head (frozen: fwd + input-grad bwd):       4 * P_lm_head * T
// MFU = FLOPs per step / step time / peak (989e12 bf16 dense on H100 SXM and H200).
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/check.h"
#if FLAM_DEVICE_NCCL
#include "core/nccl/nccl_comm.h"
#endif
#include "train/model/flamingo.h"
#include "train/optim/schedule.h"
#include "train/zero3/single_rank_comm.h"
#include "train/zero3/zero3_engine.h"

namespace {

using flam::model::Flamingo;
using flam::model::ModelOptions;

struct Inputs {
  torch::Tensor images, ids, mask, labels;
};

// B rows of T tokens; n_images <image> tokens per row at evenly spaced positions (1, ...), each
// followed by text; ids uniform over the base vocabulary.
Inputs make_inputs(const ModelOptions& o, int64_t B, int64_t T, int64_t n_images,
                   torch::Device device, torch::Dtype dtype) {
  const auto special = flam::model::special_tokens(o);
  Inputs in;
  in.images =
      torch::randn({B, n_images, 1, 3, o.vision.image_size, o.vision.image_size}).to(device, dtype);
  in.ids = torch::randint(0, o.lang.vocab_size, {B, T}, torch::kLong);
  const int64_t stride = T / n_images;
  for (int64_t i = 0; i < n_images; ++i) {
    in.ids.index_put_({torch::indexing::Slice(), 1 + i * stride}, special.image);
    if (i > 0) in.ids.index_put_({torch::indexing::Slice(), i * stride}, special.endofchunk);
  }
  in.labels = in.ids.clone();
  in.mask = torch::ones({B, T}, torch::kLong);
  in.ids = in.ids.to(device);
  in.labels = in.labels.to(device);
  in.mask = in.mask.to(device);
  return in;
}

ModelOptions tiny_options() {
  ModelOptions o;
  o.vision.image_size = 32;
  o.vision.patch_size = 8;
  o.vision.width = 32;
  o.vision.layers = 2;
  o.vision.heads = 2;
  o.vision.mlp_dim = 64;
  o.lang.vocab_size = 256;
  o.lang.dim = 64;
  o.lang.layers = 4;
  o.lang.heads = 4;
  o.lang.ffn_dim = 128;
  o.lang.max_seq_len = 128;
  o.perceiver.depth = 2;
  o.perceiver.heads = 2;
  o.perceiver.dim_head = 16;
  o.perceiver.num_latents = 8;
  o.perceiver.ff_mult = 2;
  o.xattn.every_n_layers = 2;
  o.xattn.heads = 2;
  o.xattn.dim_head = 16;
  o.xattn.ff_mult = 2;
  return o;
}

// The Comm for ZeRO-3 on one rank: SingleRankComm, or NcclComm (one rank, bootstrapped over a
// SingleRankComm) where this build has NCCL.
std::unique_ptr<flam::Comm> make_comm(torch::Device device, const std::string& backend,
                                      flam::Comm& bootstrap) {
#if FLAM_DEVICE_NCCL
  if (backend == "nccl") return std::make_unique<flam::NcclComm>(bootstrap, device.index());
#else
  (void)bootstrap;
#endif
  FLAM_CHECK(backend == "single") << "backend " << backend << " is not in this build";
  return std::make_unique<flam::train::SingleRankComm>(device);
}

int parity(torch::Device device, const std::string& backend) {
  const ModelOptions o = tiny_options();
  const int kSteps = 3;
  flam::train::OptimizerOptions opt;
  opt.lr = 1e-2;
  const double max_norm = 0.5;
  torch::manual_seed(3);
  std::vector<Inputs> batches;
  for (int s = 0; s < kSteps; ++s)
    batches.push_back(make_inputs(o, 4, 24, 2, device, torch::kFloat));

  // Reference: plain single-device training.
  torch::manual_seed(1);
  Flamingo plain(o);
  plain->to(device);
  std::vector<torch::Tensor> decayed, other, all;
  std::vector<std::string> names;
  for (const auto& block : plain->trained_units()) {
    for (const auto& [name, p] : block.params) {
      (plain->weight_decay(name) ? decayed : other).push_back(p);
      all.push_back(p);
      names.push_back(name);
    }
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decayed, std::make_unique<torch::optim::AdamWOptions>(
                                   torch::optim::AdamWOptions(opt.lr).weight_decay(0.1)));
  groups.emplace_back(other, std::make_unique<torch::optim::AdamWOptions>(
                                 torch::optim::AdamWOptions(opt.lr).weight_decay(0.0)));
  torch::optim::AdamW adamw(groups, torch::optim::AdamWOptions(opt.lr));
  for (int s = 0; s < kSteps; ++s) {
    adamw.zero_grad();
    const Inputs& b = batches[s];
    flam::model::FlamingoImpl::loss(plain->forward(b.images, b.ids, b.mask), b.labels).backward();
    torch::nn::utils::clip_grad_norm_(all, max_norm);
    adamw.step();
  }

  // ZeRO-3 on one rank through the UnitRunner seam.
  torch::manual_seed(1);
  Flamingo sharded(o);
  sharded->to(device);
  flam::train::SingleRankComm bootstrap(torch::kCPU);
  const std::unique_ptr<flam::Comm> comm = make_comm(device, backend, bootstrap);
  flam::train::Zero3Engine engine(
      sharded->trained_units(), [&](const std::string& n) { return sharded->weight_decay(n); },
      *comm, opt);
  sharded->set_unit_runner(&engine);
  for (int s = 0; s < kSteps; ++s) {
    engine.begin_step();
    const Inputs& b = batches[s];
    flam::model::FlamingoImpl::loss(sharded->forward(b.images, b.ids, b.mask), b.labels).backward();
    engine.step(opt.lr, max_norm);
  }
  const auto got = engine.full_parameters();
  double worst = 0.0;
  std::string worst_name;
  for (size_t i = 0; i < all.size(); ++i) {
    const torch::Tensor want = all[i].detach().to(torch::kCPU, torch::kFloat);
    const double scale = std::max(1.0, want.abs().max().item<double>());
    const double diff = (got.at(names[i]) - want).abs().max().item<double>() / scale;
    if (diff > worst) {
      worst = diff;
      worst_name = names[i];
    }
  }
  const bool ok = worst <= 1e-5;
  std::printf(
      "parity on %s (%s): %zu trained tensors, %d steps, max relative diff %.3g (%s) -> %s\n",
      device.str().c_str(), comm->backend(), all.size(), kSteps, worst, worst_name.c_str(),
      ok ? "OK" : "FAIL");
  return ok ? 0 : 1;
}

int64_t count(Flamingo& model, const std::string& prefix, const std::string& contains = "") {
  int64_t n = 0;
  for (const auto& item : model->named_parameters()) {
    if (item.key().rfind(prefix, 0) == 0 && item.key().find(contains) != std::string::npos) {
      n += item.value().numel();
    }
  }
  return n;
}

int time_of9b(torch::Device device) {
  const ModelOptions o;  // the defaults are OpenFlamingo-9B's shapes
  const torch::Dtype dtype = device.is_cuda() ? torch::kBFloat16 : torch::kFloat;
  torch::manual_seed(1);
  auto t0 = std::chrono::steady_clock::now();
  Flamingo model(o);
  model->to(device, dtype);
  flam::train::SingleRankComm comm(device);
  flam::train::OptimizerOptions opt;
  flam::train::Zero3Engine engine(
      model->trained_units(), [&](const std::string& n) { return model->weight_decay(n); }, comm,
      opt, dtype);
  model->set_unit_runner(&engine);
  std::printf("model built in %.1f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());

  const double p_vit = count(model, "vision_encoder.");
  const double p_perceiver = count(model, "perceiver.");
  const double p_xattn = count(model, "lang_encoder.gated_cross_attn_layers.");
  const double p_layers = count(model, "lang_encoder.model.layers.");
  const double p_head = count(model, "lang_encoder.lm_head.");
  std::printf("parameters: vit %.3g, perceiver %.3g, xattn %.3g, llama layers %.3g, lm_head %.3g\n",
              p_vit, p_perceiver, p_xattn, p_layers, p_head);

  for (int64_t B : {64, 32, 16, 8, 4, 2}) {
    const int64_t B_mmc4 = B / 2, n_img = 6;
    try {
      const Inputs laion = make_inputs(o, B, 32, 1, device, dtype);
      const Inputs mmc4 = make_inputs(o, B_mmc4, 256, n_img, device, dtype);
      const double T = B * 32.0 + B_mmc4 * 256.0;
      const double I = B + B_mmc4 * n_img;
      const double L = o.lang.layers, d = o.lang.dim;
      const double flops = 2 * p_vit * I * 257 + 6 * p_perceiver * I * 64 + 4 * p_layers * T +
                           12 * L * d * (B * 32.0 * 32.0 + B_mmc4 * 256.0 * 256.0) +
                           6 * p_xattn * T + 4 * p_head * T;
      std::vector<double> times;
      for (int step = 0; step < 6; ++step) {
        if (device.is_cuda()) torch::cuda::synchronize();
        auto start = std::chrono::steady_clock::now();
        engine.begin_step();
        torch::Tensor loss =
            flam::model::FlamingoImpl::loss(model->forward(laion.images, laion.ids, laion.mask),
                                            laion.labels) +
            flam::model::FlamingoImpl::loss(model->forward(mmc4.images, mmc4.ids, mmc4.mask),
                                            mmc4.labels);
        loss.backward();
        engine.step(1e-4, 1.0);
        if (device.is_cuda()) torch::cuda::synchronize();
        if (step >= 2) {
          times.push_back(
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        }
      }
      std::sort(times.begin(), times.end());
      const double t = times[times.size() / 2];
      std::printf("of-9b step: LAION %lld x 32 + MMC4 %lld x 256 (6 images): %.0f tokens\n",
                  static_cast<long long>(B), static_cast<long long>(B_mmc4), T);
      std::printf(
          "  step time %.3f s, %.0f tokens/s, %.3g model FLOPs/step, %.1f TFLOP/s, "
          "MFU %.1f%% of 989 TFLOP/s\n",
          t, T / t, flops, flops / t / 1e12, 100.0 * flops / t / 989e12);
      const auto mem = engine.memory();
      std::printf("  zero3 per rank: master %.2f GB, moments %.2f GB, gathered peak %.2f GB\n",
                  mem.master_bytes / 1e9, mem.moment_bytes / 1e9, mem.gathered_peak_bytes / 1e9);
      return 0;
    } catch (const c10::Error& e) {
      const std::string what = e.what();
      if (what.find("out of memory") == std::string::npos) throw;
      std::printf("batch %lld: out of memory, trying smaller\n", static_cast<long long>(B));
      engine.step(0.0, 0.0, /*skip=*/true);
    }
  }
  std::printf("no batch fits\n");
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: device_check parity|time [cpu|cuda] [single|nccl]\n");
    return 2;
  }
  const std::string what = argv[1];
  const std::string where = argc > 2 ? argv[2] : (torch::cuda::is_available() ? "cuda" : "cpu");
  const torch::Device device = where == "cuda" ? torch::Device(torch::kCUDA, 0) : torch::kCPU;
  at::globalContext().setAllowTF32CuBLAS(false);
  at::globalContext().setAllowTF32CuDNN(false);
  if (what == "parity") return parity(device, argc > 3 ? argv[3] : "single");
  if (what == "time") return time_of9b(device);
  std::fprintf(stderr, "unknown check %s\n", what.c_str());
  return 2;
}
