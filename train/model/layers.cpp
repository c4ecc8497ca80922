#include "train/model/layers.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <string>

#include "core/check.h"
#include "train/model/flamingo.h"

namespace flam::model {
namespace {

namespace F = torch::nn::functional;

torch::nn::LayerNorm layer_norm(int64_t dim) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-5));
}

torch::nn::Linear linear(int64_t in, int64_t out, bool bias) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias));
}

std::shared_ptr<torch::nn::Module> child(torch::nn::Module& parent, const std::string& name) {
  return parent.register_module(name, std::make_shared<torch::nn::Module>());
}

// [B, T, H*d] -> [B, H, T, d]
torch::Tensor split_heads(const torch::Tensor& x, int64_t heads) {
  auto sizes = x.sizes().vec();
  const int64_t d = sizes.back() / heads;
  sizes.back() = heads;
  sizes.push_back(d);
  return x.view(sizes).transpose(-3, -2);
}

// [B, H, T, d] -> [B, T, H*d]
torch::Tensor merge_heads(const torch::Tensor& x) {
  auto t = x.transpose(-3, -2).contiguous();
  auto sizes = t.sizes().vec();
  const int64_t d = sizes.back();
  sizes.pop_back();
  sizes.back() *= d;
  return t.view(sizes);
}

double lowest(c10::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat64:
      return std::numeric_limits<double>::lowest();
    case torch::kFloat16:
      return -65504.0;
    case torch::kBFloat16:
      return -3.3895313892515355e38;
    default:
      return std::numeric_limits<float>::lowest();
  }
}

torch::Tensor quick_gelu(const torch::Tensor& x) { return x * torch::sigmoid(1.702 * x); }

// Rotary position embedding as Hugging Face's apply_rotary_pos_emb, x * cos + rotate_half(x) *
// sin with rotate_half(x) = cat(-x2, x1), written as x * cos + roll(x) * cat(-sin1, sin2): the
// same products (a sign moved from x to the table, so bit-identical), three kernels over x instead
// of five. x [B, H, T, hd]; cos, sin from rotary_tables.
torch::Tensor rotate(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  auto signed_sin = torch::cat({-sin.narrow(-1, 0, half), sin.narrow(-1, half, half)}, -1);
  return torch::addcmul(x * cos, x.roll(half, -1), signed_sin);
}

}  // namespace

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& mask) {
  // An undefined mask must reach SDPA as no mask (nullopt), not as an undefined tensor.
  return at::scaled_dot_product_attention(
      q, k, v, mask.defined() ? std::optional<at::Tensor>(mask) : std::nullopt);
}

// ---- FeedForward ----

FeedForwardImpl::FeedForwardImpl(int64_t dim, int64_t mult) {
  norm_ = register_module("0", layer_norm(dim));
  fc1_ = register_module("1", linear(dim, dim * mult, false));
  fc2_ = register_module("3", linear(dim * mult, dim, false));
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) {
  return fc2_(torch::gelu(fc1_(norm_(x))));
}

// ---- VisionEncoder ----

VisionEncoderImpl::VisionEncoderImpl(const VisionOptions& options) : options_(options) {
  const int64_t w = options.width;
  const int64_t grid = options.image_size / options.patch_size;
  conv1_ =
      register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, w, options.patch_size)
                                                     .stride(options.patch_size)
                                                     .bias(false)));
  const double scale = std::pow(static_cast<double>(w), -0.5);
  class_embedding_ = register_parameter("class_embedding", torch::randn({w}) * scale);
  positional_embedding_ =
      register_parameter("positional_embedding", torch::randn({grid * grid + 1, w}) * scale);
  ln_pre_ = register_module("ln_pre", layer_norm(w));
  auto resblocks = child(*child(*this, "transformer"), "resblocks");
  for (int i = 0; i < options.layers; ++i) {
    auto block = child(*resblocks, std::to_string(i));
    Block b;
    b.ln_1 = block->register_module("ln_1", layer_norm(w));
    auto attn = child(*block, "attn");
    b.in_proj_weight =
        attn->register_parameter("in_proj_weight", torch::randn({3 * w, w}) * std::sqrt(1.0 / w));
    b.in_proj_bias = attn->register_parameter("in_proj_bias", torch::zeros({3 * w}));
    b.out_proj = attn->register_module("out_proj", linear(w, w, true));
    b.ln_2 = block->register_module("ln_2", layer_norm(w));
    auto mlp = child(*block, "mlp");
    b.c_fc = mlp->register_module("c_fc", linear(w, options.mlp_dim, true));
    b.c_proj = mlp->register_module("c_proj", linear(options.mlp_dim, w, true));
    blocks_.push_back(b);
  }
  ln_post_ = register_module("ln_post", layer_norm(w));
}

