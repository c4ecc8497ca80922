#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "core/error.h"
#include "core/exit_codes.h"

namespace flam::cli {

int cmd_config(const Argv& argv) {
  Args args(argv, {"config", "set"}, {"hash"});
  if (args.positionals().size() != 1 || args.positionals()[0] != "show") {
    throw Error(ErrorKind::kUsage, "usage: flam config show --config F [--set key=value ...]");
  }
  Config config = load_config(args.get_or("config", ""), args.all("set"));
  if (args.flag("hash")) {
    std::printf("%s\n", config_hash(config).c_str());
  } else {
    std::fputs(dump_config(config).c_str(), stdout);
  }
  return kExitOk;
}

}  // namespace flam::cli
