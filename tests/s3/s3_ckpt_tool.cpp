// s3_ckpt_tool: the Checkpointer on real MPI ranks with train.checkpoint.dir set (an s3:// prefix
// or a local folder), for tests/s3/test_s3_checkpoint.sh.
//   save    --run DIR --dir D --step S [--scale K] [--async]
//   resume  --run DIR --dir D --expect-step S [--scale K] [--then-save S2]
// Values are synthetic (tests/checkpoint/synthetic.h): any world size checks its slices, and two
// runs that save the same steps write the same rank files byte for byte.
// Exit codes: 0 ok, 1 mismatch or no checkpoint, otherwise flam's (6: none could be written).
#include <cstdio>
#include <map>
#include <string>

#include "core/error.h"
#include "core/exit_codes.h"
#include "core/mpi_comm.h"
#include "core/world.h"
#include "tests/checkpoint/synthetic.h"
#include "train/checkpoint/checkpointer.h"

namespace {

using namespace flam;
using namespace flam::train;

std::map<std::string, std::string> parse(int argc, char** argv) {
  std::map<std::string, std::string> a;
  for (int i = 2; i < argc; ++i) {
    const std::string k = argv[i];
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
  o.keep = 2;
  o.max_failed_attempts = 1;
  o.dir = a.at("dir");
  return o;
}

bool save(Checkpointer& ckpt, const FlatLayout& layout, int rank, int64_t step, bool async) {
  testing::StateSource source(layout, testing::synthetic_state(layout, rank, step));
  const bool started = ckpt.save(step, source, !async);
  ckpt.wait();
  return started && ckpt.last_outcome() && ckpt.last_outcome()->committed;
}

int run_save(Comm& comm, const std::map<std::string, std::string>& a) {
  const FlatLayout layout = testing::synthetic_layout(comm.size(), num(a, "scale", 1));
  const int64_t step = num(a, "step", 1);
  Checkpointer ckpt(options(a), a.at("run"), comm, "tool");
  const bool ok = save(ckpt, layout, comm.rank(), step, a.count("async") > 0);
  if (comm.rank() == 0) {
    std::printf("SAVE step %lld %s\n", static_cast<long long>(step), ok ? "committed" : "failed");
  }
  return ok ? 0 : kExitIoError;
}

int run_resume(Comm& comm, const std::map<std::string, std::string>& a) {
  const FlatLayout layout = testing::synthetic_layout(comm.size(), num(a, "scale", 1));
  Checkpointer ckpt(options(a), a.at("run"), comm, "tool");
  const auto loaded = ckpt.load_latest(layout);
  int64_t bad = 0;
  if (!loaded) {
    bad = 1;
    std::printf("rank %d: no checkpoint\n", comm.rank());
  } else {
    std::string why = testing::check_slices(layout, comm.rank(), loaded->step, loaded->state);
    if (loaded->step != num(a, "expect-step", -1)) why = "step " + std::to_string(loaded->step);
    if (!why.empty()) {
      bad = 1;
      std::printf("rank %d: MISMATCH %s\n", comm.rank(), why.c_str());
    }
  }
  comm.all_reduce(&bad, 1, DType::kInt64, ReduceOp::kMax);
  if (comm.rank() == 0 && loaded) {
    std::printf("LOADED step %lld from %d ranks into %d (%s): %s\n",
                static_cast<long long>(loaded->step), loaded->old_world_size, comm.size(),
                loaded->path.c_str(), bad ? "MISMATCH" : "ok");
  }
  if (bad) return 1;
  if (a.count("then-save") && !save(ckpt, layout, comm.rank(), num(a, "then-save", 0), false)) {
    return kExitIoError;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  World::init(&argc, &argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: s3_ckpt_tool save|resume ...\n");
    return kExitUsage;
  }
  const std::string cmd = argv[1];
  const auto args = parse(argc, argv);
  int rc = kExitUsage;
  try {
    MpiComm comm(MPI_COMM_WORLD, MpiCommOptions{120.0});
    if (cmd == "save") rc = run_save(comm, args);
    if (cmd == "resume") rc = run_resume(comm, args);
  } catch (const Error& e) {
    std::fprintf(stderr, "s3_ckpt_tool %s: error: %s\n", cmd.c_str(), e.what());
    rc = e.kind() == ErrorKind::kIo ? kExitIoError : kExitFailure;
  }
  World::finalize();
  return rc;
}