int64_t VisionEncoderImpl::num_tokens() const {
  const int64_t grid = options_.image_size / options_.patch_size;
  return grid * grid;
}

torch::Tensor VisionEncoderImpl::forward(const torch::Tensor& pixels) {
  auto x = embed(pixels);
  for (size_t i = 0; i < blocks_.size(); ++i) x = block(i, x);
  return finish(x);
}

torch::Tensor VisionEncoderImpl::embed(const torch::Tensor& pixels) {
  FLAM_CHECK(pixels.dim() == 4 && pixels.size(1) == 3) << "pixels must be [N, 3, H, W]";
  const int64_t n = pixels.size(0);
  const int64_t w = options_.width;
  auto x = conv1_(pixels);           // [N, W, g, g]
  x = x.flatten(2).transpose(1, 2);  // [N, v, W]
  auto cls = class_embedding_.to(x.dtype()).view({1, 1, w}).expand({n, 1, w});
  x = torch::cat({cls, x}, 1) + positional_embedding_.to(x.dtype());
  return ln_pre_(x);
}

torch::Tensor VisionEncoderImpl::block(size_t i, const torch::Tensor& x) {
  Block& b = blocks_.at(i);
  auto h = b.ln_1(x);
  auto qkv = F::linear(h, b.in_proj_weight, b.in_proj_bias).chunk(3, -1);
  auto q = split_heads(qkv[0], options_.heads), k = split_heads(qkv[1], options_.heads);
  auto v = split_heads(qkv[2], options_.heads);
  auto o = attention(q, k, v, torch::Tensor());
  auto y = x + b.out_proj(merge_heads(o));
  return y + b.c_proj(quick_gelu(b.c_fc(b.ln_2(y))));
}

torch::Tensor VisionEncoderImpl::finish(const torch::Tensor& x) {
  auto tokens = x.narrow(1, 1, x.size(1) - 1);
  return options_.tokens_after_ln_post ? ln_post_(tokens) : tokens;
}

// ---- Perceiver ----

PerceiverAttentionImpl::PerceiverAttentionImpl(int64_t dim, int64_t heads, int64_t dim_head)
    : heads_(heads), dim_head_(dim_head) {
  const int64_t inner = heads * dim_head;
  norm_media_ = register_module("norm_media", layer_norm(dim));
  norm_latents_ = register_module("norm_latents", layer_norm(dim));
  to_q_ = register_module("to_q", linear(dim, inner, false));
  to_kv_ = register_module("to_kv", linear(dim, 2 * inner, false));
  to_out_ = register_module("to_out", linear(inner, dim, false));
}

torch::Tensor PerceiverAttentionImpl::forward(const torch::Tensor& media,
                                              const torch::Tensor& latents) {
  auto x = norm_media_(media);
  auto l = norm_latents_(latents);
  auto q = split_heads(to_q_(l), heads_);                 // [b, T, H, n, d]
  auto kv = to_kv_(torch::cat({x, l}, -2)).chunk(2, -1);  // [b, T, m + n, inner] each
  auto k = split_heads(kv[0], heads_), v = split_heads(kv[1], heads_);
  // OpenFlamingo's softmax(q * scale k^T - rowmax) v as one fused kernel (forward and backward)
  // over [b*T, H, ., d] (the CPU flash kernel takes 4-D inputs): the [b, T, H, n, m + n] scores
  // are never materialised, q and k are not copied into matmul layouts, and the output is
  // already in the [b, T, n, H, d] order merge_heads wants. Equal up to rounding (the parity
  // tests pin outputs and gradients to OpenFlamingo's).
  const double scale = std::pow(static_cast<double>(dim_head_), -0.5);
  auto o = at::scaled_dot_product_attention(q.flatten(0, 1), k.flatten(0, 1), v.flatten(0, 1),
                                            std::nullopt, 0.0, false, scale);
  return to_out_(merge_heads(o.view(q.sizes())));
}

