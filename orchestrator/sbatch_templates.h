// The sbatch templates of slurm/ (train.sbatch, shard.sbatch), embedded into the executable at
// build time (orchestrator/CMakeLists.txt) so that `flam submit` works from any directory.
#pragma once

namespace flam::orchestrator {

extern const char* const kTrainSbatchTemplate;
extern const char* const kShardSbatchTemplate;

}  // namespace flam::orchestrator
