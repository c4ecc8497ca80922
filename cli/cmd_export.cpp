#include "cli/commands.h"

namespace flam::cli {

int cmd_export(const Argv&) { return not_built("export"); }

}  // namespace flam::cli
