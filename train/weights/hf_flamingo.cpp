#include "train/weights/hf_flamingo.h"

#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"
#include "train/model/flamingo.h"
#include "train/model/layers.h"
#include "train/weights/safetensors.h"

namespace flam::weights {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::string kVision = "vision_encoder.vision_model.";

[[noreturn]] void fail(const std::string& file, const std::string& key, const std::string& msg) {
  ErrorContext context;
  context.file = file;
  context.key = key;
  throw Error(ErrorKind::kData, msg, context);
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Where one HF tensor goes: `rows` rows of our `name` from row `row` (q/k/v into in_proj), the
// whole tensor (row < 0), or, for the vocabulary tables, the first min(rows) rows.
struct Target {
  enum Kind { kWhole, kRows, kVocab, kEmbed, kSkip } kind = kWhole;
  std::string name;
  int64_t row = 0;
};

// HF CLIP encoder-layer names -> open_clip resblock names (q/k/v handled apart).
const std::vector<std::pair<std::string, std::string>> kClipLayer = {
    {"self_attn.out_proj.", "attn.out_proj."},
    {"layer_norm1.", "ln_1."},
    {"layer_norm2.", "ln_2."},
    {"mlp.fc1.", "mlp.c_fc."},
    {"mlp.fc2.", "mlp.c_proj."}};
const std::vector<std::pair<std::string, std::string>> kClipStem = {
    {"embeddings.patch_embedding.weight", "conv1.weight"},
    {"embeddings.class_embedding", "class_embedding"},
    {"embeddings.position_embedding.weight", "positional_embedding"},
    {"pre_layrnorm.weight", "ln_pre.weight"},
    {"pre_layrnorm.bias", "ln_pre.bias"},
    {"post_layernorm.weight", "ln_post.weight"},
    {"post_layernorm.bias", "ln_post.bias"}};
const char* const kPerceiverAttention[] = {"norm_media.", "norm_latents.", "to_q.", "to_kv.",
                                           "to_out."};

std::optional<Target> to_ours(const std::string& hf, int64_t vision_width) {
  static const std::regex clip_layer(R"(encoder\.layers\.(\d+)\.(.*))");
  static const std::regex perceiver_layer(R"(perceiver\.layers\.(\d+)\.(.*))");
  static const std::regex lang_layer(R"(lang_encoder\.model\.layers\.(\d+)\.(.*))");
  std::smatch m;
  if (ends_with(hf, "rotary_emb.inv_freq") || ends_with(hf, "embeddings.position_ids") ||
      starts_with(hf, "lang_encoder.gated_cross_attn_layers.") ||
      starts_with(hf, "lang_encoder.old_decoder_blocks.")) {
    return Target{Target::kSkip, "", 0};
  }
  if (starts_with(hf, kVision)) {
    const std::string rest = hf.substr(kVision.size());
    for (const auto& [theirs, ours] : kClipStem) {
      if (rest == theirs) return Target{Target::kWhole, "vision_encoder." + ours, 0};
    }
    if (!std::regex_match(rest, m, clip_layer)) return std::nullopt;
    const std::string us = "vision_encoder.transformer.resblocks." + m[1].str() + ".";
    const std::string tail = m[2].str();
    const char* qkv[] = {"self_attn.q_proj.", "self_attn.k_proj.", "self_attn.v_proj."};
    for (int i = 0; i < 3; ++i) {
      if (starts_with(tail, qkv[i])) {
        return Target{Target::kRows, us + "attn.in_proj_" + tail.substr(17), i * vision_width};
      }
    }
    for (const auto& [theirs, ours] : kClipLayer) {
      if (starts_with(tail, theirs))
        return Target{Target::kWhole, us + ours + tail.substr(theirs.size()), 0};
    }
    return std::nullopt;
  }
  if (std::regex_match(hf, m, perceiver_layer)) {
    const std::string us = "perceiver.layers." + m[1].str() + ".";
    const std::string tail = m[2].str();
    if (starts_with(tail, "feed_forward."))
      return Target{Target::kWhole, us + "1." + tail.substr(13), 0};
    for (const char* part : kPerceiverAttention) {
      if (starts_with(tail, part)) return Target{Target::kWhole, us + "0." + tail, 0};
    }
    return std::nullopt;
  }
  if (starts_with(hf, "perceiver.")) return Target{Target::kWhole, hf, 0};
  if (std::regex_match(hf, m, lang_layer)) {
    const std::string tail = m[2].str();
    if (starts_with(tail, "decoder_layer.")) return Target{Target::kWhole, hf, 0};
    const std::string xattn = "gated_cross_attn_layer.";
    if (!starts_with(tail, xattn)) return std::nullopt;
    std::string part = tail.substr(xattn.size());
    if (starts_with(part, "feed_forward.")) part = "ff." + part.substr(13);
    return Target{Target::kWhole, "lang_encoder.gated_cross_attn_layers." + m[1].str() + "." + part,
                  0};
  }
  if (hf == "lang_encoder.model.embed_tokens.weight") return Target{Target::kEmbed, hf, 0};
  if (hf == "lang_encoder.lm_head.weight") return Target{Target::kVocab, hf, 0};
  if (hf == "lang_encoder.model.norm.weight") return Target{Target::kWhole, hf, 0};
  return std::nullopt;
}

json read_json(const std::string& path) {
  if (!fs::is_regular_file(path)) {
    ErrorContext context;
    context.file = path;
    throw Error(ErrorKind::kIo, "no such file", context);
  }
  try {
    return json::parse(read_file(path));
  } catch (const json::exception& e) {
    fail(path, "", std::string("not valid JSON: ") + e.what());
  }
}

}  // namespace

NamedTensors to_hf_flamingo(const std::string& ours, const at::Tensor& t) {
  static const std::regex resblock(R"(vision_encoder\.transformer\.resblocks\.(\d+)\.(.*))");
  static const std::regex perceiver_layer(R"(perceiver\.layers\.(\d+)\.([01])\.(.*))");
  static const std::regex xattn(R"(lang_encoder\.gated_cross_attn_layers\.(\d+)\.(.*))");
  std::smatch m;
  for (const auto& [theirs, us] : kClipStem) {
    if (ours == "vision_encoder." + us) return {{kVision + theirs, t}};
  }
  if (std::regex_match(ours, m, resblock)) {
    const std::string hf = kVision + "encoder.layers." + m[1].str() + ".";
    const std::string tail = m[2].str();
    if (starts_with(tail, "attn.in_proj_")) {
      const std::string w = tail.substr(13);
      const int64_t d = t.size(0) / 3;
      return {{hf + "self_attn.q_proj." + w, t.narrow(0, 0, d)},
              {hf + "self_attn.k_proj." + w, t.narrow(0, d, d)},
              {hf + "self_attn.v_proj." + w, t.narrow(0, 2 * d, d)}};
    }
    for (const auto& [theirs, us] : kClipLayer) {
      if (starts_with(tail, us)) return {{hf + theirs + tail.substr(us.size()), t}};
    }
  }
  if (std::regex_match(ours, m, perceiver_layer)) {
    const std::string hf = "perceiver.layers." + m[1].str() + ".";
    return {{hf + (m[2].str() == "1" ? "feed_forward." : "") + m[3].str(), t}};
  }
  if (std::regex_match(ours, m, xattn)) {
    std::string part = m[2].str();
    if (starts_with(part, "ff.")) part = "feed_forward." + part.substr(3);
    return {{"lang_encoder.model.layers." + m[1].str() + ".gated_cross_attn_layer." + part, t}};
  }
  return {{ours, t}};
}

model::ModelOptions read_hf_flamingo_config(const std::string& dir,
                                            const model::ModelOptions& base) {
  const std::string path = (fs::path(dir) / "config.json").string();
  const json config = read_json(path);
  if (!config.is_object() || config.value("model_type", "") != "flamingo") {
    fail(path, "model_type", "expected \"flamingo\" (an OpenFlamingo-HF folder)");
  }
  model::ModelOptions o = base;
  auto section = [&](const char* name) -> const json& {
    if (!config.contains(name) || !config[name].is_object()) fail(path, name, "missing object");
    return config[name];
  };
  auto get_int = [&](const json& j, const std::string& where, const char* key, int& out) {
    if (!j.contains(key)) return;
    if (!j[key].is_number_integer() || j[key].get<int64_t>() < 1)
      fail(path, where + key, "must be a positive integer");
    out = j[key].get<int>();
  };
  get_int(config, "", "cross_attn_every_n_layers", o.xattn.every_n_layers);
  if (config.contains("only_attend_previous")) {
    if (!config["only_attend_previous"].is_boolean())
      fail(path, "only_attend_previous", "must be true or false");
    o.xattn.only_attend_immediate_media = config["only_attend_previous"].get<bool>();
  }
  const json& text = section("text_config");
  get_int(text, "text_config.", "hidden_size", o.lang.dim);
  get_int(text, "text_config.", "intermediate_size", o.lang.ffn_dim);
  get_int(text, "text_config.", "num_attention_heads", o.lang.heads);
  get_int(text, "text_config.", "num_hidden_layers", o.lang.layers);
  get_int(text, "text_config.", "max_position_embeddings", o.lang.max_seq_len);
  if (text.contains("num_key_value_heads") &&
      text["num_key_value_heads"] != text.value("num_attention_heads", json(o.lang.heads))) {
    fail(path, "text_config.num_key_value_heads", "grouped-query attention is not supported");
  }
  if (text.contains("rms_norm_eps")) {
    if (!text["rms_norm_eps"].is_number()) fail(path, "text_config.rms_norm_eps", "not a number");
    o.lang.norm_eps = text["rms_norm_eps"].get<double>();
  }
  if (text.contains("rope_theta") && text["rope_theta"].is_number())
    o.lang.rope_theta = text["rope_theta"].get<double>();
  const json& vision = section("vision_config");
  get_int(vision, "vision_config.", "hidden_size", o.vision.width);
  get_int(vision, "vision_config.", "intermediate_size", o.vision.mlp_dim);
  get_int(vision, "vision_config.", "num_attention_heads", o.vision.heads);
  get_int(vision, "vision_config.", "num_hidden_layers", o.vision.layers);
  get_int(vision, "vision_config.", "image_size", o.vision.image_size);
  get_int(vision, "vision_config.", "patch_size", o.vision.patch_size);
  return o;
}

void load_hf_flamingo(model::FlamingoImpl& model, const std::string& dir,
                      const std::function<bool(const std::string&)>& wanted) {
  const model::ModelOptions& have = model.options();
  const model::ModelOptions file = read_hf_flamingo_config(dir, have);
  const std::string config_path = (fs::path(dir) / "config.json").string();
  auto agree = [&](const char* key, double a, double b) {
    if (std::abs(a - b) > 1e-9 * std::max(1.0, std::abs(b))) {
      fail(config_path, key, "is " + std::to_string(a) + " but the model has " + std::to_string(b));
    }
  };
  agree("cross_attn_every_n_layers", file.xattn.every_n_layers, have.xattn.every_n_layers);
  agree("only_attend_previous", file.xattn.only_attend_immediate_media,
        have.xattn.only_attend_immediate_media);
  agree("text_config.hidden_size", file.lang.dim, have.lang.dim);
  agree("text_config.intermediate_size", file.lang.ffn_dim, have.lang.ffn_dim);
  agree("text_config.num_attention_heads", file.lang.heads, have.lang.heads);
  agree("text_config.num_hidden_layers", file.lang.layers, have.lang.layers);
  agree("text_config.rms_norm_eps", file.lang.norm_eps, have.lang.norm_eps);
  agree("vision_config.hidden_size", file.vision.width, have.vision.width);
  agree("vision_config.intermediate_size", file.vision.mlp_dim, have.vision.mlp_dim);
  agree("vision_config.num_attention_heads", file.vision.heads, have.vision.heads);
  agree("vision_config.num_hidden_layers", file.vision.layers, have.vision.layers);
  agree("vision_config.image_size", file.vision.image_size, have.vision.image_size);
  agree("vision_config.patch_size", file.vision.patch_size, have.vision.patch_size);

  // The weight files and which tensor each holds.
  const fs::path root(dir);
  std::map<std::string, std::vector<std::string>> files;  // file -> HF names (empty: all)
  bool pickled = false;
  for (const auto& [index_name, single, is_bin] :
       {std::tuple{"model.safetensors.index.json", "model.safetensors", false},
        std::tuple{"pytorch_model.bin.index.json", "pytorch_model.bin", true}}) {
    if (!files.empty()) break;
    pickled = is_bin;
    const fs::path index = root / index_name;
    if (fs::is_regular_file(index)) {
      const json j = read_json(index.string());
      if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
        fail(index.string(), "weight_map", "index needs a \"weight_map\" object {tensor: file}");
      for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
        if (!it.value().is_string()) fail(index.string(), it.key(), "must name a weight file");
        files[(root / it.value().get<std::string>()).string()].push_back(it.key());
      }
    } else if (fs::is_regular_file(root / single)) {
      files[(root / single).string()] = {};
    }
  }
  if (files.empty()) {
    ErrorContext context;
    context.file = dir;
    throw Error(ErrorKind::kIo,
                "no weights: expected model.safetensors[.index.json] or "
                "pytorch_model.bin[.index.json]",
                context);
  }