PerceiverResamplerImpl::PerceiverResamplerImpl(int64_t dim, const PerceiverOptions& options)
    : dim_(dim) {
  latents_ = register_parameter("latents", torch::randn({options.num_latents, dim}));
  if (options.max_num_frames > 0)
    frame_embs_ = register_parameter("frame_embs", torch::randn({options.max_num_frames, dim}));
  if (options.max_num_media > 0)
    media_time_embs_ =
        register_parameter("media_time_embs", torch::randn({options.max_num_media, 1, dim}));
  auto layers = child(*this, "layers");
  for (int i = 0; i < options.depth; ++i) {
    auto layer = child(*layers, std::to_string(i));
    attn_.push_back(
        layer->register_module("0", PerceiverAttention(dim, options.heads, options.dim_head)));
    ff_.push_back(layer->register_module("1", FeedForward(dim, options.ff_mult)));
  }
  norm_ = register_module("norm", layer_norm(dim));
}

torch::Tensor PerceiverResamplerImpl::prepare(const torch::Tensor& x) {
  FLAM_CHECK(x.dim() == 5 && x.size(4) == dim_) << "perceiver input must be [b, T, F, v, D]";
  const int64_t b = x.size(0), T = x.size(1), F = x.size(2), v = x.size(3);
  auto media = x;
  if (frame_embs_.defined()) {
    FLAM_CHECK(F <= frame_embs_.size(0)) << "more frames than max_num_frames";
    media = media + frame_embs_.narrow(0, 0, F).view({1, 1, F, 1, dim_}).to(x.dtype());
  }
  media = media.reshape({b, T, F * v, dim_});
  if (media_time_embs_.defined()) {
    FLAM_CHECK(T <= media_time_embs_.size(0)) << "more media than max_num_media";
    media = media + media_time_embs_.narrow(0, 0, T).unsqueeze(0).to(x.dtype());
  }
  return media;
}

torch::Tensor PerceiverResamplerImpl::initial_latents(int64_t b, int64_t T) {
  return latents_.view({1, 1, latents_.size(0), dim_}).expand({b, T, latents_.size(0), dim_});
}

torch::Tensor PerceiverResamplerImpl::layer(size_t i, const torch::Tensor& media,
                                            const torch::Tensor& latents) {
  auto l = attn_.at(i)(media, latents) + latents;
  return ff_.at(i)(l) + l;
}

torch::Tensor PerceiverResamplerImpl::finish(const torch::Tensor& latents) {
  return norm_(latents);
}

torch::Tensor PerceiverResamplerImpl::forward(const torch::Tensor& x) {
  auto media = prepare(x);
  auto latents = initial_latents(x.size(0), x.size(1));
  for (size_t i = 0; i < depth(); ++i) latents = layer(i, media, latents);
  return finish(latents);
}

// ---- Gated cross-attention ----

MaskedCrossAttentionImpl::MaskedCrossAttentionImpl(int64_t dim, int64_t dim_visual, int64_t heads,
                                                   int64_t dim_head,
                                                   bool only_attend_immediate_media)
    : heads_(heads), dim_head_(dim_head), only_immediate_(only_attend_immediate_media) {
  const int64_t inner = heads * dim_head;
  norm_ = register_module("norm", layer_norm(dim));
  to_q_ = register_module("to_q", linear(dim, inner, false));
  to_kv_ = register_module("to_kv", linear(dim_visual, 2 * inner, false));
  to_out_ = register_module("to_out", linear(inner, dim, false));
}

torch::Tensor MaskedCrossAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& media,
                                                const torch::Tensor& media_locations) {
  FLAM_CHECK(x.dim() == 3 && media.dim() == 4 && media_locations.dim() == 2)
      << "xattn shapes: x [B, T_txt, D], media [B, T_img, n, D_v], media_locations [B, T_txt]";
  FLAM_CHECK(media_locations.size(1) == x.size(1)) << "media_locations must cover the text";
  auto q = split_heads(to_q_(norm_(x)), heads_);                 // [B, H, T_txt, d]
  auto [k, v] = media_kv(media);                                 // [B, H, T_img*n, d]
  auto text_time = media_locations.to(torch::kLong).cumsum(-1);  // [B, T_txt]
  return attend(q, k, v, text_time, media.size(2));
}

