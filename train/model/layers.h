// The building blocks of Flamingo (train/model/flamingo.h), each a torch::nn::Module whose
// parameter names are those of its reference implementation's own state dict, so that
// `flam parity` and the weight loaders can address them directly:
//   VisionEncoder          open_clip VisionTransformer (OpenAI CLIP layout, QuickGELU)
//   PerceiverResampler     open_flamingo/src/helpers.py PerceiverResampler
//   GatedCrossAttentionBlock  helpers.py GatedCrossAttentionBlock (MaskedCrossAttention + FF)
//   LlamaDecoderLayer      Hugging Face LlamaDecoderLayer (RMSNorm, rotary, SwiGLU)
//   LanguageModel          the LLaMA decoder as OpenFlamingo wraps it (`lang_encoder.*`)
// All shapes are batch-first. Modules are single-device and know nothing of ZeRO-3.
// Thread safety: a module instance is used by one thread at a time.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "train/model/options.h"

namespace flam::model {

// LayerNorm(dim), Linear(dim, dim*mult, no bias), GELU (erf), Linear(dim*mult, dim, no bias);
// names "0.*", "1.weight", "3.weight" as OpenFlamingo's nn.Sequential.
class FeedForwardImpl : public torch::nn::Module {
 public:
  FeedForwardImpl(int64_t dim, int64_t mult);
  torch::Tensor forward(const torch::Tensor& x);  // [..., dim] -> [..., dim]

 private:
  torch::nn::LayerNorm norm_{nullptr};
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr};
};
TORCH_MODULE(FeedForward);

// ---- Vision: open_clip VisionTransformer, returning patch tokens --------------------------

class VisionEncoderImpl : public torch::nn::Module {
 public:
  explicit VisionEncoderImpl(const VisionOptions& options);
  // pixels [N, 3, H, W] (CLIP-normalised) -> patch tokens [N, (H/P)*(W/P), width], taken before
  // ln_post unless options.tokens_after_ln_post. Runs with whatever grad mode the caller set.
  torch::Tensor forward(const torch::Tensor& pixels);
  // The same computation in steps, so Flamingo can route them through the frozen-unit seam:
  //   x = embed(pixels); for i: x = block(i, x); tokens = finish(x).
  torch::Tensor embed(const torch::Tensor& pixels);  // conv1, class + position, ln_pre: [N, 1+v, W]
  torch::Tensor block(size_t i, const torch::Tensor& x);  // resblock i: [N, 1+v, W]
  torch::Tensor finish(const torch::Tensor& x);  // drop the class token (, ln_post): [N, v, W]
  size_t depth() const { return blocks_.size(); }
  int64_t num_tokens() const;  // (image_size / patch_size)^2
  const VisionOptions& options() const { return options_; }

 private:
  struct Block {
    torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
    torch::Tensor in_proj_weight, in_proj_bias;  // [3W, W], [3W]
    torch::nn::Linear out_proj{nullptr}, c_fc{nullptr}, c_proj{nullptr};
  };
  VisionOptions options_;
  torch::nn::Conv2d conv1_{nullptr};    // [W, 3, P, P], no bias
  torch::Tensor class_embedding_;       // [W]
  torch::Tensor positional_embedding_;  // [1 + v, W]
  torch::nn::LayerNorm ln_pre_{nullptr}, ln_post_{nullptr};
  std::vector<Block> blocks_;
};
TORCH_MODULE(VisionEncoder);

// ---- Perceiver resampler ----------------------------------------------------------------

class PerceiverAttentionImpl : public torch::nn::Module {
 public:
  PerceiverAttentionImpl(int64_t dim, int64_t heads, int64_t dim_head);
  // media [b, T, m, D], latents [b, T, n, D] -> [b, T, n, D] (the residual is the caller's).
  torch::Tensor forward(const torch::Tensor& media, const torch::Tensor& latents);

 private:
  int64_t heads_, dim_head_;
  torch::nn::LayerNorm norm_media_{nullptr}, norm_latents_{nullptr};
  torch::nn::Linear to_q_{nullptr}, to_kv_{nullptr}, to_out_{nullptr};
};
TORCH_MODULE(PerceiverAttention);

class PerceiverResamplerImpl : public torch::nn::Module {
 public:
  PerceiverResamplerImpl(int64_t dim, const PerceiverOptions& options);
  // The whole resampler: x [b, T, F, v, D] -> [b, T, num_latents, D].
  torch::Tensor forward(const torch::Tensor& x);

