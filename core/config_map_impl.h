// Private to core/: the yaml-cpp state behind a ConfigMap, shared by config_map.cpp and
// config_file.cpp. Not for use by other modules.
#pragma once

#include <yaml-cpp/yaml.h>

#include <set>
#include <string>

#include "core/config_map.h"

namespace flam {

struct ConfigMap::Impl {
  bool reading = true;
  std::string file;   // shown in errors
  std::string path;   // key path of this mapping, "" at the root
  YAML::Node node;    // reading: the mapping (may be undefined)
  YAML::Node out;     // writing: the mapping being filled
  std::set<std::string> used;
};

}  // namespace flam
