#include "train/checkpoint/checkpointer.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <exception>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>
#include <utility>

#include "core/atomic_file.h"
#include "core/check.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/run_layout.h"
#include "pipeline/s3.h"
#include "train/checkpoint/checkpoint_reader.h"
#include "train/checkpoint/manifest.h"
#include "train/checkpoint/rank_file.h"
#include "train/zero3/flat_layout_check.h"

namespace flam::train {
namespace {

namespace fs = std::filesystem;
using Clock = SteadyClock;

// The counters as the rank file's "scalars" section and the manifest store them.
constexpr const char* kOptimizerStep = "optimizer_step";
constexpr const char* kSkippedSteps = "skipped_steps";

std::map<std::string, double> counters(const RankState& state) {
  return {{kOptimizerStep, static_cast<double>(state.optimizer_step)},
          {kSkippedSteps, static_cast<double>(state.skipped_steps)}};
}

// A counter absent from the file (a checkpoint written without it) reads as 0.
int64_t counter(const std::map<std::string, double>& scalars, const char* name) {
  const auto it = scalars.find(name);
  return it == scalars.end() ? 0 : static_cast<int64_t>(it->second);
}

void remove_tree_quietly(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) {
    FLAM_LOG(WARN) << "checkpoint: cannot remove " << path << ": " << ec.message();
  }
}

// FLAM_CHECKs that `state` holds one slice of layout.slice_numel(b) floats per unit.
void check_slices(const FlatLayout& layout, const RankState& state) {
  for (const auto* buffers : {&state.master, &state.exp_avg, &state.exp_avg_sq}) {
    FLAM_CHECK(buffers->size() == layout.units.size())
        << buffers->size() << " slices for " << layout.units.size() << " units";
    for (size_t b = 0; b < layout.units.size(); ++b) {
      FLAM_CHECK(static_cast<int64_t>((*buffers)[b].size()) == layout.slice_numel(b))
          << "unit " << b << ": slice of " << (*buffers)[b].size() << " floats, layout says "
          << layout.slice_numel(b);
    }
  }
}

RankFileSummary write_state(int rank, int world_size, const FlatLayout& layout,
                            const RankState& state, const std::string& path) {
  nlohmann::json meta = {{"rank", rank}, {"world_size", world_size}, {"step", state.step}};
  for (size_t b = 0; b < layout.units.size(); ++b) {
    meta["blocks"].push_back(layout.units[b].name);
    meta["slice_numel"].push_back(layout.slice_numel(b));
  }
  const std::string meta_text = meta.dump();
  const std::string scalars = encode_scalars(counters(state));
  std::vector<SectionData> sections = {
      {"meta", meta_text.data(), meta_text.size()},
      {"scalars", scalars.data(), scalars.size()},
      {"rng", state.rng.data(), state.rng.size()},
      {"loader/laion", state.loader_laion.data(), state.loader_laion.size()},
      {"loader/mmc4", state.loader_mmc4.data(), state.loader_mmc4.size()},
  };
  const std::vector<std::vector<float>>* buffers[] = {&state.master, &state.exp_avg,
                                                      &state.exp_avg_sq};
  for (size_t k = 0; k < 3; ++k) {
    for (size_t b = 0; b < layout.units.size(); ++b) {
      const std::vector<float>& v = (*buffers[k])[b];
      sections.push_back({unit_section_name(kStateKinds[k], b), v.data(), v.size() * 4});
    }
  }
  return write_rank_file(path, sections);
}

// The s3:// copy of a checkpoints directory (train.checkpoint.dir): the same names under a
// prefix. An object store has no rename, so the commit point is the manifest object, written
// after every rank file is there; `latest` follows it. A step_N/ prefix without a manifest is a
// save that did not commit.
class RemoteCheckpoints {
 public:
  explicit RemoteCheckpoints(std::string url) : url_(std::move(url)) {
    while (!url_.empty() && url_.back() == '/') url_.pop_back();
    pipeline::parse_s3_url(url_);
  }

  std::string url(const std::string& name) const { return url_ + "/" + name; }
  std::string step_url(int64_t step) const { return url(run_layout::step_dir_name(step)); }
  const std::string& root() const { return url_; }

