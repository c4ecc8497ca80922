// Flamingo: the OpenFlamingo network (open_flamingo/src/flamingo.py, flamingo_lm.py) in LibTorch:
// frozen CLIP ViT -> trained PerceiverResampler -> frozen LLaMA decoder with a trained
// GatedCrossAttentionBlock before decoder layer i whenever (i + 1) % every_n_layers == 0.
//
// Parameter names are OpenFlamingo's state-dict names, deduplicated (OpenFlamingo's FlamingoLayer
// wrapper makes each cross-attention block appear twice; we keep the canonical
// `lang_encoder.gated_cross_attn_layers.K.*`):
//   vision_encoder.*                              open_clip VisionTransformer names (frozen)
//   perceiver.*                                   trained
//   lang_encoder.model.embed_tokens.weight        [V + 3, D] frozen
//   lang_encoder.special_token_embeddings         [2, D] trained: rows <|endofchunk|>, <image>
//   lang_encoder.model.layers.N.decoder_layer.*   HF LLaMA layer names (frozen)
//   lang_encoder.gated_cross_attn_layers.K.*      trained
//   lang_encoder.model.norm.weight, lang_encoder.lm_head.weight  frozen
//
// What is trained, mirroring OpenFlamingo's factory.py and train.py: the Perceiver, the gated
// cross-attention blocks, and of the input embedding only the rows of <|endofchunk|> and <image>
// (OpenFlamingo marks the whole input table trainable, then masks the gradient of every other
// row to zero; our special_token_embeddings holds exactly those two rows, and export writes them
// back into `lang_encoder.model.embed_tokens.weight`). The output embedding (lm_head) is NOT
// trained by OpenFlamingo ("TODO: investigate also training the output embeddings when untied"),
// so it is frozen here too, including its three new rows.
//
// Because the two embedding rows are trained, gradient flows back through the decoder layers
// below the first cross-attention block as well (activation gradients only: their weights are
// frozen). Autograd derives that by itself from requires_grad. With
// model.freeze_lm_embeddings (OpenFlamingo's --freeze_lm_embeddings) the rows are frozen and
// nothing below the first cross-attention block is recorded for backward.
//
// Where we knowingly differ from OpenFlamingo: a text token with no image to attend to (before
// the first <image>, or past the last image when a row has more <image> tokens than images)
// attends to nothing in both masking modes; OpenFlamingo zeroes it only with
// only_attend_immediate_media and otherwise spreads it uniformly over all images, future ones
// included. Identical for OpenFlamingo-9B's setting (only_attend_immediate_media = true) on
// well-formed batches. vision_encoder.proj (unused for patch tokens) is not kept.
//
// Thread safety: a Flamingo is used by one thread at a time (the training loop).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "train/model/options.h"

