#include "train/zero3/flat_layout_check.h"

#include "core/error.h"

namespace flam::train {

void check_same_layout(const FlatLayout& saved, const FlatLayout& now, const std::string& where) {
  ErrorContext ctx;
  ctx.file = where;
  auto fail = [&](const std::string& why) {
    throw Error(ErrorKind::kConfig,
                "checkpoint was saved for a different model (" + why +
                    "); point train.run_dir at a fresh directory or restore the model config",
                ctx);
  };
  if (saved.units.size() != now.units.size()) {
    fail(std::to_string(saved.units.size()) + " units, the model has " +
         std::to_string(now.units.size()));
  }
  for (size_t b = 0; b < now.units.size(); ++b) {
    const UnitLayout& s = saved.units[b];
    const UnitLayout& n = now.units[b];
    if (s.name != n.name || s.numel != n.numel || s.params.size() != n.params.size()) {
      fail("unit " + std::to_string(b) + " '" + s.name + "' of " + std::to_string(s.numel) +
           " elements, the model's '" + n.name + "' has " + std::to_string(n.numel));
    }
    for (size_t p = 0; p < n.params.size(); ++p) {
      if (s.params[p].name != n.params[p].name || s.params[p].offset != n.params[p].offset ||
          s.params[p].shape != n.params[p].shape) {
        fail("parameter '" + s.params[p].name + "' differs from the model's '" + n.params[p].name +
             "'");
      }
    }
  }
}

}  // namespace flam::train