std::pair<torch::Tensor, torch::Tensor> MaskedCrossAttentionImpl::media_kv(
    const torch::Tensor& media) {
  const int64_t B = media.size(0), T_img = media.size(1), n = media.size(2);
  auto kv = to_kv_(media.reshape({B, T_img * n, media.size(3)})).chunk(2, -1);
  return {split_heads(kv[0], heads_), split_heads(kv[1], heads_)};
}

torch::Tensor MaskedCrossAttentionImpl::forward_cached(const torch::Tensor& x,
                                                       const torch::Tensor& k,
                                                       const torch::Tensor& v,
                                                       const torch::Tensor& text_time, int64_t n) {
  FLAM_CHECK(x.dim() == 3 && text_time.dim() == 2 && text_time.size(1) == x.size(1))
      << "xattn decoding shapes: x [B, t, D], text_time [B, t]";
  return attend(split_heads(to_q_(norm_(x)), heads_), k, v, text_time, n);
}

torch::Tensor MaskedCrossAttentionImpl::attend(torch::Tensor q, const torch::Tensor& k,
                                               const torch::Tensor& v,
                                               const torch::Tensor& text_time, int64_t n) {
  const int64_t T_img = k.size(2) / n;
  auto media_time =
      torch::arange(1, T_img + 1, text_time.options()).repeat_interleave(n);  // [T_img*n]
  auto tt = text_time.view({text_time.size(0), 1, text_time.size(1), 1});
  auto mt = media_time.view({1, 1, 1, T_img * n});
  auto allowed = only_immediate_ ? tt.eq(mt) : tt.ge(mt);  // [B, 1, T_txt, T_img*n]
  // OpenFlamingo's masked_fill(lowest) + softmax, as an additive mask of the fused kernel (SDPA,
  // forward and backward; the [B, H, T_txt, T_img*n] scores are never materialised). A row that
  // attends to nothing sees only `lowest` keys, so its softmax is uniform and finite; keep (0 on
  // those rows, 1 elsewhere) then zeroes its output, and with it every gradient through that row,
  // as OpenFlamingo's masked_fill(attn, 0).
  auto mask = torch::zeros(allowed.sizes(), q.options().requires_grad(false))
                  .masked_fill_(allowed.logical_not(), lowest(q.scalar_type()));
  auto keep = allowed.any(-1).to(q.scalar_type()).transpose(1, 2);  // [B, T_txt, 1]
  auto o = at::scaled_dot_product_attention(q, k, v, mask, 0.0, false,
                                            std::pow(static_cast<double>(dim_head_), -0.5));
  return to_out_(merge_heads(o)) * keep;  // o [B, H, T_txt, d]
}

GatedCrossAttentionBlockImpl::GatedCrossAttentionBlockImpl(int64_t dim, int64_t dim_visual,
                                                           const CrossAttentionOptions& o) {
  attn_ = register_module("attn", MaskedCrossAttention(dim, dim_visual, o.heads, o.dim_head,
                                                       o.only_attend_immediate_media));
  attn_gate_ = register_parameter("attn_gate", torch::zeros({1}));
  ff_ = register_module("ff", FeedForward(dim, o.ff_mult));
  ff_gate_ = register_parameter("ff_gate", torch::zeros({1}));
}

torch::Tensor GatedCrossAttentionBlockImpl::forward(const torch::Tensor& x,
                                                    const torch::Tensor& media,
                                                    const torch::Tensor& media_locations) {
  auto h = attn_(x, media, media_locations) * attn_gate_.tanh() + x;
  return ff_(h) * ff_gate_.tanh() + h;
}

std::pair<torch::Tensor, torch::Tensor> GatedCrossAttentionBlockImpl::media_kv(
    const torch::Tensor& media) {
  return attn_->media_kv(media);
}

torch::Tensor GatedCrossAttentionBlockImpl::forward_cached(const torch::Tensor& x,
                                                           const torch::Tensor& k,
                                                           const torch::Tensor& v,
                                                           const torch::Tensor& text_time,
                                                           int64_t n) {
  auto h = attn_->forward_cached(x, k, v, text_time, n) * attn_gate_.tanh() + x;
  return ff_(h) * ff_gate_.tanh() + h;
}

