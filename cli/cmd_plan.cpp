// flam plan --config F [--ranks N] [--gpu-memory 24GiB] [--workspace 1.5GiB]: the per-rank memory
// budget of a training run (train/plan.h), line by line, with the checkpointing policy and the
// micro-batch and gradient accumulation per dataset that fit. Exit 0 when the run fits, 2 (a
// config error: never retried) when it does not, naming the keys to change.
#include <cstdio>
#include <string>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "core/error.h"
#include "core/exit_codes.h"
#include "train/plan.h"

namespace flam::cli {
namespace {

void line(const train::PlanLine& l) {
  std::printf("  %-38s %10s   %s\n", l.name.c_str(), train::format_bytes(l.bytes).c_str(),
              l.detail.c_str());
}

}  // namespace

int cmd_plan(const Argv& argv) {
  Args args(argv, {"config", "set", "ranks", "gpu-memory", "workspace"}, {});
  if (!args.positionals().empty()) {
    throw Error(ErrorKind::kUsage,
                "usage: flam plan --config F [--ranks N] [--gpu-memory 24GiB] [--set k=v ...]");
  }
  const Config config = load_config(args.get_or("config", ""), args.all("set"));
  const int64_t ranks =
      args.get_int("ranks", int64_t{config.slurm.nodes} * config.slurm.ntasks_per_node);
  if (ranks < 1) throw Error(ErrorKind::kUsage, "--ranks must be at least 1");
  const std::string memory =
      config.train.memory_limit.empty() ? "80GiB" : config.train.memory_limit;
  const std::string workspace = args.get_or("workspace", "");
  const train::PlanInput in =
      train::plan_input(config.model, config.data, config.train, static_cast<int>(ranks),
                        train::parse_bytes(args.get_or("gpu-memory", memory)),
                        workspace.empty() ? 0 : train::parse_bytes(workspace));
  const train::MemoryPlan plan = train::plan_memory(in);

  std::printf("memory plan: %d ranks, %s per device, %s compute, frozen weights %s\n", in.ranks,
              train::format_bytes(in.device_bytes).c_str(), config.train.precision.c_str(),
              in.shard_frozen ? "sharded" : "replicated");
  std::printf("\nper rank, every micro-step:\n");
  for (const auto& l : plan.fixed) line(l);
  std::printf("  %-38s %10s\n", "subtotal", train::format_bytes(plan.fixed_bytes).c_str());
  std::printf("\ncheckpointing: %s%s\n", train::checkpointing_name(plan.policy),
              in.policies.size() > 1 ? " (auto: the least recomputing policy that fits)" : "");
  for (size_t d = 0; d < plan.datasets.size(); ++d) {
    const train::DatasetPlan& dp = plan.datasets[d];
    const train::PlanDataset& ds = in.datasets[d];
    std::printf("\n%s: configured %dx%d, %d images per sequence; micro-batch %d x grad_accum %d\n",
                dp.name.c_str(), ds.batch_size, ds.seq_len, ds.images_per_sequence, dp.micro_batch,
                dp.grad_accum);
    for (const auto& l : dp.activations) line(l);
    std::printf("  %-38s %10s\n", "activations", train::format_bytes(dp.activation_bytes).c_str());
    std::printf("  largest micro-batch that fits:");
    for (size_t p = 0; p < in.policies.size(); ++p) {
      std::printf(" %s %d%s", train::checkpointing_name(in.policies[p]), dp.largest_micro_batch[p],
                  p + 1 < in.policies.size() ? "," : "\n");
    }
  }
  std::printf("\nper-GPU total (peak): %s of %s: %s\n",
              train::format_bytes(plan.peak_bytes).c_str(),
              train::format_bytes(in.device_bytes).c_str(), plan.fits ? "fits" : "DOES NOT FIT");
  if (in.offload_optimizer) {
    std::printf("host memory per rank (offloaded master and moments): %s\n",
                train::format_bytes(plan.host_bytes).c_str());
  }
  if (!in.shard_frozen) {
    train::PlanInput sharded = in;
    sharded.shard_frozen = true;
    const train::MemoryPlan alternative = train::plan_memory(sharded);
    std::printf("with train.shard_frozen: true: %s, checkpointing %s, micro-batch",
                train::format_bytes(alternative.peak_bytes).c_str(),
                train::checkpointing_name(alternative.policy));
    for (const train::DatasetPlan& dp : alternative.datasets)
      std::printf(" %s %d x %d", dp.name.c_str(), dp.micro_batch, dp.grad_accum);
    std::printf("%s\n", alternative.fits ? "" : " (does not fit either)");
  }
  if (!in.offload_optimizer) {
    train::PlanInput offloaded = in;
    offloaded.offload_optimizer = true;
    const train::MemoryPlan alternative = train::plan_memory(offloaded);
    std::printf("with train.optimizer.offload: true: %s per GPU (%s more in host memory)%s\n",
                train::format_bytes(alternative.peak_bytes).c_str(),
                train::format_bytes(alternative.host_bytes).c_str(),
                alternative.fits ? "" : ", does not fit either");
  }
  if (plan.fits) return kExitOk;
  std::fprintf(stderr, "flam plan: the run does not fit; change %s\n",
               train::keys_to_change(in).c_str());
  return kExitUsage;
}

}  // namespace flam::cli
