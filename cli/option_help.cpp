#include "cli/option_help.h"

#include <map>
#include <sstream>
#include <utility>

namespace flam::cli {
namespace {

using Key = std::pair<std::string, std::string>;  // command, option

// Shared by every command that loads a config.
constexpr OptionHelp kConfig{"F", "YAML config file (required)"};
constexpr OptionHelp kConfigOptional{"F", "YAML config file (default: the built-in defaults)"};
constexpr OptionHelp kSet{"key=value",
                          "override one config key, repeatable, applied in order (default: none; "
                          "see flam config keys)"};

const std::map<Key, OptionHelp>& table() {
  static const std::map<Key, OptionHelp> kTable = {
      {{"shard", "config"}, kConfig},
      {{"shard", "set"}, kSet},
      {{"inspect shard", "config"}, kConfigOptional},
      {{"inspect shard", "set"}, kSet},
      {{"inspect shard", "json"}, {"", "print JSON instead of a table (default: table)"}},
      {{"inspect batch", "config"}, kConfig},
      {{"inspect batch", "set"}, kSet},
      {{"inspect batch", "steps"}, {"N", "batches to draw per dataset (default: 1)"}},
      {{"inspect batch", "png"}, {"OUT.png", "write the batch's images as a grid (default: none)"}},
      {{"inspect batch", "json"}, {"", "print JSON instead of text (default: text)"}},
      {{"inspect model", "config"}, kConfig},
      {{"inspect model", "set"}, kSet},
      {{"inspect checkpoint", "json"}, {"", "print JSON instead of text (default: text)"}},
      {{"train", "config"}, kConfig},
      {{"train", "set"}, kSet},
      {{"train", "fresh"},
       {"", "start from step 0; refused when run.dir holds checkpoints (default: resume)"}},
      {{"train", "from"},
       {"STEP_DIR",
        "start this new run from another run's committed checkpoint RUN/checkpoints/step_N "
        "(or s3://bucket/.../step_N, downloaded and verified): weights, optimizer state, step, "
        "loader state (default: none)"}},
      {{"train", "allow-config-change"},
       {"",
        "continue a started run whose config.yaml differs, recording the change in "
        "RUN/history.jsonl (default: refuse, exit 2, listing the changed keys)"}},
      {{"plan", "config"}, kConfigOptional},
      {{"plan", "set"}, kSet},
      {{"plan", "ranks"},
       {"N", "ranks to plan for (default: slurm.nodes x slurm.ntasks_per_node)"}},
      {{"plan", "gpu-memory"}, {"BYTES", "memory per device, e.g. 24GiB (default: 80GiB)"}},
      {{"plan", "workspace"},
       {"BYTES",
        "reserved per device for the allocator and kernels (default: 1.5GiB on cuda, "
        "512MiB on cpu)"}},
      {{"submit", "config"}, kConfig},
      {{"submit", "set"}, kSet},
      {{"submit", "job"},
       {"train|shard", "the job kind, with slurm.<kind> resources (default: train)"}},
      {{"submit", "after"},
       {"RUN",
        "start only after RUN's current job succeeds (sbatch --dependency=afterok), repeatable; "
        "flam watch re-points it when RUN's job is resubmitted (default: at once)"}},
      {{"submit", "dry-run"},
       {"", "print the sbatch script (and the sbatch command on stderr); submit nothing"}},
      {{"submit", "allow-config-change"},
       {"",
        "resubmit a started run whose config differs, recording the change in "
        "RUN/history.jsonl (default: refuse, exit 2)"}},
      {{"status", "plot"}, {"OUT.svg", "also draw the run's metrics as SVG (default: none)"}},
      {{"status", "smooth"},
       {"N", "plot each curve faint under its mean over N logged steps (default: 0, raw only)"}},
      {{"status", "json"}, {"", "print JSON instead of text (default: text)"}},
      {{"export", "checkpoint"},
       {"DIR", "checkpoint step directory, or a run's checkpoints/ (required)"}},
      {{"export", "out"},
       {"FILE", "output: .safetensors, .pt, or a folder for hf-flamingo (required)"}},
      {{"export", "config"},
       {"F", "the run's config (default: RUN/config.yaml beside the checkpoint)"}},
      {{"export", "format"}, {"trained|hf-flamingo", "what to write (default: trained)"}},
      {{"parity", "module"},
       {"NAME", "perceiver, xattn, vision, decoder_layer or flamingo (required)"}},
      {{"parity", "weights"}, {"FILE", "the module's weights, safetensors or .pt (required)"}},
      {{"parity", "inputs"}, {"FILE", "input tensors, safetensors (required)"}},
      {{"parity", "out"}, {"FILE", "output tensors, safetensors (required)"}},
      {{"parity", "heads"}, {"N", "attention heads (default: 0, from the weights)"}},
      {{"parity", "dim-head"}, {"N", "size per head (default: 0, from the weights)"}},
      {{"parity", "only-attend-immediate-media"}, {"0|1", "xattn masking (default: 1)"}},
      {{"parity", "after-ln-post"}, {"0|1", "vision tokens after ln_post (default: 0)"}},
      {{"parity", "norm-eps"}, {"E", "RMSNorm epsilon (default: 1e-6)"}},
      {{"parity", "rope-theta"}, {"T", "rotary base (default: 10000)"}},
      {{"parity", "config"}, {"F", "model config for --module flamingo (default: none)"}},
      {{"parity", "set"}, kSet},
      {{"eval", "config"}, kConfig},
      {{"eval", "set"}, kSet},
      {{"eval", "checkpoint"}, {"DIR|W.safetensors", "the weights to evaluate (required)"}},
      {{"eval", "task"}, {"NAME", "coco, vqav2, ... (default: eval.task)"}},
      {{"eval", "shots"}, {"0,4,8", "shot counts (default: eval.shots)"}},
      {{"eval", "trials"}, {"N", "trials per shot count (default: eval.trials)"}},
      {{"eval", "out"}, {"RESULTS.json", "results file (default: eval_TASK.json)"}},
      {{"eval", "rices"}, {"", "choose demos by RICES similarity (default: eval.demo_selection)"}},
      {{"generate", "config"}, kConfig},
      {{"generate", "set"}, kSet},
      {{"generate", "checkpoint"}, {"DIR|W.safetensors", "the weights (required)"}},
      {{"generate", "image"}, {"FILE", "an image, repeatable, one per <image> (default: none)"}},
      {{"generate", "prompt"}, {"TEXT", "the prompt, with <image> markers (required)"}},
      {{"generate", "max-new-tokens"}, {"N", "tokens to generate at most (default: 20)"}},
      {{"generate", "beams"}, {"N", "beam width; 1: greedy (default: 3)"}},
      {{"config", "config"}, kConfigOptional},
      {{"config", "set"}, kSet},
      {{"config", "hash"}, {"", "show: print the config's SHA-256 instead of the YAML"}},
  };
  return kTable;
}

}  // namespace

const OptionHelp* option_help(const std::string& command, const std::string& option) {
  const auto it = table().find({command, option});
  return it == table().end() ? nullptr : &it->second;
}

std::string format_option_help(const std::string& head, const std::string& meaning) {
  constexpr size_t kIndent = 33;  // "  " + a 30-column head + " "
  std::string out = "  " + head;
  out += out.size() < kIndent ? std::string(kIndent - out.size(), ' ') : std::string(" ");
  size_t column = out.size();
  bool line_empty = true;
  std::istringstream words(meaning);
  for (std::string word; words >> word;) {
    if (!line_empty && column + 1 + word.size() > static_cast<size_t>(kHelpColumns)) {
      out += "\n" + std::string(kIndent, ' ');
      column = kIndent;
      line_empty = true;
    }
    if (!line_empty) {
      out += ' ';
      ++column;
    }
    out += word;
    column += word.size();
    line_empty = false;
  }
  return out + "\n";
}

}  // namespace flam::cli
