// FlatLayout: how the trained parameters are flattened into one fp32 buffer per unit and split
// into equal per-rank slices (ZeRO-3). Shared by the engine (train/zero3/zero3_engine.h) and the
// checkpointer (train/checkpoint/), which stores it in the manifest and reshards with it.
//
// Unit b's flat buffer holds its params back to back in the given order (param p at
// params[p].offset, params[p].numel elements, row-major in `shape`), then zeros up to
// padded_numel, a multiple of world_size. Rank r owns elements [r * slice, (r + 1) * slice) with
// slice = slice_numel(b). Resharding to a new world size: concatenate the old slices, drop the
// padding (keep numel), pad again for the new world size, split.
//
// Torch-free; plain data, no threads.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace flam::train {

struct ParamSlot {
  std::string name;            // OpenFlamingo state-dict name
  std::vector<int64_t> shape;  // empty: a scalar
  int64_t offset = 0;          // elements into the unit's flat buffer
  int64_t numel = 0;
};

struct UnitLayout {
  std::string name;
  std::vector<ParamSlot> params;
  int64_t numel = 0;         // sum of params' numel
  int64_t padded_numel = 0;  // numel rounded up to a multiple of world_size (>= world_size)
};

struct FlatLayout {
  int world_size = 1;
  std::vector<UnitLayout> units;

  int64_t slice_numel(size_t unit) const { return units[unit].padded_numel / world_size; }
  // Sum over units of numel (without padding) / slice_numel (per rank).
  int64_t total_numel() const;
  int64_t total_slice_numel() const;
};

// (unit name, [(param name, shape)]) in order -> layout for `world_size` ranks.
// REQUIRES: world_size >= 1.
using UnitSpec = std::pair<std::string, std::vector<std::pair<std::string, std::vector<int64_t>>>>;
FlatLayout make_flat_layout(const std::vector<UnitSpec>& units, int world_size);

}  // namespace flam::train
