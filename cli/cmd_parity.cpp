#include "cli/commands.h"

namespace flam::cli {

int cmd_parity(const Argv&) { return not_built("parity"); }

}  // namespace flam::cli
