#include "train/weights/model_weights.h"

#include <caffe2/serialize/inline_container.h>
#include <fcntl.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/csrc/jit/serialization/pickler.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <sstream>
#include <vector>

#include "core/atomic_file.h"
#include "core/check.h"
#include "core/error.h"
#include "pipeline/s3.h"
#include "train/model/flamingo.h"
#include "train/model/layers.h"
#include "train/weights/hf_flamingo.h"

namespace flam::weights {
namespace {

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string shape_str(at::IntArrayRef s) {
  std::ostringstream out;
  out << s;
  return out.str();
}

std::string list(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < 8; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > 8) out += ", ... (" + std::to_string(names.size()) + " in all)";
  return out;
}

[[noreturn]] void fail(const std::string& source, const std::string& key, const std::string& msg) {
  ErrorContext context;
  context.file = source;
  context.key = key;
  throw Error(ErrorKind::kData, msg, context);
}

// Copies the first min(rows) rows of `src` into `dst` (vocabulary tables of different sizes).
void copy_rows(torch::Tensor& dst, const at::Tensor& src, const std::string& source,
               const std::string& name) {
  if (src.dim() != 2 || src.size(1) != dst.size(1)) {
    fail(source, name,
         "shape " + shape_str(src.sizes()) + " does not fit " + shape_str(dst.sizes()));
  }
  const int64_t rows = std::min(src.size(0), dst.size(0));
  dst.narrow(0, 0, rows).copy_(src.narrow(0, 0, rows));
}

}  // namespace

void load_into(torch::nn::Module& module, const std::map<std::string, at::Tensor>& tensors,
               const std::string& source, bool require_all) {
  torch::NoGradGuard no_grad;
  auto params = module.named_parameters();
  std::vector<std::string> unexpected, mismatched, missing;
  for (const auto& [name, t] : tensors) {
    auto* p = params.find(name);
    if (!p) {
      unexpected.push_back(name);
    } else if (!p->sizes().equals(t.sizes())) {
      mismatched.push_back(name + " " + shape_str(t.sizes()) + " (expected " +
                           shape_str(p->sizes()) + ")");
    }
  }
  if (require_all) {
    for (const auto& item : params) {
      if (!tensors.count(item.key())) missing.push_back(item.key());
    }
  }
  std::string msg;
  if (!missing.empty()) msg += "missing tensors: " + list(missing) + ". ";
  if (!unexpected.empty()) msg += "unexpected tensors: " + list(unexpected) + ". ";
  if (!mismatched.empty()) msg += "mis-shaped tensors: " + list(mismatched) + ". ";
  if (!msg.empty()) fail(source, "", msg);
  for (const auto& [name, t] : tensors) {
    if (!model::is_shape_only(params[name])) params[name].copy_(t);
  }
}

void load_clip_vision(model::FlamingoImpl& model, const TensorSource& source) {
  const auto conv1 = model.vision_encoder().named_parameters()["conv1.weight"];
  if (model::is_shape_only(conv1)) return;  // the whole encoder is (FrozenStorage)
  const std::string p = "vision_model.";
  auto get = [&](const std::string& name) {
    if (!source.contains(p + name)) fail(source.path(), p + name, "missing tensor");
    return source.load(p + name, torch::kFloat32);
  };
  std::map<std::string, at::Tensor> t;
  t["conv1.weight"] = get("embeddings.patch_embedding.weight");
  t["class_embedding"] = get("embeddings.class_embedding");
  t["positional_embedding"] = get("embeddings.position_embedding.weight");
  for (const char* w : {"weight", "bias"}) {
    t[std::string("ln_pre.") + w] = get(std::string("pre_layrnorm.") + w);
    t[std::string("ln_post.") + w] = get(std::string("post_layernorm.") + w);
  }
  const int layers = model.options().vision.layers;
  for (int l = 0; l < layers; ++l) {
    const std::string hf = "encoder.layers." + std::to_string(l) + ".";
    const std::string us = "transformer.resblocks." + std::to_string(l) + ".";
    for (const char* w : {"weight", "bias"}) {
      const std::string s = w;
      t[us + "attn.in_proj_" + s] =
          torch::cat({get(hf + "self_attn.q_proj." + s), get(hf + "self_attn.k_proj." + s),
                      get(hf + "self_attn.v_proj." + s)});
      t[us + "attn.out_proj." + s] = get(hf + "self_attn.out_proj." + s);
      t[us + "ln_1." + s] = get(hf + "layer_norm1." + s);
      t[us + "ln_2." + s] = get(hf + "layer_norm2." + s);
      t[us + "mlp.c_fc." + s] = get(hf + "mlp.fc1." + s);
      t[us + "mlp.c_proj." + s] = get(hf + "mlp.fc2." + s);
    }
  }
  if (source.contains(p + "encoder.layers." + std::to_string(layers) + ".layer_norm1.weight")) {
    fail(source.path(), p + "encoder.layers." + std::to_string(layers),
         "the checkpoint has more vision layers than model.vision.layers = " +
             std::to_string(layers));
  }
  load_into(model.vision_encoder(), t, source.path(), /*require_all=*/true);
}

