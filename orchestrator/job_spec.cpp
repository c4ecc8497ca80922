#include "orchestrator/job_spec.h"

#include <map>
#include <regex>
#include <sstream>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/run_layout.h"
#include "orchestrator/sbatch_templates.h"

namespace flam::orchestrator {
namespace {

// Characters allowed in values on #SBATCH lines: no spaces, quotes or shell metacharacters.
const std::regex kNameChars("[A-Za-z0-9._+-]+");
const std::regex kListChars("[A-Za-z0-9._+,-]+");  // partition lists "a,b"
const std::regex kTimeChars("[0-9]+([:-][0-9]+){0,3}");
const std::regex kPathChars("/[A-Za-z0-9._/+=@,-]*");
const std::regex kEnvKey("[A-Za-z_][A-Za-z0-9_]*");

std::string checked(const std::string& value, const std::regex& allowed, const std::string& key,
                    const std::string& what) {
  if (value.empty() || std::regex_match(value, allowed)) return value;
  throw Error(ErrorKind::kConfig,
              "'" + value + "' is not a valid " + what +
                  " for an sbatch script (allowed: letters, digits and ._+-" +
                  (what == "path" ? "/=@," : "") + ")",
              at_key(key));
}

// --kill-on-bad-exit=1: when a task ends badly (a non-zero exit, or a signal: kill -9 counts)
// srun ends the whole step at once: SIGTERM to the other tasks, SIGKILL KillWait seconds later.
// flam train takes SIGTERM as a stop request; a rank blocked in a collective with the dead one
// cannot reach the step boundary to checkpoint, so its watchdog (core/watchdog.h)
// ends it a few seconds after the SIGTERM, with exit code 4.
std::string launcher_line(const SlurmOptions& s) {
  if (s.launcher == "mpirun") return "mpirun";
  checked(s.mpi, kNameChars, "slurm.mpi", "MPI plugin name");
  return "srun --mpi=" + s.mpi + " --kill-on-bad-exit=1";
}

std::string env_lines(const std::vector<std::string>& env) {
  std::string out;
  for (const auto& kv : env) {
    const auto eq = kv.find('=');
    const std::string key = kv.substr(0, eq);
    if (eq == std::string::npos || !std::regex_match(key, kEnvKey)) {
      throw Error(ErrorKind::kConfig,
                  "'" + kv + "' is not KEY=VALUE with KEY a shell variable name",
                  at_key("slurm.env"));
    }
    if (!out.empty()) out += '\n';
    out += "export " + key + "=" + shell_quote(kv.substr(eq + 1));
  }
  return out;
}

// The config key a checked value came from: slurm.<kind>.NAME when that section set it (see
// SlurmOptions::for_kind), else slurm.NAME.
std::string slurm_key(const JobSpec& spec, const std::string& name) {
  const SlurmJobOptions& j = spec.kind == "shard" ? spec.slurm.shard : spec.slurm.train;
  const bool own = name == "time"        ? !j.time.empty()
                   : name == "partition" ? !j.partition.empty()
                   : name == "account"   ? !j.account.empty()
                   : name == "qos"       ? !j.qos.empty()
                                         : false;
  return "slurm." + (own ? spec.kind + "." : std::string()) + name;
}

}  // namespace

std::string shell_quote(const std::string& text) {
  std::string q = "'";
  for (char c : text) q += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string load_template(const std::string& kind, const std::string& template_dir) {
  if (kind != "train" && kind != "shard") {
    throw Error(ErrorKind::kUsage, "unknown job kind '" + kind + "' (expected train or shard)");
  }
  if (!template_dir.empty()) return read_file(template_dir + "/" + kind + ".sbatch");
  return kind == "train" ? kTrainSbatchTemplate : kShardSbatchTemplate;
}

std::string render_sbatch(const JobSpec& spec, const std::string& template_text) {
  const SlurmOptions& s = spec.slurm;
  std::map<std::string, std::string> values;
  values["job_name"] = checked(spec.job_name, kNameChars, "run.name", "job name");
  if (s.min_nodes > s.nodes) {
    throw Error(ErrorKind::kConfig,
                "slurm.min_nodes (" + std::to_string(s.min_nodes) + ") exceeds slurm.nodes (" +
                    std::to_string(s.nodes) + ")",
                at_key("slurm.min_nodes"));
  }
  values["nodes"] = s.min_nodes > 0 && s.min_nodes < s.nodes
                        ? std::to_string(s.min_nodes) + "-" + std::to_string(s.nodes)
                        : std::to_string(s.nodes);
  values["ntasks_per_node"] = std::to_string(s.ntasks_per_node);
  values["cpus_per_task"] = std::to_string(s.cpus_per_task);
  values["gpus_per_node"] = s.gpus_per_node > 0 ? std::to_string(s.gpus_per_node) : "";
  values["time"] = checked(s.time, kTimeChars, slurm_key(spec, "time"), "time limit");
  values["partition"] = checked(s.partition, kListChars, slurm_key(spec, "partition"), "partition");
  values["account"] = checked(s.account, kNameChars, slurm_key(spec, "account"), "account");
  values["qos"] = checked(s.qos, kNameChars, slurm_key(spec, "qos"), "QOS");
  values["signal_seconds"] = s.signal_seconds > 0 ? std::to_string(s.signal_seconds) : "";
  checked(spec.run_dir, kPathChars, "run.dir", "path");
  if (spec.run_dir.empty()) {
    throw Error(ErrorKind::kConfig, "the run directory must be an absolute path",
                at_key("run.dir"));
  }
  values["output"] = run_layout::job_output_pattern(spec.run_dir);
  values["run_dir"] = shell_quote(spec.run_dir);
  values["flam_bin"] = shell_quote(spec.flam_bin);
  values["env"] = env_lines(s.env);
  values["launcher"] = launcher_line(s);

  static const std::regex kPlaceholder(R"(\{\{([a-z_]+)\}\})");
  std::ostringstream out;
  std::istringstream in(template_text);
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    std::string rendered;
    bool drop = false;
    auto begin = std::sregex_iterator(line.begin(), line.end(), kPlaceholder);
    size_t last = 0;
    for (auto it = begin; it != std::sregex_iterator(); ++it) {
      const std::string name = (*it)[1];
      const auto v = values.find(name);
      if (v == values.end()) {
        throw Error(ErrorKind::kConfig,
                    "unknown placeholder {{" + name + "}} in the sbatch template",
                    at_file(spec.kind + ".sbatch", line_no));
      }
      if (v->second.empty()) drop = true;
      rendered += line.substr(last, static_cast<size_t>(it->position()) - last) + v->second;
      last = static_cast<size_t>(it->position() + it->length());
    }
    if (drop) continue;
    out << rendered << line.substr(last) << '\n';
  }
  return out.str();
}

}  // namespace flam::orchestrator
