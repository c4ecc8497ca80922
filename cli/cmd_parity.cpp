#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "core/error.h"
#include "core/exit_codes.h"
#include "train/model/parity.h"

namespace flam::cli {

int cmd_parity(const Argv& argv) {
  Args args(
      argv,
      {"module", "weights", "inputs", "out", "heads", "dim-head", "only-attend-immediate-media",
       "after-ln-post", "norm-eps", "rope-theta", "config", "set"},
      {});
  if (!args.positionals().empty()) {
    throw Error(ErrorKind::kUsage,
                "usage: flam parity --module perceiver|xattn|vision|decoder_layer --weights "
                "W.safetensors --inputs I.safetensors --out O.safetensors [--heads N] "
                "[--dim-head N] [--only-attend-immediate-media 0|1] [--after-ln-post 0|1] "
                "[--norm-eps E] [--rope-theta T]\n"
                "       flam parity --module flamingo --config F.yaml [--set model.k=v ...] "
                "--weights OPENFLAMINGO_STATE_DICT.pt --inputs I.safetensors --out O.safetensors");
  }
  model::ParityOptions o;
  o.module = args.require("module");
  o.weights = args.require("weights");
  o.inputs = args.require("inputs");
  o.out = args.require("out");
  o.heads = static_cast<int>(args.get_int("heads", 0));
  o.dim_head = static_cast<int>(args.get_int("dim-head", 0));
  o.only_attend_immediate_media = args.get_int("only-attend-immediate-media", 1) != 0;
  o.tokens_after_ln_post = args.get_int("after-ln-post", 0) != 0;
  try {
    o.norm_eps = std::stod(args.get_or("norm-eps", "1e-6"));
    o.rope_theta = std::stod(args.get_or("rope-theta", "10000"));
  } catch (const std::exception&) {
    throw Error(ErrorKind::kUsage, "--norm-eps and --rope-theta take numbers");
  }
  if (o.module == "flamingo") {
    if (!args.get("config")) throw Error(ErrorKind::kUsage, "--module flamingo needs --config");
    o.model = load_config(*args.get("config"), args.all("set")).model;
  }
  model::run_parity(o);
  std::printf("wrote %s\n", o.out.c_str());
  return kExitOk;
}

}  // namespace flam::cli
