#include "train/model/flamingo.h"

#include <torch/torch.h>

#include <set>

#include "core/check.h"
#include "train/model/layers.h"

namespace flam::model {

SpecialTokens special_tokens(const ModelOptions& options) {
  const int64_t v = options.lang.vocab_size;
  return {v, v + 1, v + 2};
}

int64_t full_vocab_size(const ModelOptions& options) { return options.lang.vocab_size + 3; }

torch::Tensor shape_only_placeholder(at::IntArrayRef sizes, const torch::TensorOptions& options) {
  return torch::empty({1}, options).expand(sizes);
}

bool is_shape_only(const torch::Tensor& param) {
  return param.numel() > 1 && param.storage().nbytes() < param.nbytes();
}

void drop_values(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& param : module.parameters()) {
    if (param.numel() > 1) param.set_data(shape_only_placeholder(param.sizes(), param.options()));
  }
}

FlamingoImpl::FlamingoImpl(const ModelOptions& options, FrozenStorage frozen)
    : options_(options), special_(special_tokens(options)) {
  vision_ = register_module("vision_encoder", std::make_shared<VisionEncoderImpl>(options.vision));
  if (frozen == FrozenStorage::kShapesOnly) drop_values(*vision_);
  perceiver_ = register_module("perceiver", std::make_shared<PerceiverResamplerImpl>(
                                                options.vision.width, options.perceiver));
  lang_ = register_module(
      "lang_encoder", std::make_shared<LanguageModelImpl>(options, options.vision.width, frozen));
  for (auto& p : vision_->parameters()) p.set_requires_grad(false);
  for (auto& item : lang_->named_parameters()) {
    const bool trained =
        item.key().rfind("gated_cross_attn_layers.", 0) == 0 ||
        (item.key() == "special_token_embeddings" && !options.freeze_lm_embeddings);
    item.value().set_requires_grad(trained);
  }
}

torch::Tensor FlamingoImpl::encode_images(const torch::Tensor& images) {
  FLAM_CHECK(images.dim() == 6) << "images must be [B, T_img, F, 3, H, W]";
  torch::NoGradGuard no_grad;
  using Inputs = std::vector<torch::Tensor>;
  const int64_t b = images.size(0), T = images.size(1), F = images.size(2);
  auto x = call_frozen(0, [this](const Inputs& in) { return vision_->embed(in[0]); },
                       {images.flatten(0, 2)});
  for (size_t i = 0; i < vision_->depth(); ++i) {
    x = call_frozen(1 + i, [this, i](const Inputs& in) { return vision_->block(i, in[0]); }, {x});
  }
  auto tokens =  // [(b T F), v, D_v]
      options_.vision.tokens_after_ln_post
          ? call_frozen(0, [this](const Inputs& in) { return vision_->finish(in[0]); }, {x})
          : vision_->finish(x);  // reads no parameter
  return tokens.view({b, T, F, tokens.size(1), tokens.size(2)});
}

torch::Tensor FlamingoImpl::call_trained(size_t unit, const UnitFn& fn,
                                         const std::vector<torch::Tensor>& inputs) {
  return runner_ ? runner_->run(unit, fn, inputs) : fn(inputs);
}

torch::Tensor FlamingoImpl::call_frozen(size_t unit, const UnitFn& fn,
                                        const std::vector<torch::Tensor>& inputs) {
  return runner_ ? runner_->run_frozen(unit, fn, inputs) : fn(inputs);
}

size_t FlamingoImpl::embed_unit() const { return 1 + vision_->depth(); }

size_t FlamingoImpl::head_unit() const { return decoder_unit(lang_->num_layers()); }

torch::Tensor FlamingoImpl::embed(const torch::Tensor& input_ids) {
  return call_frozen(embed_unit(),
                     [this](const std::vector<torch::Tensor>& in) { return lang_->embed(in[0]); },
                     {input_ids});
}

torch::Tensor FlamingoImpl::decoder_layer(size_t i, const torch::Tensor& h,
                                          const torch::Tensor& cos, const torch::Tensor& sin,
                                          const torch::Tensor& mask) {
  return call_frozen(decoder_unit(i),
                     [this, i](const std::vector<torch::Tensor>& in) {
                       return lang_->decoder_layer(i).forward(in[0], in[1], in[2], in[3]);
                     },
                     {h, cos, sin, mask});
}

torch::Tensor FlamingoImpl::head(const torch::Tensor& h) {
  return call_frozen(head_unit(),
                     [this](const std::vector<torch::Tensor>& in) { return lang_->head(in[0]); },
                     {h});
}

