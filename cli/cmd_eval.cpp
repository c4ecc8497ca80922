// flam eval --config F --checkpoint DIR [--task T] [--shots 0,4,...] [--trials N]
//           [--rices] [--out results.json] [--set k=v ...]: few-shot evaluation
// (train/eval/evaluator.h) of a checkpoint's trained weights on the run's model, on every MPI
// rank; --rices chooses demos by RICES (eval.demo_selection=rices). Rank 0 writes the results
// JSON (default: eval_<task>.json in the working directory) and prints the table.
#include <mpi.h>

#include <cstdio>
#include <sstream>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/exit_codes.h"
#include "core/mpi_comm.h"
#include "core/world.h"
#include "pipeline/tokenizer.h"
#include "train/eval/evaluator.h"
#include "train/eval/model_loader.h"
#include "train/model/flamingo.h"

namespace flam::cli {

int cmd_eval(const Argv& argv) {
  Args args(argv, {"config", "checkpoint", "task", "shots", "trials", "out", "set"}, {"rices"});
  std::vector<std::string> sets = args.all("set");
  if (auto t = args.get_or("task", ""); !t.empty()) sets.push_back("eval.task=" + t);
  if (auto s = args.get_or("shots", ""); !s.empty()) sets.push_back("eval.shots=[" + s + "]");
  if (auto n = args.get_or("trials", ""); !n.empty()) sets.push_back("eval.trials=" + n);
  if (args.flag("rices")) sets.push_back("eval.demo_selection=rices");
  const Config config = load_config(args.require("config"), sets);
  const WorldInfo& world = World::init(nullptr, nullptr);
  MpiComm comm(MPI_COMM_WORLD, MpiCommOptions{config.train.comm_timeout_seconds});
  pipeline::Tokenizer tokenizer(config.data.tokenizer);
  auto model = eval::load_eval_model(config.model, config.run.seed, args.require("checkpoint"),
                                     config.train.device);
  auto report = eval::run_eval(*model, tokenizer, config.eval, comm);
  if (world.rank == 0) {
    const std::string out = args.get_or("out", "eval_" + config.eval.task + ".json");
    write_file_atomic(out, eval::report_json(report));
    std::printf("%s", eval::report_table(report).c_str());
    std::printf("results: %s\n", out.c_str());
  }
  return kExitOk;
}

}  // namespace flam::cli
