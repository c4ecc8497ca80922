#include "cli/commands.h"

namespace flam::cli {

int cmd_status(const Argv&) { return not_built("status"); }

}  // namespace flam::cli
