// flam shard: downloads URL tables or MMC4 documents into tar shards (shard/shard_job.h), as one
// rank of an MPI job or alone.
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "core/error.h"
#include "core/exit_codes.h"
#include "core/log.h"
#include "core/world.h"
#include "shard/shard_job.h"

namespace flam::cli {

int cmd_shard(const Argv& argv) {
  Args args(argv, {"config", "set"}, {});
  if (!args.positionals().empty()) {
    throw Error(ErrorKind::kUsage, "usage: flam shard --config F [--set key=value ...]");
  }
  Config config = load_config(args.get_or("config", ""), args.all("set"));
  log::set_level(log::parse_level(config.run.log_level.c_str()));
  const WorldInfo& world = World::init(nullptr, nullptr);
  try {
    shard::run_shard_job(config.shard);
  } catch (const Error& e) {
    // The other ranks would wait for this one forever: end the job, with this error's exit code.
    if (world.size > 1) {
      FLAM_LOG(ERROR) << e.what();
      const int code = e.kind() == ErrorKind::kConfig || e.kind() == ErrorKind::kUsage ? kExitUsage
                       : e.kind() == ErrorKind::kIo   ? kExitIoError
                       : e.kind() == ErrorKind::kComm ? kExitPeerFailure
                       : e.kind() == ErrorKind::kData ? kExitDataError
                                                      : kExitFailure;
      World::abort(code);
    }
    throw;
  }
  return kExitOk;
}

}  // namespace flam::cli
