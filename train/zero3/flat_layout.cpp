#include "train/zero3/flat_layout.h"

#include <algorithm>

#include "core/check.h"

namespace flam::train {

int64_t FlatLayout::total_numel() const {
  int64_t total = 0;
  for (const UnitLayout& unit : units) total += unit.numel;
  return total;
}

int64_t FlatLayout::total_slice_numel() const {
  int64_t total = 0;
  for (size_t b = 0; b < units.size(); ++b) total += slice_numel(b);
  return total;
}

FlatLayout make_flat_layout(const std::vector<UnitSpec>& units, int world_size) {
  FLAM_CHECK(world_size >= 1) << "world_size " << world_size;
  FlatLayout layout;
  layout.world_size = world_size;
  for (const auto& [unit_name, params] : units) {
    UnitLayout unit;
    unit.name = unit_name;
    for (const auto& [param_name, shape] : params) {
      ParamSlot slot;
      slot.name = param_name;
      slot.shape = shape;
      slot.offset = unit.numel;
      slot.numel = 1;
      for (int64_t d : shape) {
        FLAM_CHECK(d >= 0) << param_name << " has a negative dimension";
        slot.numel *= d;
      }
      unit.numel += slot.numel;
      unit.params.push_back(std::move(slot));
    }
    const int64_t per_rank = (unit.numel + world_size - 1) / world_size;
    unit.padded_numel = std::max<int64_t>(per_rank, 1) * world_size;
    layout.units.push_back(std::move(unit));
  }
  return layout;
}

}  // namespace flam::train
