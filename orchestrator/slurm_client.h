// SlurmClient: submits, queries and cancels Slurm jobs by running sbatch, scontrol, sacct and
// scancel as argv subprocesses (orchestrator/subprocess.h). The cluster is whatever these
// commands reach (SLURM_CONF in the environment included).
//
// Querying: `scontrol show job` while the controller remembers the job (MinJobAge), then
// `sacct` (needs slurmdbd). A job neither knows comes back with an empty state; the supervisor
// then falls back to the exit file the sbatch script writes (orchestrator/run_dir.h).
//
// Thread safety: stateless apart from the timeout; any thread may call it.
#pragma once

#include <string>
#include <vector>

namespace flam::orchestrator {

struct JobInfo {
  std::string id;
  std::string
      state;  // Slurm's name: PENDING, RUNNING, COMPLETED, FAILED, NODE_FAIL, ...; "" unknown
  int exit_code = -1;  // the batch script's exit status; -1 unknown
  int exit_signal = 0;
  std::string reason;  // Slurm's Reason field; "" or "None" when there is none
  std::string start;   // Slurm's times (2026-01-02T03:04:05), "" when not known
  std::string end;
};

// True for states in which the job will not run again by itself.
bool is_terminal(const std::string& state);

class SlurmClient {
 public:
  explicit SlurmClient(double timeout_seconds = 60.0) : timeout_(timeout_seconds) {}

  // sbatch --parsable [OPTIONS...] SCRIPT (`sbatch_options` such as
  // "--dependency=afterok:123"). Returns the job id. Throws flam::Error(kConfig) with sbatch's
  // message when Slurm refuses the script (bad partition, account, dependency, ...), and
  // kInternal when sbatch is missing or times out.
  std::string submit(const std::string& script_path,
                     const std::vector<std::string>& sbatch_options = {}) const;
  JobInfo query(const std::string& job_id) const;
  // scontrol update JobId=JOB Dependency=DEPENDENCY: what a pending job waits on now ("" waits
  // on nothing). Throws flam::Error(kInternal) naming scontrol's message on failure.
  void update_dependency(const std::string& job_id, const std::string& dependency) const;
  // scancel JOB (with --signal=SIG [--batch] when `signal` is set). Throws flam::Error(kInternal)
  // naming scancel's message on failure.
  void cancel(const std::string& job_id, const std::string& signal = "",
              bool batch_only = false) const;

 private:
  double timeout_;
};

// Parsers of the commands' outputs, public for tests.
std::string parse_sbatch_parsable(const std::string& out);  // "123" or "123;cluster" -> "123"
JobInfo parse_scontrol_job(const std::string& one_line);    // `scontrol show job -o ID`
JobInfo parse_sacct(
    const std::string& out);  // `sacct -n -P -X -o JobID,State,ExitCode,Reason,Start,End`

}  // namespace flam::orchestrator