  // The same computation in steps, so Flamingo can route each layer through a UnitRunner:
  //   media = prepare(x); latents = initial_latents(b, T);
  //   for i: latents = layer(i, media, latents); out = finish(latents).
  torch::Tensor prepare(const torch::Tensor& x);        // [b, T, F, v, D] -> [b, T, F*v, D]
  torch::Tensor initial_latents(int64_t b, int64_t T);  // [b, T, n, D]
  torch::Tensor layer(size_t i, const torch::Tensor& media, const torch::Tensor& latents);
  torch::Tensor finish(const torch::Tensor& latents);  // final LayerNorm
  size_t depth() const { return attn_.size(); }
  int64_t dim() const { return dim_; }

 private:
  int64_t dim_;
  torch::Tensor latents_;          // [n, D]
  torch::Tensor frame_embs_;       // [max_num_frames, D] or undefined
  torch::Tensor media_time_embs_;  // [max_num_media, 1, D] or undefined
  std::vector<PerceiverAttention> attn_;
  std::vector<FeedForward> ff_;
  torch::nn::LayerNorm norm_{nullptr};
};
TORCH_MODULE(PerceiverResampler);

// ---- Gated cross-attention ----------------------------------------------------------------

class MaskedCrossAttentionImpl : public torch::nn::Module {
 public:
  MaskedCrossAttentionImpl(int64_t dim, int64_t dim_visual, int64_t heads, int64_t dim_head,
                           bool only_attend_immediate_media);
  // x [B, T_txt, D], media [B, T_img, n, D_v], media_locations [B, T_txt] bool (true at
  // <image>). Text time = cumulative count of <image> tokens up to and including a position; a
  // token attends to the latents of image text_time (only_attend_immediate_media) or of images
  // 1..text_time; a token with no such image (text before the first image, or more <image>
  // tokens than images) attends to nothing and gets 0. Returns [B, T_txt, D].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& media,
                        const torch::Tensor& media_locations);

  // Incremental decoding. media_kv: the keys and values over the media latents, computed once
  // per prompt: media [B, T_img, n, D_v] -> {k, v}, each [B, H, T_img*n, d].
  std::pair<torch::Tensor, torch::Tensor> media_kv(const torch::Tensor& media);
  // x [B, t, D] (the new positions); text_time [B, t] int64: the number of <image> tokens up to
  // and including each position (the cumulative count forward() derives from media_locations);
  // n latents per image. The same attention rule as forward(). Returns [B, t, D].
  torch::Tensor forward_cached(const torch::Tensor& x, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& text_time, int64_t n);

 private:
  // q [B, H, T_txt, d] (unscaled), k and v [B, H, T_img*n, d], text_time [B, T_txt].
  torch::Tensor attend(torch::Tensor q, const torch::Tensor& k, const torch::Tensor& v,
                       const torch::Tensor& text_time, int64_t n);
  int64_t heads_, dim_head_;
  bool only_immediate_;
  torch::nn::LayerNorm norm_{nullptr};
  torch::nn::Linear to_q_{nullptr}, to_kv_{nullptr}, to_out_{nullptr};
};
TORCH_MODULE(MaskedCrossAttention);

class GatedCrossAttentionBlockImpl : public torch::nn::Module {
 public:
  GatedCrossAttentionBlockImpl(int64_t dim, int64_t dim_visual, const CrossAttentionOptions& o);
  // x + tanh(attn_gate) * attn(x, ...), then + tanh(ff_gate) * ff(.); shapes as above.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& media,
                        const torch::Tensor& media_locations);
  // Incremental decoding, as MaskedCrossAttention::media_kv / forward_cached.
  std::pair<torch::Tensor, torch::Tensor> media_kv(const torch::Tensor& media);
  torch::Tensor forward_cached(const torch::Tensor& x, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& text_time, int64_t n);

 private:
  MaskedCrossAttention attn_{nullptr};
  FeedForward ff_{nullptr};
  torch::Tensor attn_gate_, ff_gate_;  // [1], initialised to 0
};
TORCH_MODULE(GatedCrossAttentionBlock);

// Scaled dot-product attention softmax(q k^T / sqrt(d) + mask) v through LibTorch's fused
// kernel (SDPA; flash or memory-efficient on CUDA, fused on CPU). q [B, H, Tq, d], k and v
// [B, H, Tk, d], mask additive and broadcastable to [B, H, Tq, Tk], or undefined.
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& mask);

// ---- LLaMA --------------------------------------------------------------------------------

