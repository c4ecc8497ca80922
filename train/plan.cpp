#include "train/plan.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

#include "core/check.h"
#include "core/error.h"
#include "train/model/param_count.h"

namespace flam::train {
namespace {

constexpr int kGatheredUnits = 3;   // the unit in use and two prefetched (zero3_engine.cpp)
constexpr int kPendingReduces = 3;  // reduce-scatters in flight before the oldest is waited on

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

std::string count_text(int64_t n) {
  char buf[32];
  if (n >= 1'000'000'000) {
    std::snprintf(buf, sizeof(buf), "%.2f B", n / 1e9);
  } else if (n >= 1'000'000) {
    std::snprintf(buf, sizeof(buf), "%.1f M", n / 1e6);
  } else {
    std::snprintf(buf, sizeof(buf), "%lld", static_cast<long long>(n));
  }
  return buf;
}

struct UnitTotals {
  int64_t params = 0;       // sum of numel
  int64_t slice = 0;        // per-rank elements: sum of ceil(numel / ranks)
  int64_t largest = 0;      // largest per-layer unit ("rest" excluded), numel
  int64_t rest_padded = 0;  // "rest", padded to the ranks
  int64_t padded = 0;       // sum of padded numel (rest included)
};

UnitTotals totals(const std::vector<model::UnitCount>& units, int ranks, bool has_rest) {
  UnitTotals t;
  for (size_t u = 0; u < units.size(); ++u) {
    const int64_t n = units[u].params;
    t.params += n;
    t.slice += std::max<int64_t>(1, ceil_div(n, ranks));
    t.padded += std::max<int64_t>(1, ceil_div(n, ranks)) * ranks;
    if (has_rest && u + 1 == units.size()) {
      t.rest_padded = std::max<int64_t>(1, ceil_div(n, ranks)) * ranks;
    } else {
      t.largest = std::max(t.largest, n);
    }
  }
  return t;
}

// Bytes autograd keeps per token for one LLaMA decoder layer (train/model/layers.cpp): each
// RMSNorm keeps its fp32 upcast and its output in the compute dtype; q, k (after rotary), v and
// the attention output (SDPA keeps only a logsumexp beside them) and its merged copy; the MLP
// keeps gate, silu(gate), up and their product.
int64_t decoder_layer_bytes_per_token(const model::LanguageOptions& o, int e) {
  const int64_t d = o.dim, f = o.ffn_dim;
  return 2 * d * (4 + e) + 5 * d * e + 4 * f * e;
}

// One gated cross-attention block per token: the two LayerNorms' inputs and outputs, q, the
// attention output and its projection input, the tanh-gated branches and the 4x feed-forward.
int64_t xattn_bytes_per_token(const model::ModelOptions& o, int e) {
  const int64_t d = o.lang.dim, inner = int64_t{o.xattn.heads} * o.xattn.dim_head;
  return (4 * d + 2 * d * o.xattn.ff_mult) * e + 3 * inner * e;
}

}  // namespace

const char* checkpointing_name(Checkpointing policy) {
  switch (policy) {
    case Checkpointing::kNone:
      return "none";
    case Checkpointing::kCrossAttention:
      return "cross_attention";
    case Checkpointing::kEveryLayer:
      return "every_layer";
  }
  return "?";
}

std::vector<Checkpointing> checkpointing_policies(const std::string& value) {
  for (Checkpointing policy :
       {Checkpointing::kNone, Checkpointing::kCrossAttention, Checkpointing::kEveryLayer}) {
    if (value == checkpointing_name(policy)) return {policy};
  }
  FLAM_CHECK(value == "auto") << "train.checkpointing '" << value << "'";
  return {Checkpointing::kNone, Checkpointing::kCrossAttention, Checkpointing::kEveryLayer};
}

std::vector<PlanLine> activation_lines(const PlanInput& in, const PlanDataset& ds,
                                       Checkpointing policy, int64_t batch) {
  const model::ModelOptions& o = in.model;
  const int e = in.compute_bytes;
  const int64_t tokens = batch * ds.seq_len;
  const int64_t images = batch * ds.images_per_sequence;
  const int64_t d = o.lang.dim, w = o.vision.width;
  const int64_t grid = o.vision.image_size / o.vision.patch_size;
  const int64_t v = grid * grid, n = o.perceiver.num_latents;
  const int64_t vocab = int64_t{o.lang.vocab_size} + 3;
  const int64_t layers = o.lang.layers, xattn = o.lang.layers / o.xattn.every_n_layers;
  const int64_t p_inner = int64_t{o.perceiver.heads} * o.perceiver.dim_head;
  const std::string at = std::to_string(batch) + "x" + std::to_string(ds.seq_len) + " tokens";

  std::vector<PlanLine> lines;
  lines.push_back({"inputs",
                   images * 3 * o.vision.image_size * o.vision.image_size * 4 + tokens * 3 * 8,
                   std::to_string(images) + " images fp32, ids/mask/labels int64"});
  lines.push_back({"vision encoder (no grad)",
                   images * (v + 1) * (4 * w + 2 * o.vision.mlp_dim) * e,
                   "one ViT block's transient, " + std::to_string(images) + " images"});

  if (policy == Checkpointing::kNone) {  // every trained unit gathered for the step
    const UnitTotals trained = totals(model::trained_units(o), in.ranks, /*has_rest=*/true);
    const int64_t padded = trained.padded - trained.rest_padded;
    // One rank in fp32 views the master and gradient slices; otherwise gathered copies and
    // full gradients (fp32 buffers, or autograd's in the compute dtype).
    const int64_t held = in.ranks == 1 && e == 4 ? 0 : padded * (e + (e == 4 ? 4 : e));
    lines.push_back({"trained units held for the step", held,
                     count_text(padded) + " params gathered with their gradients"});
  }
  const int64_t perceiver_layer = images * ((v + n) * (2 * w + 3 * p_inner) + n * 10 * w) * e;
  const int64_t media = images * (v * w + n * w * o.perceiver.depth) * e;
  if (policy == Checkpointing::kNone) {
    lines.push_back({"perceiver (saved)", media + o.perceiver.depth * perceiver_layer,
                     std::to_string(o.perceiver.depth) + " layers"});
  } else {
    lines.push_back({"perceiver (inputs + recompute)", media + perceiver_layer,
                     "layer inputs saved, one layer rebuilt in backward"});
  }

  const int64_t x_token = xattn_bytes_per_token(o, e);
  if (policy == Checkpointing::kNone) {
    lines.push_back({"cross-attention (saved)", xattn * tokens * x_token,
                     std::to_string(xattn) + " blocks x " + at});
  } else {
    lines.push_back({"cross-attention (inputs + recompute)",
                     xattn * tokens * d * e + tokens * x_token,
                     "block inputs saved, one block rebuilt in backward"});
  }

  const int64_t l_token = decoder_layer_bytes_per_token(o.lang, e);
  if (in.shard_frozen) {  // the engine rebuilds a sharded frozen unit in backward, whatever policy
    lines.push_back({"decoder layers (inputs + recompute)",
                     layers * tokens * d * e + tokens * l_token,
                     "sharded frozen layers: inputs saved, one layer rebuilt in backward"});
  } else if (policy == Checkpointing::kEveryLayer) {
    lines.push_back({"decoder layers (inputs + recompute)",
                     layers * tokens * d * e + tokens * l_token,
                     "layer inputs saved, one layer rebuilt in backward"});
  } else {
    lines.push_back(
        {"decoder layers (saved)", layers * tokens * l_token,
         std::to_string(layers) + " layers x " + at + " x " + format_bytes(l_token) + "/token"});
  }
  lines.push_back(
      {"logits and loss", tokens * vocab * (2 * e + 12),
       "logits, fp32 log-softmax and its gradient, " + std::to_string(vocab) + " vocab"});
  lines.push_back({"activation gradients", 4 * tokens * d * e, "four [tokens, D] in flight"});
  return lines;
}

MemoryPlan plan_memory(const PlanInput& in) {
  FLAM_CHECK(in.ranks >= 1 && !in.policies.empty()) << "plan: ranks and policies";
  const int e = in.compute_bytes;
  const int N = in.ranks;
  const UnitTotals trained = totals(model::trained_units(in.model), N, /*has_rest=*/true);
  const UnitTotals frozen = totals(model::frozen_units(in.model), N, /*has_rest=*/false);

  MemoryPlan plan;
  const std::string ranks = std::to_string(N) + " ranks";
  if (in.shard_frozen) {
    plan.fixed.push_back(
        {"frozen weights (sharded)", frozen.slice * e,
         count_text(frozen.params) + " params / " + ranks + " x " + std::to_string(e) + " B"});
  } else {
    plan.fixed.push_back({"frozen weights (replicated)", frozen.params * e,
                          count_text(frozen.params) + " params x " + std::to_string(e) + " B"});
  }
  if (in.offload_optimizer) {
    plan.fixed.push_back({"trained state (offloaded)", trained.slice * (4 + e),
                          count_text(trained.params) + " params / " + ranks + " x " +
                              std::to_string(4 + e) + " B (fp32 grad, master copy)"});
    plan.host_bytes = trained.slice * 12;
  } else {
    plan.fixed.push_back(
        {"trained state", trained.slice * 16,
         count_text(trained.params) + " params / " + ranks + " x 16 B (fp32 master, m, v, grad)"});
  }
  const int64_t largest = std::max(trained.largest, in.shard_frozen ? frozen.largest : 0);
  plan.fixed.push_back({"gather buffers", (kGatheredUnits * largest + trained.rest_padded) * e,
                        std::to_string(kGatheredUnits) + " units of " + count_text(largest) +
                            " params + rest (" + count_text(trained.rest_padded) + ")"});
  plan.fixed.push_back(
      {"gradient buffers", trained.largest * (kPendingReduces * 4 + e),
       std::to_string(kPendingReduces) + " fp32 reduce-scatters + one unit's gradients"});
  plan.fixed.push_back({"workspace", in.workspace_bytes, "CUDA context, cuBLAS/NCCL, slack"});
  for (const PlanLine& line : plan.fixed) plan.fixed_bytes += line.bytes;

  auto activations = [&](const PlanDataset& ds, Checkpointing policy, int64_t batch) {
    int64_t sum = 0;
    for (const PlanLine& line : activation_lines(in, ds, policy, batch)) sum += line.bytes;
    return sum;
  };
  // Largest divisor of the sequences per optimizer step that fits beside the fixed lines.
  auto largest_fit = [&](const PlanDataset& ds, Checkpointing policy) {
    const int64_t total = int64_t{ds.batch_size} * in.grad_accum;
    for (int64_t m = std::min<int64_t>(total, ds.batch_size); m >= 1; --m) {
      if (total % m == 0 && plan.fixed_bytes + activations(ds, policy, m) <= in.device_bytes)
        return static_cast<int>(m);
    }
    return 0;
  };

  size_t chosen = in.policies.size() - 1;
  std::vector<DatasetPlan> per(in.datasets.size());
  for (size_t d = 0; d < in.datasets.size(); ++d) {
    per[d].name = in.datasets[d].name;
    for (Checkpointing policy : in.policies)
      per[d].largest_micro_batch.push_back(largest_fit(in.datasets[d], policy));
  }
  for (size_t p = 0; p < in.policies.size(); ++p) {
    bool all = true;
    for (size_t d = 0; d < in.datasets.size(); ++d)
      all = all && per[d].largest_micro_batch[p] == in.datasets[d].batch_size;
    if (all) {
      chosen = p;
      break;
    }
  }
  plan.policy = in.policies[chosen];
  plan.fits = plan.fixed_bytes <= in.device_bytes;
  int64_t peak_activations = 0;
  for (size_t d = 0; d < in.datasets.size(); ++d) {
    DatasetPlan& dp = per[d];
    const PlanDataset& ds = in.datasets[d];
    dp.micro_batch = dp.largest_micro_batch[chosen];
    plan.fits = plan.fits && dp.micro_batch >= 1;
    const int64_t shown = std::max(dp.micro_batch, 1);
    dp.grad_accum = dp.micro_batch >= 1
                        ? static_cast<int>(int64_t{ds.batch_size} * in.grad_accum / dp.micro_batch)
                        : 0;
    dp.activations = activation_lines(in, ds, plan.policy, shown);
    for (const PlanLine& line : dp.activations) dp.activation_bytes += line.bytes;
    peak_activations = std::max(peak_activations, dp.activation_bytes);
  }
  plan.datasets = std::move(per);
  plan.peak_bytes = plan.fixed_bytes + peak_activations;
  plan.fits = plan.fits && plan.peak_bytes <= in.device_bytes;
  return plan;
}

int64_t parse_bytes(const std::string& text) {
  size_t pos = 0;
  double value = 0.0;
  try {
    value = std::stod(text, &pos);
  } catch (const std::exception&) {
    throw Error(ErrorKind::kUsage, "'" + text + "' is not a size (e.g. 24GiB, 80GB, 512MiB)");
  }
  std::string unit;
  for (size_t i = pos; i < text.size(); ++i) {
    if (!std::isspace(static_cast<unsigned char>(text[i])))
      unit += static_cast<char>(std::tolower(static_cast<unsigned char>(text[i])));
  }
  const char* names[] = {"", "k", "m", "g", "t"};
  for (int power = 0; power < 5; ++power) {
    const std::string p = names[power];
    if (unit == p || unit == p + "b" || unit == p + "ib" || (power == 0 && unit == "b")) {
      const double bytes = value * std::pow(1024.0, power);
      if (!(bytes >= 1.0) || bytes > 9e18)
        throw Error(ErrorKind::kUsage, "size '" + text + "' out of range");
      return static_cast<int64_t>(bytes);
    }
  }
  throw Error(ErrorKind::kUsage, "'" + text + "': unknown unit (B, KiB, MiB, GiB, TiB)");
}

std::string format_bytes(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (std::abs(v) >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof(buf), "%lld B", static_cast<long long>(bytes));
  } else {
    std::snprintf(buf, sizeof(buf),
                  v >= 100  ? "%.0f %s"
                  : v >= 10 ? "%.1f %s"
                            : "%.2f %s",
                  v, units[u]);
  }
  return buf;
}

