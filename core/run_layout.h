// run_layout: the one place that names the files and folders of a run directory (as leveldb's
// db/filename.h does for a database). Torch-free; used by train/, orchestrator/ and cli/.
//
//   RUN/config.yaml                 the resolved config (flam submit, flam train rank 0)
//   RUN/state.json                  the orchestrator's RunState (orchestrator/run_dir.h)
//   RUN/orchestrator.log            one line per decision of flam watch
//   RUN/metrics.jsonl               one JSON object per log step (trainer, rank 0)
//   RUN/cancel                      marker: flam cancel asks flam watch to stop
//   RUN/watch.lock                  the running flam watch: {"pid", "host", "since", "heartbeat"}
//   RUN/history.jsonl               one JSON line per config change let through
//   RUN/job.sbatch                  the sbatch script flam submit writes and flam watch resubmits
//   RUN/jobs/ID.exit                the step's exit status (written by the sbatch script)
//   RUN/jobs/slurm-ID.out           the job's output
//   RUN/checkpoints/step_N/         a committed checkpoint once it holds manifest.json
//   RUN/checkpoints/step_N.tmp/     a save in progress, or one a crash interrupted (ignored)
//   RUN/checkpoints/step_N/rank_R.bin   rank R's file
//   RUN/checkpoints/latest          "step_N\n", replaced atomically after each commit
//
// Names only, plus the listing of committed checkpoints; no I/O beyond that listing.
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace flam::run_layout {

std::string config_file(const std::string& run);       // RUN/config.yaml
std::string state_file(const std::string& run);        // RUN/state.json
std::string orchestrator_log(const std::string& run);  // RUN/orchestrator.log
std::string metrics_file(const std::string& run);      // RUN/metrics.jsonl
std::string cancel_marker(const std::string& run);     // RUN/cancel
std::string watch_lock(const std::string& run);        // RUN/watch.lock
std::string history_file(const std::string& run);      // RUN/history.jsonl
std::string job_script(const std::string& run);        // RUN/job.sbatch
std::string jobs_dir(const std::string& run);          // RUN/jobs
std::string job_exit_file(const std::string& run, const std::string& job_id);  // RUN/jobs/ID.exit
// RUN/jobs/slurm-%j.out: sbatch's --output pattern (%j: the job id).
std::string job_output_pattern(const std::string& run);
std::string checkpoints_dir(const std::string& run);  // RUN/checkpoints

// Inside a checkpoints directory (CKPT = RUN/checkpoints).
std::string step_dir_name(int64_t step);  // step_00001234
// 1234 for "step_00001234"; nullopt for anything else ("step_00001234.tmp" included).
std::optional<int64_t> parse_step_dir_name(const std::string& name);
std::string step_dir(const std::string& checkpoints, int64_t step);  // CKPT/step_00001234
std::string tmp_dir(const std::string& dir);                         // DIR.tmp
bool is_tmp_name(const std::string& name);                           // ends in .tmp
std::string latest_file(const std::string& checkpoints);             // CKPT/latest
std::string manifest_file(const std::string& step_dir);              // STEP/manifest.json
std::string rank_file_name(int rank);                                // rank_00000.bin
std::string rank_file(const std::string& step_dir, int rank);        // STEP/rank_00000.bin

// Steps of the committed checkpoints in `checkpoints` (step_N/ holding a manifest.json), newest
// first. An absent or unreadable directory has none.
std::vector<int64_t> list_checkpoints(const std::string& checkpoints);

}  // namespace flam::run_layout
