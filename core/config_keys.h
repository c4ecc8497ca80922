// Every key of a typed configuration tree, with its type, default and range, taken from the same
// describe() functions that parse the YAML (core/config_map.h), so the list cannot drift from
// what the parser accepts. `flam config keys` prints it.
//
//   std::vector<ConfigKey> keys = list_config_keys(Config{});   // in describe() order
//
// Thread safety: none needed; a pure function of its argument.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/config_map.h"

namespace flam {

// One key as describe() declares it.
struct ConfigKey {
  std::string path;           // full key path, "train.optimizer.lr"
  std::string type;           // boolean | integer | number | string | choice | list of ...
  std::string default_value;  // the value describe() saw, as YAML
  std::string range;          // "> 0", "[1, 100]", "constant | linear | cosine", or ""
};

// Collects the keys describe() declares in writing mode.
class ConfigKeyLister {
 public:
  ConfigKeyLister();
  ~ConfigKeyLister();
  ConfigMap root();
  const std::vector<ConfigKey>& keys() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

template <class T>
std::vector<ConfigKey> list_config_keys(const T& options) {
  T copy = options;
  ConfigKeyLister lister;
  ConfigMap m = lister.root();
  describe(m, copy);
  return lister.keys();
}

}  // namespace flam