namespace flam::model {

// Ids of the tokens OpenFlamingo adds to the LLaMA vocabulary, in the order it adds them.
struct SpecialTokens {
  int64_t endofchunk;  // = lang.vocab_size
  int64_t image;       // = lang.vocab_size + 1
  int64_t pad;         // = lang.vocab_size + 2
};
SpecialTokens special_tokens(const ModelOptions& options);
// The name of our [2, D] parameter holding the trained <|endofchunk|> and <image> rows, which
// OpenFlamingo keeps inside lang_encoder.model.embed_tokens.weight (see above).
inline constexpr const char* kSpecialTokenEmbeddings = "lang_encoder.special_token_embeddings";
// The vocabulary size of the logits: lang.vocab_size + 3.
int64_t full_vocab_size(const ModelOptions& options);

// The ZeRO-3 seam. The model calls each trained per-layer unit (a ZeRO parameter group, FSDP's
// word) through a UnitRunner: `fn(inputs)` computes the unit's output from `inputs` with the
// unit's parameters (the tensors listed in trained_units()[unit].params) as they are at call
// time. The default runner calls fn(inputs) directly. train/zero3 installs one that gathers the
// unit's parameters before fn and frees them after (and re-gathers / recomputes in backward). fn
// is pure apart from reading those parameters, so calling it again (recompute) gives the same
// result.
// Inputs per unit kind:
//   perceiver.layers.i:                   {media [b, T, F*v, D_v], latents [b, T, n, D_v]} ->
//   latents lang_encoder.gated_cross_attn_layers.K: {x [B, T_txt, D], media [B, T_img, n, D_v],
//                                          media_locations [B, T_txt] bool} -> x
//
// Frozen parameters go through the same seam in frozen units (run_frozen), indexed in call order
// as train/zero3/frozen_units.h lists them: 0 "vision_encoder" (conv1, class and position
// embeddings, ln_pre; called again for ln_post when options.vision.tokens_after_ln_post),
// 1..L_v the vision resblocks, L_v + 1 the token embedding, L_v + 2 + i decoder layer i, and
// last the head (final norm, lm_head). A frozen unit's fn reads trained parameters only through
// its inputs or from "rest" (gathered for the whole step). The default run_frozen calls fn
// directly (frozen weights replicated).
class UnitRunner {
 public:
  virtual ~UnitRunner() = default;
  virtual torch::Tensor run(
      size_t unit, const std::function<torch::Tensor(const std::vector<torch::Tensor>&)>& fn,
      const std::vector<torch::Tensor>& inputs) = 0;
  virtual torch::Tensor run_frozen(
      size_t unit, const std::function<torch::Tensor(const std::vector<torch::Tensor>&)>& fn,
      const std::vector<torch::Tensor>& inputs) {
    (void)unit;
    return fn(inputs);
  }
};

// One unit: a group of parameters gathered together by ZeRO-3 (trained units, or frozen units
// with train.shard_frozen). Tensors alias the module's
// parameters (same storage): setting their data changes what the model computes with.
struct ParamUnit {
  std::string name;                                           // e.g. "perceiver.layers.0"
  std::vector<std::pair<std::string, torch::Tensor>> params;  // full OpenFlamingo names
};

// FrozenStorage::kShapesOnly (train/model/options.h) builds each frozen module as kValues does
// (the same random draws, so every trained parameter built after it gets the same values), then
// replaces its parameters' data by a shape-only placeholder right away, so that the whole model
// never exists in memory at once: for train.shard_frozen, whose engine fills each rank's slices
// from the weight files (train/zero3/zero3_engine.h). A placeholder is a tensor of the
// parameter's shape expanded from one element (stride 0): writing into one fails, loaders skip
// them (train/weights/model_weights.h), and place_model keeps them (train/precision.h).
//
// A placeholder of shape `sizes`: one element of `options` expanded (stride 0).
torch::Tensor shape_only_placeholder(at::IntArrayRef sizes, const torch::TensorOptions& options);
// Whether `param` is such a placeholder: built shape-only, not yet given values.
bool is_shape_only(const torch::Tensor& param);
// Replaces the data of each parameter of `module` by its shape-only placeholder (parameters of
// one element keep their value: a placeholder of one element would look like a value).
void drop_values(torch::nn::Module& module);

class VisionEncoderImpl;
class PerceiverResamplerImpl;
class LanguageModelImpl;

// The caches of one incremental decoding pass (generation), made by start_decoding() and
// advanced by decode_step(). Rows are queries (or beams); all tensors share the row order.
struct DecodeState {
  std::vector<torch::Tensor> k, v;  // per decoder layer: rotated keys, values [B, H, capacity, hd]
  // Per decoder layer with a cross-attention block (undefined elsewhere): keys and values over
  // the media latents, computed once per prompt [B, H, T_img*n, d].
  std::vector<torch::Tensor> media_k, media_v;
  torch::Tensor attention_mask;  // [B, capacity] int64: 1 = a token at that position
  torch::Tensor image_count;     // [B] int64: <image> tokens so far in each row
  int64_t length = 0;            // positions filled (prompt + generated)
  int64_t num_latents = 0;       // n, latents per image
};

class FlamingoImpl : public torch::nn::Module {
 public:
  // Builds the network with OpenFlamingo's initialisation (random frozen weights until
  // train/weights loads pretrained ones); frozen parameters have requires_grad(false).
  // kShapesOnly: frozen parameters are placeholders (see FrozenStorage).
  explicit FlamingoImpl(const ModelOptions& options, FrozenStorage frozen = FrozenStorage::kValues);

  // images: [B, T_img, F, 3, H, W] float, CLIP-normalised (T_img may be 0 or images undefined:
  //   then the Perceiver still runs, on zero vision tokens, and every text token attends to
  //   nothing, so that every rank calls every unit in every step);
  // input_ids [B, T] int64; attention_mask [B, T] int64 (1 = token, 0 = padding; undefined: all
  //   tokens). Padding is expected on the right (positions are 0..T-1 in every row).
  // The i-th `<image>` token of a row (in position order) stands for images[b, i].
  // Returns logits [B, T, vocab_size + 3].
  torch::Tensor forward(const torch::Tensor& images, const torch::Tensor& input_ids,
                        const torch::Tensor& attention_mask);

