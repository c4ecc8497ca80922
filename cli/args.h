// Args: the command line of one `flam` subcommand: positionals, `--name value` options
// (repeatable, e.g. --set), `--name=value`, and boolean flags declared by the subcommand.
// Unknown options are usage errors (flam::Error(kUsage)) so typos never pass silently.
// A command line that is exactly {kDescribeOptions} makes the constructor throw the subcommand's
// OptionTable instead of parsing: `flam completion bash` (cli/main.cpp) collects the tables that
// way, so completions are the parser's own tables and cannot drift from them.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace flam::cli {

inline constexpr const char* kDescribeOptions = "--flam-describe-options";

// What one subcommand accepts: option names that take a value and flags (without dashes).
struct OptionTable {
  std::set<std::string> options;
  std::set<std::string> flags;
};

class Args {
 public:
  // `options`: names that take a value; `flags`: names that do not. Both without dashes.
  // Throws OptionTable{options, flags} when argv is exactly {kDescribeOptions}.
  Args(const std::vector<std::string>& argv, const std::set<std::string>& options,
       const std::set<std::string>& flags);

  const std::vector<std::string>& positionals() const { return positionals_; }
  bool flag(const std::string& name) const { return flags_set_.count(name) > 0; }
  std::optional<std::string> get(const std::string& name) const;
  std::string get_or(const std::string& name, const std::string& fallback) const;
  // REQUIRES nothing; throws flam::Error(kUsage) naming the option when it is missing.
  std::string require(const std::string& name) const;
  int64_t get_int(const std::string& name, int64_t fallback) const;
  std::vector<std::string> all(const std::string& name) const;

 private:
  std::vector<std::string> positionals_;
  std::map<std::string, std::vector<std::string>> values_;
  std::set<std::string> flags_set_;
};

}  // namespace flam::cli
