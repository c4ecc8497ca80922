// flam train --config F [--set key=value ...] [--fresh]: one rank of a training job (launched N
// times by mpirun or srun). Loads and validates the config, writes the resolved config into the
// run directory (rank 0), and hands over to train::run_training, which resumes from the run's
// newest committed checkpoint when there is one. --fresh asks for a run from step 0: refused, with
// what would have happened instead, when the run directory already holds checkpoints.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/exit_codes.h"
#include "core/log.h"
#include "core/mpi_comm.h"
#include "core/run_layout.h"
#include "core/signals.h"
#include "core/watchdog.h"
#include "core/world.h"
#include "flam/build_config.h"
#include "pipeline/loader.h"
#if FLAM_WITH_CUDA
#include "core/nccl/nccl_comm.h"
#endif
#include "train/trainer.h"
#include "train/zero3/single_rank_comm.h"

namespace flam::cli {
namespace {

// --fresh never starts over silently on top of a run that would resume: names the checkpoint the
// run would resume from and the two ways to really start from step 0.
void refuse_fresh_over_checkpoints(const std::string& run_dir) {
  const std::string checkpoints = run_layout::checkpoints_dir(run_dir);
  const std::vector<int64_t> steps = run_layout::list_checkpoints(checkpoints);
  if (steps.empty()) return;
  ErrorContext context;
  context.file = run_layout::step_dir(checkpoints, steps.front());
  context.key = "run.dir";
  throw Error(ErrorKind::kUsage,
              "--fresh: " + run_dir + " already holds " + std::to_string(steps.size()) +
                  " committed checkpoint(s); without --fresh this run would resume from step " +
                  std::to_string(steps.front()) +
                  ". To start from step 0, set run.dir to a new directory or remove " + checkpoints,
              context);
}

}  // namespace

int cmd_train(const Argv& argv) {
  Args args(argv, {"config", "set"}, {"fresh"});
  if (!args.positionals().empty()) {
    throw Error(ErrorKind::kUsage, "usage: flam train --config F [--set key=value ...] [--fresh]");
  }
  const Config config = load_config(args.require("config"), args.all("set"));
  log::set_level(log::parse_level(config.run.log_level.c_str()));
  if (args.flag("fresh")) refuse_fresh_over_checkpoints(config.run.dir);
  // Everything a job checks on start, before anything (the run directory) is created.
  pipeline::check_data_inputs(config.data);
  const WorldInfo& world = World::init(nullptr, nullptr);
  train::TrainerConfig trainer{config.run,          config.model,     config.data, config.train,
                               config_hash(config), world.local_rank, config.eval};
  train::check_memory_plan(trainer, world.size);  // a run that will not fit: exit 2 here
  install_stop_signal_handlers();
  MpiComm comm(MPI_COMM_WORLD, MpiCommOptions{config.train.comm_timeout_seconds});
  // A silent rank ends the job with kExitPeerFailure instead of hanging it.
  Watchdog watchdog(comm.handle(), config.train.checkpoint.watchdog_seconds);
  // ZeRO-3 traffic: MpiComm on CPU; on CUDA one rank needs no communicator, several NcclComm
  // (bootstrapped over `comm`), in builds that have it.
  std::unique_ptr<Comm> device_comm;
  if (config.train.device == "cuda") {
    if (world.size == 1) {
      device_comm = std::make_unique<train::SingleRankComm>(c10::Device(c10::kCUDA, 0));
    } else {
#if FLAM_WITH_CUDA
      NcclCommOptions nccl;
      nccl.timeout_seconds = config.train.comm_timeout_seconds;
      device_comm = std::make_unique<NcclComm>(comm, world.local_rank, nccl);
#else
      ErrorContext context;
      context.key = "train.device";
      throw Error(ErrorKind::kConfig,
                  "train.device: cuda on several ranks needs NcclComm, and this build has no "
                  "NCCL (FLAM_WITH_CUDA is off); run one rank per job or train on cpu",
                  context);
#endif
    }
  }

  if (world.rank == 0) {
    std::filesystem::create_directories(config.run.dir);
    write_file_atomic(run_layout::config_file(config.run.dir), dump_config(config));
    FLAM_LOG(INFO) << "run " << config.run.name << " in " << config.run.dir << " on " << world.size
                   << " ranks (" << world.launcher << ")";
  }
  return train::run_training(trainer, comm, device_comm ? *device_comm : comm);
}

}  // namespace flam::cli
