// ConfigMap: one YAML mapping of the typed configuration tree, seen through a field list.
//
// Each component declares its options once, as a plain struct with defaults, plus a function
//   void describe(ConfigMap& m, MyOptions& o) { m.field("lr", o.lr, Bounds::positive()); ... }
// found by argument-dependent lookup. The same function serves three modes:
//   - reading: fields present in the YAML overwrite the defaults, with type and range checks;
//     finish() rejects keys nobody asked for. Errors are flam::Error(kConfig) whose message
//     names the file, the line and the full key path: "tiny.yaml:7: train.optimizer.lr: ...".
//   - writing: the current values are emitted, to print or save the resolved config.
// Nested sections: m.section("optimizer", o.optimizer) calls describe() on the sub-struct.
//
// Thread safety: none; configs are read once at start-up on one thread.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace flam {

struct Bounds {
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool min_exclusive = false;

  static Bounds positive() { return {0.0, std::numeric_limits<double>::infinity(), true}; }
  static Bounds non_negative() { return {0.0}; }
  static Bounds at_least(double v) { return {v}; }
  static Bounds between(double lo, double hi) { return {lo, hi}; }
};

class ConfigMap {
 public:
  struct Impl;
  explicit ConfigMap(std::unique_ptr<Impl> impl);
  ConfigMap(ConfigMap&&) noexcept;
  ~ConfigMap();

  bool reading() const;

  void field(std::string_view key, bool& value);
  void field(std::string_view key, int& value, Bounds bounds = {});
  void field(std::string_view key, int64_t& value, Bounds bounds = {});
  void field(std::string_view key, double& value, Bounds bounds = {});
  void field(std::string_view key, std::string& value);
  void field(std::string_view key, std::vector<std::string>& value);
  void field(std::string_view key, std::vector<double>& value);
  // A string restricted to a set of values.
  void choice(std::string_view key, std::string& value,
              std::initializer_list<std::string_view> allowed);

  template <class T>
  void section(std::string_view key, T& options) {
    ConfigMap sub = child(key);
    describe(sub, options);
    sub.finish();
  }

  // Throws flam::Error(kConfig) naming this key (for cross-field checks inside describe()).
  [[noreturn]] void fail(std::string_view key, const std::string& message) const;
  // Reading: throws on keys of this mapping that no field() or section() asked for.
  void finish();

  ConfigMap child(std::string_view key);

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace flam
