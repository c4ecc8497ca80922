// Supervisor: what `flam watch RUN` runs. Polls the run's current Slurm job until it ends, then
// decides (decide() below) whether to resubmit the run's sbatch script (RUN/job.sbatch; the new
// job resumes from the newest checkpoint because `flam train` and `flam shard` resume by
// default), or to stop and say why. Every decision goes to RUN/orchestrator.log and state.json.
//
// Progress is the high-water mark of the step: the newest `step` in RUN/metrics.jsonl or the
// newest committed checkpoint, whichever is larger. A job "made progress" when it raised it.
//
// A run submitted with --after (RunState::after) starts pending on its predecessors' current
// jobs (afterok). While its job pends, each poll re-reads the predecessors' state.json and, when
// a predecessor's watch has resubmitted it (a new current job) or it has completed, re-points
// the pending job's dependency at what is current (scontrol update; a dependency on a replaced
// job could never be satisfied). A predecessor that stopped without completing cancels the
// pending job and fails the run, naming it.
//
// Thread safety: one Supervisor per run directory and process; watch() holds RUN/watch.lock
// (orchestrator/watch_lock.h) so that a second watch on the run refuses. `flam cancel` in another
// process is seen through the RUN/cancel marker at the next poll.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "orchestrator/options.h"
#include "orchestrator/run_dir.h"
#include "orchestrator/slurm_client.h"

namespace flam::orchestrator {

enum class Verdict { kDone, kResubmit, kStop };

struct Decision {
  Verdict verdict = Verdict::kStop;
  std::string reason;                  // one line for the log and for `flam status`
  bool counts_as_no_progress = false;  // a failure without progress (see max_failures_...)
};

// The decision after `job` ended (its state, exit_code, step_at_submit/step_at_end filled in).
// `restarts`: resubmissions so far; `failures_without_progress`: consecutive earlier ones.
Decision decide(const JobRecord& job, int restarts, int failures_without_progress,
                const SlurmOptions& options);

// The Slurm dependency ("afterok:ID:ID"; "" when nothing is left to wait for) on the current
// jobs of the runs `after` (run directories); a completed run needs no waiting. Throws
// flam::Error(kUsage) naming the run when it has no state.json or no job, or stopped without
// completing (a job chained after it could never start).
std::string dependency_on(const std::vector<std::string>& after);
// sbatch's options for `dependency` (none when empty): --dependency, and --kill-on-invalid-dep=no
// so that a site's DependencyParameters=kill_invalid_depend does not cancel the job when a
// predecessor's job fails; the watch re-points it at the predecessor's resubmitted job instead.
std::vector<std::string> dependency_options(const std::string& dependency);

class Supervisor {
 public:
  // `run` and `client` must outlive the Supervisor.
  Supervisor(const RunDir& run, const SlurmClient& client, SlurmOptions options);

  // Runs until the run completes, fails for good, or is cancelled. Returns the final status
  // ("completed", "failed", "cancelled"). Throws flam::Error when the run dir is unusable, and
  // kUsage ("watched by pid N since T") when another live watch holds the run.
  std::string watch();

  // Submits RUN/job.sbatch as the next job of the chain and records it; returns the job id.
  // `dependency` (dependency_on(state.after)) goes to this submission only: later
  // resubmissions are made once it is satisfied.
  std::string submit_next(RunState& state, const std::string& dependency = "");

 private:
  // The pending `job`'s dependency re-pointed at state.after's current jobs (see above).
  void follow_predecessors(RunState& state, JobRecord& job);
  int64_t progress_step() const;
  bool cancel_requested() const;

  const RunDir& run_;
  const SlurmClient& client_;
  SlurmOptions options_;
};

}  // namespace flam::orchestrator