// ---- LLaMA ----

std::pair<torch::Tensor, torch::Tensor> rotary_tables(const torch::Tensor& positions,
                                                      int64_t head_dim, double theta,
                                                      c10::ScalarType dtype) {
  auto fopts = torch::TensorOptions().dtype(torch::kFloat32).device(positions.device());
  auto inv_freq =
      1.0 / torch::pow(theta, torch::arange(0, head_dim, 2, fopts) / static_cast<double>(head_dim));
  auto pos = positions.dim() == 1 ? positions.unsqueeze(0) : positions;  // [B, T]
  auto freqs = pos.to(torch::kFloat32).unsqueeze(-1) * inv_freq;         // [B, T, hd/2]
  auto emb = torch::cat({freqs, freqs}, -1).unsqueeze(1);                // [B, 1, T, hd]
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

torch::Tensor causal_mask(const torch::Tensor& attention_mask, int64_t T, c10::ScalarType dtype) {
  auto device = attention_mask.defined() ? attention_mask.device() : torch::Device(torch::kCPU);
  auto idx = torch::arange(T, torch::TensorOptions().dtype(torch::kLong).device(device));
  auto visible = idx.view({1, 1, 1, T}).le(idx.view({1, 1, T, 1}));  // key j <= query i
  if (attention_mask.defined()) {
    FLAM_CHECK(attention_mask.dim() == 2 && attention_mask.size(1) == T)
        << "attention_mask must be [B, T]";
    auto keys = attention_mask.ne(0).view({attention_mask.size(0), 1, 1, T});
    visible =
        visible.logical_and(keys).logical_or(idx.view({1, 1, 1, T}).eq(idx.view({1, 1, T, 1})));
  }
  auto zeros = torch::zeros(visible.sizes(), torch::TensorOptions().dtype(dtype).device(device));
  return zeros.masked_fill(visible.logical_not(), lowest(dtype));
}

torch::Tensor key_mask(const torch::Tensor& attention_mask, c10::ScalarType dtype) {
  FLAM_CHECK(attention_mask.dim() == 2) << "attention_mask must be [B, Tk]";
  auto keys = attention_mask.ne(0).view({attention_mask.size(0), 1, 1, attention_mask.size(1)});
  auto zeros = torch::zeros(keys.sizes(),
                            torch::TensorOptions().dtype(dtype).device(attention_mask.device()));
  return zeros.masked_fill(keys.logical_not(), lowest(dtype));
}

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  auto h = x.to(torch::kFloat32);
  h = h * torch::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * h.to(x.scalar_type());
}

LlamaDecoderLayerImpl::LlamaDecoderLayerImpl(const LanguageOptions& o)
    : heads_(o.heads), head_dim_(o.dim / o.heads), eps_(o.norm_eps) {
  auto attn = child(*this, "self_attn");
  q_proj_ = attn->register_module("q_proj", linear(o.dim, o.dim, false));
  k_proj_ = attn->register_module("k_proj", linear(o.dim, o.dim, false));
  v_proj_ = attn->register_module("v_proj", linear(o.dim, o.dim, false));
  o_proj_ = attn->register_module("o_proj", linear(o.dim, o.dim, false));
  auto mlp = child(*this, "mlp");
  gate_proj_ = mlp->register_module("gate_proj", linear(o.dim, o.ffn_dim, false));
  up_proj_ = mlp->register_module("up_proj", linear(o.dim, o.ffn_dim, false));
  down_proj_ = mlp->register_module("down_proj", linear(o.ffn_dim, o.dim, false));
  input_layernorm_ =
      child(*this, "input_layernorm")->register_parameter("weight", torch::ones({o.dim}));
  post_attention_layernorm_ =
      child(*this, "post_attention_layernorm")->register_parameter("weight", torch::ones({o.dim}));
}

torch::Tensor LlamaDecoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& cos,
                                             const torch::Tensor& sin, const torch::Tensor& mask) {
  auto h = rms_norm(x, input_layernorm_, eps_);
  auto q = split_heads(q_proj_(h), heads_);  // [B, H, T, hd]
  auto k = split_heads(k_proj_(h), heads_);
  auto v = split_heads(v_proj_(h), heads_);
  q = rotate(q, cos, sin);
  k = rotate(k, cos, sin);
  auto o = attention(q, k, v, mask);
  auto r = x + o_proj_(merge_heads(o));
  auto g = rms_norm(r, post_attention_layernorm_, eps_);
  return r + down_proj_(torch::silu(gate_proj_(g)) * up_proj_(g));
}

