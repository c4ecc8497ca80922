#include "core/config_map.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>
#include <set>
#include <sstream>

#include "core/config_map_impl.h"
#include "core/error.h"

namespace flam {
namespace {

std::string join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string describe_bounds(const Bounds& b) {
  std::ostringstream s;
  if (std::isfinite(b.min) && std::isfinite(b.max)) {
    s << "must be in [" << b.min << ", " << b.max << "]";
  } else if (std::isfinite(b.min)) {
    s << "must be " << (b.min_exclusive ? "> " : ">= ") << b.min;
  } else {
    s << "must be <= " << b.max;
  }
  return s.str();
}

std::string bounds_text(const Bounds& b) {
  if (!std::isfinite(b.min) && !std::isfinite(b.max)) return "";
  return describe_bounds(b).substr(std::string("must be ").size());
}

bool in_bounds(double v, const Bounds& b) {
  if (b.min_exclusive ? !(v > b.min) : !(v >= b.min)) return false;
  return v <= b.max;
}

// Points `ctx` at the --set argument that set `key_path` (or a mapping above it, or a key below
// it); returns false when the value came from the file.
bool point_at_override(const ConfigMap::Impl& impl, const std::string& key_path,
                       ErrorContext& ctx) {
  if (!impl.overrides) return false;
  auto within = [](const std::string& outer, const std::string& inner) {
    return inner == outer ||
           (inner.size() > outer.size() && inner.compare(0, outer.size(), outer) == 0 &&
            inner[outer.size()] == '.');
  };
  for (const auto& [path, assignment] : *impl.overrides) {
    if (within(path, key_path) || within(key_path, path)) {
      ctx.file = "--set " + assignment;
      ctx.line = -1;
      return true;
    }
  }
  return false;
}

}  // namespace

ConfigMap::ConfigMap(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ConfigMap::ConfigMap(ConfigMap&&) noexcept = default;
ConfigMap::~ConfigMap() = default;

bool ConfigMap::reading() const { return impl_->reading; }

void ConfigMap::fail(std::string_view key, const std::string& message) const {
  ErrorContext ctx;
  ctx.file = impl_->file;
  YAML::Node n = impl_->node.IsMap() ? impl_->node[std::string(key)] : YAML::Node();
  if (n.IsDefined() && n.Mark().line >= 0) {
    ctx.line = n.Mark().line + 1;
  } else if (impl_->node.IsDefined() && impl_->node.Mark().line >= 0) {
    ctx.line = impl_->node.Mark().line + 1;
  }
  ctx.key = join(impl_->path, key);
  point_at_override(*impl_, ctx.key, ctx);
  throw Error(ErrorKind::kConfig, message, ctx);
}

// Writing with a key list: records the key just written to impl.out.
static void note(ConfigMap::Impl& impl, std::string_view key, const char* type,
                 std::string range = "") {
  if (!impl.keys) return;
  YAML::Node value = YAML::Clone(impl.out[std::string(key)]);
  if (value.IsSequence()) value.SetStyle(YAML::EmitterStyle::Flow);
  impl.keys->push_back({join(impl.path, key), type, YAML::Dump(value), std::move(range)});
}

// Looks up `key` for reading; returns an undefined node when absent. Records it as used.
static YAML::Node lookup(ConfigMap::Impl& impl, std::string_view key) {
  impl.used.insert(std::string(key));
  if (!impl.node.IsDefined() || impl.node.IsNull()) return YAML::Node(YAML::NodeType::Undefined);
  return impl.node[std::string(key)];
}

template <class T>
static bool read_scalar(ConfigMap& m, ConfigMap::Impl& impl, std::string_view key, T& out,
                        const char* type_name) {
  YAML::Node n = lookup(impl, key);
  if (!n.IsDefined() || n.IsNull()) return false;
  if (!n.IsScalar())
    m.fail(key, std::string("expected ") + type_name + ", got a " +
                    (n.IsMap() ? "mapping" : "sequence"));
  try {
    out = n.as<T>();
  } catch (const YAML::Exception&) {
    m.fail(key, std::string("expected ") + type_name + ", got '" + n.Scalar() + "'");
  }
  return true;
}

void ConfigMap::field(std::string_view key, bool& value) {
  if (!reading()) {
    impl_->out[std::string(key)] = value;
    note(*impl_, key, "boolean");
    return;
  }
  read_scalar(*this, *impl_, key, value, "a boolean (true/false)");
}

void ConfigMap::field(std::string_view key, int64_t& value, Bounds bounds) {
  if (!reading()) {
    impl_->out[std::string(key)] = value;
    note(*impl_, key, "integer", bounds_text(bounds));
    return;
  }
  if (read_scalar(*this, *impl_, key, value, "an integer") &&
      !in_bounds(static_cast<double>(value), bounds)) {
    fail(key, describe_bounds(bounds) + " (got " + std::to_string(value) + ")");
  }
}

void ConfigMap::field(std::string_view key, int& value, Bounds bounds) {
  int64_t v = value;
  field(key, v, bounds);
  if (reading()) {
    if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) {
      fail(key, "integer out of range (got " + std::to_string(v) + ")");
    }
    value = static_cast<int>(v);
  }
}

// Shortest text that reads back as the same double ("0.0001", not "0.00010000000000000000479").
static std::string shortest(double v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::general);
  return std::string(buf, r.ptr);
}

