// flam submit: resolve the config, check a training job's inputs (pipeline::check_data_inputs),
// render the sbatch script, create (or reuse) the run directory and submit the first job of the
// run's chain. `flam watch RUN` supervises it from there.
#include <cstdio>
#include <filesystem>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/config.h"
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
  Args args(argv, {"config", "set", "job"}, {"dry-run"});
  if (!args.positionals().empty()) {
    throw Error(ErrorKind::kUsage, "unexpected argument '" + args.positionals()[0] + "'");
  }
  Config config = load_config(args.require("config"), args.all("set"));
  // What the job would find wrong on start is found here, before anything is queued.
  if (args.get_or("job", "train") == "train" && !args.flag("dry-run")) {
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
  spec.slurm = config.slurm;
  const std::string script =
      render_sbatch(spec, load_template(spec.kind, config.slurm.template_dir));
  if (args.flag("dry-run")) {
    std::fputs(script.c_str(), stdout);
    return kExitOk;
  }

  RunDir run(config.run.dir);
  RunState state;
  state.kind = spec.kind;
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
  std::error_code ignored;
  fs::remove(run.cancel_marker(), ignored);
  write_file_atomic(run.config_path(), dump_config(config));
  write_file_atomic(run.job_script(), script);

  SlurmClient client;
  Supervisor supervisor(run, client, config.slurm);
  const std::string id = supervisor.submit_next(state);
  std::printf(
      "submitted job %s for run %s\n  follow it: flam watch %s\n  look at it: flam status %s\n",
      id.c_str(), run.path().c_str(), run.path().c_str(), run.path().c_str());
  return kExitOk;
}

}  // namespace flam::cli
