// The model check of a resume: whether a checkpoint's FlatLayout (its manifest's) describes the
// model's trained parameters, whatever world size wrote it. Beside flat_layout.h, whose layout
// it compares; torch-free.
#pragma once

#include <string>

#include "train/zero3/flat_layout.h"

namespace flam::train {

// Throws flam::Error(kConfig) naming `where` when `saved` (a checkpoint's layout) does not
// describe the same units and parameters (names, sizes, offsets, shapes) as `now` (the
// model's); the world sizes may differ.
void check_same_layout(const FlatLayout& saved, const FlatLayout& now, const std::string& where);

}  // namespace flam::train