  torch::NoGradGuard no_grad;
  auto params = model.named_parameters();
  auto& lang = model.lang_encoder();
  const int64_t v = have.lang.vocab_size;
  const int64_t width = have.vision.width;
  std::map<std::string, int64_t> filled;  // our name -> elements written
  std::vector<std::string> unknown, mismatched;
  auto want = [&](const std::string& ours) { return !wanted || wanted(ours); };
  auto target_of = [&](const std::string& hf) -> std::optional<Target> {
    auto target = to_ours(hf, width);
    if (!target) {
      unknown.push_back(hf);
      return std::nullopt;
    }
    if (target->kind == Target::kSkip) return std::nullopt;
    const bool needed = target->kind == Target::kEmbed
                            ? want(target->name) || want(model::kSpecialTokenEmbeddings)
                            : want(target->name);
    if (!needed) return std::nullopt;
    return target;
  };
  auto place = [&](const std::string& file, const std::string& hf, const Target& target,
                   const at::Tensor& t) {
    if (target.kind == Target::kEmbed) {
      auto& table = lang.embed_tokens();
      if (t.dim() != 2 || t.size(1) != table.size(1) || t.size(0) < v + 2)
        fail(file, hf, "embedding table must be [V + 2 or more, D]");
      const int64_t rows = std::min(t.size(0), table.size(0));
      if (!model::is_shape_only(table)) table.narrow(0, 0, rows).copy_(t.narrow(0, 0, rows));
      lang.special_token_embeddings().copy_(t.narrow(0, v, 2));
      filled[target.name] = table.numel();
      filled[model::kSpecialTokenEmbeddings] = lang.special_token_embeddings().numel();
      return;
    }
    auto* p = params.find(target.name);
    if (!p) {
      unknown.push_back(hf);
      return;
    }
    at::Tensor dst = *p;
    if (target.kind == Target::kRows) {
      if (t.dim() < 1 || target.row + t.size(0) > dst.size(0) ||
          !t.sizes().slice(1).equals(dst.sizes().slice(1))) {
        mismatched.push_back(hf);
        return;
      }
      dst = dst.narrow(0, target.row, t.size(0));
    } else if (target.kind == Target::kVocab) {
      if (t.dim() != 2 || t.size(1) != dst.size(1)) {
        mismatched.push_back(hf);
        return;
      }
      const int64_t rows = std::min(t.size(0), dst.size(0));
      dst.narrow(0, 0, rows).copy_(t.narrow(0, 0, rows));
      filled[target.name] = dst.numel();
      return;
    }
    if (!dst.sizes().equals(t.sizes())) {
      mismatched.push_back(hf);
      return;
    }
    dst.copy_(t);
    filled[target.name] += dst.numel();
  };

