// fake_trainer: a small real MPI program that behaves like `flam train` towards the
// orchestrator, for the Slurm tests before (and besides) the real trainer: it is run as
// `fake_trainer train --config RUN/config.yaml` by the sbatch script (slurm.flam_bin), on N ranks.
//
// Per step: sleep FAKE_STEP_SECONDS (default 0.2), all-reduce (a dead peer ends the step), update
// a deterministic "parameter", rank 0 appends a metrics.jsonl row. Every
// train.checkpoint.every_steps it writes RUN/checkpoints/step_N/manifest.json ({"step","param"})
// and resumes from the newest one at start. SIGUSR1 on any rank: all ranks agree at the next step,
// checkpoint, exit 3. FAKE_EXIT=N: exit N at once (N=2 plays a config error). Each rank writes
// its pid to RUN/fake_rank_R.pid so tests can kill -9 one. At the end rank 0 writes
// RUN/fake_final.json {"step","param"}: an interrupted run must end with an uninterrupted run's.
#include <mpi.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "cli/config.h"
#include "core/atomic_file.h"

namespace fs = std::filesystem;

namespace {

volatile sig_atomic_t g_usr1 = 0;
void on_usr1(int) { g_usr1 = 1; }

double next_param(double p, int64_t step) {
  return p * 0.99 + std::sin(0.1 * static_cast<double>(step));
}

void write_checkpoint(const std::string& run_dir, int64_t step, double param) {
  char name[32];
  std::snprintf(name, sizeof(name), "step_%08lld", static_cast<long long>(step));
  const fs::path dir = fs::path(run_dir) / "checkpoints" / name;
  const fs::path tmp = dir.string() + ".tmp";
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  flam::write_file_atomic((tmp / "manifest.json").string(),
                          nlohmann::json{{"step", step}, {"param", param}}.dump());
  fs::remove_all(dir);
  flam::rename_durable(tmp.string(), dir.string());
}

}  // namespace

int main(int argc, char** argv) {
  if (const char* code = std::getenv("FAKE_EXIT")) {
    std::fprintf(stderr, "fake_trainer: simulated exit %s\n", code);
    return std::atoi(code);
  }
  std::string config_path;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--config") config_path = argv[i + 1];
  }
  if (config_path.empty()) {
    std::fprintf(stderr, "usage: fake_trainer train --config RUN/config.yaml\n");
    return 2;
  }
  const flam::Config config = flam::load_config(config_path);
  const std::string run_dir = config.run.dir;
  const int64_t steps = config.train.steps;
  const int64_t every = config.train.checkpoint.every_steps;
  const double step_seconds =
      std::getenv("FAKE_STEP_SECONDS") ? std::atof(std::getenv("FAKE_STEP_SECONDS")) : 0.2;

  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  signal(SIGUSR1, on_usr1);
  flam::write_file_atomic(run_dir + "/fake_rank_" + std::to_string(rank) + ".pid",
                          std::to_string(getpid()) + "\n");

  int64_t step = 0;
  double param = 1.0;
  int64_t newest = -1;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(run_dir + "/checkpoints", ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("step_", 0) == 0 && n.find('.') == std::string::npos &&
        fs::exists(e.path() / "manifest.json")) {
      newest = std::max<int64_t>(newest, std::stoll(n.substr(5)));
    }
  }
  if (newest >= 0) {
    char name[32];
    std::snprintf(name, sizeof(name), "step_%08lld", static_cast<long long>(newest));
    const auto m =
        nlohmann::json::parse(flam::read_file(run_dir + "/checkpoints/" + name + "/manifest.json"));
    step = m.at("step").get<int64_t>();
    param = m.at("param").get<double>();
  }
  if (rank == 0)
    std::printf("fake_trainer: %d ranks, resuming at step %lld\n", size,
                static_cast<long long>(step));
  std::fflush(stdout);

  while (step < steps) {
    std::this_thread::sleep_for(std::chrono::duration<double>(step_seconds));
    int mine = g_usr1, any = 0;
    MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (any) {
      if (rank == 0) write_checkpoint(run_dir, step, param);
      MPI_Barrier(MPI_COMM_WORLD);
      if (rank == 0)
        std::printf("fake_trainer: SIGUSR1: checkpoint at step %lld, exit 3\n",
                    static_cast<long long>(step));
      MPI_Finalize();
      return 3;
    }
    param = next_param(param, step);
    ++step;
    if (rank == 0) {
      std::ofstream out(run_dir + "/metrics.jsonl", std::ios::app);
      out << nlohmann::json{{"step", step},
                            {"loss_laion", 5.0 * std::exp(-0.05 * static_cast<double>(step)) + 1.0},
                            {"loss_mmc4", 6.0 * std::exp(-0.03 * static_cast<double>(step)) + 1.5},
                            {"tokens_per_s", 1000.0 + 50.0 * std::sin(static_cast<double>(step))},
                            {"samples_per_s", 30.0},
                            {"lr", 1e-4},
                            {"time", std::chrono::duration<double>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count()}}
                 .dump()
          << "\n";
      if (every > 0 && step % every == 0) write_checkpoint(run_dir, step, param);
    }
  }
  if (rank == 0) {
    flam::write_file_atomic(run_dir + "/fake_final.json",
                            nlohmann::json{{"step", step}, {"param", param}}.dump() + "\n");
    std::printf("fake_trainer: done at step %lld\n", static_cast<long long>(step));
  }
  MPI_Finalize();
  return 0;
}