void load_llama(model::FlamingoImpl& model, const TensorSource& source) {
  torch::NoGradGuard no_grad;
  auto& lang = model.lang_encoder();
  auto params = lang.named_parameters();
  const int64_t v = model.options().lang.vocab_size;
  std::map<std::string, at::Tensor> t;
  std::vector<std::string> unexpected;
  for (const auto& name : source.names()) {
    if (ends_with(name, "rotary_emb.inv_freq")) continue;
    if (name == "model.embed_tokens.weight") {
      const bool table = !model::is_shape_only(lang.embed_tokens());
      const bool rows = source.info(name).shape.size() == 2 && source.info(name).shape[0] >= v + 2;
      if (!table && !rows) continue;
      const at::Tensor loaded = source.load(name, torch::kFloat32);
      if (table) copy_rows(lang.embed_tokens(), loaded, source.path(), name);
      if (rows) {  // the file's <|endofchunk|> and <image> rows start the trained ones
        if (loaded.size(1) != lang.special_token_embeddings().size(1)) {
          fail(source.path(), name,
               "shape " + shape_str(loaded.sizes()) + " does not fit " +
                   shape_str(lang.embed_tokens().sizes()));
        }
        lang.special_token_embeddings().copy_(loaded.narrow(0, v, 2));
      }
    } else if (name == "lm_head.weight") {
      auto head = params["lm_head.weight"];
      if (!model::is_shape_only(head))
        copy_rows(head, source.load(name, torch::kFloat32), source.path(), name);
    } else if (name == "model.norm.weight") {
      t[name] = source.load(name, torch::kFloat32);
    } else if (starts_with(name, "model.layers.")) {
      const size_t dot = name.find('.', 13);
      if (dot == std::string::npos) {
        unexpected.push_back(name);
        continue;
      }
      const std::string ours = name.substr(0, dot) + ".decoder_layer" + name.substr(dot);
      const at::Tensor* target = params.find(ours);
      // A shape-only target gets a placeholder of the file's shape: checked, never read.
      t[ours] = target && model::is_shape_only(*target)
                    ? model::shape_only_placeholder(source.info(name).shape, at::kFloat)
                    : source.load(name, torch::kFloat32);
    } else {
      unexpected.push_back(name);
    }
  }
  if (!unexpected.empty()) fail(source.path(), "", "unexpected tensors: " + list(unexpected));
  for (const char* required : {"model.embed_tokens.weight", "lm_head.weight"}) {
    if (!source.contains(required)) fail(source.path(), required, "missing tensor");
  }
  // Every decoder parameter must come from the file; the Flamingo blocks are not in it.
  std::vector<std::string> missing;
  for (const auto& item : lang.named_parameters()) {
    const std::string& k = item.key();
    if (starts_with(k, "model.layers.") || k == "model.norm.weight") {
      if (!t.count(k)) missing.push_back(k);
    }
  }
  if (!missing.empty()) fail(source.path(), "", "missing tensors: " + list(missing));
  load_into(lang, t, source.path(), /*require_all=*/false);
}