  // step -> the names of its objects (relative to step_N/).
  std::map<int64_t, std::vector<std::string>> steps() const {
    std::map<int64_t, std::vector<std::string>> out;
    for (const auto& object : s3().list(url_ + "/")) {
      const std::string rel = object.url.substr(url_.size() + 1);
      const size_t slash = rel.find('/');
      if (slash == std::string::npos) continue;
      const std::optional<int64_t> step = run_layout::parse_step_dir_name(rel.substr(0, slash));
      if (step) out[*step].push_back(rel.substr(slash + 1));
    }
    return out;
  }

  // Steps with a manifest, newest first.
  std::vector<int64_t> committed() const {
    std::vector<int64_t> out;
    for (const auto& [step, names] : steps()) {
      if (std::find(names.begin(), names.end(), "manifest.json") != names.end()) {
        out.push_back(step);
      }
    }
    std::sort(out.rbegin(), out.rend());
    return out;
  }

  // The manifest goes first, so that a step half deleted no longer counts.
  void remove_step(int64_t step, std::vector<std::string> names) const {
    std::stable_partition(names.begin(), names.end(),
                          [](const std::string& name) { return name == "manifest.json"; });
    for (const auto& name : names) s3().remove(step_url(step) + "/" + name);
  }

  static const pipeline::S3Client& s3() { return pipeline::default_s3_client(); }

 private:
  std::string url_;
};

}  // namespace

struct Checkpointer::Remote : RemoteCheckpoints {
  using RemoteCheckpoints::RemoteCheckpoints;
};

struct Checkpointer::Job {
  int64_t step = 0;
  FlatLayout layout;
  RankState state;
  std::string tmp_dir;
  std::thread thread;
  std::atomic<bool> done{false};
  std::promise<void> copied;  // set by the thread once the slices are in `state`
  // Written by the thread before `done`, read after join.
  bool ok = false;
  std::string error;
  RankFileSummary summary;
  double seconds = 0.0;
};

Checkpointer::Checkpointer(const CheckpointOptions& options, std::string run_dir, Comm& comm,
                           std::string config_hash)
    : options_(options),
      dir_(run_layout::checkpoints_dir(run_dir)),
      comm_(comm),
      config_hash_(std::move(config_hash)) {
  if (pipeline::is_s3_url(options_.dir)) {
    remote_ = std::make_unique<Remote>(options_.dir);
  } else if (!options_.dir.empty()) {
    dir_ = options_.dir;
  }
  if (comm_.rank() != 0) return;
  if (remote_) {
    // No save is in flight yet: a step without its manifest is left over from a crash.
    try {
      for (const auto& [step, names] : remote_->steps()) {
        if (std::find(names.begin(), names.end(), "manifest.json") != names.end()) continue;
        FLAM_LOG(INFO) << "checkpoint: removing partial " << remote_->step_url(step)
                       << "/ left by an interrupted save";
        remote_->remove_step(step, names);
      }
    } catch (const Error& e) {
      FLAM_LOG(WARN) << "checkpoint: cannot clean " << remote_->root() << ": " << e.what();
    }
  }
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) {
    FLAM_LOG(WARN) << "checkpoint: cannot create " << dir_ << ": " << ec.message();
    return;
  }
  // No save is in flight yet: every *.tmp here is left over from a crash.
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    if (run_layout::is_tmp_name(entry.path().filename().string())) {
      FLAM_LOG(INFO) << "checkpoint: removing partial " << entry.path().string()
                     << " left by an interrupted save";
      remove_tree_quietly(entry.path().string());
    }
  }
}

Checkpointer::~Checkpointer() {
  if (!job_) return;
  if (std::uncaught_exceptions() > 0) {
    // No collectives while unwinding: the partial step_N.tmp/ is cleaned at the next start.
    if (job_->thread.joinable()) job_->thread.join();
    return;
  }
  try {
    finish(true);
  } catch (const std::exception& e) {
    FLAM_LOG(ERROR) << "checkpoint: final save failed: " << e.what();
  }
}

