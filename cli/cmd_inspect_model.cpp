#include "cli/commands.h"

namespace flam::cli {

int cmd_inspect_model(const Argv&) { return not_built("inspect model"); }

}  // namespace flam::cli