PlanInput plan_input(const model::ModelOptions& model, const pipeline::DataOptions& data,
                     const TrainOptions& train, int ranks, int64_t device_bytes,
                     int64_t workspace_bytes) {
  PlanInput in;
  in.model = model;
  in.ranks = ranks;
  in.device_bytes = device_bytes;
  in.workspace_bytes = workspace_bytes > 0
                           ? workspace_bytes
                           : parse_bytes(train.device == "cuda" ? "1.5GiB" : "512MiB");
  in.compute_bytes = train.precision == "bf16" ? 2 : 4;
  in.shard_frozen = train.shard_frozen;
  in.offload_optimizer = train.optimizer.offload;
  in.grad_accum = train.grad_accum;
  in.policies = checkpointing_policies(train.checkpointing);
  const bool laion = !data.laion.shards.empty(), mmc4 = !data.mmc4.shards.empty();
  if (laion || !mmc4)
    in.datasets.push_back({"laion", data.laion.batch_size, data.laion.seq_len, 1});
  if (mmc4 || !laion) {
    in.datasets.push_back({"mmc4", data.mmc4.batch_size, data.mmc4.seq_len, data.mmc4.max_images});
  }
  return in;
}

std::string keys_to_change(const PlanInput& input) {
  std::string keys;
  for (const PlanDataset& ds : input.datasets) keys += "data." + ds.name + ".batch_size / ";
  keys += "train.grad_accum, train.checkpointing";
  if (!input.shard_frozen) keys += ", train.shard_frozen: true";
  if (!input.offload_optimizer) keys += ", train.optimizer.offload: true";
  return keys + ", or run on more ranks";
}

}  // namespace flam::train
