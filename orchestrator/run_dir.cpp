#include "orchestrator/run_dir.h"

#include <sys/stat.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/clock.h"
#include "core/error.h"

namespace flam::orchestrator {

using nlohmann::json;

json to_json(const JobRecord& j) {
  return json{{"id", j.id},
              {"kind", j.kind},
              {"state", j.state},
              {"reason", j.reason},
              {"submitted", j.submitted},
              {"start", j.start},
              {"end", j.end},
              {"exit_code", j.exit_code},
              {"step_at_submit", j.step_at_submit},
              {"step_at_end", j.step_at_end},
              {"decision", j.decision},
              {"dependency", j.dependency}};
}

namespace {

JobRecord job_from_json(const json& j) {
  JobRecord r;
  r.id = j.at("id").get<std::string>();
  r.kind = j.value("kind", "train");
  r.state = j.value("state", "");
  r.reason = j.value("reason", "");
  r.submitted = j.value("submitted", "");
  r.start = j.value("start", "");
  r.end = j.value("end", "");
  r.exit_code = j.value("exit_code", -1);
  r.step_at_submit = j.value("step_at_submit", int64_t{-1});
  r.step_at_end = j.value("step_at_end", int64_t{-1});
  r.decision = j.value("decision", "");
  r.dependency = j.value("dependency", "");
  return r;
}

}  // namespace

RunDir::RunDir(std::string path) : path_(std::move(path)) {
  while (path_.size() > 1 && path_.back() == '/') path_.pop_back();
}

bool RunDir::has_state() const { return std::filesystem::exists(state_path()); }

RunState RunDir::load_state() const {
  const std::string text = read_file(state_path());
  try {
    const json j = json::parse(text);
    if (j.value("version", 0) != RunState::kVersion) {
      throw Error(ErrorKind::kData, "unsupported state.json version (expected 1)",
                  at_file(state_path()));
    }
    RunState s;
    s.status = j.at("status").get<std::string>();
    s.kind = j.value("kind", "train");
    s.explanation = j.value("explanation", "");
    s.restarts = j.value("restarts", 0);
    s.after = j.value("after", std::vector<std::string>{});
    for (const auto& job : j.at("jobs")) s.jobs.push_back(job_from_json(job));
    return s;
  } catch (const json::exception& e) {
    throw Error(ErrorKind::kData, std::string("malformed state.json: ") + e.what(),
                at_file(state_path()));
  }
}

void RunDir::save_state(const RunState& state) const {
  json jobs = json::array();
  for (const auto& job : state.jobs) jobs.push_back(to_json(job));
  const json j{{"version", RunState::kVersion},
               {"status", state.status},
               {"kind", state.kind},
               {"explanation", state.explanation},
               {"restarts", state.restarts},
               {"after", state.after},
               {"updated", utc_now()},
               {"jobs", jobs}};
  write_file_atomic(state_path(), j.dump(2) + "\n");
}

void RunDir::log(const std::string& message) const {
  std::ofstream out(log_path(), std::ios::app);
  if (!out) throw Error(ErrorKind::kIo, "cannot append to the log", at_file(log_path()));
  out << utc_now() << " " << message << "\n";
}

std::optional<int> RunDir::exit_file(const std::string& job_id) const {
  std::ifstream in(run_layout::job_exit_file(path_, job_id));
  int code = 0;
  if (in >> code) return code;
  return std::nullopt;
}

std::vector<MetricsRow> RunDir::read_metrics() const {
  std::vector<MetricsRow> rows;
  std::ifstream in(metrics_path());
  std::string line;
  while (std::getline(in, line)) {
    const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("step") || !j["step"].is_number()) continue;
    MetricsRow row;
    row.step = j["step"].get<int64_t>();
    for (const auto& [key, value] : j.items()) {
      if (key != "step" && value.is_number()) row.values[key] = value.get<double>();
    }
    if (j.contains("dropped") && j["dropped"].is_object()) {
      for (const auto& [dataset, reasons] : j["dropped"].items()) {
        if (!reasons.is_object()) continue;
        for (const auto& [reason, count] : reasons.items()) {
          if (count.is_number_integer()) row.dropped[dataset + "/" + reason] = count.get<int64_t>();
        }
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

int64_t RunDir::newest_checkpoint_step() const {
  const std::vector<int64_t> steps = run_layout::list_checkpoints(checkpoints_dir());
  return steps.empty() ? -1 : steps.front();
}

}  // namespace flam::orchestrator
