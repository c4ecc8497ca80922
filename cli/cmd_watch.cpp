#include "cli/commands.h"

namespace flam::cli {

int cmd_watch(const Argv&) { return not_built("watch"); }

}  // namespace flam::cli
