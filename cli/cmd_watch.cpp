// flam watch: supervise a run until it completes, fails for good, or is cancelled
// (orchestrator/supervisor.h). Exit status: 0 completed, 1 failed or cancelled.
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "core/error.h"
#include "core/exit_codes.h"
#include "orchestrator/run_dir.h"
#include "orchestrator/slurm_client.h"
#include "orchestrator/supervisor.h"

namespace flam::cli {

using namespace flam::orchestrator;

int cmd_watch(const Argv& argv) {
  Args args(argv, {}, {});
  if (args.positionals().size() != 1) throw Error(ErrorKind::kUsage, "usage: flam watch RUN");
  RunDir run(args.positionals()[0]);
  const Config config = load_config(run.config_path());
  SlurmClient client;
  Supervisor supervisor(run, client, config.slurm);
  const std::string status = supervisor.watch();
  const RunState state = run.load_state();
  std::printf("run %s %s after %zu job(s), %d restart(s): %s\n", run.path().c_str(), status.c_str(),
              state.jobs.size(), state.restarts, state.explanation.c_str());
  return status == "completed" ? kExitOk : kExitFailure;
}

}  // namespace flam::cli