void load_openflamingo_checkpoint(model::FlamingoImpl& model, const std::string& path) {
  const std::string bytes =
      pipeline::is_s3_url(path) ? pipeline::default_s3_client().get(path) : read_file(path);
  c10::IValue root;
  try {
    root = torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
  } catch (const c10::Error& e) {
    fail(path, "", std::string("not a torch.save'd state dict: ") + e.what_without_backtrace());
  }
  if (!root.isGenericDict()) fail(path, "", "checkpoint is not a dict");
  auto dict = root.toGenericDict();
  if (dict.contains("model_state_dict")) {
    auto inner = dict.at("model_state_dict");
    if (!inner.isGenericDict()) fail(path, "model_state_dict", "not a dict");
    dict = inner.toGenericDict();
  }
  torch::NoGradGuard no_grad;
  auto& lang = model.lang_encoder();
  const int64_t v = model.options().lang.vocab_size;
  std::map<std::string, at::Tensor> t;
  for (const auto& item : dict) {
    if (!item.key().isString() || !item.value().isTensor()) {
      fail(path, item.key().isString() ? item.key().toStringRef() : "",
           "state dict entries must be name -> tensor");
    }
    std::string name = item.key().toStringRef();
    if (starts_with(name, "module.")) name = name.substr(7);
    if (name.find(".gated_cross_attn_layer.") != std::string::npos ||
        starts_with(name, "lang_encoder.old_decoder_blocks.") || name == "vision_encoder.proj" ||
        ends_with(name, "rotary_emb.inv_freq")) {
      continue;
    }
    auto tensor = item.value().toTensor().to(torch::kFloat32);
    if (name == "lang_encoder.model.embed_tokens.weight") {
      if (!model::is_shape_only(lang.embed_tokens()))
        copy_rows(lang.embed_tokens(), tensor, path, name);
      if (tensor.size(0) >= v + 2) {
        lang.special_token_embeddings().copy_(tensor.narrow(0, v, 2));
      }
      continue;
    }
    t[name] = tensor;
  }
  std::vector<std::string> missing;
  for (const auto& item : model.named_parameters()) {
    if (item.value().requires_grad() && item.key() != model::kSpecialTokenEmbeddings &&
        !t.count(item.key())) {
      missing.push_back(item.key());
    }
  }
  if (!missing.empty()) fail(path, "", "missing trained tensors: " + list(missing));
  load_into(model, t, path, /*require_all=*/false);
}

void load_pretrained(model::FlamingoImpl& model, const model::WeightsOptions& weights) {
  if (!weights.hf_flamingo.empty()) {
    load_hf_flamingo(model, pipeline::local_path_for(weights.hf_flamingo),
                     [params = model.named_parameters()](const std::string& name) {
                       const at::Tensor* p = params.find(name);
                       return !p || !model::is_shape_only(*p);
                     });
  }
  if (!weights.vision.empty()) load_clip_vision(model, TensorSource(weights.vision));
  if (!weights.lang.empty()) load_llama(model, TensorSource(weights.lang));
  if (!weights.openflamingo_checkpoint.empty()) {
    load_openflamingo_checkpoint(model, weights.openflamingo_checkpoint);
  }
}

model::Flamingo build_pretrained(const model::ModelOptions& options, int64_t seed,
                                 model::FrozenStorage frozen) {
  torch::manual_seed(static_cast<uint64_t>(seed));
  model::Flamingo model(options, frozen);
  load_pretrained(*model, options.weights);
  return model;
}