torch::Tensor FlamingoImpl::media_latents(const torch::Tensor& images, int64_t B) {
  using Inputs = std::vector<torch::Tensor>;
  // Vision tokens; a batch without images runs the Perceiver on zeros that nothing attends to.
  torch::Tensor tokens;  // [B, T_img, F, v, D_v]
  const torch::Tensor latents_param = perceiver_->named_parameters(false)["latents"];
  if (images.defined() && images.size(1) > 0) {
    FLAM_CHECK(images.size(0) == B) << "images and input_ids disagree on the batch size";
    tokens = encode_images(images).to(latents_param.dtype());
  } else {
    if (runner_) {  // every rank calls every frozen unit in every step: here on zero images
      const int64_t px = options_.vision.image_size;
      encode_images(torch::zeros({0, 1, 1, 3, px, px}, latents_param.options()));
    }
    tokens = torch::zeros({B, 1, 1, vision_->num_tokens(), options_.vision.width},
                          latents_param.options().requires_grad(false));
  }
  auto media = perceiver_->prepare(tokens);
  auto latents = perceiver_->initial_latents(B, tokens.size(1));
  const size_t depth = perceiver_->depth();
  for (size_t i = 0; i < depth; ++i) {
    latents =
        call_trained(i, [this, i](const Inputs& in) { return perceiver_->layer(i, in[0], in[1]); },
                     {media, latents});
  }
  return perceiver_->finish(latents);  // [B, T_img, n, D_v]
}

torch::Tensor FlamingoImpl::forward(const torch::Tensor& images, const torch::Tensor& input_ids,
                                    const torch::Tensor& attention_mask) {
  FLAM_CHECK(input_ids.dim() == 2) << "input_ids must be [B, T]";
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  using Inputs = std::vector<torch::Tensor>;
  auto vis = media_latents(images, B);  // [B, T_img, n, D_v]

  auto media_locations = input_ids.eq(special_.image);  // [B, T]
  auto h = embed(input_ids);
  auto positions = torch::arange(T, input_ids.options());
  const int64_t head_dim = options_.lang.dim / options_.lang.heads;
  auto [cos, sin] = rotary_tables(positions, head_dim, options_.lang.rope_theta, h.scalar_type());
  auto mask = causal_mask(attention_mask.defined() ? attention_mask : torch::ones_like(input_ids),
                          T, h.scalar_type());
  size_t unit = perceiver_->depth();
  for (size_t i = 0; i < lang_->num_layers(); ++i) {
    if (auto* xattn = lang_->xattn(i)) {
      h = call_trained(unit++,
                       [xattn](const Inputs& in) { return xattn->forward(in[0], in[1], in[2]); },
                       {h, vis, media_locations});
    }
    h = decoder_layer(i, h, cos, sin, mask);
  }
  return head(h);
}

torch::Tensor FlamingoImpl::start_decoding(const torch::Tensor& images,
                                           const torch::Tensor& input_ids,
                                           const torch::Tensor& attention_mask, int64_t capacity,
                                           DecodeState& state) {
  FLAM_CHECK(input_ids.dim() == 2) << "input_ids must be [B, T]";
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  FLAM_CHECK(capacity >= T) << "decoding capacity " << capacity << " < prompt length " << T;
  using Inputs = std::vector<torch::Tensor>;
  auto vis = media_latents(images, B);  // [B, T_img, n, D_v]
  auto h = embed(input_ids);            // [B, T, D]
  const auto& lo = options_.lang;
  const int64_t head_dim = lo.dim / lo.heads;

  state = DecodeState{};
  state.num_latents = vis.size(2);
  state.media_k.resize(lang_->num_layers());
  state.media_v.resize(lang_->num_layers());
  size_t unit = perceiver_->depth();
  for (size_t i = 0; i < lang_->num_layers(); ++i) {
    state.k.push_back(torch::zeros({B, lo.heads, capacity, head_dim}, h.options()));
    state.v.push_back(torch::zeros({B, lo.heads, capacity, head_dim}, h.options()));
    if (auto* xattn = lang_->xattn(i)) {
      auto kv = call_trained(unit++,
                             [xattn](const Inputs& in) {
                               auto [k, v] = xattn->media_kv(in[0]);
                               return torch::stack({k, v});
                             },
                             {vis});
      state.media_k[i] = kv[0];
      state.media_v[i] = kv[1];
    }
  }
  auto mask_in = attention_mask.defined() ? attention_mask : torch::ones_like(input_ids);
  state.attention_mask = torch::zeros({B, capacity}, input_ids.options());
  state.attention_mask.narrow(1, 0, T).copy_(mask_in);
  auto is_image = input_ids.eq(special_.image).to(torch::kLong);  // [B, T]
  auto text_time = is_image.cumsum(-1);
  state.image_count = is_image.sum(-1);
  h = decode_layers(state, h, text_time, causal_mask(mask_in, T, h.scalar_type()));
  return head(h.narrow(1, T - 1, 1)).squeeze(1);
}