  // Incremental decoding, under the caller's NoGradGuard. start_decoding runs CLIP and the
  // Perceiver once, the cross-attention keys/values over the latents once, and the prompt through
  // the decoder, filling the caches (capacity = T + the tokens to be generated). Shapes as
  // forward(), but padding is expected on the LEFT (generation appends on the right); positions
  // are the slot indices 0..T-1 as OpenFlamingo's generate (rotary attention depends only on
  // differences, so left padding does not shift a row). Returns the logits of the last position
  // [B, vocab_size + 3]. New positions attend to the latest image of their row (text time
  // continues the cumulative <image> count, as in forward()).
  torch::Tensor start_decoding(const torch::Tensor& images, const torch::Tensor& input_ids,
                               const torch::Tensor& attention_mask, int64_t capacity,
                               DecodeState& state);
  // Appends one token per row: next_ids [B] int64 -> logits [B, vocab_size + 3].
  // REQUIRES: state.length < capacity.
  torch::Tensor decode_step(DecodeState& state, const torch::Tensor& next_ids);
  // Keeps rows `index` [B'] int64 of every cache, in that order (beam expansion and reordering).
  static void select_rows(DecodeState& state, const torch::Tensor& index);

  // The frozen vision encoder alone, under NoGradGuard: images [B, T_img, F, 3, H, W] ->
  // patch tokens [B, T_img, F, v, D_v].
  torch::Tensor encode_images(const torch::Tensor& images);

  // Next-token cross-entropy as Hugging Face's causal LM: logits[:, t] predicts labels[:, t + 1]
  // (labels are aligned with input_ids); mean over target positions whose label != -100. With
  // no such position the loss is 0 (still attached to the graph). Returns a scalar fp32 tensor.
  static torch::Tensor loss(const torch::Tensor& logits, const torch::Tensor& labels);

  // Trained parameters grouped into units in call order: "perceiver.layers.0" ..,
  // "lang_encoder.gated_cross_attn_layers.K" .. (ascending K), and last "rest"
  // (perceiver.latents, perceiver.norm.*, lang_encoder.special_token_embeddings, media-time and
  // frame embeddings). Every trained parameter is in exactly one unit. Index i of this vector is
  // what UnitRunner::run receives for per-layer units; "rest" is never passed to run().
  std::vector<ParamUnit> trained_units();

  // nullptr = direct calls. The runner is not owned and must outlive its use by forward().
  void set_unit_runner(UnitRunner* runner);

  // True for parameters AdamW decays: OpenFlamingo decays only gated cross-attention parameters
  // (every name containing "gated_cross_attn").
  bool weight_decay(const std::string& param_name) const;

  const ModelOptions& options() const { return options_; }
  const SpecialTokens& special() const { return special_; }
  VisionEncoderImpl& vision_encoder() { return *vision_; }
  PerceiverResamplerImpl& perceiver() { return *perceiver_; }
  LanguageModelImpl& lang_encoder() { return *lang_; }

 private:
  using UnitFn = std::function<torch::Tensor(const std::vector<torch::Tensor>&)>;
  torch::Tensor call_trained(size_t unit, const UnitFn& fn, const std::vector<torch::Tensor>& in);
  torch::Tensor call_frozen(size_t unit, const UnitFn& fn, const std::vector<torch::Tensor>& in);
  // Frozen unit indices (see UnitRunner): token embedding, decoder layer i, head.
  size_t embed_unit() const;
  size_t decoder_unit(size_t i) const { return embed_unit() + 1 + i; }
  size_t head_unit() const;
  // The LLaMA decoder layer i under the frozen-unit seam: h [B, t, D] -> [B, t, D].
  torch::Tensor decoder_layer(size_t i, const torch::Tensor& h, const torch::Tensor& cos,
                              const torch::Tensor& sin, const torch::Tensor& mask);
  torch::Tensor embed(const torch::Tensor& input_ids);  // the embedding unit: -> [B, T, D]
  torch::Tensor head(const torch::Tensor& h);           // the head unit: -> [B, T, V + 3]
  // CLIP + Perceiver: images (or undefined / T_img = 0) -> latents [B, T_img or 1, n, D_v].
  torch::Tensor media_latents(const torch::Tensor& images, int64_t B);
  // Decoder layers over h [B, t, D] at positions state.length.. with the decoding caches.
  torch::Tensor decode_layers(DecodeState& state, torch::Tensor h, const torch::Tensor& text_time,
                              const torch::Tensor& mask);
  ModelOptions options_;
  SpecialTokens special_;
  std::shared_ptr<VisionEncoderImpl> vision_;
  std::shared_ptr<PerceiverResamplerImpl> perceiver_;
  std::shared_ptr<LanguageModelImpl> lang_;
  UnitRunner* runner_ = nullptr;
};
TORCH_MODULE(Flamingo);

}  // namespace flam::model
