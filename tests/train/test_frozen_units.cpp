// The frozen units the engine shards (train/zero3/frozen_units.h) and the trained units are
// the units the memory plan counts (model::frozen_units / trained_units): same names, same order,
// same parameter counts, so flam plan's figures are the model's.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/model/tiny_model.h"
#include "train/model/flamingo.h"
#include "train/model/param_count.h"
#include "train/zero3/frozen_units.h"

namespace flam::train {
namespace {

int64_t numel(const model::ParamUnit& unit) {
  int64_t n = 0;
  for (const auto& [name, tensor] : unit.params) n += tensor.numel();
  return n;
}

TEST(FrozenUnits, AreThePlansUnits) {
  for (bool freeze : {false, true}) {
    SCOPED_TRACE(freeze ? "freeze_lm_embeddings" : "trained embedding rows");
    model::ModelOptions o = model::testing::tiny_options();
    o.freeze_lm_embeddings = freeze;
    model::Flamingo flamingo(o);
    const auto frozen = frozen_units(*flamingo);
    const auto counted = model::frozen_units(o);
    ASSERT_EQ(frozen.size(), counted.size());
    int64_t total = 0;
    for (size_t u = 0; u < frozen.size(); ++u) {
      EXPECT_EQ(frozen[u].name, counted[u].name);
      EXPECT_EQ(numel(frozen[u]), counted[u].params) << counted[u].name;
      EXPECT_FALSE(frozen[u].params.empty()) << counted[u].name;
      for (const auto& [name, tensor] : frozen[u].params) EXPECT_FALSE(tensor.requires_grad());
      total += numel(frozen[u]);
    }
    int64_t frozen_total = 0;
    for (const auto& p : flamingo->parameters())
      if (!p.requires_grad()) frozen_total += p.numel();
    EXPECT_EQ(total, frozen_total);  // every frozen parameter in exactly one unit

    const auto trained = flamingo->trained_units();
    const auto trained_counted = model::trained_units(o);
    ASSERT_EQ(trained.size(), trained_counted.size());
    for (size_t u = 0; u < trained.size(); ++u) {
      EXPECT_EQ(trained[u].name, trained_counted[u].name);
      EXPECT_EQ(numel(trained[u]), trained_counted[u].params) << trained_counted[u].name;
    }
  }
}

}  // namespace
}  // namespace flam::train
