// flam: the command-line entry point. Dispatches to a subcommand (cli/commands.h), and maps
// failures onto exit codes (core/exit_codes.h) so the orchestrator knows whether to retry.
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/option_help.h"
#include "core/error.h"
#include "core/exit_codes.h"
#include "core/world.h"
#include "flam/build_config.h"

namespace {

using flam::cli::Argv;

struct Command {
  const char* name;
  const char* summary;
  const char* usage;
  int (*run)(const Argv&);
};

int cmd_inspect(const Argv& args);
int cmd_completion(const Argv& args);

// The words a subcommand takes as its first positional (shown by completion).
const char* const kInspectTargets[] = {"shard", "batch", "model", "checkpoint"};
const char* const kConfigActions[] = {"show", "keys"};

const Command kCommands[] = {
    {"shard", "download URL tables (LAION) or MMC4 documents into tar shards",
     "flam shard --config F [--set key=value ...]\n"
     "  Runs as N ranks under mpirun or srun; resumes: shards with a stats file are skipped.",
     &flam::cli::cmd_shard},
    {"inspect", "look inside shards, batches, the model, or checkpoints",
     "flam inspect shard PATH_OR_URL [--json]\n"
     "flam inspect batch --config F [--steps N] [--json] [--png OUT.png]\n"
     "flam inspect model --config F\n"
     "flam inspect checkpoint DIR",
     &cmd_inspect},
    {"train", "train a Flamingo model (ZeRO-3 over MPI or NCCL), resuming from checkpoints",
     "flam train --config F [--set key=value ...] [--fresh | --from STEP_DIR]\n"
     "           [--allow-config-change]\n"
     "  Runs as N ranks under mpirun or srun; resumes from the newest valid checkpoint.\n"
     "  --fresh: start from step 0; refused (saying which step it would resume from) when the\n"
     "  run directory already holds checkpoints.",
     &flam::cli::cmd_train},
    {"plan", "per-rank memory budget of a run: what fits on the GPUs, micro-batch, accumulation",
     "flam plan --config F [--ranks N] [--gpu-memory 24GiB] [--workspace 1.5GiB]\n"
     "          [--set key=value ...]\n"
     "  Exit 0 when the run fits, 2 when it does not (naming the keys to change).",
     &flam::cli::cmd_plan},
    {"submit", "render an sbatch script for a run and submit it to Slurm",
     "flam submit --config F [--set key=value ...] [--job train|shard] [--after RUN]\n"
     "            [--dry-run] [--allow-config-change]",
     &flam::cli::cmd_submit},
    {"status", "show a run: job chain, step, losses, throughput, ETA, checkpoints",
     "flam status RUN [--json] [--plot OUT.svg [--smooth N]]", &flam::cli::cmd_status},
    {"watch", "supervise a run on Slurm: resubmit after failures until it finishes",
     "flam watch RUN", &flam::cli::cmd_watch},
    {"cancel", "cancel a run's current Slurm job and stop its watch", "flam cancel RUN",
     &flam::cli::cmd_cancel},
    {"export", "write a checkpoint's trained weights as safetensors or OpenFlamingo .pt",
     "flam export --checkpoint DIR --out FILE.safetensors|FILE.pt [--config RUN/config.yaml]\n"
     "flam export --checkpoint DIR --format hf-flamingo --out DIR [--config RUN/config.yaml]",
     &flam::cli::cmd_export},
    {"parity", "run one model module on given tensors, for numeric checks against references",
     "flam parity --module perceiver|xattn|vision|decoder_layer --weights W.safetensors\n"
     "            --inputs I.safetensors --out O.safetensors [--heads N --dim-head N\n"
     "            --only-attend-immediate-media 0|1]",
     &flam::cli::cmd_parity},
    {"eval", "few-shot evaluation of a checkpoint (COCO CIDEr, VQAv2 accuracy) as OpenFlamingo",
     "flam eval --config F --checkpoint DIR|W.safetensors [--task coco|vqav2|...]\n"
     "          [--shots 0,4,8,16,32] [--trials N] [--out RESULTS.json] [--set key=value ...]\n"
     "  Runs as N ranks under mpirun or srun; the results do not depend on N.",
     &flam::cli::cmd_eval},
    {"generate", "generate text for a prompt and images with a checkpoint",
     "flam generate --config F --checkpoint DIR|W.safetensors --image a.jpg [--image b.jpg]\n"
     "              --prompt \"<image>Output:\" [--beams N] [--max-new-tokens N]",
     &flam::cli::cmd_generate},
    {"config", "print the resolved configuration, or every key with its type and default",
     "flam config show --config F [--set key=value ...]\n"
     "flam config keys [PREFIX]",
     &flam::cli::cmd_config},
    {"completion", "print a bash completion script made from the commands' own option tables",
     "flam completion bash\n"
     "  Use it with: source <(flam completion bash)",
     &cmd_completion},
};

void print_help() {
  std::printf(
      "flam %s: train OpenFlamingo-style vision-language models at web scale.\n\n"
      "usage: flam SUBCOMMAND [options]   (flam SUBCOMMAND --help for details)\n\n"
      "subcommands:\n",
      FLAM_VERSION);
  for (const auto& c : kCommands) std::printf("  %-9s %s\n", c.name, c.summary);
  std::printf(
      "\nexit codes: 0 ok, 1 failure, 2 usage/config error (never retried), 3 stopped after a\n"
      "checkpoint (requeue), 4 peer rank or collective failure, 5 data error, 6 I/O error.\n");
}

const Command* find_command(const std::string& name) {
  for (const auto& c : kCommands) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

int cmd_inspect(const Argv& args) {
  if (args.empty()) {
    throw flam::Error(flam::ErrorKind::kUsage,
                      "inspect needs a target: shard, batch, model or checkpoint");
  }
  Argv rest(args.begin() + 1, args.end());
  const std::string& what = args[0];
  if (what == "shard") return flam::cli::cmd_inspect_shard(rest);
  if (what == "batch") return flam::cli::cmd_inspect_batch(rest);
  if (what == "model") return flam::cli::cmd_inspect_model(rest);
  if (what == "checkpoint") return flam::cli::cmd_inspect_checkpoint(rest);
  throw flam::Error(flam::ErrorKind::kUsage,
                    "unknown inspect target '" + what + "' (shard, batch, model, checkpoint)");
}

// The options `cmd` (with `prefix`, e.g. an inspect target) accepts: its Args table, which its
// Args constructor throws on the command line {kDescribeOptions}.
flam::cli::OptionTable describe(const Command& cmd, Argv prefix) {
  prefix.push_back(flam::cli::kDescribeOptions);
  try {
    cmd.run(prefix);
  } catch (const flam::cli::OptionTable& table) {
    return table;
  }
  return {};
}

// One `case` branch body of the completion function: the options offered and those that take a
// value (after which file names are completed).
std::string completion_branch(const flam::cli::OptionTable& t, const std::string& words) {
  std::string opts, valued;
  for (const auto& o : t.options) {
    opts += (opts.empty() ? "--" : " --") + o;
    valued += (valued.empty() ? "--" : " --") + o;
  }
  for (const auto& f : t.flags) opts += (opts.empty() ? "--" : " --") + f;
  return "opts=\"" + opts + "\"; valued=\"" + valued + "\"; words=\"" + words + "\"";
}

int cmd_completion(const Argv& args) {
  flam::cli::Args parsed(args, {}, {});
  if (parsed.positionals().size() != 1 || parsed.positionals()[0] != "bash") {
    throw flam::Error(flam::ErrorKind::kUsage, "usage: flam completion bash");
  }
  std::string commands, branches;
  for (const auto& c : kCommands) {
    commands += (commands.empty() ? "" : " ") + std::string(c.name);
    const std::string name = c.name;
    if (name == "completion") {
      branches += "    completion) words=\"bash\" ;;\n";
    } else if (name == "inspect") {
      std::string targets, inner;
      for (const char* t : kInspectTargets) {
        targets += (targets.empty() ? "" : " ") + std::string(t);
        inner +=
            "        " + std::string(t) + ") " + completion_branch(describe(c, {t}), "") + " ;;\n";
      }
      branches += "    inspect)\n      case \"${COMP_WORDS[2]}\" in\n" + inner +
                  "        *) words=\"" + targets + "\" ;;\n      esac ;;\n";
    } else {
      std::string words;
      if (name == "config") {
        for (const char* a : kConfigActions) words += (words.empty() ? "" : " ") + std::string(a);
      }
      branches += "    " + name + ") " + completion_branch(describe(c, {}), words) + " ;;\n";
    }
  }
  std::printf(
      "# bash completion for flam, generated by `flam completion bash` from the subcommands' own\n"
      "# option tables. Use: source <(flam completion bash)\n"
      "_flam() {\n"
      "  local cur=\"${COMP_WORDS[COMP_CWORD]}\" prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n"
      "  if [[ $COMP_CWORD -eq 1 ]]; then\n"
      "    COMPREPLY=($(compgen -W \"%s\" -- \"$cur\")); return\n"
      "  fi\n"
      "  local opts=\"\" valued=\"\" words=\"\"\n"
      "  case \"${COMP_WORDS[1]}\" in\n"
      "%s"
      "  esac\n"
      "  local o\n"
      "  for o in $valued; do\n"
      "    if [[ $prev == \"$o\" ]]; then COMPREPLY=($(compgen -f -- \"$cur\")); return; fi\n"
      "  done\n"
      "  if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\")); return; fi\n"
      "  if [[ -n $words && $COMP_CWORD -eq 2 ]]; then\n"
      "    COMPREPLY=($(compgen -W \"$words\" -- \"$cur\")); return\n"
      "  fi\n"
      "  COMPREPLY=($(compgen -f -- \"$cur\"))\n"
      "}\n"
      "complete -o filenames -F _flam flam\n",
      commands.c_str(), branches.c_str());
  return flam::kExitOk;
}

// The options section of `flam NAME --help`: every option `table` (the parser's own) accepts,
// with its value form and meaning from cli/option_help.h.
void print_options(const std::string& name, const flam::cli::OptionTable& table) {
  if (table.options.empty() && table.flags.empty()) {
    std::printf("  (no options)\n");
    return;
  }
  const auto line = [&](const std::string& option, bool valued) {
    const flam::cli::OptionHelp* h = flam::cli::option_help(name, option);
    std::string head = "--" + option;
    if (valued) head += std::string(" ") + (h && *h->value ? h->value : "VALUE");
    std::fputs(flam::cli::format_option_help(head, h ? h->meaning : "(undocumented)").c_str(),
               stdout);
  };
  for (const auto& o : table.options) line(o, true);
  for (const auto& f : table.flags) line(f, false);
}

void print_command_help(const Command& cmd, const Argv& args) {
  std::printf("flam %s: %s\n\nusage:\n%s\n", cmd.name, cmd.summary, cmd.usage);
  if (std::string(cmd.name) == "inspect") {
    for (const char* t : kInspectTargets) {
      if (!args.empty() && args[0] != t && args[0].rfind("-", 0) != 0) continue;
      std::printf("\noptions of inspect %s:\n", t);
      print_options(std::string("inspect ") + t, describe(cmd, {t}));
    }
    return;
  }
  if (std::string(cmd.name) == "completion") return;
  std::printf("\noptions:\n");
  print_options(cmd.name, describe(cmd, {}));
}

int exit_code_for(flam::ErrorKind kind) {
  switch (kind) {
    case flam::ErrorKind::kUsage:
    case flam::ErrorKind::kConfig:
      return flam::kExitUsage;
    case flam::ErrorKind::kData:
      return flam::kExitDataError;
    case flam::ErrorKind::kIo:
      return flam::kExitIoError;
    case flam::ErrorKind::kComm:
      return flam::kExitPeerFailure;
    case flam::ErrorKind::kNetwork:
    case flam::ErrorKind::kInternal:
      return flam::kExitFailure;
  }
  return flam::kExitFailure;
}

}  // namespace

int flam::cli::not_built(const std::string& name) {
  std::fprintf(stderr, "flam %s: not built yet in this version of Flamboyance\n", name.c_str());
  return kExitUsage;
}

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    print_help();
    return argc < 2 ? flam::kExitUsage : flam::kExitOk;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::printf("flam %s\nLibTorch %s\nCUDA %s (toolkit %s)\nNCCL %s\n", FLAM_VERSION,
                FLAM_TORCH_VERSION, FLAM_WITH_CUDA ? "on" : "off",
                FLAM_WITH_CUDA ? FLAM_CUDA_VERSION : "not used", FLAM_WITH_NCCL ? "on" : "off");
    return flam::kExitOk;
  }
  const Command* cmd = find_command(argv[1]);
  if (!cmd) {
    std::fprintf(stderr, "flam: unknown subcommand '%s'\n\n", argv[1]);
    print_help();
    return flam::kExitUsage;
  }
  Argv args(argv + 2, argv + argc);
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") {
      print_command_help(*cmd, args);
      return flam::kExitOk;
    }
  }
  int code = flam::kExitFailure;
  try {
    code = cmd->run(args);
  } catch (const flam::cli::OptionTable& table) {
    // The command line was {kDescribeOptions}: list what this subcommand accepts.
    for (const auto& o : table.options) std::printf("--%s VALUE\n", o.c_str());
    for (const auto& f : table.flags) std::printf("--%s\n", f.c_str());
    code = flam::kExitOk;
  } catch (const flam::Error& e) {
    std::fprintf(stderr, "flam %s: error: %s\n", cmd->name, e.what());
    code = exit_code_for(e.kind());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flam %s: error: %s\n", cmd->name, e.what());
    code = flam::kExitFailure;
  }
  // A rank that fails alone must not wait in MPI_Finalize for peers that wait for it in a
  // collective: end the whole job, with this exit code for the launcher and the orchestrator.
  if (code != flam::kExitOk && code != flam::kExitRequeue && flam::World::initialized() &&
      flam::World::info().size > 1) {
    std::fflush(stderr);
    flam::World::abort(code);
  }
  flam::World::finalize();
  return code;
}