bool Checkpointer::save(int64_t step, SnapshotSource& source, bool sync) {
  finish(true);
  const FlatLayout& layout = source.layout();
  FLAM_CHECK(layout.world_size == comm_.size())
      << "layout for " << layout.world_size << " ranks, comm has " << comm_.size();
  const std::string tmp_dir = run_layout::tmp_dir(run_layout::step_dir(dir_, step));
  int64_t created = 1;
  std::string error;
  if (comm_.rank() == 0) {
    std::error_code ec;
    fs::remove_all(tmp_dir, ec);
    if (!ec) fs::create_directories(tmp_dir, ec);
    if (ec) {
      created = 0;
      error = "cannot create " + tmp_dir + ": " + ec.message();
    }
  }
  comm_.broadcast(&created, 1, DType::kInt64, 0);
  if (!created) {
    SaveOutcome outcome;
    outcome.step = step;
    outcome.error = error.empty() ? "rank 0 cannot create " + tmp_dir : error;
    last_outcome_ = outcome;
    count_failure(step);
    return false;
  }

  job_ = std::make_unique<Job>();
  Job& job = *job_;
  job.step = step;
  job.layout = layout;
  job.state = std::exchange(spare_, RankState{});
  source.snapshot(job.state);
  job.state.step = step;
  job.tmp_dir = tmp_dir;
  source.hold_updates(job.copied.get_future().share());
  const int rank = comm_.rank();
  const int world_size = comm_.size();
  const Remote* remote = remote_.get();
  job.thread = std::thread([&job, &source, rank, world_size, remote] {
    bool copied = false;
    auto start = Clock::now();
    try {
      source.copy_slices(job.state);
      check_slices(job.layout, job.state);
      job.copied.set_value();
      copied = true;
      start = Clock::now();
      job.summary = write_state(rank, world_size, job.layout, job.state,
                                run_layout::rank_file(job.tmp_dir, rank));
      if (remote != nullptr) {
        remote->s3().put_file(remote->step_url(job.step) + "/" + run_layout::rank_file_name(rank),
                              run_layout::rank_file(job.tmp_dir, rank));
      }
      job.ok = true;
    } catch (const std::exception& e) {
      if (!copied) job.copied.set_value();
      job.error = e.what();
    }
    job.seconds = seconds_since(start);
    job.done.store(true, std::memory_order_release);
  });
  if (sync || !options_.async) {
    finish(true);
    return last_outcome_ && last_outcome_->committed;
  }
  return true;
}

void Checkpointer::poll() { finish(false); }

void Checkpointer::wait() { finish(true); }

void Checkpointer::finish(bool block) {
  if (!job_) return;
  if (!block) {
    int64_t not_done = job_->done.load(std::memory_order_acquire) ? 0 : 1;
    comm_.all_reduce(&not_done, 1, DType::kInt64, ReduceOp::kMax);
    if (not_done) return;
  }
  std::unique_ptr<Job> job = std::move(job_);
  if (job->thread.joinable()) job->thread.join();
  commit(*job);
  spare_ = std::move(job->state);
}

void Checkpointer::count_failure(int64_t step) {
  ++consecutive_failures_;
  FLAM_LOG(WARN) << "checkpoint step " << step << " failed (" << consecutive_failures_ << "/"
                 << options_.max_failed_attempts << "): " << last_outcome_->error
                 << "; earlier checkpoints are untouched";
  if (consecutive_failures_ >= options_.max_failed_attempts) {
    throw Error(ErrorKind::kIo, "no checkpoint could be written in " +
                                    std::to_string(consecutive_failures_) +
                                    " consecutive attempts: " + last_outcome_->error);
  }
}

