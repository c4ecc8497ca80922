// flam cancel: cancel the run's current Slurm job and mark the run cancelled, so that a running
// `flam watch` stops at its next poll instead of resubmitting.
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/atomic_file.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/exit_codes.h"
#include "orchestrator/run_dir.h"
#include "orchestrator/slurm_client.h"
#include "orchestrator/supervisor.h"

namespace flam::cli {

using namespace flam::orchestrator;

int cmd_cancel(const Argv& argv) {
  Args args(argv, {}, {});
  if (args.positionals().size() != 1) throw Error(ErrorKind::kUsage, "usage: flam cancel RUN");
  RunDir run(args.positionals()[0]);
  RunState state = run.load_state();
  // The marker first: a watcher that reads the job's CANCELLED state must already see it.
  write_file_atomic(run.cancel_marker(), utc_now() + "\n");
  SlurmClient client;
  std::string cancelled;
  if (!state.jobs.empty() && !is_terminal(state.jobs.back().state)) {
    const std::string id = state.jobs.back().id;
    const JobInfo info = client.query(id);
    if (!is_terminal(info.state) && !info.state.empty()) {
      client.cancel(id);
      cancelled = id;
    }
  }
  state.status = "cancelled";
  state.explanation =
      "cancelled by flam cancel" + (cancelled.empty() ? "" : " (job " + cancelled + ")");
  run.save_state(state);
  run.log(state.explanation);
  std::printf("run %s: %s\n", run.path().c_str(), state.explanation.c_str());
  return kExitOk;
}

}  // namespace flam::cli
