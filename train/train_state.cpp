#include "train/train_state.h"

#include <torch/torch.h>

#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "core/check.h"

namespace flam::train {
namespace {

// Opens the "rng" section this TrainState writes: the magic, the evaluation step, the generator.
constexpr std::string_view kRngMagic = "flam.train_state.v1\n";

std::string rng_state() {
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  torch::Tensor state = generator.get_state();
  return std::string(reinterpret_cast<const char*>(state.data_ptr<uint8_t>()), state.numel());
}

void restore_rng_state(const std::string& bytes) {
  FLAM_CHECK(!bytes.empty()) << "a checkpoint of this world size without a generator state";
  torch::Tensor state = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kUInt8);
  std::memcpy(state.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

}  // namespace

TrainState::TrainState(Zero3Engine& engine, pipeline::Loader& laion, pipeline::Loader& mmc4)
    : engine_(engine), laion_(laion), mmc4_(mmc4) {}

void TrainState::restore(const LoadedCheckpoint& loaded, int rank, int world_size, uint64_t seed) {
  const RankState& s = loaded.state;
  engine_.import_slices(s.master, s.exp_avg, s.exp_avg_sq, s.optimizer_step);
  step_ = loaded.step;
  skipped_steps_ = s.skipped_steps;
  laion_.restore(loaded.loader_laion_all);
  mmc4_.restore(loaded.loader_mmc4_all);
  if (loaded.old_world_size == world_size) {
    std::string_view rng = s.rng;
    eval_step_ = -1;
    if (rng.starts_with(kRngMagic) && rng.size() >= kRngMagic.size() + 8) {
      uint64_t bits = 0;
      for (int i = 0; i < 8; ++i)
        bits |= static_cast<uint64_t>(static_cast<uint8_t>(rng[kRngMagic.size() + i])) << (8 * i);
      eval_step_ = static_cast<int64_t>(bits);
      rng.remove_prefix(kRngMagic.size() + 8);
    }
    restore_rng_state(std::string(rng));
  } else {
    eval_step_ = step_;
    torch::manual_seed(seed * 1000003u + static_cast<uint64_t>(step_) * 1009u +
                       static_cast<uint64_t>(rank));
  }
}

Zero3StepResult TrainState::step(double lr, double max_norm, bool skip) {
  if (copied_.valid()) {
    const auto start = std::chrono::steady_clock::now();
    copied_.wait();
    copied_ = {};
    stall_seconds_ +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  const Zero3StepResult result = engine_.step(lr, max_norm, skip);
  if (result.skipped) ++skipped_steps_;
  ++step_;
  return result;
}

double TrainState::take_stall_seconds() { return std::exchange(stall_seconds_, 0.0); }

void TrainState::snapshot(RankState& state) {
  state.loader_laion = laion_.state();
  state.loader_mmc4 = mmc4_.state();
  std::string rng(kRngMagic);
  const uint64_t bits = static_cast<uint64_t>(eval_step_);
  for (int i = 0; i < 8; ++i) rng.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
  state.rng = rng + rng_state();
  state.step = step_;
  state.optimizer_step = engine_.optimizer_step();
  state.skipped_steps = skipped_steps_;
}

void TrainState::copy_slices(RankState& state) const {
  engine_.export_slices(&state.master, &state.exp_avg, &state.exp_avg_sq);
}

}  // namespace flam::train
