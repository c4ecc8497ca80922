// flam train --config F [--set key=value ...] [--fresh | --from STEP_DIR] [--allow-config-change]:
// one rank of a training job (launched N times by mpirun or srun). Loads and validates the config,
// refuses a config that differs from the one the run directory was started with unless
// --allow-config-change (cli/config_change.h), writes the resolved config into the run directory
// (rank 0), and hands over to train::run_training, which resumes from the run's newest committed
// checkpoint when there is one. --fresh asks for a run from step 0: refused, with what would have
// happened instead, when the run directory already holds checkpoints. --from starts a new run
// from another run's committed checkpoint: rank 0 links (or copies) that step directory into this
// run's checkpoints/, and the run resumes from it as from its own (weights, optimizer state, step,
// loader state, RNG: as OpenFlamingo's --resume_from_checkpoint and torchtitan's checkpoint.load
// keep the step); the checkpointer verifies it like any other. STEP_DIR may be in a bucket
// (s3://bucket/run/checkpoints/step_N): rank 0 downloads it into checkpoints/step_N.tmp and
// verifies every rank file's checksums before renaming it into place. Refused when this run
// already holds checkpoints.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "cli/config_change.h"
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
#include "pipeline/s3.h"
#if FLAM_WITH_CUDA
#include "core/nccl/nccl_comm.h"
#endif
#include "train/checkpoint/checkpoint_reader.h"
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

// --from STEP_DIR: the step of a committed checkpoint (step_N/ holding manifest.json; in a
// bucket, whether the manifest exists is found at the download). Throws flam::Error(kUsage)
// naming the directory when it is not one, or when `run_dir` already holds checkpoints (it would
// resume from its own).
int64_t check_from(const std::string& from, const std::string& run_dir) {
  namespace fs = std::filesystem;
  const bool remote = pipeline::is_s3_url(from);
  const std::string name = fs::path(from).lexically_normal().filename().string();
  const std::optional<int64_t> step = run_layout::parse_step_dir_name(
      name.empty() ? fs::path(from).lexically_normal().parent_path().filename().string() : name);
  if (!step || (!remote && !fs::is_regular_file(run_layout::manifest_file(from)))) {
    throw Error(ErrorKind::kUsage,
                "--from: " + from +
                    " is not a committed checkpoint (a RUN/checkpoints/step_N directory holding "
                    "manifest.json)",
                at_file(from));
  }
  const std::vector<int64_t> own =
      run_layout::list_checkpoints(run_layout::checkpoints_dir(run_dir));
  if (!own.empty()) {
    throw Error(ErrorKind::kUsage,
                "--from: " + run_dir +
                    " already holds checkpoints; without --from it resumes from "
                    "its own step " +
                    std::to_string(own.front()) +
                    ". Set run.dir to a new directory to start a run from " + from,
                at_key("run.dir"));
  }
  return *step;
}

// Downloads the bucket's step `from` into `tmp` and checks every rank file against the manifest's
// checksums. Throws flam::Error(kData) naming the s3:// object of a rank file that does not
// match, and download_checkpoint's errors (no manifest: a save that did not commit).
void download_verified(const std::string& from, const std::string& tmp) {
  train::download_checkpoint(from, tmp);
  train::CheckpointReader reader(tmp);
  for (int r = 0; r < reader.manifest().world_size; ++r) {
    try {
      reader.verify_file(r);
    } catch (const Error& e) {
      std::string message = e.what();
      for (size_t at; (at = message.find(tmp)) != std::string::npos;) {
        message.replace(at, tmp.size(), from);
      }
      throw Error(ErrorKind::kData, "--from: " + message,
                  at_file(from + "/" + reader.manifest().files[r].name));
    }
  }
}

// Puts `from` into `run_dir`'s checkpoints/ as step_N (hard links where the file system allows,
// else a copy; downloaded and verified when it is in a bucket), through step_N.tmp so that a
// crash leaves nothing the checkpointer would load.
void adopt_checkpoint(const std::string& from, int64_t step, const std::string& run_dir) {
  namespace fs = std::filesystem;
  const std::string dest = run_layout::step_dir(run_layout::checkpoints_dir(run_dir), step);
  const std::string tmp = run_layout::tmp_dir(dest);
  fs::remove_all(tmp);
  fs::create_directories(run_layout::checkpoints_dir(run_dir));
  if (pipeline::is_s3_url(from)) {
    try {
      download_verified(from, tmp);
    } catch (...) {
      fs::remove_all(tmp);
      throw;
    }
  } else {
    std::error_code ec;
    fs::copy(from, tmp, fs::copy_options::recursive | fs::copy_options::create_hard_links, ec);
    if (ec) {
      fs::remove_all(tmp);
      fs::copy(from, tmp, fs::copy_options::recursive);
    }
  }
  fs::rename(tmp, dest);
  FLAM_LOG(INFO) << "--from: run starts from " << from << " (step " << step << ")";
}

}  // namespace

int cmd_train(const Argv& argv) {
  Args args(argv, {"config", "set", "from"}, {"fresh", "allow-config-change"});
  if (!args.positionals().empty()) {
    throw Error(ErrorKind::kUsage, "usage: flam train --config F [--set key=value ...] [--fresh]");
  }
  const Config config = load_config(args.require("config"), args.all("set"));
  log::set_level(log::parse_level(config.run.log_level.c_str()));
  if (args.flag("fresh")) refuse_fresh_over_checkpoints(config.run.dir);
  const std::optional<std::string> from = args.get("from");
  if (from && args.flag("fresh"))
    throw Error(ErrorKind::kUsage, "--from and --fresh exclude each other");
  const int64_t from_step = from ? check_from(*from, config.run.dir) : -1;
  const std::vector<ConfigChange> changes =
      check_config_change(config, args.flag("allow-config-change"), "--allow-config-change");
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
    if (!changes.empty()) {
      record_config_change(config.run.dir, "train", changes);
      FLAM_LOG(WARN) << changes.size() << " config key(s) changed (--allow-config-change), "
                     << "recorded in " << run_layout::history_file(config.run.dir);
    }
    if (from) adopt_checkpoint(*from, from_step, config.run.dir);
    write_file_atomic(run_layout::config_file(config.run.dir), dump_config(config));
    FLAM_LOG(INFO) << "run " << config.run.name << " in " << config.run.dir << " on " << world.size
                   << " ranks (" << world.launcher << ")";
  }
  if (from) comm.barrier();  // the other ranks load the checkpoint rank 0 has just put in place
  return train::run_training(trainer, comm, device_comm ? *device_comm : comm);
}

}  // namespace flam::cli
