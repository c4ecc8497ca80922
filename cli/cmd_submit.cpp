#include "cli/commands.h"

namespace flam::cli {

int cmd_submit(const Argv&) { return not_built("submit"); }

}  // namespace flam::cli
