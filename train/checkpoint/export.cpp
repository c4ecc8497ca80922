#include "train/checkpoint/export.h"

#include <stdlib.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>

#include "core/error.h"
#include "core/run_layout.h"
#include "pipeline/s3.h"
#include "train/checkpoint/checkpoint_reader.h"
#include "train/checkpoint/manifest.h"
#include "train/model/flamingo.h"
#include "train/weights/hf_flamingo.h"
#include "train/weights/model_weights.h"
#include "train/weights/pretrained_tensors.h"

namespace flam::train {
namespace {

namespace fs = std::filesystem;

const std::string kEmbedTokens = "lang_encoder.model.embed_tokens.weight";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::string resolve_checkpoint_dir(const std::string& path) {
  if (fs::is_regular_file(run_layout::manifest_file(path))) return path;
  for (const std::string& dir : {run_layout::checkpoints_dir(path), path}) {
    const std::vector<int64_t> steps = run_layout::list_checkpoints(dir);
    if (!steps.empty()) return run_layout::step_dir(dir, steps.front());
  }
  ErrorContext ctx;
  ctx.file = path;
  throw Error(ErrorKind::kIo,
              "no committed checkpoint here (want a step_N directory with a manifest.json, or a "
              "run directory holding checkpoints/)",
              ctx);
}

LocalCheckpoint::LocalCheckpoint(const std::string& name) {
  if (!pipeline::is_s3_url(name)) {
    dir_ = resolve_checkpoint_dir(name);
    name_ = dir_;
    committed_ = run_layout::list_checkpoints(fs::path(dir_).parent_path().string());
    std::reverse(committed_.begin(), committed_.end());  // list_checkpoints: newest first
    return;
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/flam-checkpoint-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw Error(ErrorKind::kIo, "cannot create a temporary folder", at_file(pattern));
  }
  scratch_ = pattern;
  try {
    RemoteCheckpoint remote = download_checkpoint(name, scratch_);
    name_ = std::move(remote.url);
    committed_ = std::move(remote.committed);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(scratch_, ec);
    throw;
  }
  dir_ = scratch_;
}

LocalCheckpoint::~LocalCheckpoint() {
  if (scratch_.empty()) return;
  std::error_code ec;
  fs::remove_all(scratch_, ec);
}

std::string LocalCheckpoint::named(std::string text) const {
  if (scratch_.empty()) return text;
  for (size_t at; (at = text.find(scratch_)) != std::string::npos;) {
    text.replace(at, scratch_.size(), name_);
  }
  return text;
}

namespace {

// The trained parameters of a verified checkpoint, each read on its own.
class TrainedTensors {
 public:
  explicit TrainedTensors(const std::string& step_dir) : reader_(step_dir) {
    const Manifest& m = reader_.manifest();
    for (int r = 0; r < m.world_size; ++r) reader_.verify_file(r);
    for (size_t u = 0; u < m.layout.units.size(); ++u) {
      for (const ParamSlot& p : m.layout.units[u].params) slots_.push_back({u, &p});
    }
  }
  const Manifest& manifest() const { return reader_.manifest(); }
  size_t size() const { return slots_.size(); }
  const ParamSlot& slot(size_t i) const { return *slots_[i].param; }
  at::Tensor read(size_t i) {
    const ParamSlot& p = *slots_[i].param;
    at::Tensor t = at::empty({p.numel}, at::kFloat);
    reader_.read_flat("master", slots_[i].unit, p.offset, p.offset + p.numel, t.data_ptr<float>());
    return t.view(p.shape);
  }
  std::vector<weights::TensorSpec> specs() const {
    std::vector<weights::TensorSpec> out;
    for (const Slot& s : slots_) out.push_back({s.param->name, at::kFloat, s.param->shape});
    return out;
  }

