// flam submit: resolve the config, check a training job's inputs (pipeline::check_data_inputs;
// not for a run chained --after others, whose shards they are still making),
// refuse a config that differs from the one the run was started with unless
// --allow-config-change (cli/config_change.h), render the sbatch script with the job kind's
// Slurm resources (slurm.train / slurm.shard over slurm.*), create (or reuse) the run directory
// and submit the first job of the run's chain; --after RUN makes it wait for that run's current
// job to succeed (sbatch --dependency=afterok:ID) and records RUN in state.json, so that
// `flam watch` re-points the dependency when RUN's job is resubmitted (orchestrator/supervisor.h).
// `flam watch RUN` supervises it from there.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "cli/config_change.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/exit_codes.h"
#include "orchestrator/job_spec.h"
#include "orchestrator/run_dir.h"
#include "orchestrator/slurm_client.h"
#include "orchestrator/supervisor.h"
#include "pipeline/loader.h"

namespace flam::cli {

namespace fs = std::filesystem;
using namespace flam::orchestrator;

int cmd_submit(const Argv& argv) {
  Args args(argv, {"config", "set", "job", "after"}, {"dry-run", "allow-config-change"});
  if (!args.positionals().empty()) {
    throw Error(ErrorKind::kUsage, "unexpected argument '" + args.positionals()[0] + "'");
  }
  Config config = load_config(args.require("config"), args.all("set"));
  // What the job would find wrong on start is found here, before anything is queued; a run
  // chained --after others starts on what they make (its shards), so its job checks on start.
  if (args.get_or("job", "train") == "train" && !args.flag("dry-run") &&
      args.all("after").empty()) {
    pipeline::check_data_inputs(config.data);
  }
  config.run.dir = fs::absolute(config.run.dir).lexically_normal().string();
  while (config.run.dir.size() > 1 && config.run.dir.back() == '/') config.run.dir.pop_back();

  JobSpec spec;
  spec.kind = args.get_or("job", "train");
  spec.job_name = config.run.name;
  spec.run_dir = config.run.dir;
  spec.flam_bin = config.slurm.flam_bin.empty() ? fs::read_symlink("/proc/self/exe").string()
                                                : fs::absolute(config.slurm.flam_bin).string();
  spec.slurm = config.slurm.for_kind(spec.kind);
  const std::string script =
      render_sbatch(spec, load_template(spec.kind, config.slurm.template_dir));
  std::vector<std::string> after;
  for (const auto& a : args.all("after")) {
    std::string path = fs::absolute(a).lexically_normal().string();
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    after.push_back(path);
  }
  const std::string dependency = dependency_on(after);
  if (args.flag("dry-run")) {
    std::string line = "flam submit: would run: sbatch --parsable";
    for (const std::string& option : dependency_options(dependency)) line += " " + option;
    std::fprintf(stderr, "%s %s\n", line.c_str(), run_layout::job_script(config.run.dir).c_str());
    std::fputs(script.c_str(), stdout);
    return kExitOk;
  }
  const std::vector<ConfigChange> changes =
      check_config_change(config, args.flag("allow-config-change"), "--allow-config-change");

  RunDir run(config.run.dir);
  RunState state;
  state.kind = spec.kind;
  state.after = after;
  if (run.has_state()) {
    const RunState old = run.load_state();
    if (old.status == "submitted" || old.status == "running") {
      throw Error(ErrorKind::kUsage,
                  "run " + run.path() + " already has job " + old.jobs.back().id + " (" +
                      old.status + "): follow it with `flam watch " + run.path() +
                      "`, or stop it with `flam cancel " + run.path() + "` first");
    }
    state.jobs = old.jobs;  // the chain goes on; a new submission starts a fresh restart count
  }
  fs::create_directories(run.jobs_dir());
  if (!changes.empty()) record_config_change(run.path(), "submit", changes);
  std::error_code ignored;
  fs::remove(run.cancel_marker(), ignored);
  write_file_atomic(run.config_path(), dump_config(config));
  write_file_atomic(run.job_script(), script);

  SlurmClient client;
  Supervisor supervisor(run, client, config.slurm);
  const std::string id = supervisor.submit_next(state, dependency);
  std::printf(
      "submitted job %s for run %s\n  follow it: flam watch %s\n  look at it: flam status %s\n",
      id.c_str(), run.path().c_str(), run.path().c_str(), run.path().c_str());
  return kExitOk;
}

}  // namespace flam::cli
