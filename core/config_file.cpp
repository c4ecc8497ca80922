#include "core/config_file.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <sstream>

#include "core/config_map_impl.h"
#include "core/error.h"

namespace flam {

struct ConfigDocument::State {
  std::string file;
  YAML::Node root;
  std::vector<std::string> overrides;
};

ConfigDocument::ConfigDocument(std::unique_ptr<State> state) : state_(std::move(state)) {}
ConfigDocument::ConfigDocument(ConfigDocument&&) noexcept = default;
ConfigDocument::~ConfigDocument() = default;

ConfigDocument ConfigDocument::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    ErrorContext ctx;
    ctx.file = path;
    throw Error(ErrorKind::kConfig, "cannot open config file", ctx);
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path);
}

ConfigDocument ConfigDocument::parse(const std::string& text, const std::string& name) {
  auto state = std::make_unique<State>();
  state->file = name;
  try {
    state->root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    ErrorContext ctx;
    ctx.file = name;
    ctx.line = e.mark.line + 1;
    throw Error(ErrorKind::kConfig, "YAML syntax error: " + e.msg, ctx);
  }
  if (state->root.IsNull() || !state->root.IsDefined()) {
    state->root = YAML::Node(YAML::NodeType::Map);
  } else if (!state->root.IsMap()) {
    ErrorContext ctx;
    ctx.file = name;
    ctx.line = 1;
    throw Error(ErrorKind::kConfig, "the top level of a config must be a mapping", ctx);
  }
  return ConfigDocument(std::move(state));
}

const std::string& ConfigDocument::file() const { return state_->file; }

void ConfigDocument::set(const std::string& assignment) {
  auto eq = assignment.find('=');
  ErrorContext ctx;
  ctx.file = "--set";
  if (eq == std::string::npos || eq == 0) {
    ctx.key = assignment;
    throw Error(ErrorKind::kUsage, "expected --set key.path=value", ctx);
  }
  std::string path = assignment.substr(0, eq);
  std::string value_text = assignment.substr(eq + 1);
  ctx.key = path;
  YAML::Node value;
  try {
    value = YAML::Load(value_text);
  } catch (const YAML::ParserException& e) {
    throw Error(ErrorKind::kUsage, "cannot parse value '" + value_text + "': " + e.msg, ctx);
  }
  if (value.IsNull() && !value_text.empty() && value_text != "null" && value_text != "~") {
    value = YAML::Node(value_text);
  }
  std::vector<std::string> parts;
  std::stringstream ss(path);
  for (std::string part; std::getline(ss, part, '.');) {
    if (part.empty()) throw Error(ErrorKind::kUsage, "empty component in key path", ctx);
    parts.push_back(part);
  }
  // yaml-cpp nodes are references: walk down, creating mappings as needed.
  std::vector<YAML::Node> chain{state_->root};
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node next = chain.back()[parts[i]];
    if (!next.IsDefined() || next.IsNull()) {
      chain.back()[parts[i]] = YAML::Node(YAML::NodeType::Map);
      next = chain.back()[parts[i]];
    } else if (!next.IsMap()) {
      throw Error(ErrorKind::kUsage, "'" + parts[i] + "' is not a mapping", ctx);
    }
    chain.push_back(next);
  }
  chain.back()[parts.back()] = value;
  state_->overrides.push_back(assignment);
}

ConfigMap ConfigDocument::root() {
  auto impl = std::make_unique<ConfigMap::Impl>();
  impl->reading = true;
  impl->file = state_->file;
  impl->node = state_->root;
  return ConfigMap(std::move(impl));
}

struct ConfigWriter::State {
  YAML::Node root{YAML::NodeType::Map};
};

ConfigWriter::ConfigWriter() : state_(std::make_unique<State>()) {}
ConfigWriter::~ConfigWriter() = default;

ConfigMap ConfigWriter::root() {
  auto impl = std::make_unique<ConfigMap::Impl>();
  impl->reading = false;
  impl->out = state_->root;
  return ConfigMap(std::move(impl));
}

std::string ConfigWriter::text() const {
  YAML::Emitter out;
  out << state_->root;
  return std::string(out.c_str()) + "\n";
}

}  // namespace flam