  for (const auto& [file, names] : files) {
    std::vector<std::pair<std::string, Target>> needed;
    if (!names.empty()) {
      for (const std::string& hf : names) {
        if (auto target = target_of(hf)) needed.emplace_back(hf, *target);
      }
      if (needed.empty()) continue;  // nothing of this rank's in the file: never opened
    }
    if (pickled) {
      const std::string bytes = read_file(file);
      c10::IValue root_value;
      try {
        root_value = torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
      } catch (const c10::Error& e) {
        fail(file, "", std::string("not a torch.save'd state dict: ") + e.what_without_backtrace());
      }
      if (!root_value.isGenericDict()) fail(file, "", "not a dict of tensors");
      for (const auto& item : root_value.toGenericDict()) {
        if (!item.key().isString() || !item.value().isTensor())
          fail(file, "", "entries must be name -> tensor");
        const std::string hf = item.key().toStringRef();
        if (!names.empty() && std::find(names.begin(), names.end(), hf) == names.end()) {
          fail(file, hf, "not in the index's weight map");
        }
        if (auto target = target_of(hf)) place(file, hf, *target, item.value().toTensor());
      }
    } else {
      const SafetensorsFile st(file);
      if (names.empty()) {
        for (const std::string& hf : st.names()) {
          if (auto target = target_of(hf)) needed.emplace_back(hf, *target);
        }
      }
      for (const auto& [hf, target] : needed) {
        if (!st.contains(hf)) fail(file, hf, "the weight map names this file, which lacks it");
        place(file, hf, target, st.load(hf));
      }
    }
  }
  auto list = [](const std::vector<std::string>& names) {
    std::string out;
    for (size_t i = 0; i < names.size() && i < 8; ++i) out += (i ? ", " : "") + names[i];
    if (names.size() > 8) out += ", ... (" + std::to_string(names.size()) + " in all)";
    return out;
  };
  std::sort(unknown.begin(), unknown.end());
  unknown.erase(std::unique(unknown.begin(), unknown.end()), unknown.end());
  if (!unknown.empty()) fail(dir, "", "unexpected tensors: " + list(unknown));
  if (!mismatched.empty()) fail(dir, "", "mis-shaped tensors: " + list(mismatched));
  std::vector<std::string> missing;
  for (const auto& item : params) {
    if (!want(item.key())) continue;
    auto it = filled.find(item.key());
    if (it == filled.end() || it->second < item.value().numel()) missing.push_back(item.key());
  }
  if (!missing.empty()) fail(dir, "", "missing tensors: " + list(missing));
}

