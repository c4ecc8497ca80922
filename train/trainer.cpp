#include "train/trainer.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "core/check.h"
#include "core/error.h"
#include "core/exit_codes.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/signals.h"
#include "core/tfevents.h"
#include "pipeline/loader.h"
#include "pipeline/tokenizer.h"
#include "train/checkpoint/checkpointer.h"
#include "train/model/flamingo.h"
#include "train/optim/schedule.h"
#include "train/tensor_comm.h"
#include "train/weights/model_weights.h"
#include "train/zero3/zero3_engine.h"

namespace flam::train {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// One dataset's micro-batch as tensors on the compute device.
struct DeviceBatch {
  torch::Tensor images;          // [B, T_img, 1, 3, S, S] float, CLIP-normalised
  torch::Tensor input_ids;       // [B, T] int64
  torch::Tensor attention_mask;  // [B, T] int64
  torch::Tensor labels;          // [B, T] int64, -100 where no loss
  int64_t tokens = 0;            // real (unpadded) tokens
};

// uint8 RGB -> CLIP mean/std normalised floats, on the device (the host copy stays uint8).
DeviceBatch to_device(const pipeline::Batch& batch, torch::Device device, torch::Dtype dtype) {
  static const float kMean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
  static const float kStd[3] = {0.26862954f, 0.26130258f, 0.27577711f};
  const int64_t B = batch.batch_size, T = batch.seq_len;
  const int64_t S = batch.image_size;
  DeviceBatch out;
  torch::Tensor images = torch::from_blob(const_cast<uint8_t*>(batch.images.data()),
                                          {B, batch.max_images, 1, 3, S, S}, torch::kUInt8)
                             .to(device);
  auto mean = torch::tensor({kMean[0], kMean[1], kMean[2]}, torch::TensorOptions(device))
                  .view({1, 1, 1, 3, 1, 1});
  auto std = torch::tensor({kStd[0], kStd[1], kStd[2]}, torch::TensorOptions(device))
                 .view({1, 1, 1, 3, 1, 1});
  out.images = ((images.to(torch::kFloat) / 255.0f - mean) / std).to(dtype);
  auto ids = [&](const std::vector<int64_t>& values) {
    return torch::from_blob(const_cast<int64_t*>(values.data()), {B, T}, torch::kInt64)
        .to(device, /*non_blocking=*/false, /*copy=*/true);
  };
  out.input_ids = ids(batch.input_ids);
  out.attention_mask = ids(batch.attention_mask);
  out.labels = ids(batch.labels);
  for (int64_t m : batch.attention_mask) out.tokens += m;
  return out;
}

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

int64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * 4096;
}

// True on every rank if `local` is true on any rank.
bool any_rank(Comm& comm, bool local) {
  torch::Tensor flag = torch::tensor({local ? 1.0f : 0.0f});
  all_reduce(comm, flag, ReduceOp::kMax);
  return flag.item<float>() > 0.0f;
}

// What a step measured, summed or averaged over the ranks.
struct StepMetrics {
  double loss_laion = 0.0, loss_mmc4 = 0.0;  // mean over ranks and micro-steps
  double tokens = 0.0, samples = 0.0, images = 0.0;  // over all ranks
  double data_wait = 0.0;                    // slowest rank
};

}  // namespace

