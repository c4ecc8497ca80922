#include "cli/args.h"

#include "core/error.h"

namespace flam::cli {

Args::Args(const std::vector<std::string>& argv, const std::set<std::string>& options,
           const std::set<std::string>& flags) {
  if (argv.size() == 1 && argv[0] == kDescribeOptions) throw OptionTable{options, flags};
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a.size() < 3 || a.compare(0, 2, "--") != 0) {
      positionals_.push_back(a);
      continue;
    }
    std::string name = a.substr(2);
    std::optional<std::string> value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (flags.count(name)) {
      if (value) throw Error(ErrorKind::kUsage, "--" + name + " takes no value");
      flags_set_.insert(name);
    } else if (options.count(name)) {
      if (!value) {
        if (i + 1 >= argv.size()) throw Error(ErrorKind::kUsage, "--" + name + " needs a value");
        value = argv[++i];
      }
      values_[name].push_back(*value);
    } else {
      throw Error(ErrorKind::kUsage, "unknown option --" + name + " (see --help)");
    }
  }
}

std::optional<std::string> Args::get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::string Args::get_or(const std::string& name, const std::string& fallback) const {
  return get(name).value_or(fallback);
}

std::string Args::require(const std::string& name) const {
  auto v = get(name);
  if (!v) throw Error(ErrorKind::kUsage, "missing required option --" + name);
  return *v;
}

int64_t Args::get_int(const std::string& name, int64_t fallback) const {
  auto v = get(name);
  if (!v) return fallback;
  try {
    size_t used = 0;
    int64_t out = std::stoll(*v, &used);
    if (used != v->size()) throw std::invalid_argument(*v);
    return out;
  } catch (const std::exception&) {
    throw Error(ErrorKind::kUsage, "--" + name + " expects an integer, got '" + *v + "'");
  }
}

std::vector<std::string> Args::all(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

}  // namespace flam::cli
