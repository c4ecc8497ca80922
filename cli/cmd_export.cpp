// flam export --checkpoint DIR --out FILE.safetensors|FILE.pt [--config F]: the consolidated
// trained weights of a checkpoint (a step directory, or the newest in a run directory), verified
// first, under OpenFlamingo's names. The run's model (for the frozen embedding table the two
// trained rows go into) comes from --config, else from the run directory's config.yaml.
// --format hf-flamingo --out DIR: the whole model (frozen weights as the run loads them, plus
// the checkpoint's trained ones) as an OpenFlamingo-9B-HF folder (train/weights/hf_flamingo.h).
// Both stream (train/checkpoint/export.h): host memory near one tensor, not the model. DIR may be
// in a bucket (s3://bucket/prefix/step_N, or the checkpoints prefix for its newest step), then
// downloaded into a temporary folder first; the model then comes from --config only.
#include <cstdio>
#include <filesystem>
#include <optional>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "core/error.h"
#include "core/exit_codes.h"
#include "core/run_layout.h"
#include "train/checkpoint/export.h"

namespace flam::cli {

int cmd_export(const Argv& argv) {
  Args args(argv, {"checkpoint", "out", "config", "format"}, {});
  const std::string format = args.get_or("format", "trained");
  if (format != "trained" && format != "hf-flamingo") {
    throw Error(ErrorKind::kUsage, "--format must be trained or hf-flamingo, not " + format);
  }
  const train::LocalCheckpoint checkpoint(args.require("checkpoint"));
  const std::string& dir = checkpoint.dir();
  const std::string out = args.require("out");
  std::string config_path = args.get_or("config", "");
  if (config_path.empty() && !checkpoint.downloaded()) {
    // DIR is RUN/checkpoints/step_N.
    const std::string run = std::filesystem::path(dir).parent_path().parent_path().string();
    const std::string run_config = run_layout::config_file(run);
    if (std::filesystem::is_regular_file(run_config)) config_path = run_config;
  }
  if (format == "hf-flamingo") {
    if (config_path.empty()) {
      throw Error(ErrorKind::kUsage, "--format hf-flamingo needs the run's model: --config F");
    }
    const Config config = load_config(config_path);
    checkpoint.named_errors([&] {
      train::export_hf_flamingo_checkpoint(dir, out, {config.model, config.run.seed});
    });
    std::printf("exported %s -> %s (OpenFlamingo-HF folder)\n", checkpoint.name().c_str(),
                out.c_str());
    return kExitOk;
  }
  std::optional<train::ExportModel> model;
  if (!config_path.empty()) {
    const Config config = load_config(config_path);
    model = train::ExportModel{config.model, config.run.seed};
  }
  checkpoint.named_errors([&] { train::export_checkpoint(dir, out, model ? &*model : nullptr); });
  std::printf("exported %s -> %s\n", checkpoint.name().c_str(), out.c_str());
  return kExitOk;
}

}  // namespace flam::cli
