#include "train/trainer.h"

#include <torch/torch.h>

#include "flam/build_config.h"
#if FLAM_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>

#include "core/check.h"
#include "core/clock.h"
#include "core/comm_wait.h"
#include "core/error.h"
#include "core/exit_codes.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/run_layout.h"
#include "core/signals.h"
#include "core/tfevents.h"
#include "pipeline/drop_reason.h"
#include "pipeline/image.h"
#include "pipeline/loader.h"
#include "pipeline/tokenizer.h"
#include "train/checkpoint/checkpoint_interval.h"
#include "train/checkpoint/checkpointer.h"
#include "train/eval/evaluator.h"
#include "train/model/flamingo.h"
#include "train/optim/schedule.h"
#include "train/plan.h"
#include "train/precision.h"
#include "train/tensor_comm.h"
#include "train/train_state.h"
#include "train/weights/model_weights.h"
#include "train/weights/pretrained_tensors.h"
#include "train/zero3/frozen_units.h"
#include "train/zero3/zero3_engine.h"

namespace flam::train {
namespace {

using Clock = SteadyClock;

// One dataset's micro-batch as tensors on the compute device.
struct DeviceBatch {
  torch::Tensor images;          // [B, T_img, 1, 3, S, S] compute dtype, CLIP-normalised
  torch::Tensor input_ids;       // [B, T] int64
  torch::Tensor attention_mask;  // [B, T] int64
  torch::Tensor labels;          // [B, T] int64, -100 where no loss
  int64_t tokens = 0;            // real (unpadded) tokens
};

// uint8 RGB -> CLIP mean/std normalised, in the compute dtype, on the device (the host copy stays
// uint8): cast 2 of train/precision.h.
DeviceBatch to_device(const pipeline::Batch& batch, torch::Device device, torch::Dtype dtype) {
  const int64_t B = batch.batch_size, T = batch.seq_len;
  const int64_t S = batch.image_size;
  DeviceBatch out;
  torch::Tensor images = torch::from_blob(const_cast<uint8_t*>(batch.images.data()),
                                          {B, batch.max_images, 1, 3, S, S}, torch::kUInt8)
                             .to(device);
  const auto& m = pipeline::kClipMean;
  const auto& s = pipeline::kClipStd;
  auto mean =
      torch::tensor({m[0], m[1], m[2]}, torch::TensorOptions(device)).view({1, 1, 1, 3, 1, 1});
  auto std =
      torch::tensor({s[0], s[1], s[2]}, torch::TensorOptions(device)).view({1, 1, 1, 3, 1, 1});
  out.images = ((images.to(torch::kFloat) / 255.0f - mean) / std).to(dtype);
  auto ids = [&](const std::vector<int64_t>& values) {
    return torch::from_blob(const_cast<int64_t*>(values.data()), {B, T}, torch::kInt64)
        .to(device, /*non_blocking=*/false, /*copy=*/true);
  };
  out.input_ids = ids(batch.input_ids);
  out.attention_mask = ids(batch.attention_mask);
  out.labels = ids(batch.labels);
  for (int64_t mask : batch.attention_mask) out.tokens += mask;
  return out;
}

int64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * 4096;
}

// The process's peak resident bytes (VmHWM) since start or since reset_peak_resident().
int64_t peak_resident_bytes() {
  std::ifstream status("/proc/self/status");
  std::string key;
  int64_t kib = 0;
  while (status >> key) {
    if (key == "VmHWM:") {
      status >> kib;
      return kib * 1024;
    }
    status.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return 0;
}

// Lowers the peak to the current resident bytes (Linux clear_refs "5"), so that the metrics'
// peak is training's, not set-up's (which holds the whole model before the engine shards it,
// frozen weights included unless train.shard_frozen).
void reset_peak_resident() { std::ofstream("/proc/self/clear_refs") << "5"; }

// A [ranks] float tensor as a JSON list, seconds rounded to microseconds.
nlohmann::json per_rank(const torch::Tensor& values) {
  nlohmann::json out = nlohmann::json::array();
  for (int64_t r = 0; r < values.size(0); ++r) {
    out.push_back(std::round(values[r].item<double>() * 1e6) / 1e6);
  }
  return out;
}

// True on every rank if `local` is true on any rank.
bool any_rank(Comm& comm, bool local) {
  torch::Tensor flag = torch::tensor({local ? 1.0f : 0.0f});
  all_reduce(comm, flag, ReduceOp::kMax);
  return flag.item<float>() > 0.0f;
}

// The compute device, once the config has what training needs. Throws flam::Error(kConfig).
torch::Device checked_device(const TrainerConfig& config) {
  if (config.data.tokenizer.empty()) {
    throw Error(ErrorKind::kConfig,
                "data.tokenizer is empty: training needs a SentencePiece model (LLaMA's "
                "tokenizer.model, or one made with spm_train for a demo)",
                at_key("data.tokenizer"));
  }
  if (config.train.device == "cuda" && !torch::cuda::is_available()) {
    throw Error(ErrorKind::kConfig, "train.device is cuda but LibTorch sees no CUDA device",
                at_key("train.device"));
  }
  std::filesystem::create_directories(config.run.dir);
  return config.train.device == "cuda" ? torch::Device(torch::kCUDA, config.local_rank)
                                       : torch::Device(torch::kCPU);
}

// The model every rank builds, the same init (the engine broadcasts rank 0's anyway), placed per
// train/precision.h; with train.shard_frozen its frozen parameters are shape-only, and
// frozen_values() gives the engine their values. Throws flam::Error(kConfig) when `tokenizer`
// does not fit its vocabulary.
model::Flamingo new_model(const TrainerConfig& config, const pipeline::Tokenizer& tokenizer,
                          torch::Device device, const Precision& precision) {
  if (tokenizer.base_vocab_size() != config.model.lang.vocab_size) {
    throw Error(ErrorKind::kConfig,
                "the tokenizer has " + std::to_string(tokenizer.base_vocab_size()) +
                    " pieces but model.lang.vocab_size is " +
                    std::to_string(config.model.lang.vocab_size) +
                    ": the added tokens' ids would not match the model's embedding rows",
                at_key("model.lang.vocab_size"));
  }
  model::Flamingo model =
      weights::build_pretrained(config.model, config.run.seed,
                                config.train.shard_frozen ? model::FrozenStorage::kShapesOnly
                                                          : model::FrozenStorage::kValues);
  place_model(*model, device, precision);
  return model;
}

// The values of `model`'s shape-only frozen parameters, one tensor per call, as build_pretrained
// would have given them (weights::PretrainedTensors: the weight files read per tensor, the
// random init replayed for what they do not cover); empty when there are none. The returned
// function owns the open weight files; drop it once the engine has its slices.
std::function<at::Tensor(const std::string&)> frozen_values(const TrainerConfig& config,
                                                            model::FlamingoImpl& model) {
  std::set<std::string> names;
  for (const auto& item : model.named_parameters()) {
    if (model::is_shape_only(item.value())) names.insert(item.key());
  }
  if (names.empty()) return {};
  auto tensors = std::make_shared<weights::PretrainedTensors>(
      config.model, config.run.seed, [names](const std::string& n) { return names.count(n) > 0; });
  return [tensors](const std::string& name) { return tensors->get(name); };
}

// What one step measured: this rank's share until log_metrics() reduces it over the ranks.
struct StepMetrics {
  Clock::time_point start;
  double loss_laion = 0.0, loss_mmc4 = 0.0;          // mean over micro-steps
  double tokens = 0.0, samples = 0.0, images = 0.0;  // this rank's
  double data_wait = 0.0;                            // seconds in Loader::next()
  double comm_wait_start = 0.0;                      // comm_wait_seconds() at the start
  double lr = 0.0, grad_norm = 0.0;
  nlohmann::json eval = nlohmann::json::object();  // maybe_evaluate() at this step's end
};

// The parts of a run, built in the order they depend on each other (the constructor is the
// setup), and the phases of run_training().
class Trainer {
 public:
  Trainer(const TrainerConfig& config, Comm& comm, Comm& device_comm)
      : config_(config),
        options_(config.train),
        comm_(comm),
        lead_(comm.rank() == 0),
        device_(checked_device(config)),
        precision_(precision_of(config.train)),
        tokenizer_(config.data.tokenizer),
        model_(new_model(config, tokenizer_, device_, precision_)),
        engine_(
            model_->trained_units(),
            [this](const std::string& name) { return model_->weight_decay(name); }, device_comm,
            options_.optimizer, precision_.compute,
            options_.shard_frozen ? frozen_units(*model_) : std::vector<model::ParamUnit>{},
            check_memory_plan(config, comm.size()), decoder_layer_units(config.model),
            frozen_values(config, *model_)),
        laion_(pipeline::dataset_spec(config.data, pipeline::DatasetKind::kLaion, tokenizer_),
               comm.rank(), comm.size(), static_cast<uint64_t>(config.run.seed)),
        mmc4_(pipeline::dataset_spec(config.data, pipeline::DatasetKind::kMmc4, tokenizer_),
              comm.rank(), comm.size(), static_cast<uint64_t>(config.run.seed)),
        state_(engine_, laion_, mmc4_),
        checkpointer_(options_.checkpoint, config.run.dir, comm, config.config_hash) {
    if (options_.eval.every > 0 && options_.shard_frozen) {
      throw Error(ErrorKind::kConfig,
                  "train.eval needs the frozen weights on every rank: it cannot run with "
                  "train.shard_frozen (evaluate checkpoints with `flam eval` instead)",
                  at_key("train.eval.every"));
    }
    model_->set_unit_runner(&engine_);
    if (lead_) {
      FLAM_LOG(INFO) << "set-up peak resident " << peak_resident_bytes() / (1 << 20) << " MiB"
                     << (options_.shard_frozen ? " (frozen weights read per tensor)" : "");
    }
    reset_peak_resident();
    const Zero3Memory memory = engine_.memory();
    if (lead_) {
      FLAM_LOG(INFO) << "trained parameters " << engine_.layout().total_numel() << " in "
                     << engine_.layout().units.size() << " units over " << comm.size()
                     << " ranks; per rank: master " << memory.master_bytes << " B, moments "
                     << memory.moment_bytes << " B"
                     << (memory.offloaded ? " in host memory, device copy " +
                                                std::to_string(memory.device_copy_bytes) + " B"
                                          : std::string());
      if (options_.shard_frozen) {
        FLAM_LOG(INFO) << "frozen parameters " << engine_.frozen_layout().total_numel() << " in "
                       << engine_.frozen_layout().units.size() << " units, sharded; per rank "
                       << memory.frozen_bytes << " B";
      }
    }
  }

  bool done() const { return state_.step() >= options_.steps; }

  // Continues from the newest valid checkpoint of the run directory, if there is one.
  void resume() {
    if (std::optional<LoadedCheckpoint> loaded = checkpointer_.load_latest(engine_.layout())) {
      state_.restore(*loaded, comm_.rank(), comm_.size(), static_cast<uint64_t>(config_.run.seed));
      if (lead_) {
        FLAM_LOG(INFO) << "resumed from " << loaded->path << " at step " << state_.step();
      }
    }
    first_step_ = state_.step();
    if (lead_) {
      metrics_.open(run_layout::metrics_file(config_.run.dir), std::ios::app);
      events_.open(config_.run.dir);
    }
    last_save_ = Clock::now();
  }

  // One optimizer step: grad_accum micro-steps of both datasets, then the update (skipped on
  // every rank when any rank's loss is not finite).
  StepMetrics train_step() {
    StepMetrics m;
    m.start = Clock::now();
    m.comm_wait_start = comm_wait_seconds();
    bool finite = true;
    engine_.begin_step();
    for (int micro = 0; micro < options_.grad_accum; ++micro) {
      if (micro > 0) engine_.begin_micro_step();
      const bool micro_finite = micro_step(m);
      finite = finite && micro_finite;
    }
    const bool skip = any_rank(comm_, !finite);
    if (skip && !options_.skip_nonfinite) {
      throw Error(ErrorKind::kData, "non-finite loss at step " + std::to_string(state_.step()) +
                                        " (train.skip_nonfinite is off)");
    }
    m.lr = scheduled_lr(options_.schedule, options_.optimizer.lr, state_.step(), options_.steps);
    const Zero3StepResult result = state_.step(m.lr, options_.grad_clip, skip);
    if (result.skipped) {
      FLAM_LOG(WARN) << "step " << state_.step() - 1
                     << ": non-finite loss or gradient norm, step skipped ("
                     << state_.skipped_steps() << " so far)";
    }
    m.grad_norm = result.grad_norm;
    return m;
  }

  // Collective: losses averaged over ranks, counts summed, each rank's data wait and its
  // collective wait (seconds blocked in the step's collectives, this all-reduce included: the
  // ranks wait for the slowest, and all of them for a slow link). Rank 0 updates the progress
  // line and, every log_every steps, appends to metrics.jsonl.
  void log_metrics(const StepMetrics& m) {
    torch::Tensor sums =
        torch::tensor({static_cast<float>(m.loss_laion), static_cast<float>(m.loss_mmc4),
                       static_cast<float>(m.tokens), static_cast<float>(m.samples),
                       static_cast<float>(m.images)});
    all_reduce(comm_, sums, ReduceOp::kSum);
    torch::Tensor own =
        torch::tensor({static_cast<float>(m.data_wait),
                       static_cast<float>(comm_wait_seconds() - m.comm_wait_start)});
    torch::Tensor waits = torch::empty({comm_.size(), 2});  // [rank, (data, collective)]
    all_gather(comm_, own, waits);
    const torch::Tensor wait = waits.select(1, 0).max();
    const int64_t step = state_.step();
    // The same on every rank (m.eval is filled on all of them), so the drop sum below is a
    // collective only on the steps that write a metrics line.
    const bool logged = step % options_.log_every == 0 || step == options_.steps || !m.eval.empty();
    const nlohmann::json dropped = logged ? dropped_by_job() : nlohmann::json();
    const double step_time = seconds_since(m.start) - m.eval.value("eval_seconds", 0.0);
    checkpoint_stall_ += state_.take_stall_seconds();
    if (!lead_) return;
    const double loss_laion = sums[0].item<double>() / comm_.size();
    const double loss_mmc4 = sums[1].item<double>() / comm_.size();
    std::ostringstream extra;
    extra << "loss laion " << loss_laion << " mmc4 " << loss_mmc4 << " lr " << m.lr;
    progress_.update(step, extra.str());
    if (!logged) return;
    const Zero3Memory mem = engine_.memory();
    nlohmann::json line = {
        {"step", step},
        {"wall_time", unix_seconds()},
        {"loss_laion", loss_laion},
        {"loss_mmc4", loss_mmc4},
        {"lr", m.lr},
        {"grad_norm", m.grad_norm},
        {"skipped_steps", state_.skipped_steps()},
        {"samples_per_s", sums[3].item<double>() / step_time},
        {"tokens_per_s", sums[2].item<double>() / step_time},
        {"images_per_s", sums[4].item<double>() / step_time},
        {"step_time", step_time},
        {"data_wait", wait.item<double>()},
        {"data_wait_per_rank", per_rank(waits.select(1, 0))},
        {"collective_wait_per_rank", per_rank(waits.select(1, 1))},
        {"checkpoint_stall", checkpoint_stall_},
        {"memory",
         {{"master_bytes", mem.master_bytes},
          {"moment_bytes", mem.moment_bytes},
          {"grad_bytes", mem.grad_bytes},
          {"device_copy_bytes", mem.device_copy_bytes},
          {"frozen_bytes", mem.frozen_bytes},
          {"gathered_peak_bytes", mem.gathered_peak_bytes},
          {"resident_bytes", resident_bytes()},
          {"peak_resident_bytes", peak_resident_bytes()}}},
        {"dropped", dropped},
    };
    line.update(m.eval);
    metrics_ << line.dump() << '\n' << std::flush;
    events_.add_metrics(step, line);
    checkpoint_stall_ = 0.0;
  }

  // Collective. The in-training evaluation when one is due at this step (trainer.h): the trained
  // weights gathered in full onto every rank and installed into the model, which then runs
  // without its ZeRO-3 runner (generation's forward calls differ between ranks, so per-call
  // gathers would not line up), every task at every shot count, then the parameters emptied
  // again as between steps. Returns the metrics fields, or an empty object when none was due.
  nlohmann::json maybe_evaluate() {
    const TrainEvalOptions& e = options_.eval;
    const int64_t step = state_.step();
    if (e.every == 0 || step % e.every != 0 || step == state_.eval_step()) {
      return nlohmann::json::object();
    }
    const auto start = Clock::now();
    torch::NoGradGuard no_grad;
    const std::map<std::string, at::Tensor> full = engine_.full_parameters();
    std::vector<at::Tensor> installed;
    for (const model::ParamUnit& unit : model_->trained_units()) {
      for (const auto& [name, param] : unit.params) {
        const auto it = full.find(name);
        FLAM_CHECK(it != full.end()) << "trained parameter " << name << " not in the engine";
        param.set_data(it->second.to(device_, precision_.compute));
        installed.push_back(param);
      }
    }
    model_->set_unit_runner(nullptr);
    nlohmann::json out = nlohmann::json::object();
    for (const std::string& task : e.tasks) {
      eval::EvalOptions o = config_.eval;
      o.task = task;
      o.shots = e.shots;
      o.num_samples = e.num_samples;
      o.trials = 1;
      const eval::EvalReport report = eval::run_eval(*model_, tokenizer_, o, comm_);
      for (const eval::ShotResult& r : report.results) {
        out["eval_" + task + "_" + std::to_string(r.shots) + "shot"] = r.mean;
      }
    }
    model_->set_unit_runner(&engine_);
    for (const at::Tensor& param : installed) param.set_data(torch::empty({0}, param.options()));
    state_.set_eval_step(step);
    out["eval_seconds"] = seconds_since(start);
    if (lead_) {
      FLAM_LOG(INFO) << "evaluation at step " << step << ": " << out.dump();
    }
    return out;
  }

  // Rank 0: a metrics line of its own for an evaluation before the run's first step.
  void log_evaluation(const nlohmann::json& eval) {
    if (!lead_ || eval.empty()) return;
    nlohmann::json line = {{"step", state_.step()}, {"wall_time", unix_seconds()}};
    line.update(eval);
    metrics_ << line.dump() << '\n' << std::flush;
    events_.add_metrics(state_.step(), line);
  }

  // Collective. Commits a finished save, checkpoints when due (checkpoint_interval.h), and on a
  // stop signal seen by any rank checkpoints synchronously and returns the exit code.
  std::optional<int> maybe_checkpoint() {
    checkpointer_.poll();
    if (any_rank(comm_, stop_requested() != 0)) return stop();
    torch::Tensor since = torch::tensor({static_cast<float>(seconds_since(last_save_))});
    broadcast(comm_, since, 0);
    const std::optional<SaveOutcome>& last = checkpointer_.last_outcome();
    const double save_cost = last ? last->write_seconds : 0.0;
    if (!done() &&
        checkpoint_due(options_.checkpoint, state_.step(), since.item<double>(), save_cost)) {
      save(/*sync=*/false);
      last_save_ = Clock::now();
    }
    return std::nullopt;
  }

  // Collective. The final checkpoint (when checkpointing is on and this run took a step).
  int finish() {
    const bool checkpointing =
        options_.checkpoint.every_steps > 0 || options_.checkpoint.every_minutes > 0.0;
    if (checkpointing && state_.step() > first_step_) save(/*sync=*/true);
    checkpointer_.wait();
    if (lead_) progress_.finish(state_.step());
    // The totals; the last metrics line (the last step is always logged) holds them too.
    const nlohmann::json dropped = dropped_by_job();
    if (lead_) {
      FLAM_LOG(INFO) << "samples dropped, by dataset and reason: " << dropped.dump();
    }
    return kExitOk;
  }

 private:
  // Collective. The samples all ranks dropped so far, per dataset and reason (each rank's
  // Loader::dropped_total, summed over pipeline::drop::kAll; a name outside it, which would be a
  // bug, counts as "other"). Reasons with no drop are left out.
  nlohmann::json dropped_by_job() {
    constexpr size_t kReasons = std::size(pipeline::drop::kAll);
    torch::Tensor counts = torch::zeros({2, static_cast<int64_t>(kReasons) + 1}, torch::kLong);
    const pipeline::Loader* loaders[2] = {&laion_, &mmc4_};
    for (int d = 0; d < 2; ++d) {
      for (const auto& [reason, n] : loaders[d]->dropped_total()) {
        const auto* end = std::end(pipeline::drop::kAll);
        const auto* it = std::find_if(std::begin(pipeline::drop::kAll), end,
                                      [&](const char* name) { return reason == name; });
        counts[d][it - std::begin(pipeline::drop::kAll)] += n;
      }
    }
    all_reduce(comm_, counts, ReduceOp::kSum);
    nlohmann::json out = {{"laion", nlohmann::json::object()}, {"mmc4", nlohmann::json::object()}};
    for (int d = 0; d < 2; ++d) {
      nlohmann::json& by_reason = out[d == 0 ? "laion" : "mmc4"];
      for (size_t r = 0; r <= kReasons; ++r) {
        const int64_t n = counts[d][static_cast<int64_t>(r)].item<int64_t>();
        if (n > 0) by_reason[r < kReasons ? pipeline::drop::kAll[r] : "other"] = n;
      }
    }
    return out;
  }

  // Forward and backward of one LAION and one MMC4 micro-batch; false if the loss is not finite.
  bool micro_step(StepMetrics& m) {
    const double accum = options_.grad_accum;
    const auto wait_start = Clock::now();
    const pipeline::Batch laion_batch = laion_.next();
    const pipeline::Batch mmc4_batch = mmc4_.next();
    m.data_wait += seconds_since(wait_start);
    const DeviceBatch a = to_device(laion_batch, device_, precision_.compute);
    const DeviceBatch b = to_device(mmc4_batch, device_, precision_.compute);

    torch::Tensor loss_laion = model::FlamingoImpl::loss(
        model_->forward(a.images, a.input_ids, a.attention_mask), a.labels);
    torch::Tensor loss_mmc4 = model::FlamingoImpl::loss(
        model_->forward(b.images, b.input_ids, b.attention_mask), b.labels);
    torch::Tensor loss = (loss_laion * config_.data.laion.loss_multiplier +
                          loss_mmc4 * config_.data.mmc4.loss_multiplier) /
                         accum;
    loss.backward();

    m.loss_laion += loss_laion.item<double>() / options_.grad_accum;
    m.loss_mmc4 += loss_mmc4.item<double>() / options_.grad_accum;
    m.tokens += static_cast<double>(a.tokens + b.tokens);
    m.samples += laion_batch.batch_size + mmc4_batch.batch_size;
    for (const auto* batch : {&laion_batch, &mmc4_batch}) {
      m.images += static_cast<double>(
          std::count(batch->image_present.begin(), batch->image_present.end(), 1));
    }
    return std::isfinite(loss.item<double>());
  }

  // A sync checkpoint of this step; kExitRequeue once written, kExitIoError if it failed (the
  // failure is logged and the previous checkpoint is intact: a resubmitted job resumes there).
  int stop() {
    if (lead_) {
      FLAM_LOG(WARN) << "stop requested: checkpointing step " << state_.step() << " and exiting";
    }
    if (save(/*sync=*/true)) return kExitRequeue;
    const std::optional<SaveOutcome>& last = checkpointer_.last_outcome();
    FLAM_LOG(ERROR) << "stop requested but the checkpoint of step " << state_.step()
                    << " failed: " << (last ? last->error : "")
                    << "; exiting with the I/O error code";
    return kExitIoError;
  }

  bool save(bool sync) {
    const auto start = Clock::now();
    const bool ok = checkpointer_.save(state_.step(), state_, sync);
    const double stall = seconds_since(start);
    checkpoint_stall_ += stall;
    if (lead_) {
      FLAM_LOG(INFO) << "checkpoint of step " << state_.step() << (sync ? " (sync)" : " (async)")
                     << ": " << stall << " s on the training thread";
    }
    return ok;
  }

  const TrainerConfig& config_;
  const TrainOptions& options_;
  Comm& comm_;
  const bool lead_;
  const torch::Device device_;
  const Precision precision_;
  pipeline::Tokenizer tokenizer_;
  model::Flamingo model_;
  Zero3Engine engine_;
  pipeline::Loader laion_, mmc4_;
  TrainState state_;
  Checkpointer checkpointer_;  // after state_: its writer thread reads state_ until joined
  std::ofstream metrics_;      // rank 0: RUN/metrics.jsonl
  TfEventsWriter events_;      // rank 0: the same scalars for TensorBoard, beside metrics.jsonl
  Progress progress_{"train", config_.train.steps, 10.0};
  Clock::time_point last_save_;
  int64_t first_step_ = 0;
  double checkpoint_stall_ = 0.0;  // training-thread seconds in saves since the last metrics line
};

}  // namespace

Checkpointing check_memory_plan(const TrainerConfig& config, int ranks) {
  int64_t device_bytes = 0;
  std::string source = "train.memory_limit";
  if (!config.train.memory_limit.empty()) {
    device_bytes = parse_bytes(config.train.memory_limit);
#if FLAM_WITH_CUDA
  } else if (config.train.device == "cuda" && torch::cuda::is_available()) {
    device_bytes = static_cast<int64_t>(
        at::cuda::getDeviceProperties(static_cast<c10::DeviceIndex>(config.local_rank))
            ->totalGlobalMem);
    source = "the GPU's memory";
#endif
  }
  const std::vector<Checkpointing> policies = checkpointing_policies(config.train.checkpointing);
  if (device_bytes <= 0) return policies.front();
  const PlanInput in = plan_input(config.model, config.data, config.train, ranks, device_bytes);
  const MemoryPlan plan = plan_memory(in);
  if (!plan.fits) {
    throw Error(ErrorKind::kConfig,
                "the memory plan does not fit: " + format_bytes(plan.peak_bytes) + " per rank on " +
                    std::to_string(ranks) + " ranks (checkpointing " +
                    checkpointing_name(plan.policy) + "), " + source + " is " +
                    format_bytes(device_bytes) + "; change " + keys_to_change(in) +
                    " (`flam plan --config F --ranks " + std::to_string(ranks) +
                    "` prints the budget)",
                at_key("train.memory_limit"));
  }
  return plan.policy;
}

int run_training(const TrainerConfig& config, Comm& comm, Comm& device_comm) {
  Trainer trainer(config, comm, device_comm);
  trainer.resume();
  trainer.log_evaluation(trainer.maybe_evaluate());
  while (!trainer.done()) {
    StepMetrics metrics = trainer.train_step();
    metrics.eval = trainer.maybe_evaluate();
    trainer.log_metrics(metrics);
    if (const std::optional<int> exit_code = trainer.maybe_checkpoint()) return *exit_code;
  }
  return trainer.finish();
}

}  // namespace flam::train
