#include "core/config_file.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "core/config_map_impl.h"
#include "core/error.h"

namespace flam {

struct ConfigDocument::State {
  std::string file;
  YAML::Node root;
  // Key path -> the --set argument that set it, in order.
  std::shared_ptr<std::map<std::string, std::string>> overrides =
      std::make_shared<std::map<std::string, std::string>>();
};

namespace {

// A config needs a handful of levels; anything deeper is a mistake or a hostile file.
constexpr int kMaxDepth = 64;

int64_t line_of(const YAML::Node& node) {
  return node.Mark().line >= 0 ? node.Mark().line + 1 : -1;
}

// Rejects keys that are not scalars, duplicate keys (yaml-cpp keeps both and lookups see the
// first) and nesting deeper than kMaxDepth, naming the file, line and key path.
void check_tree(const YAML::Node& node, const std::string& path, int depth,
                const std::string& file) {
  if (depth > kMaxDepth) {
    throw Error(ErrorKind::kConfig, "nesting deeper than " + std::to_string(kMaxDepth) + " levels",
                ErrorContext{file, line_of(node), path, "", -1});
  }
  if (node.IsSequence()) {
    for (const auto& item : node) check_tree(item, path, depth + 1, file);
    return;
  }
  if (!node.IsMap()) return;
  std::map<std::string, int64_t> seen;
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) {  // YAML's "? [a]: b" complex keys: no config key is one
      throw Error(ErrorKind::kConfig, "a key must be a plain name, not a list or mapping",
                  ErrorContext{file, line_of(kv.first), path, "", -1});
    }
    const std::string key = kv.first.Scalar();
    const std::string key_path = path.empty() ? key : path + "." + key;
    auto [it, fresh] = seen.emplace(key, line_of(kv.first));
    if (!fresh) {
      throw Error(ErrorKind::kConfig,
                  "duplicate key (first at line " + std::to_string(it->second) + ")",
                  ErrorContext{file, line_of(kv.first), key_path, "", -1});
    }
    check_tree(kv.second, key_path, depth + 1, file);
  }
}

// A --set value "[a, b]" whose items hold brace patterns ("{00000..23134}", "{a,b}") that YAML
// would read as flow mappings: the items split at the commas outside braces, each kept as text.
bool split_brace_list(const std::string& text, YAML::Node* out) {
  if (text.size() < 2 || text.front() != '[' || text.back() != ']') return false;
  if (text.find('{') == std::string::npos) return false;
  YAML::Node list(YAML::NodeType::Sequence);
  int depth = 0;
  std::string item;
  auto flush = [&] {
    const size_t b = item.find_first_not_of(" \t");
    const size_t e = item.find_last_not_of(" \t");
    std::string trimmed = b == std::string::npos ? "" : item.substr(b, e - b + 1);
    if (trimmed.size() >= 2 && (trimmed.front() == '\'' || trimmed.front() == '"') &&
        trimmed.back() == trimmed.front()) {
      trimmed = trimmed.substr(1, trimmed.size() - 2);
    }
    if (!trimmed.empty()) list.push_back(trimmed);
    item.clear();
  };
  for (size_t i = 1; i + 1 < text.size(); ++i) {
    const char c = text[i];
    if (c == '{') ++depth;
    if (c == '}') --depth;
    if (depth < 0 || c == '[' || c == ']') return false;
    if (c == ',' && depth == 0) {
      flush();
    } else {
      item += c;
    }
  }
  if (depth != 0) return false;
  flush();
  *out = list;
  return true;
}

}  // namespace

ConfigDocument::ConfigDocument(std::unique_ptr<State> state) : state_(std::move(state)) {}
ConfigDocument::ConfigDocument(ConfigDocument&&) noexcept = default;
ConfigDocument::~ConfigDocument() = default;

ConfigDocument ConfigDocument::load(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw Error(ErrorKind::kConfig, "is a directory, not a config file", at_file(path));
  }
  std::ifstream in(path);
  if (!in) throw Error(ErrorKind::kConfig, "cannot open config file", at_file(path));
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error(ErrorKind::kConfig, "cannot read config file", at_file(path));
  return parse(ss.str(), path);
}

ConfigDocument ConfigDocument::parse(const std::string& text, const std::string& name) {
  auto state = std::make_unique<State>();
  state->file = name;
  try {
    state->root = YAML::Load(text);
  } catch (const YAML::DeepRecursion& e) {
    throw Error(ErrorKind::kConfig,
                "nesting deeper than the YAML parser's limit (a config needs at most " +
                    std::to_string(kMaxDepth) + " levels)",
                at_file(name, e.mark.line + 1));
  } catch (const YAML::Exception& e) {
    throw Error(ErrorKind::kConfig, "YAML syntax error: " + e.msg, at_file(name, e.mark.line + 1));
  }
  if (state->root.IsNull() || !state->root.IsDefined()) {
    state->root = YAML::Node(YAML::NodeType::Map);
  } else if (!state->root.IsMap()) {
    ErrorContext ctx;
    ctx.file = name;
    ctx.line = 1;
    throw Error(ErrorKind::kConfig, "the top level of a config must be a mapping", ctx);
  }
  check_tree(state->root, "", 0, name);
  return ConfigDocument(std::move(state));
}

const std::string& ConfigDocument::file() const { return state_->file; }

void ConfigDocument::set(const std::string& assignment) {
  auto eq = assignment.find('=');
  ErrorContext ctx;
  ctx.file = "--set " + assignment;
  if (eq == std::string::npos || eq == 0) {
    throw Error(ErrorKind::kUsage, "expected --set key.path=value", ctx);
  }
  std::string path = assignment.substr(0, eq);
  std::string value_text = assignment.substr(eq + 1);
  ctx.key = path;
  YAML::Node value;
  if (!split_brace_list(value_text, &value)) {
    try {
      value = YAML::Load(value_text);
    } catch (const YAML::Exception& e) {
      throw Error(ErrorKind::kUsage, "cannot parse value '" + value_text + "': " + e.msg, ctx);
    }
    if (value.IsNull() && !value_text.empty() && value_text != "null" && value_text != "~") {
      value = YAML::Node(value_text);
    }
  }
  try {
    check_tree(value, path, 0, ctx.file);
  } catch (const Error& e) {
    throw Error(ErrorKind::kUsage, e.message(), ctx);
  }
  std::vector<std::string> parts;
  std::stringstream ss(path);
  for (std::string part; std::getline(ss, part, '.');) {
    if (part.empty()) throw Error(ErrorKind::kUsage, "empty component in key path", ctx);
    parts.push_back(part);
  }
  if (path.back() == '.') throw Error(ErrorKind::kUsage, "empty component in key path", ctx);
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
  (*state_->overrides)[path] = assignment;
}

ConfigMap ConfigDocument::root() {
  auto impl = std::make_unique<ConfigMap::Impl>();
  impl->reading = true;
  impl->file = state_->file;
  impl->node = state_->root;
  impl->overrides = state_->overrides;
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
