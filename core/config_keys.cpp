#include "core/config_keys.h"

#include "core/config_map_impl.h"

namespace flam {

struct ConfigKeyLister::State {
  YAML::Node root{YAML::NodeType::Map};
  std::vector<ConfigKey> keys;
};

ConfigKeyLister::ConfigKeyLister() : state_(std::make_unique<State>()) {}
ConfigKeyLister::~ConfigKeyLister() = default;

ConfigMap ConfigKeyLister::root() {
  auto impl = std::make_unique<ConfigMap::Impl>();
  impl->reading = false;
  impl->file = "<keys>";
  impl->out = state_->root;
  impl->keys = &state_->keys;
  return ConfigMap(std::move(impl));
}

const std::vector<ConfigKey>& ConfigKeyLister::keys() const { return state_->keys; }

}  // namespace flam