// Rotary tables as Hugging Face LLaMA computes them (fp32, rotate-half layout):
// positions [T] or [B, T] int64 -> {cos, sin}, each [B or 1, 1, T, head_dim] in `dtype`.
std::pair<torch::Tensor, torch::Tensor> rotary_tables(const torch::Tensor& positions,
                                                      int64_t head_dim, double theta,
                                                      c10::ScalarType dtype);
// Additive attention mask [B, 1, T, T] in `dtype`: 0 where query i may see key j (j <= i and key
// j is a token), the dtype's lowest value elsewhere; the diagonal is always open so that padding
// rows stay finite. attention_mask [B, T] (1 = token) or undefined (no padding; B = 1).
torch::Tensor causal_mask(const torch::Tensor& attention_mask, int64_t T, c10::ScalarType dtype);
// Additive mask [B, 1, 1, Tk] for one new query that may see every key that is a token:
// attention_mask [B, Tk] (1 = token) -> 0 there, the dtype's lowest value elsewhere.
torch::Tensor key_mask(const torch::Tensor& attention_mask, c10::ScalarType dtype);

class LlamaDecoderLayerImpl : public torch::nn::Module {
 public:
  explicit LlamaDecoderLayerImpl(const LanguageOptions& options);
  // x [B, T, D]; cos/sin from rotary_tables; mask from causal_mask. Returns [B, T, D].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& mask);
  // Incremental decoding with a key/value cache: x [B, t, D] at positions past..past+t-1 (cos/sin
  // for those positions); k_cache, v_cache [B, H, capacity, hd] hold the rotated keys and values
  // of positions < past and receive those of the new ones; mask [B, 1, t, past + t] additive.
  // REQUIRES: past + t <= capacity. Returns [B, t, D].
  torch::Tensor forward_cached(const torch::Tensor& x, const torch::Tensor& cos,
                               const torch::Tensor& sin, const torch::Tensor& mask,
                               torch::Tensor& k_cache, torch::Tensor& v_cache, int64_t past);

 private:
  int64_t heads_, head_dim_;
  double eps_;
  torch::nn::Linear q_proj_{nullptr}, k_proj_{nullptr}, v_proj_{nullptr}, o_proj_{nullptr};
  torch::nn::Linear gate_proj_{nullptr}, up_proj_{nullptr}, down_proj_{nullptr};
  torch::Tensor input_layernorm_, post_attention_layernorm_;  // RMSNorm weights [D]
};
TORCH_MODULE(LlamaDecoderLayer);

// RMSNorm as Hugging Face LLaMA: computed in fp32, cast back, times weight.
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);

// `lang_encoder.*`: embedding (frozen table + the two trained special rows), decoder layers,
// the gated cross-attention blocks, final norm and LM head. Flamingo drives the layer loop.
class LanguageModelImpl : public torch::nn::Module {
 public:
  // kShapesOnly: each decoder layer is made shape-only once built, the embedding table, final
  // norm and lm_head at the end (FrozenStorage, train/model/flamingo.h).
  LanguageModelImpl(const ModelOptions& options, int64_t dim_visual,
                    FrozenStorage frozen = FrozenStorage::kValues);
  // input_ids [B, T] -> [B, T, D]; <|endofchunk|> and <image> read special_token_embeddings.
  torch::Tensor embed(const torch::Tensor& input_ids);
  LlamaDecoderLayerImpl& decoder_layer(size_t i) { return *layers_.at(i); }
  size_t num_layers() const { return layers_.size(); }
  // The block before decoder layer i, or nullptr when (i + 1) % every_n_layers != 0.
  GatedCrossAttentionBlockImpl* xattn(size_t i);
  std::vector<size_t> xattn_layers() const;    // ascending layer indices that have a block
  torch::Tensor head(const torch::Tensor& h);  // final RMSNorm + lm_head: -> [B, T, V + 3]
  torch::Tensor& special_token_embeddings() { return special_; }
  torch::Tensor& embed_tokens() { return embed_tokens_; }

 private:
  LanguageOptions options_;
  int64_t endofchunk_;
  torch::Tensor embed_tokens_;  // [V + 3, D] frozen
  torch::Tensor special_;       // [2, D] trained: <|endofchunk|>, <image>
  std::vector<LlamaDecoderLayer> layers_;
  std::vector<GatedCrossAttentionBlock> xattn_;  // per decoder layer; null where none
  torch::Tensor norm_;                           // [D]
  torch::nn::Linear lm_head_{nullptr};           // [V + 3, D], no bias
};
TORCH_MODULE(LanguageModel);

}  // namespace flam::model
