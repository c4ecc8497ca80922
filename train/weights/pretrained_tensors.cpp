#include "train/weights/pretrained_tensors.h"

#include <torch/torch.h>

#include <filesystem>
#include <optional>
#include <sstream>

#include "core/check.h"
#include "core/error.h"
#include "pipeline/s3.h"
#include "train/model/flamingo.h"
#include "train/model/layers.h"
#include "train/weights/hf_flamingo.h"
#include "train/weights/model_weights.h"

namespace flam::weights {
namespace {

namespace fs = std::filesystem;

const std::string kEmbed = "lang_encoder.model.embed_tokens.weight";
const std::string kLmHead = "lang_encoder.lm_head.weight";

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

// One weight file set of the run, and how its names map onto ours.
struct Source {
  enum Kind { kHfFlamingo, kClip, kLlama } kind;
  TensorSource tensors;
};

// (name in the source, view of `t`) for our parameter `ours` backed by `t`; empty when the
// source does not hold it. Vocabulary tables may hold fewer rows than ours (see fill()).
NamedTensors pieces(Source::Kind kind, const std::string& ours, const at::Tensor& t) {
  if (ours == model::kSpecialTokenEmbeddings) return {};
  switch (kind) {
    case Source::kHfFlamingo:
      return to_hf_flamingo(ours, t);
    case Source::kClip: {
      const std::string prefix = "vision_encoder.";
      if (!starts_with(ours, prefix)) return {};
      NamedTensors out = to_hf_flamingo(ours, t);
      for (auto& [name, view] : out) name = name.substr(prefix.size());  // vision_model.*
      return out;
    }
    case Source::kLlama: {
      const std::string layers = "lang_encoder.model.layers.";
      const std::string decoder = ".decoder_layer.";
      if (ours == kEmbed) return {{"model.embed_tokens.weight", t}};
      if (ours == kLmHead) return {{"lm_head.weight", t}};
      if (ours == "lang_encoder.model.norm.weight") return {{"model.norm.weight", t}};
      const size_t at = ours.find(decoder);
      if (!starts_with(ours, layers) || at == std::string::npos) return {};
      return {{"model.layers." + ours.substr(layers.size(), at - layers.size()) +
                   ours.substr(at + decoder.size() - 1),
               t}};
    }
  }
  return {};
}

std::string shape_str(at::IntArrayRef s) {
  std::ostringstream out;
  out << s;
  return out.str();
}

// How many rows of `dst` the source's tensor `name` fills (all of them, or for the vocabulary
// tables possibly fewer), checking its shape; with `copy`, copies them. Throws kData naming the
// file and tensor when it does not fit.
int64_t fill(const TensorSource& source, const std::string& name, const std::string& ours,
             at::Tensor dst, bool copy) {
  const TensorInfo& info = source.info(name);
  const bool vocab = ours == kEmbed || ours == kLmHead;
  const bool fits = vocab ? info.shape.size() == 2 && info.shape[1] == dst.size(1)
                          : dst.sizes().equals(info.shape);
  if (!fits) {
    ErrorContext context;
    context.file = source.path();
    context.key = name;
    throw Error(
        ErrorKind::kData,
        "shape " + shape_str(info.shape) + " does not fit " + ours + " " + shape_str(dst.sizes()),
        context);
  }
  const int64_t rows = vocab ? std::min(info.shape[0], dst.size(0)) : dst.size(0);
  if (copy) dst.narrow(0, 0, rows).copy_(source.load(name).narrow(0, 0, rows));
  return rows;
}

}  // namespace

struct PretrainedTensors::Impl {
  model::ModelOptions options;
  std::vector<Source> sources;
  std::map<std::string, at::Tensor> kept;  // the initialisation of what the files leave open
  std::map<std::string, size_t> index;     // name -> parameters_ index
  std::optional<model::Flamingo> whole;    // not streamed: the model as build_pretrained builds