void Checkpointer::commit(Job& job) {
  const int n = comm_.size();
  const int rank = comm_.rank();
  int64_t mine[4] = {job.ok ? 1 : 0, static_cast<int64_t>(job.summary.bytes),
                     static_cast<int64_t>(job.summary.header_crc),
                     static_cast<int64_t>(job.seconds * 1e6)};
  std::vector<int64_t> all(4 * static_cast<size_t>(n));
  comm_.all_gather(mine, all.data(), 4, DType::kInt64);

  SaveOutcome outcome;
  outcome.step = job.step;
  int first_failed = -1;
  for (int r = 0; r < n; ++r) {
    if (!all[4 * r] && first_failed < 0) first_failed = r;
    outcome.bytes += all[4 * r + 1];
    outcome.write_seconds = std::max(outcome.write_seconds, all[4 * r + 3] * 1e-6);
  }
  if (!job.ok) {
    FLAM_LOG(WARN) << "checkpoint step " << job.step
                   << ": writing this rank's file failed: " << job.error;
  }
  if (first_failed >= 0) {
    outcome.error = first_failed == rank ? job.error
                                         : "rank " + std::to_string(first_failed) +
                                               " failed to write its file (see its log)";
  }

  const std::string name = run_layout::step_dir_name(job.step);
  const std::string final_dir = run_layout::step_dir(dir_, job.step);
  int64_t committed = 0;
  if (rank == 0) {
    if (first_failed < 0) {
      try {
        Manifest m;
        m.step = job.step;
        m.world_size = n;
        m.config_hash = config_hash_;
        m.created = utc_now();
        m.layout = job.layout;
        m.scalars = counters(job.state);
        for (int r = 0; r < n; ++r) {
          m.files.push_back({run_layout::rank_file_name(r), static_cast<uint64_t>(all[4 * r + 1]),
                             static_cast<uint32_t>(all[4 * r + 2])});
        }
        const std::string manifest = manifest_to_json(m);
        write_file_atomic(run_layout::manifest_file(job.tmp_dir), manifest);
        if (remote_) {
          // Every part must be there, whole, before the manifest makes the step count.
          for (int r = 0; r < n; ++r) {
            const std::string part =
                remote_->step_url(job.step) + "/" + run_layout::rank_file_name(r);
            const std::optional<int64_t> size = remote_->s3().head(part);
            if (!size || *size != all[4 * r + 1]) {
              throw Error(ErrorKind::kIo, "rank file missing or short in the bucket",
                          ErrorContext{"", -1, "", part, size.value_or(-1)});
            }
          }
          remote_->s3().put(remote_->step_url(job.step) + "/manifest.json", manifest);
          remote_->s3().put(remote_->url("latest"), name + "\n");
        }
        if (fs::exists(final_dir)) {
          FLAM_LOG(WARN) << "checkpoint: replacing existing " << final_dir;
          fs::remove_all(final_dir);
        }
        rename_durable(job.tmp_dir, final_dir);
        write_file_atomic(run_layout::latest_file(dir_), name + "\n");
        committed = 1;
      } catch (const std::exception& e) {
        outcome.error = std::string("commit failed: ") + e.what();
        FLAM_LOG(WARN) << "checkpoint step " << job.step << ": " << outcome.error;
      }
    }
    if (!committed) remove_tree_quietly(job.tmp_dir);
  }
  comm_.broadcast(&committed, 1, DType::kInt64, 0);
  if (!committed && outcome.error.empty()) outcome.error = "rank 0 failed to commit (see its log)";
  outcome.committed = committed != 0;
  last_outcome_ = outcome;
  if (!committed) {
    count_failure(job.step);
    return;
  }
  consecutive_failures_ = 0;
  if (rank != 0) return;
  FLAM_LOG(INFO) << "checkpoint " << (remote_ ? remote_->step_url(job.step) : final_dir)
                 << " committed: " << outcome.bytes / 1e6 << " MB in " << outcome.write_seconds
                 << " s (" << outcome.bytes / 1e6 / std::max(outcome.write_seconds, 1e-9)
                 << " MB/s)";
  // Prune to the newest `keep`; the one just committed is the newest and always stays.
  const std::vector<int64_t> steps = run_layout::list_checkpoints(dir_);
  for (size_t i = static_cast<size_t>(std::max(options_.keep, 1)); i < steps.size(); ++i) {
    const std::string old_dir = run_layout::step_dir(dir_, steps[i]);
    const std::string doomed = run_layout::tmp_dir(old_dir);
    // Renamed first so that a crash mid-delete leaves a *.tmp, which is ignored and cleaned.
    std::error_code ec;
    fs::rename(old_dir, doomed, ec);
    remove_tree_quietly(ec ? old_dir : doomed);
  }
  if (!remote_) return;
  try {
    const std::map<int64_t, std::vector<std::string>> remote_steps = remote_->steps();
    const std::vector<int64_t> kept = remote_->committed();
    for (size_t i = static_cast<size_t>(std::max(options_.keep, 1)); i < kept.size(); ++i) {
      remote_->remove_step(kept[i], remote_steps.at(kept[i]));
    }
  } catch (const Error& e) {
    FLAM_LOG(WARN) << "checkpoint: cannot prune " << remote_->root() << ": " << e.what();
  }
}