torch::Tensor LlamaDecoderLayerImpl::forward_cached(
    const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
    const torch::Tensor& mask, torch::Tensor& k_cache, torch::Tensor& v_cache, int64_t past) {
  const int64_t t = x.size(1);
  FLAM_CHECK(past + t <= k_cache.size(2))
      << "KV cache full: " << past + t << " > " << k_cache.size(2);
  auto h = rms_norm(x, input_layernorm_, eps_);
  auto q = split_heads(q_proj_(h), heads_);  // [B, H, t, hd]
  auto k = split_heads(k_proj_(h), heads_);
  auto v = split_heads(v_proj_(h), heads_);
  q = rotate(q, cos, sin);
  k = rotate(k, cos, sin);
  k_cache.narrow(2, past, t).copy_(k);
  v_cache.narrow(2, past, t).copy_(v);
  auto o = attention(q, k_cache.narrow(2, 0, past + t), v_cache.narrow(2, 0, past + t), mask);
  auto r = x + o_proj_(merge_heads(o));
  auto g = rms_norm(r, post_attention_layernorm_, eps_);
  return r + down_proj_(torch::silu(gate_proj_(g)) * up_proj_(g));
}

LanguageModelImpl::LanguageModelImpl(const ModelOptions& options, int64_t dim_visual,
                                     FrozenStorage frozen)
    : options_(options.lang), endofchunk_(options.lang.vocab_size) {
  const bool shapes_only = frozen == FrozenStorage::kShapesOnly;
  const auto& o = options.lang;
  const int64_t full_vocab = o.vocab_size + 3;
  auto model = child(*this, "model");
  auto embed = child(*model, "embed_tokens");
  embed_tokens_ = embed->register_parameter("weight", torch::randn({full_vocab, o.dim}) * 0.02);
  auto layers = child(*model, "layers");
  for (int i = 0; i < o.layers; ++i) {
    layers_.push_back(
        child(*layers, std::to_string(i))->register_module("decoder_layer", LlamaDecoderLayer(o)));
    if (shapes_only) drop_values(*layers_.back());
  }
  auto norm = child(*model, "norm");
  norm_ = norm->register_parameter("weight", torch::ones({o.dim}));
  auto xattn = child(*this, "gated_cross_attn_layers");
  for (int i = 0; i < o.layers; ++i) {
    if ((i + 1) % options.xattn.every_n_layers == 0) {
      xattn_.push_back(xattn->register_module(
          std::to_string(i), GatedCrossAttentionBlock(o.dim, dim_visual, options.xattn)));
    } else {
      xattn_.push_back(nullptr);
    }
  }
  lm_head_ = register_module("lm_head", linear(o.dim, full_vocab, false));
  special_ = register_parameter("special_token_embeddings",
                                embed_tokens_.narrow(0, endofchunk_, 2).detach().clone());
  if (shapes_only) {
    drop_values(*embed);
    drop_values(*norm);
    drop_values(*lm_head_);
  }
}

torch::Tensor LanguageModelImpl::embed(const torch::Tensor& input_ids) {
  auto x = torch::embedding(embed_tokens_, input_ids);  // [B, T, D]
  auto rel = input_ids - endofchunk_;
  auto is_special = rel.ge(0).logical_and(rel.lt(2));
  auto rows = torch::embedding(special_, rel.clamp(0, 1));
  return torch::where(is_special.unsqueeze(-1), rows.to(x.dtype()), x);
}

GatedCrossAttentionBlockImpl* LanguageModelImpl::xattn(size_t i) {
  return xattn_.at(i).is_empty() ? nullptr : xattn_[i].get();
}

std::vector<size_t> LanguageModelImpl::xattn_layers() const {
  std::vector<size_t> out;
  for (size_t i = 0; i < xattn_.size(); ++i)
    if (!xattn_[i].is_empty()) out.push_back(i);
  return out;
}

torch::Tensor LanguageModelImpl::head(const torch::Tensor& h) {
  return lm_head_(rms_norm(h, norm_, options_.norm_eps));
}

}  // namespace flam::model
