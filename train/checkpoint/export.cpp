#include "train/checkpoint/export.h"

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "core/run_layout.h"
#include "train/checkpoint/checkpoint_reader.h"
#include "train/checkpoint/manifest.h"
#include "train/model/flamingo.h"
#include "train/weights/model_weights.h"

namespace flam::train {
namespace {

namespace fs = std::filesystem;

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

weights::NamedTensors consolidate_checkpoint(const std::string& step_dir) {
  CheckpointReader reader(step_dir);
  const Manifest& m = reader.manifest();
  for (int r = 0; r < m.world_size; ++r) reader.verify_file(r);
  weights::NamedTensors out;
  for (size_t b = 0; b < m.layout.units.size(); ++b) {
    const UnitLayout& unit = m.layout.units[b];
    at::Tensor flat = at::empty({unit.numel}, at::kFloat);
    reader.read_flat("master", b, 0, unit.numel, flat.data_ptr<float>());
    for (const ParamSlot& p : unit.params) {
      out.emplace_back(p.name, flat.narrow(0, p.offset, p.numel).reshape(p.shape).clone());
    }
  }
  return out;
}

void export_checkpoint(const std::string& step_dir, const std::string& out_path,
                       const ExportModel* model) {
  const bool pt = ends_with(out_path, ".pt");
  if (!pt && !ends_with(out_path, ".safetensors")) {
    throw Error(ErrorKind::kUsage, "--out must end in .safetensors or .pt: " + out_path);
  }
  weights::NamedTensors tensors = consolidate_checkpoint(step_dir);
  const bool special_rows = std::any_of(tensors.begin(), tensors.end(), [](const auto& t) {
    return t.first == model::kSpecialTokenEmbeddings;
  });
  if (special_rows) {
    if (model == nullptr) {
      ErrorContext ctx;
      ctx.file = step_dir;
      throw Error(ErrorKind::kUsage,
                  "this checkpoint trains the <|endofchunk|> and <image> embedding rows; writing "
                  "them into OpenFlamingo's full embed_tokens table needs the run's model: pass "
                  "--config (the run directory's config.yaml is used when there is one)",
                  ctx);
    }
    model::Flamingo flamingo = weights::build_pretrained(model->options, model->seed);
    weights::load_into(*flamingo, {tensors.begin(), tensors.end()}, step_dir,
                       /*require_all=*/false);
    tensors = weights::export_trainable(*flamingo);
  }
  if (!pt) {
    const Manifest m = read_manifest(step_dir);
    weights::write_safetensors(out_path, tensors,
                               {{"format", "pt"},
                                {"flamboyance_step", std::to_string(m.step)},
                                {"flamboyance_config_hash", m.config_hash}});
    return;
  }
  weights::write_state_dict_pt(out_path, tensors);
}

}  // namespace flam::train