std::optional<LoadedCheckpoint> Checkpointer::load_latest(const FlatLayout& layout) {
  FLAM_CHECK(layout.world_size == comm_.size())
      << "layout for " << layout.world_size << " ranks, comm has " << comm_.size();
  finish(true);
  const int rank = comm_.rank();
  const int n = comm_.size();

  // Rank 0 lists the candidates, so every rank tries the same ones in the same order.
  std::vector<int64_t> steps;
  int64_t count = 0;
  if (rank == 0) {
    steps = remote_ ? remote_->committed() : run_layout::list_checkpoints(dir_);
    count = static_cast<int64_t>(steps.size());
  }
  comm_.broadcast(&count, 1, DType::kInt64, 0);
  steps.resize(count);
  if (count > 0) comm_.broadcast(steps.data(), count, DType::kInt64, 0);

  for (int64_t step : steps) {
    // From a bucket: each rank reads a private local copy (step_N.rankR.tmp/, ignored and cleaned
    // like any partial directory).
    const std::string step_dir =
        remote_
            ? run_layout::tmp_dir(run_layout::step_dir(dir_, step) + ".rank" + std::to_string(rank))
            : run_layout::step_dir(dir_, step);
    const std::string step_name = remote_ ? remote_->step_url(step) : step_dir;
    std::optional<CheckpointReader> reader;
    int64_t bad = 0;
    try {
      if (remote_) {
        remove_tree_quietly(step_dir);
        download_checkpoint(remote_->step_url(step), step_dir);
      }
      reader.emplace(step_dir);
      if (reader->manifest().step != step) {
        throw Error(ErrorKind::kData,
                    "manifest says step " + std::to_string(reader->manifest().step));
      }
      for (int r = rank; r < reader->manifest().world_size; r += n) reader->verify_file(r);
    } catch (const Error& e) {
      bad = 1;
      FLAM_LOG(WARN) << "checkpoint " << step_name << " is broken: " << e.what();
    }
    comm_.all_reduce(&bad, 1, DType::kInt64, ReduceOp::kMax);
    if (bad) {
      if (rank == 0) {
        FLAM_LOG(WARN) << "checkpoint " << step_name
                       << " failed verification; trying the previous one";
      }
      if (remote_) remove_tree_quietly(step_dir);
      continue;
    }
    const Manifest& m = reader->manifest();
    check_same_layout(m.layout, layout, run_layout::manifest_file(step_dir));
    if (rank == 0 && m.config_hash != config_hash_) {
      FLAM_LOG(WARN) << "checkpoint " << step_dir << " was written with config hash "
                     << m.config_hash << ", this run's is " << config_hash_;
    }

    LoadedCheckpoint loaded;
    loaded.step = m.step;
    loaded.path = step_name;
    loaded.old_world_size = m.world_size;
    RankState& s = loaded.state;
    s.step = m.step;
    std::vector<std::vector<float>>* buffers[] = {&s.master, &s.exp_avg, &s.exp_avg_sq};
    for (size_t k = 0; k < 3; ++k) {
      buffers[k]->resize(layout.units.size());
      for (size_t b = 0; b < layout.units.size(); ++b) {
        const int64_t slice = layout.slice_numel(b);
        (*buffers[k])[b].resize(slice);
        reader->read_flat(kStateKinds[k], b, rank * slice, (rank + 1) * slice,
                          (*buffers[k])[b].data());
      }
    }
    for (int r = 0; r < m.world_size; ++r) {
      loaded.loader_laion_all.push_back(reader->read_section(r, "loader/laion"));
      loaded.loader_mmc4_all.push_back(reader->read_section(r, "loader/mmc4"));
    }
    const int own = m.world_size == n ? rank : 0;
    const std::map<std::string, double> scalars =
        decode_scalars(reader->read_section(own, "scalars"), reader->file_path(own));
    s.optimizer_step = counter(scalars, kOptimizerStep);
    s.skipped_steps = counter(scalars, kSkippedSteps);
    if (m.world_size == n) {
      s.rng = reader->read_section(rank, "rng");
      s.loader_laion = loaded.loader_laion_all[rank];
      s.loader_mmc4 = loaded.loader_mmc4_all[rank];
    } else if (rank == 0) {
      FLAM_LOG(INFO) << "checkpoint " << step_dir << ": resharding from " << m.world_size << " to "
                     << n << " ranks";
    }
    if (rank == 0) {
      FLAM_LOG(INFO) << "resuming from " << step_name << " (step " << m.step << ")";
    }
    reader.reset();
    if (remote_) remove_tree_quietly(step_dir);
    return loaded;
  }
  return std::nullopt;
}

}  // namespace flam::train
