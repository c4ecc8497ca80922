#include "cli/commands.h"

namespace flam::cli {

int cmd_inspect_shard(const Argv&) { return not_built("inspect shard"); }

}  // namespace flam::cli
