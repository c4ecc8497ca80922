#include "cli/commands.h"

namespace flam::cli {

int cmd_inspect_batch(const Argv&) { return not_built("inspect batch"); }

}  // namespace flam::cli