torch::Tensor FlamingoImpl::decode_step(DecodeState& state, const torch::Tensor& next_ids) {
  FLAM_CHECK(next_ids.dim() == 1 && next_ids.size(0) == state.attention_mask.size(0))
      << "next_ids must be [B]";
  FLAM_CHECK(state.length < state.attention_mask.size(1)) << "decoding capacity exhausted";
  const int64_t B = next_ids.size(0), pos = state.length;
  state.attention_mask.select(1, pos).fill_(1);
  auto ids = next_ids.view({B, 1});
  state.image_count = state.image_count + ids.eq(special_.image).to(torch::kLong).view({B});
  auto h = embed(ids);  // [B, 1, D]
  auto mask = key_mask(state.attention_mask.narrow(1, 0, pos + 1), h.scalar_type());
  h = decode_layers(state, h, state.image_count.view({B, 1}), mask);
  return head(h).squeeze(1);
}

torch::Tensor FlamingoImpl::decode_layers(DecodeState& state, torch::Tensor h,
                                          const torch::Tensor& text_time,
                                          const torch::Tensor& mask) {
  using Inputs = std::vector<torch::Tensor>;
  const int64_t t = h.size(1), past = state.length;
  const auto& lo = options_.lang;
  auto positions = torch::arange(past, past + t, text_time.options());
  auto [cos, sin] = rotary_tables(positions, lo.dim / lo.heads, lo.rope_theta, h.scalar_type());
  const int64_t n = state.num_latents;
  size_t unit = perceiver_->depth();
  for (size_t i = 0; i < lang_->num_layers(); ++i) {
    if (auto* xattn = lang_->xattn(i)) {
      h = call_trained(unit++,
                       [xattn, n](const Inputs& in) {
                         return xattn->forward_cached(in[0], in[1], in[2], in[3], n);
                       },
                       {h, state.media_k[i], state.media_v[i], text_time});
    }
    h = call_frozen(decoder_unit(i),
                    [&, i](const Inputs& in) {
                      return lang_->decoder_layer(i).forward_cached(in[0], cos, sin, mask,
                                                                    state.k[i], state.v[i], past);
                    },
                    {h});
  }
  state.length = past + t;
  return h;
}

void FlamingoImpl::select_rows(DecodeState& state, const torch::Tensor& index) {
  auto pick = [&index](torch::Tensor& t) {
    if (t.defined()) t = t.index_select(0, index.to(t.device()));
  };
  for (auto& t : state.k) pick(t);
  for (auto& t : state.v) pick(t);
  for (auto& t : state.media_k) pick(t);
  for (auto& t : state.media_v) pick(t);
  pick(state.attention_mask);
  pick(state.image_count);
}

torch::Tensor FlamingoImpl::loss(const torch::Tensor& logits, const torch::Tensor& labels) {
  FLAM_CHECK(logits.dim() == 3 && labels.dim() == 2 && logits.size(1) == labels.size(1))
      << "loss: logits [B, T, V], labels [B, T]";
  const int64_t T = logits.size(1);
  auto pred = logits.narrow(1, 0, T - 1).reshape({-1, logits.size(2)}).to(torch::kFloat32);
  auto target = labels.narrow(1, 1, T - 1).reshape({-1});
  auto valid = target.ne(-100);
  auto per_token = torch::nn::functional::cross_entropy(
      pred, target,
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kNone));
  auto count = valid.sum().clamp_min(1).to(torch::kFloat32);
  return per_token.sum() / count;
}

std::vector<ParamUnit> FlamingoImpl::trained_units() {
  std::vector<ParamUnit> units;
  std::set<std::string> taken;
  auto add_unit = [&](const std::string& name, torch::nn::Module& module) {
    ParamUnit u{name, {}};
    for (auto& item : module.named_parameters()) {
      u.params.emplace_back(name + "." + item.key(), item.value());
      taken.insert(name + "." + item.key());
    }
    units.push_back(std::move(u));
  };
  auto perceiver_layers = perceiver_->named_children()["layers"];
  for (size_t i = 0; i < perceiver_->depth(); ++i) {
    add_unit("perceiver.layers." + std::to_string(i),
             *perceiver_layers->named_children()[std::to_string(i)]);
  }
  for (size_t i : lang_->xattn_layers()) {
    add_unit("lang_encoder.gated_cross_attn_layers." + std::to_string(i), *lang_->xattn(i));
  }
  ParamUnit rest{"rest", {}};
  for (auto& item : named_parameters()) {
    if (item.value().requires_grad() && !taken.count(item.key())) {
      rest.params.emplace_back(item.key(), item.value());
    }
  }
  units.push_back(std::move(rest));
  return units;
}

void FlamingoImpl::set_unit_runner(UnitRunner* runner) { runner_ = runner; }

bool FlamingoImpl::weight_decay(const std::string& param_name) const {
  return param_name.find("gated_cross_attn") != std::string::npos;
}

}  // namespace flam::model
