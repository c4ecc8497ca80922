#include "cli/commands.h"

namespace flam::cli {

int cmd_inspect_checkpoint(const Argv&) { return not_built("inspect checkpoint"); }

}  // namespace flam::cli