int run_training(const TrainerConfig& config, Comm& comm, Comm& device_comm) {
  const TrainOptions& options = config.train;
  if (config.data.tokenizer.empty()) {
    throw Error(ErrorKind::kConfig,
                "data.tokenizer is empty: training needs a SentencePiece model (LLaMA's "
                "tokenizer.model, or one made with spm_train for a demo)",
                at_key("data.tokenizer"));
  }
  if (options.device == "cuda" && !torch::cuda::is_available()) {
    throw Error(ErrorKind::kConfig, "train.device is cuda but LibTorch sees no CUDA device",
                at_key("train.device"));
  }
  const torch::Device device = options.device == "cuda"
                                   ? torch::Device(torch::kCUDA, config.local_rank)
                                   : torch::Device(torch::kCPU);
  const torch::Dtype dtype = options.precision == "bf16" ? torch::kBFloat16 : torch::kFloat;
  const bool lead = comm.rank() == 0;
  std::filesystem::create_directories(config.run.dir);

  pipeline::Tokenizer tokenizer(config.data.tokenizer);
  if (tokenizer.base_vocab_size() != config.model.lang.vocab_size) {
    throw Error(ErrorKind::kConfig,
                "the tokenizer has " + std::to_string(tokenizer.base_vocab_size()) +
                    " pieces but model.lang.vocab_size is " +
                    std::to_string(config.model.lang.vocab_size) +
                    ": the added tokens' ids would not match the model's embedding rows",
                at_key("model.lang.vocab_size"));
  }

  // The model: every rank builds the same random init (the engine broadcasts rank 0's anyway).
  model::Flamingo model = weights::build_pretrained(config.model, config.run.seed);
  model->to(device, dtype);
  Zero3Engine engine(
      model->trained_blocks(), [&](const std::string& name) { return model->weight_decay(name); },
      device_comm, options.optimizer, dtype);
  model->set_block_runner(&engine);
  const Zero3Memory memory = engine.memory();
  if (lead) {
    FLAM_LOG(INFO) << "trained parameters " << engine.layout().total_numel() << " in "
                   << engine.layout().blocks.size() << " blocks over " << comm.size()
                   << " ranks; per rank: master " << memory.master_bytes << " B, moments "
                   << memory.moment_bytes << " B";
  }

  const uint64_t seed = static_cast<uint64_t>(config.run.seed);
  pipeline::Loader laion(config.data, pipeline::DatasetKind::kLaion, tokenizer, comm.rank(),
                         comm.size(), seed);
  pipeline::Loader mmc4(config.data, pipeline::DatasetKind::kMmc4, tokenizer, comm.rank(),
                        comm.size(), seed);

  Checkpointer checkpointer(options.checkpoint, config.run.dir, comm, config.config_hash);
  int64_t step = 0;
  int64_t skipped_steps = 0;
  if (std::optional<LoadedCheckpoint> loaded = checkpointer.load_latest(engine.layout())) {
    engine.import_slices(loaded->state.master, loaded->state.exp_avg, loaded->state.exp_avg_sq,
                         static_cast<int64_t>(loaded->state.scalars["optimizer_step"]));
    step = loaded->step;
    skipped_steps = static_cast<int64_t>(loaded->state.scalars["skipped_steps"]);
    laion.restore(loaded->loader_laion_all);
    mmc4.restore(loaded->loader_mmc4_all);
    if (loaded->old_world_size == comm.size()) {
      restore_rng_state(loaded->state.rng);
    } else {
      // A new rank count has no saved generator per rank: seed each from (seed, step, rank),
      // the same on every resume of this reshard.
      torch::manual_seed(static_cast<uint64_t>(config.run.seed) * 1000003u +
                         static_cast<uint64_t>(step) * 1009u + static_cast<uint64_t>(comm.rank()));
    }
    if (lead) {
      FLAM_LOG(INFO) << "resumed from " << loaded->path << " at step " << step;
    }
  }
  double checkpoint_stall = 0.0;  // training-thread seconds in saves since the last metrics line
  // A save snapshots the small state here; the background writer copies the slices into the last
  // save's buffers (already paged in) while the next step computes, and the optimizer step waits
  // for that copy (Checkpointer::wait_for_snapshot).
  auto save = [&](bool sync) {
    const auto start = Clock::now();
    RankState state = checkpointer.take_spare();
    state.loader_laion = laion.state();
    state.loader_mmc4 = mmc4.state();
    state.rng = rng_state();
    state.step = step;
    state.scalars["optimizer_step"] = static_cast<double>(engine.optimizer_step());
    state.scalars["skipped_steps"] = static_cast<double>(skipped_steps);
    const bool ok =
        checkpointer.save(step, engine.layout(), std::move(state), sync, [&engine](RankState& s) {
          engine.export_slices(&s.master, &s.exp_avg, &s.exp_avg_sq);
        });
    const double stall = seconds_since(start);
    checkpoint_stall += stall;
    if (lead) {
      FLAM_LOG(INFO) << "checkpoint of step " << step << (sync ? " (sync)" : " (async)")
                     << ": " << stall << " s on the training thread";
    }
    return ok;
  };

  std::ofstream metrics;
  if (lead) metrics.open(config.run.dir + "/metrics.jsonl", std::ios::app);
  TfEventsWriter events;  // the same scalars for TensorBoard, beside metrics.jsonl
  if (lead) events.open(config.run.dir);
  Progress progress("train", options.steps, 10.0);
  auto last_save = Clock::now();
  const int64_t first_step = step;
  const double multiplier_laion = config.data.laion.loss_multiplier;
  const double multiplier_mmc4 = config.data.mmc4.loss_multiplier;

  while (step < options.steps) {
    // ---- one optimizer step, top to bottom ----
    const auto step_start = Clock::now();
    StepMetrics m;
    bool finite = true;
    engine.begin_step();
    for (int micro = 0; micro < options.grad_accum; ++micro) {
      if (micro > 0) engine.begin_micro_step();
      const auto wait_start = Clock::now();
      const pipeline::Batch laion_batch = laion.next();
      const pipeline::Batch mmc4_batch = mmc4.next();
      m.data_wait += seconds_since(wait_start);
      const DeviceBatch a = to_device(laion_batch, device, dtype);
      const DeviceBatch b = to_device(mmc4_batch, device, dtype);

      torch::Tensor loss_laion = model::FlamingoImpl::loss(
          model->forward(a.images, a.input_ids, a.attention_mask), a.labels);
      torch::Tensor loss_mmc4 = model::FlamingoImpl::loss(
          model->forward(b.images, b.input_ids, b.attention_mask), b.labels);
      torch::Tensor loss = (loss_laion * multiplier_laion + loss_mmc4 * multiplier_mmc4) /
                           static_cast<double>(options.grad_accum);
      loss.backward();

      m.loss_laion += loss_laion.item<double>() / options.grad_accum;
      m.loss_mmc4 += loss_mmc4.item<double>() / options.grad_accum;
      finite = finite && std::isfinite(loss.item<double>());
      m.tokens += static_cast<double>(a.tokens + b.tokens);
      m.samples += laion_batch.batch_size + mmc4_batch.batch_size;
      for (const auto* batch : {&laion_batch, &mmc4_batch}) {
        m.images += static_cast<double>(
            std::count(batch->image_present.begin(), batch->image_present.end(), 1));
      }
    }
    const bool skip = any_rank(comm, !finite);
    if (skip && !options.skip_nonfinite) {
      throw Error(ErrorKind::kData, "non-finite loss at step " + std::to_string(step) +
                                        " (train.skip_nonfinite is off)");
    }
    const double lr = scheduled_lr(options.schedule, options.optimizer.lr, step, options.steps);
    const auto snapshot_wait = Clock::now();
    checkpointer.wait_for_snapshot();  // an async save may still be copying what step() changes
    checkpoint_stall += seconds_since(snapshot_wait);
    const Zero3StepResult result = engine.step(lr, options.grad_clip, skip);
    if (result.skipped) {
      ++skipped_steps;
      FLAM_LOG(WARN) << "step " << step << ": non-finite loss or gradient norm, step skipped ("
                     << skipped_steps << " so far)";
    }
    ++step;

    // ---- metrics (losses averaged over ranks, counts summed, data wait of the slowest) ----
    torch::Tensor sums =
        torch::tensor({static_cast<float>(m.loss_laion), static_cast<float>(m.loss_mmc4),
                       static_cast<float>(m.tokens), static_cast<float>(m.samples),
                       static_cast<float>(m.images)});
    all_reduce(comm, sums, ReduceOp::kSum);
    torch::Tensor wait = torch::tensor({static_cast<float>(m.data_wait)});
    all_reduce(comm, wait, ReduceOp::kMax);
    const double step_time = seconds_since(step_start);
    const double loss_laion = sums[0].item<double>() / comm.size();
    const double loss_mmc4 = sums[1].item<double>() / comm.size();
    if (lead) {
      std::ostringstream extra;
      extra << "loss laion " << loss_laion << " mmc4 " << loss_mmc4 << " lr " << lr;
      progress.update(step, extra.str());
      if (step % options.log_every == 0 || step == options.steps) {
        const Zero3Memory mem = engine.memory();
        nlohmann::json line = {
            {"step", step},
            {"loss_laion", loss_laion},
            {"loss_mmc4", loss_mmc4},
            {"lr", lr},
            {"grad_norm", result.grad_norm},
            {"skipped_steps", skipped_steps},
            {"samples_per_s", sums[3].item<double>() / step_time},
            {"tokens_per_s", sums[2].item<double>() / step_time},
            {"images_per_s", sums[4].item<double>() / step_time},
            {"step_time", step_time},
            {"data_wait", wait.item<double>()},
            {"checkpoint_stall", checkpoint_stall},
            {"wall_time", std::chrono::duration<double>(
                              std::chrono::system_clock::now().time_since_epoch()).count()},
            {"memory",
             {{"master_bytes", mem.master_bytes},
              {"moment_bytes", mem.moment_bytes},
              {"grad_bytes", mem.grad_bytes},
              {"gathered_peak_bytes", mem.gathered_peak_bytes},
              {"resident_bytes", resident_bytes()}}},
        };
        metrics << line.dump() << '\n' << std::flush;
        events.add_metrics(step, line);
        checkpoint_stall = 0.0;
      }
    }

    // ---- checkpoint when due; a stop signal on any rank: checkpoint now, exit for requeue ----
    checkpointer.poll();
    if (any_rank(comm, stop_requested() != 0)) {
      if (lead) {
        FLAM_LOG(WARN) << "stop requested: checkpointing step " << step << " and exiting";
      }
      if (!save(/*sync=*/true)) {
        // The failure is logged and the previous checkpoint is intact: a resubmitted job
        // resumes from there, losing the steps since.
        FLAM_LOG(ERROR) << "stop requested but the checkpoint of step " << step
                        << " failed: "
                        << (checkpointer.last_outcome() ? checkpointer.last_outcome()->error : "")
                        << "; exiting with the I/O error code";
        return kExitIoError;
      }
      return kExitRequeue;
    }
    torch::Tensor since = torch::tensor({static_cast<float>(seconds_since(last_save))});
    broadcast(comm, since, 0);
    const double save_cost =
        checkpointer.last_outcome() ? checkpointer.last_outcome()->write_seconds : 0.0;
    if (step < options.steps &&
        checkpoint_due(options.checkpoint, step, since.item<double>(), save_cost)) {
      save(/*sync=*/false);
      last_save = Clock::now();
    }
  }
  const bool checkpointing =
      options.checkpoint.every_steps > 0 || options.checkpoint.every_minutes > 0.0;
  if (checkpointing && step > first_step) {
    save(/*sync=*/true);
  }
  checkpointer.wait();
  if (lead) progress.finish(step);
  return kExitOk;
}

}  // namespace flam::train