 private:
  struct Slot {
    size_t unit;
    const ParamSlot* param;
  };
  CheckpointReader reader_;
  std::vector<Slot> slots_;
};

}  // namespace

weights::NamedTensors consolidate_checkpoint(const std::string& step_dir) {
  TrainedTensors trained(step_dir);
  weights::NamedTensors out;
  for (size_t i = 0; i < trained.size(); ++i)
    out.emplace_back(trained.slot(i).name, trained.read(i));
  return out;
}

void export_checkpoint(const std::string& step_dir, const std::string& out_path,
                       const ExportModel* model) {
  const bool pt = ends_with(out_path, ".pt");
  if (!pt && !ends_with(out_path, ".safetensors")) {
    throw Error(ErrorKind::kUsage, "--out must end in .safetensors or .pt: " + out_path);
  }
  TrainedTensors trained(step_dir);
  std::vector<weights::TensorSpec> specs = trained.specs();
  std::vector<size_t> source;  // spec i <- trained tensor source[i]; the table: trained.size()
  size_t special = trained.size();
  for (size_t i = 0; i < trained.size(); ++i) {
    if (specs[i].name == model::kSpecialTokenEmbeddings) special = i;
  }
  std::optional<weights::PretrainedTensors> pretrained;
  if (special < trained.size()) {
    if (model == nullptr) {
      ErrorContext ctx;
      ctx.file = step_dir;
      throw Error(ErrorKind::kUsage,
                  "this checkpoint trains the <|endofchunk|> and <image> embedding rows; writing "
                  "them into OpenFlamingo's full embed_tokens table needs the run's model: pass "
                  "--config (the run directory's config.yaml is used when there is one)",
                  ctx);
    }
    pretrained.emplace(model->options, model->seed,
                       [](const std::string& name) { return name == kEmbedTokens; });
    const int64_t full_vocab = model::full_vocab_size(model->options);
    const std::vector<int64_t>& rows = specs[special].shape;
    if (rows.size() != 2 || rows[0] != 2 || rows[1] != model->options.lang.dim) {
      ErrorContext ctx;
      ctx.file = step_dir;
      ctx.key = model::kSpecialTokenEmbeddings;
      throw Error(ErrorKind::kData, "not [2, model.lang.dim] for the run's model", ctx);
    }
    specs.erase(specs.begin() + static_cast<std::ptrdiff_t>(special));
    specs.push_back({kEmbedTokens, at::kFloat, {full_vocab, model->options.lang.dim}});
  }
  for (size_t i = 0; i < trained.size(); ++i) {
    if (i != special) source.push_back(i);
  }
  if (pretrained) source.push_back(trained.size());
  const weights::TensorFetch fetch = [&](size_t i) {
    if (source[i] < trained.size()) return trained.read(source[i]);
    at::Tensor table = pretrained->get(kEmbedTokens);
    table.narrow(0, model->options.lang.vocab_size, 2).copy_(trained.read(special));
    return table;
  };
  if (!pt) {
    const Manifest& m = trained.manifest();
    weights::write_safetensors(out_path, specs, fetch,
                               {{"format", "pt"},
                                {"flamboyance_step", std::to_string(m.step)},
                                {"flamboyance_config_hash", m.config_hash}});
    return;
  }
  weights::write_state_dict_pt(out_path, specs, fetch);
}

void export_hf_flamingo_checkpoint(const std::string& step_dir, const std::string& out_dir,
                                   const ExportModel& model, uint64_t max_shard_bytes) {
  TrainedTensors trained(step_dir);
  std::map<std::string, size_t> in_checkpoint;
  for (size_t i = 0; i < trained.size(); ++i) in_checkpoint[trained.slot(i).name] = i;
  const weights::PretrainedTensors pretrained(
      model.options, model.seed,
      [&](const std::string& name) { return in_checkpoint.count(name) == 0; });
  std::vector<std::string> unexpected;
  for (const auto& [name, i] : in_checkpoint) {
    auto p = std::find_if(pretrained.parameters().begin(), pretrained.parameters().end(),
                          [&](const weights::TensorSpec& s) { return s.name == name; });
    if (p == pretrained.parameters().end() || p->shape != trained.slot(i).shape) {
      unexpected.push_back(name);
    }
  }
  if (!unexpected.empty()) {
    ErrorContext ctx;
    ctx.file = step_dir;
    ctx.key = unexpected.front();
    throw Error(ErrorKind::kData,
                std::to_string(unexpected.size()) +
                    " checkpoint tensor(s) not in the run's model or of another shape (the first "
                    "is named here): is --config the run's?",
                ctx);
  }
  weights::export_hf_flamingo(
      model.options, pretrained.parameters(),
      [&](const std::string& name) {
        auto it = in_checkpoint.find(name);
        return it != in_checkpoint.end() ? trained.read(it->second) : pretrained.get(name);
      },
      out_dir, max_shard_bytes);
}

}  // namespace flam::train
