// SlurmOptions: the `slurm:` section: how `flam submit` asks Slurm for resources
// (orchestrator/job_spec.h renders these into an sbatch script from slurm/) and how `flam watch`
// supervises the job chain (orchestrator/supervisor.h).
#pragma once

#include <string>
#include <vector>

#include "core/config_map.h"

namespace flam::orchestrator {

// slurm.train / slurm.shard: one job kind's resources, each overriding its slurm.* key; -1 or ""
// keeps slurm.*. The shard job asks for no GPUs and a shorter time unless told otherwise, so a
// preprocessing job does not inherit the training job's shape (8 nodes x 8 GPUs, 48 h).
struct SlurmJobOptions {
  int nodes = -1;
  int min_nodes = -1;
  int ntasks_per_node = -1;
  int gpus_per_node = -1;
  int cpus_per_task = -1;
  std::string time;
  std::string partition;
  std::string account;
  std::string qos;
};

inline void describe(ConfigMap& m, SlurmJobOptions& o) {
  m.field("nodes", o.nodes, Bounds::at_least(-1));
  m.field("min_nodes", o.min_nodes, Bounds::at_least(-1));
  m.field("ntasks_per_node", o.ntasks_per_node, Bounds::at_least(-1));
  m.field("gpus_per_node", o.gpus_per_node, Bounds::at_least(-1));
  m.field("cpus_per_task", o.cpus_per_task, Bounds::at_least(-1));
  m.field("time", o.time);
  m.field("partition", o.partition);
  m.field("account", o.account);
  m.field("qos", o.qos);
}

// slurm.shard's defaults: no GPUs, 12 hours.
inline SlurmJobOptions shard_job_defaults() {
  SlurmJobOptions o;
  o.gpus_per_node = 0;
  o.time = "12:00:00";
  return o;
}

struct SlurmOptions {
  int nodes = 1;
  // The fewest nodes a job may start on; 0: exactly `nodes`. Below `nodes`, the job asks for
  // `--nodes=min_nodes-nodes`: Slurm gives it as many as are up, so a job resubmitted after a
  // node failure starts on the nodes left and the ranks reshard (checkpoint and loader).
  int min_nodes = 0;
  int ntasks_per_node = 1;
  int gpus_per_node = 0;
  int cpus_per_task = 1;
  std::string time = "24:00:00";
  std::string partition;
  std::string account;
  std::string qos;
  std::vector<std::string> env;  // KEY=VALUE exported in the job
  int max_restarts = 10;
  double poll_seconds = 10.0;
  double backoff_seconds = 30.0;
  // "srun": `srun --mpi=<mpi> --kill-on-bad-exit=1`; "mpirun": OpenMPI's mpirun inside the
  // allocation (for clusters whose Slurm lacks the PMIx plugin).
  std::string launcher = "srun";
  std::string mpi = "pmix";
  // Seconds before the time limit at which Slurm sends SIGUSR1 (checkpoint and exit 3).
  int signal_seconds = 120;
  // The flam executable the job runs; empty: the one that runs `flam submit`.
  std::string flam_bin;
  // A folder with train.sbatch / shard.sbatch to use instead of the built-in slurm/ templates.
  std::string template_dir;
  // `flam watch` stops when this many consecutive jobs fail without the step advancing.
  int max_failures_without_progress = 2;
  SlurmJobOptions train;
  SlurmJobOptions shard = shard_job_defaults();

  // These options with `kind`'s section (train | shard) applied over them.
  SlurmOptions for_kind(const std::string& kind) const {
    SlurmOptions out = *this;
    const SlurmJobOptions& j = kind == "shard" ? shard : train;
    if (j.nodes >= 0) out.nodes = j.nodes;
    if (j.min_nodes >= 0) out.min_nodes = j.min_nodes;
    if (j.ntasks_per_node >= 0) out.ntasks_per_node = j.ntasks_per_node;
    if (j.gpus_per_node >= 0) out.gpus_per_node = j.gpus_per_node;
    if (j.cpus_per_task >= 0) out.cpus_per_task = j.cpus_per_task;
    if (!j.time.empty()) out.time = j.time;
    if (!j.partition.empty()) out.partition = j.partition;
    if (!j.account.empty()) out.account = j.account;
    if (!j.qos.empty()) out.qos = j.qos;
    return out;
  }
};

inline void describe(ConfigMap& m, SlurmOptions& o) {
  m.field("nodes", o.nodes, Bounds::at_least(1));
  m.field("min_nodes", o.min_nodes, Bounds::non_negative());
  m.field("ntasks_per_node", o.ntasks_per_node, Bounds::at_least(1));
  m.field("gpus_per_node", o.gpus_per_node, Bounds::non_negative());
  m.field("cpus_per_task", o.cpus_per_task, Bounds::at_least(1));
  m.field("time", o.time);
  m.field("partition", o.partition);
  m.field("account", o.account);
  m.field("qos", o.qos);
  m.field("env", o.env);
  m.field("max_restarts", o.max_restarts, Bounds::non_negative());
  m.field("poll_seconds", o.poll_seconds, Bounds::positive());
  m.field("backoff_seconds", o.backoff_seconds, Bounds::non_negative());
  m.choice("launcher", o.launcher, {"srun", "mpirun"});
  m.field("mpi", o.mpi);
  m.field("signal_seconds", o.signal_seconds, Bounds::non_negative());
  m.field("flam_bin", o.flam_bin);
  m.field("template_dir", o.template_dir);
  m.field("max_failures_without_progress", o.max_failures_without_progress, Bounds::at_least(1));
  m.section("train", o.train);
  m.section("shard", o.shard);
}

}  // namespace flam::orchestrator