NamedTensors export_trainable(model::FlamingoImpl& model) {
  torch::NoGradGuard no_grad;
  NamedTensors out;
  for (const auto& item : model.named_parameters()) {
    if (!item.value().requires_grad() || item.key() == model::kSpecialTokenEmbeddings) {
      continue;
    }
    out.emplace_back(item.key(), item.value().detach().to(torch::kCPU, torch::kFloat32).clone());
  }
  auto& lang = model.lang_encoder();
  auto table = lang.embed_tokens().detach().to(torch::kCPU, torch::kFloat32).clone();
  table.narrow(0, model.options().lang.vocab_size, 2)
      .copy_(lang.special_token_embeddings().detach().to(torch::kCPU, torch::kFloat32));
  out.emplace_back("lang_encoder.model.embed_tokens.weight", table);
  return out;
}

void export_trainable_safetensors(model::FlamingoImpl& model, const std::string& path) {
  write_safetensors(path, export_trainable(model), {{"format", "pt"}});
}

void export_trainable_pt(model::FlamingoImpl& model, const std::string& path) {
  write_state_dict_pt(path, export_trainable(model));
}

void write_state_dict_pt(const std::string& path, const NamedTensors& tensors) {
  write_state_dict_pt(path, specs_of(tensors), [&](size_t i) { return tensors[i].second; });
}

void write_state_dict_pt(const std::string& path, const std::vector<TensorSpec>& specs,
                         const TensorFetch& fetch) {
  // The pickle records only each tensor's dtype, shape and storage size, so it is made from
  // placeholders whose storage has no memory; the records are then written one fetched tensor at
  // a time, in writeArchiveAndTensors' order (data/0, data/1, ..., then data.pkl).
  c10::Dict<std::string, at::Tensor> dict;
  for (const TensorSpec& spec : specs) {
    c10::Storage storage(c10::Storage::use_byte_size_t(), spec.bytes(),
                         c10::DataPtr(nullptr, c10::Device(c10::kCPU)), /*allocator=*/nullptr,
                         /*resizable=*/false);
    at::Tensor placeholder = at::empty({0}, at::TensorOptions().dtype(spec.dtype));
    placeholder.set_(storage, 0, spec.shape, c10::contiguous_strides(spec.shape));
    dict.insert(spec.name, placeholder);
  }
  // As torch::pickle_save, but without tagging the dict with its TorchScript type
  // (torch.jit._pickle.restore_type_tag), a global that weights_only loading refuses.
  std::vector<char> pickle;
  torch::jit::Pickler pickler(
      [&](const char* data, size_t size) { pickle.insert(pickle.end(), data, data + size); },
      /*tensor_table=*/nullptr, /*type_renamer=*/nullptr, /*memoized_class_types=*/nullptr,
      /*get_tensor_id=*/nullptr, /*tag_aggregates=*/false);
  pickler.protocol();
  pickler.pushIValue(c10::IValue(dict));
  pickler.stop();
  FLAM_CHECK(pickler.tensorData().size() == specs.size()) << "one storage per tensor";
  const std::string tmp = path + ".tmp";
  auto io_error = [&](const char* what) {
    ErrorContext context;
    context.file = tmp;
    throw Error(ErrorKind::kIo, std::string(what) + ": " + std::strerror(errno), context);
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) io_error("cannot create");
  try {
    caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t size) {
      const char* p = static_cast<const char*>(data);
      for (size_t left = size; left > 0;) {
        const ssize_t w = ::write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) io_error("write failed");
        p += w;
        left -= static_cast<size_t>(w);
      }
      return size;
    });
    for (size_t i = 0; i < specs.size(); ++i) {
      const at::Tensor t = fetch(i).detach().to(torch::kCPU, specs[i].dtype).contiguous();
      if (!t.sizes().equals(specs[i].shape)) {
        fail(path, specs[i].name, "tensor shape differs from the one in the pickle");
      }
      writer.writeRecord("data/" + std::to_string(i), t.data_ptr(), t.nbytes());
    }
    writer.writeRecord("data.pkl", pickle.data(), pickle.size());
    writer.writeEndOfFile();
    if (::fsync(fd) != 0) io_error("fsync failed");
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) io_error("close failed");
  rename_durable(tmp, path);
}

}  // namespace flam::weights
