// Private to core/: the yaml-cpp state behind a ConfigMap, shared by config_map.cpp and
// config_file.cpp. Not for use by other modules.
#pragma once

#include <yaml-cpp/yaml.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/config_keys.h"
#include "core/config_map.h"

namespace flam {

struct ConfigMap::Impl {
  bool reading = true;
  std::string file;  // shown in errors
  std::string path;  // key path of this mapping, "" at the root
  YAML::Node node;   // reading: the mapping (may be undefined)
  YAML::Node out;    // writing: the mapping being filled
  std::set<std::string> used;
  std::vector<ConfigKey>* keys = nullptr;  // writing: also record each key here (config_keys.h)
  // Reading: key path -> the --set argument that set it (shared by the whole tree), so that an
  // error in a value from the command line names that argument instead of a line of the file.
  std::shared_ptr<const std::map<std::string, std::string>> overrides;
};

}  // namespace flam
