#include <cstdio>
#include <string>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "core/error.h"
#include "core/exit_codes.h"
#include "train/model/param_count.h"

namespace flam::cli {
namespace {

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 4) {
    bytes /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f %s", bytes, units[u]);
  return buf;
}

void row(const std::string& name, int64_t params, int64_t trainable) {
  std::printf("%-40s %15lld %15lld %12s %12s\n", name.c_str(), static_cast<long long>(params),
              static_cast<long long>(trainable), human_bytes(4.0 * params).c_str(),
              human_bytes(2.0 * params).c_str());
}

}  // namespace

int cmd_inspect_model(const Argv& argv) {
  Args args(argv, {"config", "set"}, {});
  if (!args.positionals().empty()) {
    throw Error(ErrorKind::kUsage, "usage: flam inspect model --config F [--set key=value ...]");
  }
  Config config = load_config(args.get_or("config", ""), args.all("set"));
  std::printf("%-40s %15s %15s %12s %12s\n", "component", "params", "trainable", "fp32", "bf16");
  int64_t total = 0, trainable = 0;
  for (const auto& c : model::count_parameters(config.model)) {
    row(c.name, c.params, c.trainable);
    total += c.params;
    trainable += c.trainable;
  }
  row("total", total, trainable);
  std::printf("\ntrainable (ours: Perceiver, cross-attention, 2 embedding rows): %lld\n",
              static_cast<long long>(trainable));
  std::printf("trainable as OpenFlamingo's factory.py counts it (whole input embedding): %lld\n",
              static_cast<long long>(model::openflamingo_trainable_count(config.model)));
  std::printf("ZeRO-3 state of the trainable parameters (16 bytes each, all ranks): %s\n",
              human_bytes(16.0 * trainable).c_str());
  return kExitOk;
}

}  // namespace flam::cli
