// ckpt_tool: drives the Checkpointer on real MPI ranks for the script tests and the benchmark.
//   save     --run DIR --step S [--scale K] [--async] [--kill-after-start] [--max-failed N]
//            [--keep K] [--dir D]
//   resume   --run DIR --expect-step S [--scale K] [--then-save S2] [--dir D]
// --dir sets train.checkpoint.dir (another local folder or an s3:// prefix; tests/s3).
//   watchdog --timeout T --victim R --mode stop|kill|stop-term   (stop-term: the victim stops,
//            the others then get SIGTERM, as srun --kill-on-bad-exit sends)
//   bench    --run DIR --scale K --steps N --step-ms MS
// Values are synthetic (tests/checkpoint/synthetic.h), so any world size can check its slices,
// and two runs that save the same steps write the same rank files byte for byte.
// Exit codes: 0 ok, 1 mismatch, otherwise flam's (6: no checkpoint could be written).
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>

#include "core/error.h"
#include "core/exit_codes.h"
#include "core/mpi_comm.h"
#include "core/signals.h"
#include "core/watchdog.h"
#include "core/world.h"
#include "tests/checkpoint/synthetic.h"
#include "train/checkpoint/checkpointer.h"

namespace {

using namespace flam;
using namespace flam::train;
using Clock = std::chrono::steady_clock;

std::map<std::string, std::string> parse(int argc, char** argv) {
  std::map<std::string, std::string> a;
  for (int i = 2; i < argc; ++i) {
    std::string k = argv[i];
    if (k.rfind("--", 0) != 0) continue;
    const bool has_value = i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0;
    a[k.substr(2)] = has_value ? argv[++i] : "1";
  }
  return a;
}

int64_t num(const std::map<std::string, std::string>& a, const std::string& k, int64_t def) {
  auto it = a.find(k);
  return it == a.end() ? def : std::stoll(it->second);
}

CheckpointOptions options(const std::map<std::string, std::string>& a) {
  CheckpointOptions o;
  o.max_failed_attempts = static_cast<int>(num(a, "max-failed", 3));
  o.keep = static_cast<int>(num(a, "keep", 3));
  if (a.count("dir")) o.dir = a.at("dir");
  return o;
}

int run_save(Comm& comm, const std::map<std::string, std::string>& a) {
  const CheckpointOptions o = options(a);
  const FlatLayout layout = testing::synthetic_layout(comm.size(), num(a, "scale", 1));
  const int64_t step = num(a, "step", 1);
  Checkpointer ckpt(o, a.at("run"), comm, "tool");
  const bool async = a.count("async") || a.count("kill-after-start");
  testing::StateSource source(layout, testing::synthetic_state(layout, comm.rank(), step));
  const bool ok = ckpt.save(step, source, !async);
  if (a.count("kill-after-start")) {
    // The background write has started; the commit would happen on this thread. Die first.
    std::printf("rank %d: killing itself mid-save\n", comm.rank());
    std::fflush(stdout);
    ::kill(::getpid(), SIGKILL);
  }
  ckpt.wait();
  const bool committed = ckpt.last_outcome() && ckpt.last_outcome()->committed;
  if (comm.rank() == 0) {
    std::printf("SAVE step %lld %s\n", static_cast<long long>(step),
                ok && committed ? "committed" : "failed");
  }
  return ok && committed ? 0 : kExitIoError;
}

int run_resume(Comm& comm, const std::map<std::string, std::string>& a) {
  const FlatLayout layout = testing::synthetic_layout(comm.size(), num(a, "scale", 1));
  Checkpointer ckpt(options(a), a.at("run"), comm, "tool");
  auto loaded = ckpt.load_latest(layout);
  const int64_t want = num(a, "expect-step", -1);
  int64_t bad = 0;
  if (!loaded) {
    bad = want >= 0;
    std::printf("rank %d: no checkpoint\n", comm.rank());
  } else {
    std::string why = testing::check_slices(layout, comm.rank(), loaded->step, loaded->state);
    if (loaded->step != want) why = "step " + std::to_string(loaded->step);
    if (static_cast<int>(loaded->loader_laion_all.size()) != loaded->old_world_size) {
      why = "loader states of " + std::to_string(loaded->loader_laion_all.size()) + " ranks";
    }
    for (int r = 0; why.empty() && r < loaded->old_world_size; ++r) {
      const FlatLayout old = testing::synthetic_layout(loaded->old_world_size);
      if (loaded->loader_laion_all[r] !=
          testing::synthetic_state(old, r, loaded->step).loader_laion) {
        why = "loader state of old rank " + std::to_string(r);
      }
    }
    if (!why.empty()) {
      bad = 1;
      std::printf("rank %d: MISMATCH %s\n", comm.rank(), why.c_str());
    }
  }
  comm.all_reduce(&bad, 1, DType::kInt64, ReduceOp::kMax);
  if (comm.rank() == 0 && loaded) {
    std::printf("LOADED step %lld from %d ranks into %d: %s (from %s)\n",
                static_cast<long long>(loaded->step), loaded->old_world_size, comm.size(),
                bad ? "MISMATCH" : "ok", loaded->path.c_str());
  }
  if (bad) return 1;
  if (a.count("then-save")) {
    const int64_t step = num(a, "then-save", 0);
    testing::StateSource source(layout, testing::synthetic_state(layout, comm.rank(), step));
    const bool ok = ckpt.save(step, source, true);
    ckpt.wait();
    if (!ok || !ckpt.last_outcome() || !ckpt.last_outcome()->committed) return kExitIoError;
  }
  return 0;
}

int run_watchdog(Comm& comm, const std::map<std::string, std::string>& a) {
  Watchdog watchdog(MPI_COMM_WORLD, std::stod(a.at("timeout")));
  comm.barrier();
  const std::string mode = a.at("mode");
  if (comm.rank() == num(a, "victim", 1)) {
    std::printf("rank %d: %s\n", comm.rank(), mode == "kill" ? "SIGKILL" : "SIGSTOP");
    std::fflush(stdout);
    ::raise(mode == "kill" ? SIGKILL : SIGSTOP);
  } else if (mode == "stop-term") {
    install_stop_signal_handlers();
    ::raise(SIGTERM);
  }
  comm.barrier();  // never completes: the victim is gone; the watchdog must end the job
  std::printf("rank %d: barrier passed, which it must not\n", comm.rank());
  return 1;
}

// Saves every step while "training" (sleeping step-ms) and reports the stall per save as a
// fraction of the step time, and the write bandwidth.
int run_bench(Comm& comm, const std::map<std::string, std::string>& a) {
  const FlatLayout layout = testing::synthetic_layout(comm.size(), num(a, "scale", 1));
  const int64_t steps = num(a, "steps", 5);
  const double step_ms = static_cast<double>(num(a, "step-ms", 1000));
  CheckpointOptions o;
  o.keep = 2;
  Checkpointer ckpt(o, a.at("run"), comm, "bench");
  double stall = 0.0, write_seconds = 0.0;
  int64_t bytes = 0;
  const bool sync = a.count("sync") > 0;
  testing::StateSource source(layout, testing::synthetic_state(layout, comm.rank(), 1));
  for (int64_t step = 1; step <= steps; ++step) {
    source.set(testing::synthetic_state(layout, comm.rank(), step));  // the "optimizer update"
    const auto t0 = Clock::now();
    ckpt.save(step, source, sync);
    stall += std::chrono::duration<double>(Clock::now() - t0).count();
    if (sync) {
      write_seconds += ckpt.last_outcome()->write_seconds;
      bytes += ckpt.last_outcome()->bytes;
    }
    const auto until = Clock::now() + std::chrono::duration<double, std::milli>(step_ms);
    while (Clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      ckpt.poll();
    }
    if (!sync && ckpt.last_outcome()) {
      write_seconds += ckpt.last_outcome()->write_seconds;
      bytes += ckpt.last_outcome()->bytes;
    }
  }
  ckpt.wait();
  if (comm.rank() == 0) {
    std::printf("BENCH saves %lld bytes %lld write_s %.4f stall_s %.4f step_s %.4f\n",
                static_cast<long long>(steps), static_cast<long long>(bytes), write_seconds,
                stall / steps, step_ms / 1000.0);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  World::init(&argc, &argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: ckpt_tool save|resume|watchdog|bench ...\n");
    return kExitUsage;
  }
  const std::string cmd = argv[1];
  const auto args = parse(argc, argv);
  int rc = kExitFailure;
  try {
    MpiComm comm(MPI_COMM_WORLD, MpiCommOptions{120.0});
    if (cmd == "save") rc = run_save(comm, args);
    if (cmd == "resume") rc = run_resume(comm, args);
    if (cmd == "watchdog") rc = run_watchdog(comm, args);
    if (cmd == "bench") rc = run_bench(comm, args);
  } catch (const Error& e) {
    std::fprintf(stderr, "ckpt_tool %s: error: %s\n", cmd.c_str(), e.what());
    rc = e.kind() == ErrorKind::kIo ? kExitIoError : kExitFailure;
  }
  World::finalize();
  return rc;
}
