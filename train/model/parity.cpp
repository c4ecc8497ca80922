#include "train/model/parity.h"

#include <torch/torch.h>

#include <cmath>
#include <map>

#include "core/error.h"
#include "train/model/flamingo.h"
#include "train/model/layers.h"
#include "train/weights/model_weights.h"
#include "train/weights/safetensors.h"

namespace flam::model {
namespace {

using weights::SafetensorsFile;

[[noreturn]] void usage(const std::string& message) { throw Error(ErrorKind::kUsage, message); }

const std::vector<int64_t>& shape_of(const SafetensorsFile& f, const std::string& name) {
  if (!f.contains(name)) {
    ErrorContext context;
    context.file = f.path();
    context.key = name;
    throw Error(ErrorKind::kData, "missing tensor", context);
  }
  return f.info(name).shape;
}

int count_prefixed(const SafetensorsFile& f, const std::string& prefix, const std::string& suffix) {
  int n = 0;
  while (f.contains(prefix + std::to_string(n) + suffix)) ++n;
  return n;
}

// {heads, dim_head} for a projection of `inner` features.
std::pair<int, int> head_split(const ParityOptions& o, int64_t inner, int default_dim_head) {
  int heads = o.heads, dim_head = o.dim_head;
  if (heads == 0 && dim_head == 0) dim_head = default_dim_head;
  if (dim_head == 0) dim_head = static_cast<int>(inner / heads);
  if (heads == 0) heads = static_cast<int>(inner / dim_head);
  if (dim_head <= 0 || heads <= 0 || static_cast<int64_t>(heads) * dim_head != inner) {
    usage("--heads " + std::to_string(heads) + " x --dim-head " + std::to_string(dim_head) +
          " does not match the weights' projection width " + std::to_string(inner));
  }
  return {heads, dim_head};
}

std::map<std::string, at::Tensor> all_tensors(const SafetensorsFile& f) {
  std::map<std::string, at::Tensor> out;
  for (const auto& name : f.names()) out[name] = f.load(name, torch::kFloat32);
  return out;
}

at::Tensor input(const SafetensorsFile& f, const std::string& name, c10::ScalarType dtype) {
  shape_of(f, name);
  return f.load(name, dtype);
}

// The whole Flamingo: forward, loss and one backward, in fp32 on the CPU.
void run_flamingo(const ParityOptions& o) {
  SafetensorsFile in(o.inputs);
  torch::manual_seed(0);
  Flamingo m(o.model);
  weights::load_openflamingo_checkpoint(*m, o.weights);
  const auto images = input(in, "images", torch::kFloat32);
  const auto labels = input(in, "labels", torch::kLong);
  const auto logits = m->forward(images, input(in, "input_ids", torch::kLong),
                                 input(in, "attention_mask", torch::kLong));
  const auto loss = FlamingoImpl::loss(logits, labels);
  loss.backward();
  weights::NamedTensors out = {{"logits", logits.detach()}, {"loss", loss.detach()}};
  for (const auto& item : m->named_parameters()) {
    if (!item.value().requires_grad()) continue;
    const auto& grad = item.value().grad();
    out.emplace_back("grad." + item.key(), grad.defined() ? grad : torch::zeros_like(item.value()));
  }
  weights::write_safetensors(o.out, out);
}

}  // namespace

void run_parity(const ParityOptions& o) {
  if (o.module == "flamingo") {
    run_flamingo(o);
    return;
  }
  if (o.module != "perceiver" && o.module != "xattn" && o.module != "vision" &&
      o.module != "decoder_layer") {
    usage("--module must be perceiver, xattn, vision, decoder_layer or flamingo (got '" + o.module +
          "')");
  }
  SafetensorsFile w(o.weights);
  SafetensorsFile in(o.inputs);
  torch::NoGradGuard no_grad;
  at::Tensor out;
  if (o.module == "perceiver") {
    const auto& lat = shape_of(w, "latents");
    PerceiverOptions p;
    p.num_latents = static_cast<int>(lat[0]);
    const int64_t dim = lat[1];
    p.depth = count_prefixed(w, "layers.", ".0.to_q.weight");
    if (p.depth == 0) shape_of(w, "layers.0.0.to_q.weight");
    std::tie(p.heads, p.dim_head) = head_split(o, shape_of(w, "layers.0.0.to_q.weight")[0], 64);
    p.ff_mult = static_cast<int>(shape_of(w, "layers.0.1.1.weight")[0] / dim);
    if (w.contains("media_time_embs")) p.max_num_media = w.info("media_time_embs").shape[0];
    if (w.contains("frame_embs")) p.max_num_frames = w.info("frame_embs").shape[0];
    PerceiverResampler m(dim, p);
    weights::load_into(*m, all_tensors(w), o.weights, true);
    out = m(input(in, "x", torch::kFloat32));
  } else if (o.module == "xattn") {
    const auto& q = shape_of(w, "attn.to_q.weight");
    CrossAttentionOptions x;
    std::tie(x.heads, x.dim_head) = head_split(o, q[0], 64);
    x.ff_mult = static_cast<int>(shape_of(w, "ff.1.weight")[0] / q[1]);
    x.only_attend_immediate_media = o.only_attend_immediate_media;
    GatedCrossAttentionBlock m(q[1], shape_of(w, "attn.to_kv.weight")[1], x);
    weights::load_into(*m, all_tensors(w), o.weights, true);
    out = m(input(in, "x", torch::kFloat32), input(in, "media", torch::kFloat32),
            input(in, "media_locations", torch::kBool));
  } else if (o.module == "vision") {
    const auto& conv = shape_of(w, "conv1.weight");
    VisionOptions v;
    v.width = static_cast<int>(conv[0]);
    v.patch_size = static_cast<int>(conv[2]);
    const int64_t grid = std::llround(std::sqrt(shape_of(w, "positional_embedding")[0] - 1));
    v.image_size = static_cast<int>(grid * v.patch_size);
    v.layers = count_prefixed(w, "transformer.resblocks.", ".ln_1.weight");
    v.mlp_dim = static_cast<int>(shape_of(w, "transformer.resblocks.0.mlp.c_fc.weight")[0]);
    if (o.heads == 0 && o.dim_head == 0) usage("--module vision needs --heads or --dim-head");
    v.heads = head_split(o, v.width, 0).first;
    v.tokens_after_ln_post = o.tokens_after_ln_post;
    VisionEncoder m(v);
    weights::load_into(*m, all_tensors(w), o.weights, true);
    out = m(input(in, "pixels", torch::kFloat32));
  } else {
    const auto& q = shape_of(w, "self_attn.q_proj.weight");
    LanguageOptions l;
    l.dim = static_cast<int>(q[1]);
    if (o.heads == 0 && o.dim_head == 0)
      usage("--module decoder_layer needs --heads or --dim-head");
    l.heads = head_split(o, q[0], 0).first;
    l.ffn_dim = static_cast<int>(shape_of(w, "mlp.gate_proj.weight")[0]);
    l.norm_eps = o.norm_eps;
    l.rope_theta = o.rope_theta;
    LlamaDecoderLayer m(l);
    weights::load_into(*m, all_tensors(w), o.weights, true);
    auto x = input(in, "x", torch::kFloat32);
    auto positions = input(in, "positions", torch::kLong);
    auto [cos, sin] = rotary_tables(positions, l.dim / l.heads, l.rope_theta, torch::kFloat32);
    out = m(x, cos, sin, causal_mask({}, x.size(1), torch::kFloat32));
  }
  weights::write_safetensors(o.out, {{"out", out}});
}

}  // namespace flam::model
