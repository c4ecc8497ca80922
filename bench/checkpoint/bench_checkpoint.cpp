// bench_checkpoint: the checkpoint write path on real files.
//   write --run DIR --mb M          one synchronous save of M MiB of state per rank; prints the
//                                   wall time of save() (CRC, write, fsync, manifest, renames)
//   stall --run DIR --mb M --steps N --step-ms T
//                                   N steps of a T ms compute loop, an asynchronous save whenever
//                                   the previous one has committed, the slices copied by the
//                                   writer thread as the trainer does; prints the training-thread
//                                   stall per save (save() itself, and the wait for that copy
//                                   before the next optimizer step)
// Run under mpirun for several ranks; rank 0 prints "key value" lines for run.sh.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <future>
#include <map>
#include <string>
#include <utility>

#include "core/mpi_comm.h"
#include "core/world.h"
#include "train/checkpoint/checkpointer.h"
#include "train/zero3/flat_layout.h"

namespace {

using namespace flam;
using namespace flam::train;
using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// One block per 64 MiB of master weights; mb MiB of state (master + 2 moments) per rank.
FlatLayout layout_for(int64_t mb, int world_size) {
  const int64_t floats = mb * (1 << 20) / 4 / 3 * world_size;
  std::vector<UnitSpec> blocks;
  const int64_t per_block = 16 << 20;
  for (int64_t done = 0, b = 0; done < floats; done += per_block, ++b) {
    blocks.push_back({"block" + std::to_string(b),
                      {{"w" + std::to_string(b), {std::min(per_block, floats - done)}}}});
  }
  return make_flat_layout(blocks, world_size);
}

RankState state_for(const FlatLayout& layout, int rank) {
  RankState s;
  for (auto* v : {&s.master, &s.exp_avg, &s.exp_avg_sq}) {
    for (size_t b = 0; b < layout.units.size(); ++b) {
      std::vector<float> slice(layout.slice_numel(b));
      for (size_t i = 0; i < slice.size(); ++i) slice[i] = static_cast<float>(i % 977 + rank);
      v->push_back(std::move(slice));
    }
  }
  s.loader_laion = s.loader_mmc4 = s.rng = std::string(256, 'x');
  return s;
}

// The training state stand-in: its slices are copied by the Checkpointer's writer thread, into
// the previous save's buffers, as the trainer's are.
class LiveState final : public SnapshotSource {
 public:
  LiveState(const FlatLayout& layout, RankState state)
      : layout_(layout), state_(std::move(state)) {}
  // Before the "optimizer step": waits for the background copy, as the trainer does.
  void wait_for_copy() {
    if (copied_.valid()) copied_.wait();
  }

  const FlatLayout& layout() const override { return layout_; }
  void snapshot(RankState& s) override {
    s.loader_laion = state_.loader_laion;
    s.loader_mmc4 = state_.loader_mmc4;
    s.rng = state_.rng;
  }
  void copy_slices(RankState& s) const override {
    for (auto [to, from] : {std::pair{&s.master, &state_.master},
                            {&s.exp_avg, &state_.exp_avg},
                            {&s.exp_avg_sq, &state_.exp_avg_sq}}) {
      to->resize(from->size());
      for (size_t b = 0; b < from->size(); ++b)
        (*to)[b].assign((*from)[b].begin(), (*from)[b].end());
    }
  }
  void hold_updates(std::shared_future<void> copied) override { copied_ = std::move(copied); }

 private:
  const FlatLayout& layout_;
  RankState state_;
  std::shared_future<void> copied_;
};

// A compute-bound "training step" of about `ms` milliseconds.
double compute(double ms) {
  const auto t0 = Clock::now();
  double acc = 0;
  while (since(t0) * 1e3 < ms) {
    for (int i = 1; i < 20000; ++i) acc += std::sqrt(static_cast<double>(i));
  }
  return acc;
}

}  // namespace

int main(int argc, char** argv) {
  World::init(&argc, &argv);
  std::map<std::string, std::string> a;
  for (int i = 2; i + 1 < argc; i += 2) a[std::string(argv[i]).substr(2)] = argv[i + 1];
  const std::string mode = argc > 1 ? argv[1] : "";
  MpiComm comm;
  const FlatLayout layout = layout_for(std::stoll(a["mb"]), comm.size());
  CheckpointOptions options;
  options.keep = 1;
  Checkpointer ckpt(options, a["run"], comm, "bench");
  if (mode == "write") {
    LiveState state(layout, state_for(layout, comm.rank()));
    comm.barrier();
    const auto t0 = Clock::now();
    ckpt.save(1, state, /*sync=*/true);
    const double seconds = since(t0);
    if (comm.rank() == 0) {
      std::printf("bytes %lld\nseconds %.6f\n", static_cast<long long>(ckpt.last_outcome()->bytes),
                  seconds);
    }
  } else if (mode == "stall") {
    LiveState live(layout, state_for(layout, comm.rank()));
    const int steps = std::stoi(a["steps"]);
    const double step_ms = std::stod(a["step-ms"]);
    double stall = 0, copy_wait = 0, step_total = 0, sink = 0;
    int saves = 0;
    int64_t in_flight = -1;  // the step of the save not yet committed, -1: none
    for (int step = 1; step <= steps; ++step) {
      const auto t0 = Clock::now();
      sink += compute(step_ms);
      // The optimizer step would change `live` now: wait for the background copy, as the
      // trainer does.
      const auto w0 = Clock::now();
      live.wait_for_copy();
      copy_wait += since(w0);
      ckpt.poll();
      // A new checkpoint once the previous one has committed: with an interval longer than a
      // write (the normal case), save() never waits for its predecessor.
      if (in_flight >= 0 && ckpt.last_outcome() && ckpt.last_outcome()->step == in_flight) {
        in_flight = -1;
      }
      if (in_flight < 0) {
        const auto s0 = Clock::now();
        ckpt.save(step, live, /*sync=*/false);
        in_flight = step;
        stall += since(s0);
        ++saves;
      }
      step_total += since(t0);
    }
    ckpt.wait();
    if (comm.rank() == 0) {
      std::printf("saves %d\nstall_per_save %.6f\ncopy_wait_per_save %.6f\nstep_seconds %.6f\n",
                  saves, stall / saves, copy_wait / saves, step_total / steps);
      std::printf("sink %g\n", sink > 0 ? 0.0 : 1.0);
    }
  }
  World::finalize();
  return 0;
}
