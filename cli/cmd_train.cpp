#include "cli/commands.h"

namespace flam::cli {

int cmd_train(const Argv&) { return not_built("train"); }

}  // namespace flam::cli
