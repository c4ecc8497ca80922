// flam status: one look at a run: the job chain (ids, states, times, exit codes, decisions),
// whether a `flam watch` supervises it (orchestrator/watch_lock.h), the training step, the
// latest losses and throughput, the ETA at the current job's own rate, the samples dropped so
// far by dataset and reason, the newest checkpoint; --json for scripts; --plot OUT.svg draws the
// metrics (orchestrator/plot.h). A run started without `flam submit` (no state.json) shows its
// metrics and checkpoints. Read-only: it asks Slurm about the current job but never writes.
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/exit_codes.h"
#include "orchestrator/plot.h"
#include "orchestrator/run_dir.h"
#include "orchestrator/slurm_client.h"
#include "orchestrator/watch_lock.h"

namespace flam::cli {
namespace {

using namespace flam::orchestrator;
using nlohmann::json;

// Slurm prints local times without a zone: 2026-01-02T03:04:05.
double parse_slurm_time(const std::string& text) {
  std::tm tm{};
  if (!strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return -1;
  tm.tm_isdst = -1;
  return static_cast<double>(std::mktime(&tm));
}

// Steps per second of the current job: over the metrics rows it wrote (those after the last
// restart, where the step goes back, and stamped at or after the job's start) from their
// "wall_time" (Unix seconds), so a resumed run is timed by this job and not by the run's
// average; else from the newest row's "step_time" (seconds per step); else from the job's start.
double steps_per_second(const std::vector<MetricsRow>& rows, const JobRecord* job) {
  if (rows.empty()) return 0;
  const double job_start = job && !job->start.empty() ? parse_slurm_time(job->start) : -1;
  const auto wall = [](const MetricsRow& r) {
    const auto it = r.values.find("wall_time");
    return it == r.values.end() ? -1.0 : it->second;
  };
  size_t first = rows.size() - 1;
  while (first > 0 && rows[first - 1].step < rows[first].step &&
         (job_start < 0 || wall(rows[first - 1]) >= job_start)) {
    --first;
  }
  const MetricsRow& a = rows[first];
  const MetricsRow& b = rows.back();
  if (b.step > a.step && wall(a) > 0 && wall(b) > wall(a)) {
    return static_cast<double>(b.step - a.step) / (wall(b) - wall(a));
  }
  const auto st = b.values.find("step_time");
  if (st != b.values.end() && st->second > 0) return 1.0 / st->second;
  if (job && job->state == "RUNNING" && job_start > 0) {
    const double elapsed = static_cast<double>(std::time(nullptr)) - job_start;
    if (elapsed > 0) return static_cast<double>(b.step - a.step + 1) / elapsed;
  }
  return 0;
}

std::string format_duration(double seconds) {
  const auto s = static_cast<int64_t>(seconds);
  char buf[64];
  if (s >= 86400) {
    std::snprintf(buf, sizeof(buf), "%lldd %02lldh", static_cast<long long>(s / 86400),
                  static_cast<long long>(s % 86400 / 3600));
  } else {
    std::snprintf(buf, sizeof(buf), "%02lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>(s % 3600 / 60), static_cast<long long>(s % 60));
  }
  return buf;
}

std::string or_dash(const std::string& s) { return s.empty() ? "-" : s; }

}  // namespace

int cmd_status(const Argv& argv) {
  Args args(argv, {"plot", "smooth"}, {"json"});
  if (args.positionals().size() != 1) {
    throw Error(ErrorKind::kUsage, "usage: flam status RUN [--json] [--plot OUT.svg [--smooth N]]");
  }
  RunDir run(args.positionals()[0]);
  const bool submitted = run.has_state();
  if (!submitted && !std::filesystem::exists(run.config_path()) &&
      !std::filesystem::exists(run.metrics_path())) {
    throw Error(
        ErrorKind::kUsage,
        run.path() + " is not a run directory (no state.json, config.yaml or metrics.jsonl)",
        at_file(run.path()));
  }
  RunState state;
  if (submitted) {
    state = run.load_state();
  } else {
    state.status = "local";
    state.explanation = "started without flam submit (no state.json): no Slurm jobs to show";
  }
  int64_t total_steps = -1;
  std::string run_name = run.path();
  orchestrator::SlurmOptions slurm;
  try {
    const Config config = load_config(run.config_path());
    if (state.kind == "train") total_steps = config.train.steps;
    run_name = config.run.name;
    slurm = config.slurm;
  } catch (const Error&) {
    // A run dir without a readable config still has a state and metrics worth showing.
  }
  const bool active = state.status == "submitted" || state.status == "running";
  const std::optional<WatchLockInfo> watch = read_watch_lock(run.path());
  const bool supervised = watch && watch_alive(*watch, watch_stale_seconds(slurm));
  JobRecord* current = state.jobs.empty() ? nullptr : &state.jobs.back();
  if (current && !is_terminal(current->state) &&
      (state.status == "submitted" || state.status == "running")) {
    const JobInfo info = SlurmClient(15.0).query(current->id);
    if (!info.state.empty()) {
      current->state = info.state;
      current->reason = info.reason;
      if (!info.start.empty()) current->start = info.start;
      if (!info.end.empty()) current->end = info.end;
    }
  }
  const std::vector<MetricsRow> rows = run.read_metrics();
  const MetricsRow* latest = rows.empty() ? nullptr : &rows.back();
  const int64_t checkpoint = run.newest_checkpoint_step();
  const double rate = steps_per_second(rows, current);
  double eta = -1;
  if (latest && total_steps > latest->step && rate > 0 && state.status != "completed") {
    eta = static_cast<double>(std::max<int64_t>(0, total_steps - latest->step)) / rate;
  }

  if (auto plot = args.get("plot")) {
    const int64_t smooth = args.get_int("smooth", 0);
    if (smooth < 0 || smooth > 100000) {
      throw Error(ErrorKind::kUsage, "--smooth takes a number of logged steps, 0 to 100000");
    }
    write_file_atomic(*plot, render_run_svg(rows, restart_steps(rows, state),
                                            "flam run " + run_name + " (" + state.status + ")",
                                            static_cast<int>(smooth)));
  }

  std::map<std::string, int64_t> dropped;
  if (latest) dropped = latest->dropped;
  int64_t dropped_total = 0;
  for (const auto& [key, count] : dropped) dropped_total += count;

  if (args.flag("json")) {
    json watch_json = nullptr;
    if (supervised) {
      watch_json = {{"pid", watch->pid},
                    {"host", watch->host},
                    {"since", watch->since},
                    {"heartbeat", watch->heartbeat}};
    }
    json jobs = json::array();
    for (const auto& j : state.jobs) jobs.push_back(orchestrator::to_json(j));
    json out{{"run", run.path()},
             {"status", state.status},
             {"kind", state.kind},
             {"restarts", state.restarts},
             {"explanation", state.explanation},
             {"jobs", jobs},
             {"step", latest ? json(latest->step) : json(nullptr)},
             {"total_steps", total_steps > 0 ? json(total_steps) : json(nullptr)},
             {"metrics", latest ? json(latest->values) : json::object()},
             {"eta_seconds", eta >= 0 ? json(eta) : json(nullptr)},
             {"steps_per_second", rate > 0 ? json(rate) : json(nullptr)},
             {"supervised", supervised},
             {"watch", watch_json},
             {"dropped", dropped},
             {"dropped_total", dropped_total},
             {"newest_checkpoint_step", checkpoint >= 0 ? json(checkpoint) : json(nullptr)}};
    std::printf("%s\n", out.dump(2).c_str());
    return kExitOk;
  }

  std::printf("run %s (%s): %s, %zu job(s), %d restart(s)\n", run.path().c_str(),
              state.kind.c_str(), state.status.c_str(), state.jobs.size(), state.restarts);
  if (!state.explanation.empty()) std::printf("  %s\n", state.explanation.c_str());
  if (supervised) {
    std::printf("  watched by pid %lld on %s since %s (heartbeat %s)\n",
                static_cast<long long>(watch->pid), watch->host.c_str(), watch->since.c_str(),
                watch->heartbeat.c_str());
  } else if (active) {
    std::printf(
        "  unsupervised: no flam watch heartbeat in the last %.0f s; nothing resubmits "
        "after a failure (run: flam watch %s)\n",
        watch_stale_seconds(slurm), run.path().c_str());
  }
  if (submitted)
    std::printf("\n  %-10s %-14s %-5s %-20s %-20s %s\n", "JOB", "STATE", "EXIT", "START", "END",
                "REASON / DECISION");
  for (const auto& j : state.jobs) {
    const std::string exit = j.exit_code >= 0 ? std::to_string(j.exit_code) : "-";
    const std::string note = !j.decision.empty() ? j.decision : j.reason;
    std::printf("  %-10s %-14s %-5s %-20s %-20s %s\n", j.id.c_str(), or_dash(j.state).c_str(),
                exit.c_str(), or_dash(j.start).c_str(), or_dash(j.end).c_str(),
                or_dash(note).c_str());
  }
  std::printf("\n");
  if (latest) {
    std::printf("  step %lld", static_cast<long long>(latest->step));
    if (total_steps > 0) {
      std::printf(" of %lld (%.1f%%)", static_cast<long long>(total_steps),
                  100.0 * static_cast<double>(latest->step) / static_cast<double>(total_steps));
    }
    std::printf("\n ");
    for (const auto& [key, value] : latest->values) {
      if (key != "wall_time") std::printf(" %s %.4g", key.c_str(), value);
    }
    std::printf("\n");
    if (eta >= 0) {
      std::printf("  ETA %s (%.3g steps/s in this job)\n", format_duration(eta).c_str(), rate);
    }
    std::printf("  samples dropped: %lld", static_cast<long long>(dropped_total));
    for (const auto& [key, count] : dropped) {
      if (count > 0) std::printf(", %s %lld", key.c_str(), static_cast<long long>(count));
    }
    std::printf("\n");
  } else {
    std::printf("  no metrics yet (%s)\n", run.metrics_path().c_str());
  }
  if (checkpoint >= 0) {
    std::printf("  newest checkpoint: step %lld in %s\n", static_cast<long long>(checkpoint),
                run.checkpoints_dir().c_str());
  } else {
    std::printf("  no checkpoint yet\n");
  }
  if (auto plot = args.get("plot")) std::printf("  plot: %s\n", plot->c_str());
  return kExitOk;
}

}  // namespace flam::cli