void ConfigMap::field(std::string_view key, double& value, Bounds bounds) {
  if (!reading()) {
    impl_->out[std::string(key)] = shortest(value);
    note(*impl_, key, "number", bounds_text(bounds));
    return;
  }
  if (read_scalar(*this, *impl_, key, value, "a number")) {
    if (!std::isfinite(value)) fail(key, "must be a finite number");
    if (!in_bounds(value, bounds)) {
      std::ostringstream got;
      got << value;
      fail(key, describe_bounds(bounds) + " (got " + got.str() + ")");
    }
  }
}

void ConfigMap::field(std::string_view key, std::string& value) {
  if (!reading()) {
    impl_->out[std::string(key)] = value;
    note(*impl_, key, "string");
    return;
  }
  read_scalar(*this, *impl_, key, value, "a string");
}

template <class T>
static void read_list(ConfigMap& m, ConfigMap::Impl& impl, std::string_view key,
                      std::vector<T>& value, const char* type_name) {
  YAML::Node n = lookup(impl, key);
  if (!n.IsDefined() || n.IsNull()) return;
  if (n.IsScalar()) {  // a single value stands for a one-element list
    T v;
    read_scalar(m, impl, key, v, type_name);
    value = {v};
    return;
  }
  if (!n.IsSequence()) m.fail(key, std::string("expected a list of ") + type_name);
  value.clear();
  for (const auto& item : n) {
    try {
      value.push_back(item.as<T>());
    } catch (const YAML::Exception&) {
      m.fail(key, std::string("expected a list of ") + type_name);
    }
  }
}

void ConfigMap::field(std::string_view key, std::vector<std::string>& value) {
  if (!reading()) {
    YAML::Node seq(YAML::NodeType::Sequence);
    for (const auto& v : value) seq.push_back(v);
    impl_->out[std::string(key)] = seq;
    note(*impl_, key, "list of strings");
    return;
  }
  read_list(*this, *impl_, key, value, "strings");
}

void ConfigMap::field(std::string_view key, std::vector<double>& value) {
  if (!reading()) {
    YAML::Node seq(YAML::NodeType::Sequence);
    seq.SetStyle(YAML::EmitterStyle::Flow);
    for (double v : value) seq.push_back(shortest(v));
    impl_->out[std::string(key)] = seq;
    note(*impl_, key, "list of numbers");
    return;
  }
  read_list(*this, *impl_, key, value, "numbers");
}

void ConfigMap::choice(std::string_view key, std::string& value,
                       std::initializer_list<std::string_view> allowed) {
  field(key, value);
  if (!reading()) {
    if (impl_->keys) {
      impl_->keys->back().type = "choice";
      for (auto a : allowed) {
        impl_->keys->back().range +=
            (impl_->keys->back().range.empty() ? "" : " | ") + std::string(a);
      }
    }
    return;
  }
  for (auto a : allowed) {
    if (value == a) return;
  }
  std::string list;
  for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
  fail(key, "must be one of " + list + " (got '" + value + "')");
}

ConfigMap ConfigMap::child(std::string_view key) {
  auto impl = std::make_unique<Impl>();
  impl->reading = impl_->reading;
  impl->file = impl_->file;
  impl->path = join(impl_->path, key);
  impl->keys = impl_->keys;
  impl->overrides = impl_->overrides;
  if (reading()) {
    YAML::Node n = lookup(*impl_, key);
    if (n.IsDefined() && !n.IsNull() && !n.IsMap()) fail(key, "expected a mapping");
    impl->node = n;
  } else {
    impl->out = impl_->out[std::string(key)];
  }
  return ConfigMap(std::move(impl));
}

void ConfigMap::finish() {
  if (!reading() || !impl_->node.IsDefined() || !impl_->node.IsMap()) return;
  for (const auto& kv : impl_->node) {
    std::string k = kv.first.as<std::string>();
    if (!impl_->used.count(k)) {
      ErrorContext ctx;
      ctx.file = impl_->file;
      ctx.line = kv.first.Mark().line >= 0 ? kv.first.Mark().line + 1 : -1;
      ctx.key = join(impl_->path, k);
      point_at_override(*impl_, ctx.key, ctx);
      std::string known;
      for (const auto& u : impl_->used) known += (known.empty() ? "" : ", ") + u;
      throw Error(ErrorKind::kConfig, "unknown key (known here: " + known + ")", ctx);
    }
  }
}

}  // namespace flam