  // Whether the files hold every element of `ours` (shape `spec`).
  bool covered(const TensorSpec& spec) const {
    const int64_t v = options.lang.vocab_size;
    if (spec.name == model::kSpecialTokenEmbeddings) {  // rows V, V + 1 of a file's table
      for (const Source& s : sources) {
        const std::string table = s.kind == Source::kLlama ? "model.embed_tokens.weight" : kEmbed;
        if (s.kind != Source::kClip && s.tensors.contains(table) &&
            s.tensors.info(table).shape.size() == 2 && s.tensors.info(table).shape[0] >= v + 2) {
          return true;
        }
      }
      return false;
    }
    const at::Tensor meta = at::empty(spec.shape, at::TensorOptions().device(at::kMeta));
    for (const Source& s : sources) {
      const NamedTensors parts = pieces(s.kind, spec.name, meta);
      if (parts.empty()) continue;
      bool all = true;
      for (const auto& [name, view] : parts) {
        all = all && s.tensors.contains(name) &&
              fill(s.tensors, name, spec.name, view, /*copy=*/false) == view.size(0);
      }
      if (all) return true;
    }
    return false;
  }
};

PretrainedTensors::PretrainedTensors(const model::ModelOptions& options, int64_t seed,
                                     const std::function<bool(const std::string&)>& wanted)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.options = options;
  const model::WeightsOptions& w = options.weights;
  bool streamable = w.openflamingo_checkpoint.empty();
  if (streamable && !w.hf_flamingo.empty()) {
    const fs::path dir = pipeline::local_path_for(w.hf_flamingo);
    if (fs::is_regular_file(dir / "model.safetensors.index.json")) {
      s.sources.push_back(
          {Source::kHfFlamingo, TensorSource((dir / "model.safetensors.index.json").string())});
    } else if (fs::is_regular_file(dir / "model.safetensors")) {
      s.sources.push_back(
          {Source::kHfFlamingo, TensorSource((dir / "model.safetensors").string())});
    } else {
      streamable = false;  // pickled .bin shards
    }
  }
  if (!streamable) {
    s.sources.clear();
    s.whole = build_pretrained(options, seed);
    for (const auto& item : (*s.whole)->named_parameters()) {
      parameters_.push_back({item.key(), at::kFloat, item.value().sizes().vec()});
    }
  } else {
    if (!w.vision.empty()) s.sources.push_back({Source::kClip, TensorSource(w.vision)});
    if (!w.lang.empty()) s.sources.push_back({Source::kLlama, TensorSource(w.lang)});
    // The replay: FlamingoImpl's and LanguageModelImpl's constructors, module by module.
    torch::NoGradGuard no_grad;
    torch::manual_seed(static_cast<uint64_t>(seed));
    auto add = [&](const std::string& name, const at::Tensor& value) {
      TensorSpec spec{name, at::kFloat, value.sizes().vec()};
      if (wanted(name) && !s.covered(spec)) s.kept[name] = value.detach();
      parameters_.push_back(std::move(spec));
    };
    auto add_module = [&](const std::string& prefix, const torch::nn::Module& module) {
      for (const auto& item : module.named_parameters()) add(prefix + item.key(), item.value());
    };
    const model::LanguageOptions& lo = options.lang;
    const int64_t full_vocab = model::full_vocab_size(options);
    add_module("vision_encoder.", model::VisionEncoderImpl(options.vision));
    add_module("perceiver.",
               model::PerceiverResamplerImpl(options.vision.width, options.perceiver));
    const at::Tensor embed = torch::randn({full_vocab, lo.dim}) * 0.02;
    add(kEmbed, embed);
    for (int i = 0; i < lo.layers; ++i) {
      add_module("lang_encoder.model.layers." + std::to_string(i) + ".decoder_layer.",
                 model::LlamaDecoderLayerImpl(lo));
    }
    add("lang_encoder.model.norm.weight", torch::ones({lo.dim}));
    for (int i = 0; i < lo.layers; ++i) {
      if ((i + 1) % options.xattn.every_n_layers != 0) continue;
      add_module("lang_encoder.gated_cross_attn_layers." + std::to_string(i) + ".",
                 model::GatedCrossAttentionBlockImpl(lo.dim, options.vision.width, options.xattn));
    }
    add(kLmHead,
        torch::nn::Linear(torch::nn::LinearOptions(lo.dim, full_vocab).bias(false))->weight);
    add(model::kSpecialTokenEmbeddings, embed.narrow(0, lo.vocab_size, 2).clone());
  }
  for (size_t i = 0; i < parameters_.size(); ++i) s.index[parameters_[i].name] = i;
}

PretrainedTensors::~PretrainedTensors() = default;

bool PretrainedTensors::streamed() const { return !impl_->whole; }

at::Tensor PretrainedTensors::get(const std::string& name) const {
  const Impl& s = *impl_;
  auto at = s.index.find(name);
  FLAM_CHECK(at != s.index.end()) << "no parameter " << name;
  torch::NoGradGuard no_grad;
  if (s.whole) return (*s.whole)->named_parameters()[name].detach().clone();
  auto kept = s.kept.find(name);
  at::Tensor t = kept != s.kept.end() ? kept->second.clone()
                                      : at::empty(parameters_[at->second].shape, at::kFloat);
  const int64_t v = s.options.lang.vocab_size;
  for (const Source& source : s.sources) {
    if (name == model::kSpecialTokenEmbeddings) {  // as load_hf_flamingo / load_llama do
      if (source.kind == Source::kClip) continue;
      const std::string table =
          source.kind == Source::kLlama ? "model.embed_tokens.weight" : kEmbed;
      if (source.tensors.contains(table) && source.tensors.info(table).shape.size() == 2 &&
          source.tensors.info(table).shape[0] >= v + 2) {
        t.copy_(source.tensors.load(table, at::kFloat).narrow(0, v, 2));
      }
      continue;
    }
    for (const auto& [hf, view] : pieces(source.kind, name, t)) {
      if (source.tensors.contains(hf)) fill(source.tensors, hf, name, view, /*copy=*/true);
    }
  }
  return t;
}

}  // namespace flam::weights
