// RunDir: the on-disk state of one run, shared by `flam submit`, `status`, `watch`, `cancel`
// and the jobs themselves. The names of its files and folders are core/run_layout.h's; here:
//   RUN/state.json         RunState below, replaced atomically (version 1, docs/formats.md)
//   RUN/orchestrator.log   one timestamped line per decision, appended
//   RUN/metrics.jsonl      read: JSON lines from the trainer: {"step":..,"loss_laion":..,...}
//   RUN/jobs/ID.exit       read: the step's exit status, written by the sbatch script at its end
//   RUN/checkpoints/       read: the newest committed checkpoint's step
//
// Thread safety: none; one process (the watcher) writes state.json at a time, the others read.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/run_layout.h"

namespace flam::orchestrator {

struct JobRecord {
  std::string id;
  std::string kind;       // train | shard
  std::string state;      // Slurm's last known state ("" until first seen)
  std::string reason;     // Slurm's reason, or the watcher's
  std::string submitted;  // our UTC time of submission
  std::string start;      // Slurm's times
  std::string end;
  int exit_code = -1;           // the step's exit status when known
  int64_t step_at_submit = -1;  // newest metrics step when submitted; -1: none
  int64_t step_at_end = -1;     // newest metrics step when the job ended
  std::string decision;         // what the watcher did after this job ended
  std::string dependency;       // the Slurm dependency it waits on ("afterok:12:13"); "" none
};

// The JSON object of one job as state.json and `flam status --json` show it.
nlohmann::json to_json(const JobRecord& job);

struct RunState {
  static constexpr int kVersion = 1;
  std::string status = "submitted";  // submitted | running | completed | failed | cancelled
  std::string kind = "train";
  std::string explanation;  // why the run stopped, for status
  int restarts = 0;         // resubmissions so far
  // flam submit --after: the run directories whose current jobs this run's first job waits for.
  std::vector<std::string> after;
  std::vector<JobRecord> jobs;
};

struct MetricsRow {
  int64_t step = -1;
  std::map<std::string, double> values;  // every numeric field but step
  // The trainer's "dropped" object flattened: "laion/bad_image" -> samples dropped so far.
  std::map<std::string, int64_t> dropped;
};

class RunDir {
 public:
  explicit RunDir(std::string path);

  const std::string& path() const { return path_; }
  std::string config_path() const { return run_layout::config_file(path_); }
  std::string state_path() const { return run_layout::state_file(path_); }
  std::string log_path() const { return run_layout::orchestrator_log(path_); }
  std::string metrics_path() const { return run_layout::metrics_file(path_); }
  std::string jobs_dir() const { return run_layout::jobs_dir(path_); }
  std::string checkpoints_dir() const { return run_layout::checkpoints_dir(path_); }
  // The marker `flam cancel` writes and `flam watch` obeys.
  std::string cancel_marker() const { return run_layout::cancel_marker(path_); }
  // The sbatch script `flam submit` writes and the supervisor resubmits.
  std::string job_script() const { return run_layout::job_script(path_); }

  bool has_state() const;
  // Throws flam::Error(kIo) when missing, kData naming the file when malformed.
  RunState load_state() const;
  void save_state(const RunState& state) const;
  // Appends "2026-01-02T03:04:05Z message" to orchestrator.log (and nothing else).
  void log(const std::string& message) const;
  // The exit status the sbatch script recorded for `job_id`, if it got that far.
  std::optional<int> exit_file(const std::string& job_id) const;
  // Every parsable line of metrics.jsonl in file order; a torn or malformed line is skipped.
  std::vector<MetricsRow> read_metrics() const;
  // Step of the newest committed checkpoint (step_N/ with manifest.json); -1 when none.
  int64_t newest_checkpoint_step() const;

 private:
  std::string path_;
};

}  // namespace flam::orchestrator
