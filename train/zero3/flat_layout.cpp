#include "train/zero3/flat_layout.h"

#include <algorithm>

#include "core/check.h"

namespace flam::train {

int64_t FlatLayout::total_numel() const {
  int64_t total = 0;
  for (const BlockLayout& block : blocks) total += block.numel;
  return total;
}

int64_t FlatLayout::total_slice_numel() const {
  int64_t total = 0;
  for (size_t b = 0; b < blocks.size(); ++b) total += slice_numel(b);
  return total;
}

FlatLayout make_flat_layout(const std::vector<BlockSpec>& blocks, int world_size) {
  FLAM_CHECK(world_size >= 1) << "world_size " << world_size;
  FlatLayout layout;
  layout.world_size = world_size;
  for (const auto& [block_name, params] : blocks) {
    BlockLayout block;
    block.name = block_name;
    for (const auto& [param_name, shape] : params) {
      ParamSlot slot;
      slot.name = param_name;
      slot.shape = shape;
      slot.offset = block.numel;
      slot.numel = 1;
      for (int64_t d : shape) {
        FLAM_CHECK(d >= 0) << param_name << " has a negative dimension";
        slot.numel *= d;
      }
      block.numel += slot.numel;
      block.params.push_back(std::move(slot));
    }
    const int64_t per_rank = (block.numel + world_size - 1) / world_size;
    block.padded_numel = std::max<int64_t>(per_rank, 1) * world_size;
    layout.blocks.push_back(std::move(block));
  }
  return layout;
}

}  // namespace flam::train
