// RunOptions: the `run:` section of a config: where a run keeps its state and its seed.
#pragma once

#include <cstdint>
#include <string>

#include "core/config_map.h"

namespace flam {

struct RunOptions {
  std::string name = "flamboyance";
  std::string dir = "runs/default";  // run directory: checkpoints/, metrics.jsonl, state.json
  int64_t seed = 42;
  std::string log_level = "info";
};

inline void describe(ConfigMap& m, RunOptions& o) {
  m.field("name", o.name);
  m.field("dir", o.dir);
  m.field("seed", o.seed, Bounds::non_negative());
  m.choice("log_level", o.log_level, {"debug", "info", "warn", "error"});
}

}  // namespace flam
