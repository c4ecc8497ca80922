#include "cli/config_change.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/config_keys.h"
#include "core/error.h"
#include "core/run_layout.h"

namespace flam::cli {
namespace {

bool starts_with(const std::string& key, const char* prefix) { return key.rfind(prefix, 0) == 0; }

// Keys that change how long a run goes, how often it logs, saves and evaluates, and where and
// how it is launched, not what a step computes: extending a run (train.steps) is the usual
// resubmission. train.checkpoint.dir is not among them (it is where the run resumes from).
bool exempt(const std::string& key) {
  return starts_with(key, "slurm.") || starts_with(key, "train.eval.") ||
         (starts_with(key, "train.checkpoint.") && key != "train.checkpoint.dir") ||
         key == "run.dir" || key == "run.log_level" || key == "train.steps" ||
         key == "train.log_every" || key == "train.comm_timeout_seconds" ||
         key == "data.loader.threads";
}

bool run_started(const std::string& run_dir) {
  if (!run_layout::list_checkpoints(run_layout::checkpoints_dir(run_dir)).empty()) return true;
  std::error_code ec;
  const auto size = std::filesystem::file_size(run_layout::metrics_file(run_dir), ec);
  return !ec && size > 0;
}

}  // namespace

std::vector<ConfigChange> config_changes(const Config& old_config, const Config& new_config) {
  std::map<std::string, std::string> old_values;
  for (const auto& k : list_config_keys(old_config)) old_values[k.path] = k.default_value;
  std::vector<ConfigChange> changes;
  for (const auto& k : list_config_keys(new_config)) {
    if (exempt(k.path)) continue;
    const auto it = old_values.find(k.path);
    const std::string old_value = it == old_values.end() ? "(absent)" : it->second;
    if (old_value != k.default_value) changes.push_back({k.path, old_value, k.default_value});
  }
  return changes;
}

std::vector<ConfigChange> check_config_change(const Config& config, bool allow,
                                              const std::string& allow_flag) {
  const std::string& run_dir = config.run.dir;
  const std::string old_path = run_layout::config_file(run_dir);
  if (!std::filesystem::exists(old_path) || !run_started(run_dir)) return {};
  const std::vector<ConfigChange> changes = config_changes(load_config(old_path), config);
  if (changes.empty() || allow) return changes;
  std::string list;
  for (const auto& c : changes) list += "\n  " + c.key + ": " + c.old_value + " -> " + c.new_value;
  throw Error(ErrorKind::kUsage,
              "the config differs from the one run " + run_dir + " was started with (" + old_path +
                  "), in " + std::to_string(changes.size()) + " key(s):" + list +
                  "\nResuming would continue that run under other settings. Pass " + allow_flag +
                  " to continue anyway (the change is recorded in " +
                  run_layout::history_file(run_dir) + "), or set run.dir to a new directory",
              at_file(old_path));
}

void record_config_change(const std::string& run_dir, const std::string& command,
                          const std::vector<ConfigChange>& changes) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& c : changes) {
    list.push_back({{"key", c.key}, {"old", c.old_value}, {"new", c.new_value}});
  }
  const nlohmann::json line{{"time", utc_now()}, {"command", command}, {"changes", list}};
  const std::string path = run_layout::history_file(run_dir);
  std::ofstream out(path, std::ios::app);
  out << line.dump() << '\n' << std::flush;
  if (!out) throw Error(ErrorKind::kIo, "cannot append the config change", at_file(path));
}

}  // namespace flam::cli
