// Loading a YAML config file into typed options (see core/config_map.h), with command-line
// overrides, and writing the resolved options back out as YAML.
//
//   ConfigDocument doc = ConfigDocument::load("configs/tiny.yaml");
//   doc.set("train.optimizer.lr=3e-4");            // --set; creates missing mappings
//   MyConfig cfg = read_config<MyConfig>(doc);     // type, range and unknown-key checks
//   std::string yaml = write_config(cfg);          // the resolved config, as it runs
//
// Errors are flam::Error(kConfig) naming the file, line and key path.
#pragma once

#include <memory>
#include <string>

#include "core/config_map.h"

namespace flam {

class ConfigDocument {
 public:
  // REQUIRES: `path` is a readable YAML file whose top level is a mapping (or empty).
  static ConfigDocument load(const std::string& path);
  // `name` stands for the file name in errors.
  static ConfigDocument parse(const std::string& text, const std::string& name);

  ConfigDocument(ConfigDocument&&) noexcept;
  ~ConfigDocument();

  // Applies "a.b.c=value". The value is parsed as YAML ("3e-4", "true", "[1, 2]", "text").
  void set(const std::string& assignment);
  ConfigMap root();
  const std::string& file() const;

 private:
  struct State;
  explicit ConfigDocument(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// Collects the YAML emitted by describe() in writing mode.
class ConfigWriter {
 public:
  ConfigWriter();
  ~ConfigWriter();
  ConfigMap root();
  std::string text() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

template <class T>
T read_config(ConfigDocument& doc) {
  T options;
  ConfigMap m = doc.root();
  describe(m, options);
  m.finish();
  return options;
}

template <class T>
std::string write_config(const T& options) {
  T copy = options;
  ConfigWriter w;
  ConfigMap m = w.root();
  describe(m, copy);
  return w.text();
}

}  // namespace flam
