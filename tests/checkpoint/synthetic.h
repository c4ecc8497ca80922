// Synthetic ZeRO-3 states for checkpoint tests: a fixed model layout (scaled by `scale` for big
// files) and values that are a pure function of (kind, block, flat index, step), so that any
// world size's slices can be built and checked without the other ranks' data.
#pragma once

#include <cstdint>
#include <future>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "train/checkpoint/checkpointer.h"
#include "train/zero3/flat_layout.h"

namespace flam::train::testing {

// Three blocks of odd sizes (so every world size pads), about `scale` x 1.3k floats.
inline FlatLayout synthetic_layout(int world_size, int64_t scale = 1) {
  return make_flat_layout(
      {{"perceiver", {{"perceiver.latents", {64 * scale, 5}}, {"perceiver.norm.weight", {7}}}},
       {"xattn.0",
        {{"lang_encoder.gated_cross_attn_layers.0.attn_gate", {1}},
         {"lang_encoder.gated_cross_attn_layers.0.attn.to_q.weight", {31 * scale, 29}}}},
       {"embed", {{"lang_encoder.new_rows", {2, 3}}}}},
      world_size);
}

// Element i of block b's flat `kind` (0 master, 1 exp_avg, 2 exp_avg_sq) buffer at `step`;
// zero in the padding.
inline float synthetic_value(const FlatLayout& layout, int kind, size_t b, int64_t i,
                             int64_t step) {
  if (i >= layout.units[b].numel) return 0.f;
  return static_cast<float>((i * 7 + static_cast<int64_t>(b) * 13 + kind * 5 + step * 3) % 1009) *
             0.25f +
         static_cast<float>(kind);
}

inline RankState synthetic_state(const FlatLayout& layout, int rank, int64_t step) {
  RankState s;
  s.step = step;
  std::vector<std::vector<float>>* buffers[] = {&s.master, &s.exp_avg, &s.exp_avg_sq};
  for (int k = 0; k < 3; ++k) {
    for (size_t b = 0; b < layout.units.size(); ++b) {
      const int64_t slice = layout.slice_numel(b);
      std::vector<float> v(slice);
      for (int64_t j = 0; j < slice; ++j) {
        v[j] = synthetic_value(layout, k, b, rank * slice + j, step);
      }
      buffers[k]->push_back(std::move(v));
    }
  }
  s.loader_laion = "laion-rank" + std::to_string(rank) + "-step" + std::to_string(step);
  s.loader_mmc4 = std::string("mmc4\0binary", 11) + std::to_string(rank);
  s.rng = "rng-" + std::to_string(rank * 1000 + step);
  s.optimizer_step = step * 10 + rank;
  s.skipped_steps = step % 3;
  return s;
}

// A SnapshotSource over a RankState in memory that keeps the contract the trainer's TrainState
// keeps: its slices are copied on the Checkpointer's writer thread, and set() (the "optimizer
// update") first waits for that copy.
class StateSource final : public SnapshotSource {
 public:
  StateSource(FlatLayout layout, RankState state)
      : layout_(std::move(layout)), state_(std::move(state)) {}

  // Replaces the live state once the in-flight copy of the previous one is done.
  void set(RankState state) {
    wait_for_copy();
    state_ = std::move(state);
  }
  void wait_for_copy() {
    if (copied_.valid()) copied_.wait();
  }
  // The live state. REQUIRES: wait_for_copy() before changing it.
  RankState& live() { return state_; }
  // The thread that last ran copy_slices(); read after wait_for_copy().
  std::thread::id copier() const { return copier_; }

  const FlatLayout& layout() const override { return layout_; }
  void snapshot(RankState& s) override {
    s.loader_laion = state_.loader_laion;
    s.loader_mmc4 = state_.loader_mmc4;
    s.rng = state_.rng;
    s.step = state_.step;
    s.optimizer_step = state_.optimizer_step;
    s.skipped_steps = state_.skipped_steps;
  }
  void copy_slices(RankState& s) const override {
    copier_ = std::this_thread::get_id();
    s.master = state_.master;
    s.exp_avg = state_.exp_avg;
    s.exp_avg_sq = state_.exp_avg_sq;
  }
  void hold_updates(std::shared_future<void> copied) override { copied_ = std::move(copied); }

 private:
  FlatLayout layout_;
  RankState state_;
  std::shared_future<void> copied_;
  mutable std::thread::id copier_;
};

// "" if this rank's loaded slices are the synthetic values of `step`, else the first mismatch.
inline std::string check_slices(const FlatLayout& layout, int rank, int64_t step,
                                const RankState& s) {
  const std::vector<std::vector<float>>* buffers[] = {&s.master, &s.exp_avg, &s.exp_avg_sq};
  for (int k = 0; k < 3; ++k) {
    if (buffers[k]->size() != layout.units.size()) return "wrong block count";
    for (size_t b = 0; b < layout.units.size(); ++b) {
      const int64_t slice = layout.slice_numel(b);
      const std::vector<float>& v = (*buffers[k])[b];
      if (static_cast<int64_t>(v.size()) != slice) return "wrong slice size";
      for (int64_t j = 0; j < slice; ++j) {
        const float want = synthetic_value(layout, k, b, rank * slice + j, step);
        if (v[j] != want) {
          return "kind " + std::to_string(k) + " block " + std::to_string(b) + " element " +
                 std::to_string(rank * slice + j) + ": " + std::to_string(v[j]) +
                 " != " + std::to_string(want);
        }
      }
    }
  }
  return "";
}

}  // namespace flam::train::testing
