#include "cli/commands.h"

namespace flam::cli {

int cmd_cancel(const Argv&) { return not_built("cancel"); }

}  // namespace flam::cli
