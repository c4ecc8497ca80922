// JobSpec: one Slurm job of a run (train or shard) and its rendering into an sbatch script from
// a template (slurm/train.sbatch, slurm/shard.sbatch, built in; or slurm.template_dir).
//
// Template language: `{{name}}` placeholders; a line with a placeholder whose value is empty is
// dropped (so `#SBATCH --partition={{partition}}` disappears without a partition). Values that
// land on #SBATCH lines (sbatch parses those itself, splitting on spaces) must match a strict
// character set, else render_sbatch throws flam::Error(kConfig) naming the config key; values on
// shell lines (paths, env values) are single-quoted, so `x; rm -rf ~` is rejected or inert.
#pragma once

#include <string>

#include "orchestrator/options.h"

namespace flam::orchestrator {

struct JobSpec {
  std::string kind = "train";  // "train" | "shard": the flam subcommand the ranks run
  std::string job_name;        // Slurm job name (the config's run.name)
  std::string run_dir;         // absolute path of the run directory
  std::string flam_bin;        // absolute path of the flam executable the ranks run
  SlurmOptions slurm;          // with the kind's section applied (SlurmOptions::for_kind)
};

// The built-in template for `kind`, or `template_dir/<kind>.sbatch` when template_dir is set.
// Throws flam::Error(kUsage) for an unknown kind, kIo for an unreadable template file.
std::string load_template(const std::string& kind, const std::string& template_dir);

// REQUIRES: spec.run_dir and spec.flam_bin absolute. Throws flam::Error(kConfig) for a value
// that cannot go into the script safely, or an unknown placeholder in the template.
std::string render_sbatch(const JobSpec& spec, const std::string& template_text);

// 'text' for a POSIX shell: single quotes, with each ' written as '\''.
std::string shell_quote(const std::string& text);

}  // namespace flam::orchestrator
