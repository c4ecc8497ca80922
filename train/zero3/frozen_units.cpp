#include "train/zero3/frozen_units.h"

#include <torch/torch.h>

#include <map>
#include <regex>
#include <string>

#include "core/check.h"

namespace flam::train {

std::vector<model::ParamUnit> frozen_units(model::FlamingoImpl& model) {
  const model::ModelOptions& o = model.options();
  std::vector<model::ParamUnit> units{{"vision_encoder", {}}};
  std::map<std::string, size_t> index;  // unit name -> position
  for (int i = 0; i < o.vision.layers; ++i)
    units.push_back({"vision_encoder.transformer.resblocks." + std::to_string(i), {}});
  units.push_back({"lang_encoder.model.embed_tokens", {}});
  for (int i = 0; i < o.lang.layers; ++i)
    units.push_back({"lang_encoder.model.layers." + std::to_string(i) + ".decoder_layer", {}});
  units.push_back({"lang_encoder.head", {}});
  for (size_t u = 0; u < units.size(); ++u) index[units[u].name] = u;

  static const std::regex resblock(R"((vision_encoder\.transformer\.resblocks\.\d+)\..*)");
  static const std::regex decoder(R"((lang_encoder\.model\.layers\.\d+\.decoder_layer)\..*)");
  for (const auto& item : model.named_parameters()) {
    if (item.value().requires_grad()) continue;
    const std::string& name = item.key();
    std::smatch m;
    std::string unit;
    if (std::regex_match(name, m, resblock) || std::regex_match(name, m, decoder)) {
      unit = m[1].str();
    } else if (name.rfind("vision_encoder.", 0) == 0) {
      unit = "vision_encoder";
    } else if (name == "lang_encoder.model.embed_tokens.weight" ||
               name == model::kSpecialTokenEmbeddings) {
      unit = "lang_encoder.model.embed_tokens";
    } else if (name == "lang_encoder.model.norm.weight" || name == "lang_encoder.lm_head.weight") {
      unit = "lang_encoder.head";
    }
    auto it = index.find(unit);
    FLAM_CHECK(it != index.end()) << "frozen parameter " << name << " belongs to no unit";
    units[it->second].params.emplace_back(name, item.value());
  }
  return units;
}

std::vector<size_t> decoder_layer_units(const model::ModelOptions& options) {
  std::vector<size_t> units;
  for (int i = 0; i < options.lang.layers; ++i)
    units.push_back(static_cast<size_t>(options.vision.layers) + 2 + static_cast<size_t>(i));
  return units;
}

}  // namespace flam::train
