// Config changes over an existing run: `flam train` and `flam submit` compare the config they
// are given with the run directory's config.yaml before they resume anything, so a changed
// setting never silently continues a run trained under another one.
//
// A run "has started" when its directory holds a committed checkpoint or a metrics.jsonl line;
// before that there is nothing to resume and a new config simply replaces the old one.
// Keys exempt from the check (they cannot change samples, losses or weights): every slurm.* key
// (resources and supervision), run.dir (the directory itself; `flam submit` writes it absolute)
// and run.log_level.
//
// Thread safety: none needed; called once per command, before any work starts.
#pragma once

#include <string>
#include <vector>

#include "cli/config.h"

namespace flam::cli {

struct ConfigChange {
  std::string key;  // full key path, "train.optimizer.lr"
  std::string old_value;
  std::string new_value;  // both as YAML
};

// Keys whose values differ between `old_config` and `new_config`, in describe() order, exempt
// keys left out.
std::vector<ConfigChange> config_changes(const Config& old_config, const Config& new_config);

// The changes of `config` against `config.run.dir`'s config.yaml when that run has started;
// empty when it has not, or when nothing but exempt keys changed. Throws flam::Error(kUsage)
// listing every change ("key: old -> new") and the way through (`allow_flag`), unless `allow`.
// Throws flam::Error(kConfig) naming the old config.yaml when it no longer parses.
std::vector<ConfigChange> check_config_change(const Config& config, bool allow,
                                              const std::string& allow_flag);

// Appends one line to RUN/history.jsonl: {"time", "command", "changes": [{"key","old","new"}]}.
// REQUIRES: `run_dir` exists. Throws flam::Error(kIo) when the file cannot be appended to.
void record_config_change(const std::string& run_dir, const std::string& command,
                          const std::vector<ConfigChange>& changes);

}  // namespace flam::cli
