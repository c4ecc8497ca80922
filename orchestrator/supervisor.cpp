#include "orchestrator/supervisor.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>
#include <thread>

#include "core/check.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/exit_codes.h"
#include "core/log.h"
#include "orchestrator/watch_lock.h"

namespace flam::orchestrator {
namespace {

// Polls without news from Slurm or an exit file before a job counts as lost.
constexpr int kMaxUnknownPolls = 30;
constexpr double kMaxBackoffSeconds = 600.0;

bool infrastructure_failure(const std::string& state) {
  return state == "NODE_FAIL" || state == "PREEMPTED" || state == "TIMEOUT" ||
         state == "OUT_OF_MEMORY" || state == "BOOT_FAIL";
}

std::string describe_end(const JobRecord& job) {
  std::string s = "job " + job.id + " ended " + (job.state.empty() ? "?" : job.state);
  if (job.exit_code >= 0) s += " with exit code " + std::to_string(job.exit_code);
  if (!job.reason.empty()) s += " (" + job.reason + ")";
  return s;
}

// Sleeps `seconds` in slices no longer than a poll, beating the watch lock after each.
void sleep_beating(double seconds, double slice, WatchLock& lock) {
  while (seconds > 0) {
    const double s = std::min(seconds, slice);
    std::this_thread::sleep_for(std::chrono::duration<double>(s));
    seconds -= s;
    lock.beat();
  }
}

}  // namespace

Decision decide(const JobRecord& job, int restarts, int failures_without_progress,
                const SlurmOptions& options) {
  const bool progress = job.step_at_end > job.step_at_submit;
  const std::string log_hint = " (see jobs/slurm-" + job.id + ".out)";
  if (job.state == "COMPLETED" && job.exit_code <= 0) {
    return {Verdict::kDone, "job " + job.id + " completed", false};
  }
  if (job.exit_code == kExitUsage) {
    return {Verdict::kStop,
            "job " + job.id + " exited 2: a usage or config error, which a restart cannot fix" +
                log_hint,
            false};
  }
  if (job.exit_code == kExitDataError) {
    return {Verdict::kStop,
            "job " + job.id + " exited 5: bad data beyond the configured tolerance" + log_hint,
            false};
  }
  if (job.state == "CANCELLED") {
    return {Verdict::kStop, "job " + job.id + " was cancelled outside flam (scancel)", false};
  }
  Decision d;
  d.counts_as_no_progress = !progress && !infrastructure_failure(job.state);
  std::string why;
  if (infrastructure_failure(job.state)) {
    why = job.state + ": not the job's fault";
  } else if (job.exit_code == kExitRequeue) {
    why = "exit 3: stopped after a checkpoint (pre-emption or time limit)";
  } else if (job.exit_code == kExitPeerFailure) {
    why = "exit 4: a peer rank or collective failed";
  } else if (job.exit_code == kExitIoError) {
    why = "exit 6: file system failure";
  } else if (progress) {
    why = "failed after progress (step " + std::to_string(job.step_at_submit) + " -> " +
          std::to_string(job.step_at_end) + ")";
  } else {
    why = "failed without progress";
  }
  if (d.counts_as_no_progress &&
      failures_without_progress + 1 >= options.max_failures_without_progress) {
    d.verdict = Verdict::kStop;
    d.reason = describe_end(job) + ": " + std::to_string(failures_without_progress + 1) +
               " failures in a row without progress past step " + std::to_string(job.step_at_end) +
               "; stopping" + log_hint;
    return d;
  }
  if (restarts >= options.max_restarts) {
    d.verdict = Verdict::kStop;
    d.reason = describe_end(job) + ": " + why + ", but the restart limit (" +
               std::to_string(options.max_restarts) + ") is reached" + log_hint;
    return d;
  }
  d.verdict = Verdict::kResubmit;
  d.reason = describe_end(job) + ": " + why + "; resubmitting";
  return d;
}

std::string dependency_on(const std::vector<std::string>& after) {
  std::string ids;
  for (const auto& path : after) {
    const RunDir other(path);
    if (!other.has_state()) {
      throw Error(
          ErrorKind::kUsage,
          "--after: " + path + " has no state.json: it was never submitted with flam submit",
          at_file(other.state_path()));
    }
    const RunState s = other.load_state();
    if (s.jobs.empty()) {
      throw Error(ErrorKind::kUsage, "--after: run " + path + " has no job",
                  at_file(other.state_path()));
    }
    if (s.status == "completed") continue;
    if (s.status == "failed" || s.status == "cancelled") {
      throw Error(ErrorKind::kUsage,
                  "--after: run " + path + " is " + s.status + " (" + s.explanation +
                      "): a job chained after it would never start",
                  at_file(other.state_path()));
    }
    ids += ":" + s.jobs.back().id;
  }
  return ids.empty() ? "" : "afterok" + ids;
}

std::vector<std::string> dependency_options(const std::string& dependency) {
  if (dependency.empty()) return {};
  return {"--dependency=" + dependency, "--kill-on-invalid-dep=no"};
}

Supervisor::Supervisor(const RunDir& run, const SlurmClient& client, SlurmOptions options)
    : run_(run), client_(client), options_(std::move(options)) {}

int64_t Supervisor::progress_step() const {
  int64_t step = run_.newest_checkpoint_step();
  for (const auto& row : run_.read_metrics()) step = std::max(step, row.step);
  return step;
}

bool Supervisor::cancel_requested() const { return std::filesystem::exists(run_.cancel_marker()); }

std::string Supervisor::submit_next(RunState& state, const std::string& dependency) {
  JobRecord job;
  job.kind = state.kind;
  job.submitted = utc_now();
  job.step_at_submit = progress_step();
  job.dependency = dependency;
  job.id = client_.submit(run_.job_script(), dependency_options(dependency));
  state.jobs.push_back(job);
  state.status = "submitted";
  run_.save_state(state);
  run_.log("submitted job " + job.id + " (" + job.kind + ", step " +
           std::to_string(job.step_at_submit) + ")" +
           (dependency.empty() ? "" : ", sbatch --dependency=" + dependency));
  return job.id;
}

void Supervisor::follow_predecessors(RunState& state, JobRecord& job) {
  std::string wanted;
  try {
    wanted = dependency_on(state.after);
  } catch (const Error& e) {
    client_.cancel(job.id);
    state.status = "failed";
    state.explanation = "job " + job.id + " cancelled before it started: " + e.what();
    run_.save_state(state);
    run_.log(state.explanation);
    FLAM_LOG(WARN) << state.explanation;
    return;
  }
  if (wanted == job.dependency) return;
  client_.update_dependency(job.id, wanted);
  run_.log("job " + job.id + ": dependency " + (job.dependency.empty() ? "none" : job.dependency) +
           " -> " + (wanted.empty() ? "none" : wanted) +
           " (the runs it is chained after moved on)");
  job.dependency = wanted;
  run_.save_state(state);
}

std::string Supervisor::watch() {
  RunState state = run_.load_state();
  FLAM_CHECK(!state.jobs.empty()) << "state.json without jobs";
  WatchLock lock(run_.path(), watch_stale_seconds(options_));
  run_.log("watch started (pid " + std::to_string(::getpid()) + ")");
  int failures_without_progress = 0;
  int unknown_polls = 0;
  while (true) {
    if (state.status == "completed" || state.status == "failed" || state.status == "cancelled") {
      return state.status;
    }
    if (cancel_requested()) {
      state.status = "cancelled";
      state.explanation = "cancelled by flam cancel";
      run_.save_state(state);
      run_.log("watch: run cancelled; stopping");
      return state.status;
    }
    JobRecord& job = state.jobs.back();
    const JobInfo info = client_.query(job.id);
    const std::optional<int> exit_file = run_.exit_file(job.id);
    // `flam cancel` writes the marker before it cancels the job: a job seen cancelled after
    // the marker check above is the user's cancel, not a failure to decide about.
    if (cancel_requested()) continue;
    bool ended = false;
    if (info.state.empty()) {
      // Slurm forgot the job (no slurmdbd, MinJobAge passed): the exit file says how it ended.
      if (exit_file) {
        job.state = *exit_file == 0 ? "COMPLETED" : "FAILED";
        job.exit_code = *exit_file;
        ended = true;
      } else if (++unknown_polls >= kMaxUnknownPolls) {
        job.state = "LOST";
        job.reason = "Slurm no longer knows the job and it left no exit file";
        ended = true;
      }
    } else {
      unknown_polls = 0;
      if (info.state != job.state) {
        run_.log("job " + job.id + ": " + (job.state.empty() ? "?" : job.state) + " -> " +
                 info.state);
      }
      job.state = info.state;
      job.reason = info.reason;
      if (!info.start.empty()) job.start = info.start;
      if (!info.end.empty()) job.end = info.end;
      if (info.state == "RUNNING" && state.status == "submitted") state.status = "running";
      if (is_terminal(info.state)) {
        // The step's own status (from the exit file) is exact; Slurm's is the batch script's.
        job.exit_code = exit_file ? *exit_file : info.exit_code;
        ended = true;
      }
    }
    if (!ended) {
      if (info.state == "PENDING" && !state.after.empty() && !job.dependency.empty()) {
        follow_predecessors(state, job);
        if (state.status == "failed") continue;
      }
      run_.save_state(state);
      sleep_beating(options_.poll_seconds, options_.poll_seconds, lock);
      continue;
    }
    job.step_at_end = progress_step();
    const Decision d = decide(job, state.restarts, failures_without_progress, options_);
    job.decision = d.reason;
    run_.log(d.reason);
    FLAM_LOG(INFO) << d.reason;
    if (d.verdict == Verdict::kDone) {
      state.status = "completed";
      state.explanation = d.reason;
      run_.save_state(state);
      continue;
    }
    if (d.verdict == Verdict::kStop) {
      state.status = "failed";
      state.explanation = d.reason;
      run_.save_state(state);
      continue;
    }
    failures_without_progress = d.counts_as_no_progress ? failures_without_progress + 1 : 0;
    const double backoff =
        std::min(kMaxBackoffSeconds, options_.backoff_seconds *
                                         std::pow(2.0, std::max(0, failures_without_progress - 1)));
    run_.save_state(state);
    run_.log("waiting " + std::to_string(backoff) + " s before resubmitting");
    sleep_beating(backoff, options_.poll_seconds, lock);
    if (cancel_requested()) continue;
    ++state.restarts;
    submit_next(state);
  }
}

}  // namespace flam::orchestrator
