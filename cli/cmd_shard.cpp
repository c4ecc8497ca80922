#include "cli/commands.h"

namespace flam::cli {

int cmd_shard(const Argv&) { return not_built("shard"); }

}  // namespace flam::cli
