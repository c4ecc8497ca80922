// SlurmOptions: the `slurm:` section: how `flam submit` asks Slurm for resources
// (orchestrator/job_spec.h renders these into an sbatch script from slurm/).
#pragma once

#include <string>
#include <vector>

#include "core/config_map.h"

namespace flam::orchestrator {

struct SlurmOptions {
  int nodes = 1;
  int ntasks_per_node = 1;
  int gpus_per_node = 0;
  int cpus_per_task = 1;
  std::string time = "24:00:00";
  std::string partition;
  std::string account;
  std::string qos;
  std::vector<std::string> env;      // KEY=VALUE exported in the job
  int max_restarts = 10;
  double poll_seconds = 10.0;
  double backoff_seconds = 30.0;
};

inline void describe(ConfigMap& m, SlurmOptions& o) {
  m.field("nodes", o.nodes, Bounds::at_least(1));
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
}

}  // namespace flam::orchestrator
