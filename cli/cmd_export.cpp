// flam export --checkpoint DIR --out FILE.safetensors|FILE.pt: the consolidated trained weights
// of a checkpoint (a step directory, or the newest in a run directory), verified first.
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/exit_codes.h"
#include "train/checkpoint/export.h"

namespace flam::cli {

int cmd_export(const Argv& argv) {
  Args args(argv, {"checkpoint", "out"}, {});
  const std::string dir = train::resolve_checkpoint_dir(args.require("checkpoint"));
  const std::string out = args.require("out");
  train::export_checkpoint(dir, out);
  std::printf("exported %s -> %s\n", dir.c_str(), out.c_str());
  return kExitOk;
}

}  // namespace flam::cli
