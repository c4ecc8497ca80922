#include "core/run_layout.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <string_view>

namespace flam::run_layout {
namespace {

constexpr std::string_view kStepPrefix = "step_";
constexpr std::string_view kTmpSuffix = ".tmp";

}  // namespace

std::string config_file(const std::string& run) { return run + "/config.yaml"; }
std::string state_file(const std::string& run) { return run + "/state.json"; }
std::string orchestrator_log(const std::string& run) { return run + "/orchestrator.log"; }
std::string metrics_file(const std::string& run) { return run + "/metrics.jsonl"; }
std::string cancel_marker(const std::string& run) { return run + "/cancel"; }
std::string watch_lock(const std::string& run) { return run + "/watch.lock"; }
std::string history_file(const std::string& run) { return run + "/history.jsonl"; }
std::string job_script(const std::string& run) { return run + "/job.sbatch"; }
std::string jobs_dir(const std::string& run) { return run + "/jobs"; }
std::string job_exit_file(const std::string& run, const std::string& job_id) {
  return jobs_dir(run) + "/" + job_id + ".exit";
}
std::string job_output_pattern(const std::string& run) { return jobs_dir(run) + "/slurm-%j.out"; }
std::string checkpoints_dir(const std::string& run) { return run + "/checkpoints"; }

std::string step_dir_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "step_%08" PRId64, step);
  return buf;
}

std::optional<int64_t> parse_step_dir_name(const std::string& name) {
  if (name.size() <= kStepPrefix.size() || name.compare(0, kStepPrefix.size(), kStepPrefix) != 0) {
    return std::nullopt;
  }
  int64_t step = 0;
  for (size_t i = kStepPrefix.size(); i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9' || step > (INT64_MAX - 9) / 10) return std::nullopt;
    step = step * 10 + (name[i] - '0');
  }
  return step;
}

std::string step_dir(const std::string& checkpoints, int64_t step) {
  return checkpoints + "/" + step_dir_name(step);
}

std::string tmp_dir(const std::string& dir) { return dir + std::string(kTmpSuffix); }

bool is_tmp_name(const std::string& name) {
  return name.size() > kTmpSuffix.size() &&
         name.compare(name.size() - kTmpSuffix.size(), kTmpSuffix.size(), kTmpSuffix) == 0;
}

std::string latest_file(const std::string& checkpoints) { return checkpoints + "/latest"; }
std::string manifest_file(const std::string& step_dir) { return step_dir + "/manifest.json"; }

std::string rank_file_name(int rank) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "rank_%05d.bin", rank);
  return buf;
}

std::string rank_file(const std::string& step_dir, int rank) {
  return step_dir + "/" + rank_file_name(rank);
}

std::vector<int64_t> list_checkpoints(const std::string& checkpoints) {
  namespace fs = std::filesystem;
  std::vector<int64_t> steps;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(checkpoints, ec)) {
    const std::optional<int64_t> step = parse_step_dir_name(entry.path().filename().string());
    if (step && fs::is_regular_file(manifest_file(entry.path().string()), ec)) {
      steps.push_back(*step);
    }
  }
  std::sort(steps.rbegin(), steps.rend());
  return steps;
}

}  // namespace flam::run_layout
