// Config: the whole typed configuration tree of a run, one section per component. Loaded once
// from YAML (with --set overrides), validated, and passed down as const& pieces. The resolved
// YAML (write_config) is what `flam config show` prints and what a run directory keeps.
#pragma once

#include <string>
#include <vector>

#include "core/config_map.h"
#include "core/run_options.h"
#include "orchestrator/options.h"
#include "pipeline/options.h"
#include "shard/options.h"
#include "train/eval/options.h"
#include "train/model/options.h"
#include "train/options.h"

namespace flam {

struct Config {
  RunOptions run;
  model::ModelOptions model;
  pipeline::DataOptions data;
  train::TrainOptions train;
  shard::ShardOptions shard;
  orchestrator::SlurmOptions slurm;
  eval::EvalOptions eval;
};

void describe(ConfigMap& m, Config& c);

// Loads `path` (or only the defaults when empty), applies "a.b=c" overrides in order, validates.
// Throws flam::Error(kConfig) naming file, line and key path; kUsage for a malformed --set.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});
// The resolved config as YAML.
std::string dump_config(const Config& config);
// Hex SHA-256 of dump_config(): identifies a configuration in checkpoints and run dirs.
std::string config_hash(const Config& config);

}  // namespace flam
