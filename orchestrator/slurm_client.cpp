#include "orchestrator/slurm_client.h"

#include <cctype>
#include <map>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "orchestrator/subprocess.h"

namespace flam::orchestrator {
namespace {

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// "rc:sig" -> (rc, sig); leaves both untouched when malformed.
void parse_exit(const std::string& text, JobInfo& info) {
  const auto colon = text.find(':');
  if (colon == std::string::npos) return;
  try {
    info.exit_code = std::stoi(text.substr(0, colon));
    info.exit_signal = std::stoi(text.substr(colon + 1));
  } catch (const std::exception&) {
  }
}

std::string unknown_to_empty(const std::string& s) {
  return (s == "Unknown" || s == "None" || s == "(null)" || s == "N/A") ? "" : s;
}

void throw_failed(const std::string& what, const std::vector<std::string>& argv,
                  const ProcessResult& r) {
  std::string why = trim(r.err.empty() ? r.out : r.err);
  if (r.timed_out) why = "timed out";
  if (r.not_found) why = argv[0] + " is not installed or not on PATH";
  throw Error(ErrorKind::kInternal, what + " failed (" + describe_argv(argv) + "): " + why);
}

}  // namespace

bool is_terminal(const std::string& state) {
  static const char* kTerminal[] = {"COMPLETED",     "FAILED",       "CANCELLED", "TIMEOUT",
                                    "NODE_FAIL",     "PREEMPTED",    "BOOT_FAIL", "DEADLINE",
                                    "OUT_OF_MEMORY", "SPECIAL_EXIT", "REVOKED"};
  for (const char* t : kTerminal) {
    if (state == t) return true;
  }
  return false;
}

std::string parse_sbatch_parsable(const std::string& out) {
  std::string line = trim(out);
  const auto nl = line.rfind('\n');
  if (nl != std::string::npos) line = line.substr(nl + 1);
  std::string id = line.substr(0, line.find(';'));
  if (id.empty() || id.find_first_not_of("0123456789_") != std::string::npos) {
    throw Error(ErrorKind::kInternal, "sbatch --parsable printed no job id: '" + trim(out) + "'");
  }
  return id;
}

JobInfo parse_scontrol_job(const std::string& one_line) {
  // Space-separated Key=Value pairs; a token without '=' continues the previous value.
  std::map<std::string, std::string> kv;
  std::string last;
  std::istringstream in(trim(one_line));
  std::string tok;
  while (in >> tok) {
    const auto eq = tok.find('=');
    if (eq == std::string::npos || eq == 0) {
      if (!last.empty()) kv[last] += " " + tok;
      continue;
    }
    last = tok.substr(0, eq);
    kv[last] = tok.substr(eq + 1);
  }
  JobInfo info;
  info.id = kv["JobId"];
  info.state = kv["JobState"];
  info.reason = unknown_to_empty(kv["Reason"]);
  info.start = unknown_to_empty(kv["StartTime"]);
  info.end = unknown_to_empty(kv["EndTime"]);
  if (info.state == "PENDING" || info.state == "RUNNING") info.end.clear();
  if (info.state == "PENDING") info.start.clear();
  if (is_terminal(info.state)) parse_exit(kv["ExitCode"], info);
  return info;
}

JobInfo parse_sacct(const std::string& out) {
  JobInfo info;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty()) continue;
    std::vector<std::string> f;
    std::istringstream fields(line);
    std::string x;
    while (std::getline(fields, x, '|')) f.push_back(x);
    if (f.size() < 6) continue;
    info.id = f[0];
    info.state = f[1].substr(0, f[1].find(' '));  // "CANCELLED by 0" -> "CANCELLED"
    if (is_terminal(info.state)) parse_exit(f[2], info);
    info.reason = unknown_to_empty(f[3]);
    info.start = unknown_to_empty(f[4]);
    info.end = unknown_to_empty(f[5]);
    break;
  }
  return info;
}

std::string SlurmClient::submit(const std::string& script_path,
                                const std::vector<std::string>& sbatch_options) const {
  std::vector<std::string> argv = {"sbatch", "--parsable"};
  argv.insert(argv.end(), sbatch_options.begin(), sbatch_options.end());
  argv.push_back(script_path);
  const ProcessResult r = run_process(argv, timeout_);
  if (r.not_found || r.timed_out) throw_failed("sbatch", argv, r);
  if (!r.ok()) {
    throw Error(ErrorKind::kConfig, "Slurm refused the job: " + trim(r.err + r.out),
                at_file(script_path));
  }
  return parse_sbatch_parsable(r.out);
}

JobInfo SlurmClient::query(const std::string& job_id) const {
  const ProcessResult sc = run_process({"scontrol", "show", "job", "-o", job_id}, timeout_);
  if (sc.ok()) {
    JobInfo info = parse_scontrol_job(sc.out);
    if (!info.state.empty()) return info;
  }
  const ProcessResult sa = run_process(
      {"sacct", "-n", "-P", "-X", "-j", job_id, "-o", "JobID,State,ExitCode,Reason,Start,End"},
      timeout_);
  if (sa.ok()) {
    JobInfo info = parse_sacct(sa.out);
    if (!info.state.empty()) return info;
  }
  JobInfo unknown;
  unknown.id = job_id;
  return unknown;
}

void SlurmClient::update_dependency(const std::string& job_id,
                                    const std::string& dependency) const {
  const std::vector<std::string> argv = {"scontrol", "update", "JobId=" + job_id,
                                         "Dependency=" + dependency};
  const ProcessResult r = run_process(argv, timeout_);
  if (!r.ok()) throw_failed("scontrol update", argv, r);
}

void SlurmClient::cancel(const std::string& job_id, const std::string& signal,
                         bool batch_only) const {
  std::vector<std::string> argv = {"scancel"};
  if (!signal.empty()) argv.push_back("--signal=" + signal);
  if (batch_only) argv.push_back("--batch");
  argv.push_back(job_id);
  const ProcessResult r = run_process(argv, timeout_);
  if (!r.ok()) throw_failed("scancel", argv, r);
}

}  // namespace flam::orchestrator