void export_hf_flamingo(model::FlamingoImpl& model, const std::string& dir,
                        uint64_t max_shard_bytes) {
  torch::NoGradGuard no_grad;
  std::vector<TensorSpec> parameters;
  auto params = model.named_parameters();
  for (const auto& item : params) {
    parameters.push_back({item.key(), item.value().scalar_type(), item.value().sizes().vec()});
  }
  export_hf_flamingo(
      model.options(), parameters,
      [&](const std::string& name) { return params[name].detach().to(torch::kCPU); }, dir,
      max_shard_bytes);
}

void export_hf_flamingo(const model::ModelOptions& o, const std::vector<TensorSpec>& parameters,
                        const std::function<at::Tensor(const std::string&)>& get,
                        const std::string& dir, uint64_t max_shard_bytes) {
  const std::string embed = "lang_encoder.model.embed_tokens.weight";
  // The files' tensors, sorted by HF name: each one piece of one of our parameters.
  struct Piece {
    TensorSpec spec;
    std::string ours;
    size_t part = 0;  // index into to_hf_flamingo(ours, ...)
  };
  std::vector<Piece> pieces;
  for (const TensorSpec& p : parameters) {
    if (p.name == model::kSpecialTokenEmbeddings) continue;  // written into embed_tokens
    const at::Tensor meta =
        at::empty(p.shape, at::TensorOptions().dtype(p.dtype).device(at::kMeta));
    const NamedTensors parts = to_hf_flamingo(p.name, meta);
    for (size_t k = 0; k < parts.size(); ++k) {
      pieces.push_back({{parts[k].first, p.dtype, parts[k].second.sizes().vec()}, p.name, k});
    }
  }
  std::sort(pieces.begin(), pieces.end(),
            [](const Piece& a, const Piece& b) { return a.spec.name < b.spec.name; });
  std::vector<TensorSpec> specs;
  for (const Piece& piece : pieces) specs.push_back(piece.spec);
  write_sharded_safetensors(
      dir, specs,
      [&](size_t i) {
        const Piece& piece = pieces[i];
        at::Tensor t = get(piece.ours);
        if (piece.ours == embed) {
          t = t.clone();
          t.narrow(0, o.lang.vocab_size, 2)
              .copy_(get(model::kSpecialTokenEmbeddings).to(t.device(), t.scalar_type()));
        }
        return to_hf_flamingo(piece.ours, t)[piece.part].second;
      },
      max_shard_bytes);
  const at::ScalarType dtype = specs.empty() ? at::kFloat : specs.front().dtype;
  const json config = {{"model_type", "flamingo"},
                       {"architectures", {"FlamingoModel"}},
                       {"cross_attn_every_n_layers", o.xattn.every_n_layers},
                       {"only_attend_previous", o.xattn.only_attend_immediate_media},
                       {"torch_dtype", dtype == at::kBFloat16 ? "bfloat16"
                                       : dtype == at::kHalf   ? "float16"
                                                              : "float32"},
                       {"text_config",
                        {{"model_type", "llama"},
                         {"architectures", {"LlamaForCausalLM"}},
                         {"hidden_size", o.lang.dim},
                         {"intermediate_size", o.lang.ffn_dim},
                         {"num_attention_heads", o.lang.heads},
                         {"num_key_value_heads", o.lang.heads},
                         {"num_hidden_layers", o.lang.layers},
                         {"max_position_embeddings", o.lang.max_seq_len},
                         {"rms_norm_eps", o.lang.norm_eps},
                         {"rope_theta", o.lang.rope_theta},
                         {"vocab_size", int64_t{o.lang.vocab_size} + 3},
                         {"tie_word_embeddings", false}}},
                       {"vision_config",
                        {{"model_type", "clip_vision_model"},
                         {"hidden_size", o.vision.width},
                         {"intermediate_size", o.vision.mlp_dim},
                         {"num_attention_heads", o.vision.heads},
                         {"num_hidden_layers", o.vision.layers},
                         {"image_size", o.vision.image_size},
                         {"patch_size", o.vision.patch_size},
                         {"hidden_act", "quick_gelu"}}}};
  write_file_atomic((fs::path(dir) / "config.json").string(), config.dump(2) + "\n");
}

}  // namespace flam::weights
