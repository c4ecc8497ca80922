#include "pipeline/loader.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include "core/check.h"
#include "core/error.h"
#include "core/log.h"
#include "pipeline/drop_reason.h"
#include "pipeline/loader_rng.h"
#include "pipeline/loader_stream.h"
#include "pipeline/packer.h"
#include "pipeline/shard_list.h"
#include "pipeline/thread_pool.h"

namespace flam::pipeline {

const char* to_string(DatasetKind kind) { return kind == DatasetKind::kLaion ? "laion" : "mmc4"; }

namespace {

constexpr uint64_t kSaltBatchFlip = 0x62666c70;  // "bflp"
constexpr int kLogPerReason = 20;

// One sample after packing, with its images already in CHW planes.
struct Packed {
  SampleId id;
  std::string name;  // "SHARD#KEY"
  PackResult result;
  std::vector<std::vector<uint8_t>> chw;  // [n_images][3 * S * S]
  std::map<std::string, int64_t> dropped;
  std::shared_ptr<const StreamState> after;
};

struct Ready {
  Batch batch;
  std::shared_ptr<const StreamState> after;
  int64_t bytes = 0;
};

std::vector<uint8_t> to_chw(const Image& image) {
  const size_t plane = static_cast<size_t>(image.width) * image.height;
  std::vector<uint8_t> out(plane * 3);
  for (size_t p = 0; p < plane; ++p) {
    out[p] = image.pixels[p * 3];
    out[plane + p] = image.pixels[p * 3 + 1];
    out[2 * plane + p] = image.pixels[p * 3 + 2];
  }
  return out;
}

void flip_chw(uint8_t* planes, int size) {
  for (int row = 0; row < 3 * size; ++row) {
    uint8_t* line = planes + static_cast<size_t>(row) * size;
    std::reverse(line, line + size);
  }
}

uint64_t fnv1a(const std::vector<std::string>& names) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const std::string& n : names) {
    for (const char c : n) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001b3ULL;
    h = (h ^ 0xff) * 0x100000001b3ULL;
  }
  return h;
}

struct Stopped {};

// The host bytes the loader holds for batches at once (the prefetch queue, one being assembled
// and one the caller holds) must fit in half the machine's memory; otherwise a setting is far
// too large, and the error says which keys to lower.
void check_batch_memory(const DatasetSpec& spec) {
  const double side = spec.image.size;
  const double per_batch = static_cast<double>(spec.batch_size) *
                           (spec.max_images * (3 * side * side + 1) + 3 * 8.0 * spec.seq_len);
  const double held = per_batch * (spec.loader.prefetch_batches + 2);
  const double machine =
      static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGESIZE));
  if (machine > 0 && held > machine / 2) {
    const std::string k = spec.section + ".";
    ErrorContext context;
    context.key = k + "batch_size";
    throw Error(ErrorKind::kConfig,
                std::string("the ") + to_string(spec.kind) + " loader would hold " +
                    std::to_string(static_cast<int64_t>(held / (1 << 20))) +
                    " MiB of batches, over half of this machine's " +
                    std::to_string(static_cast<int64_t>(machine / (1 << 20))) + " MiB: lower " + k +
                    "batch_size, data.image.size" +
                    (spec.kind == DatasetKind::kMmc4 ? ", " + k + "max_images" : "") + ", " + k +
                    "seq_len or data.loader.prefetch_batches",
                context);
  }
}

// Everything of the spec but the pack function.
DatasetSpec spec_of(const DataOptions& options, DatasetKind kind) {
  DatasetSpec spec;
  spec.kind = kind;
  spec.image = options.image;
  spec.loader = options.loader;
  spec.stream = options.stream;
  if (kind == DatasetKind::kLaion) {
    spec.section = "data.laion";
    spec.shards = options.laion.shards;
    spec.batch_size = options.laion.batch_size;
    spec.seq_len = options.laion.seq_len;
    spec.max_images = 1;
  } else {
    spec.section = "data.mmc4";
    spec.shards = options.mmc4.shards;
    spec.batch_size = options.mmc4.batch_size;
    spec.seq_len = options.mmc4.seq_len;
    spec.max_images = options.mmc4.max_images;
  }
  return spec;
}

}  // namespace

DatasetSpec dataset_spec(const DataOptions& options, DatasetKind kind, const Tokenizer& tokenizer) {
  DatasetSpec spec = spec_of(options, kind);
  if (kind == DatasetKind::kLaion) {
    spec.pack = [options, &tokenizer](const Sample& sample, Rng& rng) {
      return pack_laion(sample, tokenizer, options, rng);
    };
  } else {
    spec.pack = [options, &tokenizer](const Sample& sample, Rng& rng) {
      return pack_mmc4(sample, tokenizer, options, rng);
    };
  }
  return spec;
}

void check_data_inputs(const DataOptions& options) {
  namespace fs = std::filesystem;
  auto readable_file = [](const std::string& path, const std::string& key, const char* what) {
    std::error_code ec;
    const fs::file_status status = fs::status(path, ec);
    std::string problem;
    if (path.empty()) {
      problem = std::string("no ") + what + " set";
    } else if (!fs::exists(status)) {
      problem = std::string(what) + " does not exist";
    } else if (fs::is_directory(status)) {
      problem = std::string("is a directory, not a ") + what;
    } else if (::access(path.c_str(), R_OK) != 0) {
      problem = std::string(what) + " is not readable";
    }
    if (!problem.empty()) {
      ErrorContext context = at_file(path);
      context.key = key;
      throw Error(ErrorKind::kConfig, problem, context);
    }
  };
  if (!is_url(options.tokenizer))
    readable_file(options.tokenizer, "data.tokenizer", "tokenizer model");
  for (const DatasetKind kind : {DatasetKind::kLaion, DatasetKind::kMmc4}) {
    const DatasetSpec spec = spec_of(options, kind);
    const std::string key = spec.section + ".shards";
    std::vector<std::string> shards;
    try {
      shards = expand_shard_list(spec.shards);
    } catch (const Error& e) {
      ErrorContext context = e.context();
      context.key = key;
      throw Error(ErrorKind::kConfig, e.message(), context);
    }
    if (shards.empty())
      throw Error(ErrorKind::kConfig, "no shards: set the shard list", at_key(key));
    for (const std::string* shard : {&shards.front(), &shards.back()}) {
      if (!is_url(*shard)) readable_file(*shard, key, "shard");
    }
    check_batch_memory(spec);
  }
}

struct Loader::Impl {
  DatasetSpec spec;
  DatasetKind kind;
  int rank;
  int world_size;
  uint64_t seed;
  StreamIdentity identity;
  size_t window;  // samples in flight on the pool

  std::unique_ptr<SampleStream> stream;
  std::unique_ptr<ThreadPool> pool;
  std::deque<std::future<Packed>> inflight;        // producer thread only
  std::map<std::string, int64_t> pending_dropped;  // from a restore; reported with the next batch
  std::map<std::string, int> logged;               // producer thread only
  // Producer thread only: the current run of unusable samples. A run longer than the shuffle
  // buffer that spans three epochs means whole epochs of this rank's shards had no usable
  // sample: no batch can ever be filled, which is an error rather than a silent hang.
  int64_t failed_run = 0;
  int64_t failed_run_epoch = 0;

  std::thread producer;
  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<Ready> queue;
  bool stop = false;
  bool started = false;
  std::exception_ptr error;
  std::atomic<int64_t> queue_bytes{0};
  std::atomic<int64_t> buffer_bytes{0};
  std::shared_ptr<const StreamState> current;    // after the last batch returned
  std::map<std::string, int64_t> dropped_total;  // over the batches returned; caller's thread

  Impl(DatasetSpec sp, int r, int w, uint64_t s)
      : spec(std::move(sp)), kind(spec.kind), rank(r), world_size(w), seed(s) {
    FLAM_CHECK(rank >= 0 && rank < world_size) << "rank " << rank << " of " << world_size;
    FLAM_CHECK(spec.pack != nullptr) << "DatasetSpec without a pack function";
    check_batch_memory(spec);
    const std::vector<std::string> shards = expand_shard_list(spec.shards);
    if (shards.empty()) {
      ErrorContext context;
      context.key = spec.section + ".shards";
      throw Error(ErrorKind::kConfig, "no shards for this dataset: set the shard list", context);
    }
    if (static_cast<int>(shards.size()) < world_size) {
      FLAM_LOG(WARN) << "loader " << to_string(kind) << ": " << shards.size() << " shards for "
                     << world_size << " ranks: some ranks read the same shard in an epoch";
    }
    window = static_cast<size_t>(spec.batch_size) + 2 * static_cast<size_t>(spec.loader.threads);
    identity = StreamIdentity{kind, seed, static_cast<int64_t>(shards.size()), fnv1a(shards)};
    StreamOptions stream_options;
    stream_options.buffer_capacity = spec.loader.shuffle_buffer;
    stream_options.read_ahead_shards = spec.loader.read_ahead_shards;
    stream_options.read_ahead_bytes = spec.loader.read_ahead_bytes;
    stream_options.source = spec.stream;
    stream = std::make_unique<SampleStream>(shards, identity, rank, world_size, stream_options);
    current = std::make_shared<const StreamState>(stream->fresh_state());
    pool = std::make_unique<ThreadPool>(spec.loader.threads);
  }

  ~Impl() { stop_producer(); }

  void start_producer() {
    stop = false;
    error = nullptr;
    started = true;
    producer = std::thread([this] { run(); });
  }

  void stop_producer() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    cv.notify_all();
    stream->cancel();  // a producer waiting on a silent shard's transfer leaves at once
    if (producer.joinable()) producer.join();
    for (auto& f : inflight) f.wait();
    inflight.clear();
    queue.clear();
    queue_bytes = 0;
    started = false;
  }

  bool stopping() {
    std::lock_guard<std::mutex> lock(mu);
    return stop;
  }

  void run() {
    try {
      while (true) {
        Ready ready = make_batch();
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] {
          return stop || static_cast<int>(queue.size()) < spec.loader.prefetch_batches;
        });
        if (stop) return;
        queue_bytes += ready.bytes;
        queue.push_back(std::move(ready));
        cv.notify_all();
      }
    } catch (const Stopped&) {
    } catch (const SampleStream::Cancelled&) {
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      error = std::current_exception();
      cv.notify_all();
    }
  }

  void submit_next() {
    Packed base;
    StreamItem item = stream->next(base.dropped);
    buffer_bytes = stream->buffered_bytes();
    base.id = item.id;
    base.name = stream->shard_name(item.id.shard) + "#" + item.sample.key;
    base.after = std::move(item.after);
    auto task = std::make_shared<std::packaged_task<Packed()>>(
        [this, base = std::move(base), sample = std::move(item.sample)]() mutable {
          Rng rng(mix_seed({seed, static_cast<uint64_t>(kind), static_cast<uint64_t>(base.id.epoch),
                            static_cast<uint64_t>(base.id.shard),
                            static_cast<uint64_t>(base.id.ordinal)}));
          base.result = spec.pack(sample, rng);
          for (const Image& image : base.result.sequence.images) base.chw.push_back(to_chw(image));
          base.result.sequence.images.clear();
          return std::move(base);
        });
    inflight.push_back(task->get_future());
    pool->submit([task] { (*task)(); });
  }

  Ready make_batch() {
    Ready ready;
    std::vector<Packed> rows;
    std::map<std::string, int64_t> dropped;
    {
      std::lock_guard<std::mutex> lock(mu);
      dropped.swap(pending_dropped);
    }
    while (static_cast<int>(rows.size()) < spec.batch_size) {
      while (inflight.size() < window) {
        if (stopping()) throw Stopped{};
        submit_next();
      }
      Packed p = inflight.front().get();
      inflight.pop_front();
      for (const auto& [reason, n] : p.dropped) dropped[reason] += n;
      ready.after = p.after;
      if (p.result.ok()) {
        failed_run = 0;
        rows.push_back(std::move(p));
        continue;
      }
      const std::string& reason = p.result.reason;
      ++dropped[reason];
      if (failed_run++ == 0) failed_run_epoch = p.id.epoch;
      if (failed_run > spec.loader.shuffle_buffer && p.id.epoch >= failed_run_epoch + 3) {
        throw_no_usable_sample(dropped);
      }
      if (drop::is_corruption(reason) && logged[reason]++ < kLogPerReason) {
        FLAM_LOG(WARN) << "loader: dropped " << p.name << ": " << reason << ": " << p.result.message
                       << (logged[reason] == kLogPerReason ? " (further ones only counted)" : "");
      }
    }
    ready.batch = assemble(rows);
    ready.batch.dropped = std::move(dropped);
    const Batch& b = ready.batch;
    ready.bytes = static_cast<int64_t>(b.images.size() + b.image_present.size() +
                                       8 * (b.input_ids.size() * 3));
    return ready;
  }

  [[noreturn]] void throw_no_usable_sample(const std::map<std::string, int64_t>& dropped) {
    std::string reasons;
    for (const auto& [reason, n] : dropped) {
      reasons += (reasons.empty() ? "" : ", ") + reason + " " + std::to_string(n);
    }
    throw Error(ErrorKind::kData, std::string("loader (") + to_string(kind) +
                                      "): whole epochs of this rank's shards gave no usable "
                                      "sample (dropped: " +
                                      reasons + ")");
  }

  Batch assemble(std::vector<Packed>& rows) {
    Batch b;
    b.kind = kind;
    b.batch_size = spec.batch_size;
    b.max_images = spec.max_images;
    b.image_size = spec.image.size;
    b.seq_len = spec.seq_len;
    const size_t B = spec.batch_size, T = spec.seq_len, I = spec.max_images;
    b.images.assign(B * I * b.image_bytes(), 0);
    b.image_present.assign(B * I, 0);
    b.image_sources.assign(B * I, -1);
    b.input_ids.reserve(B * T);
    b.attention_mask.reserve(B * T);
    b.labels.reserve(B * T);
    for (size_t r = 0; r < B; ++r) {
      Packed& p = rows[r];
      const Sequence& s = p.result.sequence;
      b.input_ids.insert(b.input_ids.end(), s.input_ids.begin(), s.input_ids.end());
      b.attention_mask.insert(b.attention_mask.end(), s.attention_mask.begin(),
                              s.attention_mask.end());
      b.labels.insert(b.labels.end(), s.labels.begin(), s.labels.end());
      for (size_t j = 0; j < p.chw.size() && j < I; ++j) {
        std::copy(p.chw[j].begin(), p.chw[j].end(),
                  b.images.begin() + b.image_offset(static_cast<int>(r), static_cast<int>(j)));
        b.image_present[r * I + j] = 1;
        b.image_sources[r * I + j] = s.image_sources[j];
      }
      b.keys.push_back(std::move(p.name));
      b.epochs.push_back(p.id.epoch);
    }
    if (spec.image.flip == "batch") {
      const SampleId& first = rows[0].id;
      Rng coin(mix_seed({seed, static_cast<uint64_t>(kind), kSaltBatchFlip,
                         static_cast<uint64_t>(first.epoch), static_cast<uint64_t>(first.shard),
                         static_cast<uint64_t>(first.ordinal)}));
      if (coin.uniform() < 0.5) {
        for (size_t slot = 0; slot < B * I; ++slot)
          if (b.image_present[slot])
            flip_chw(b.images.data() + slot * b.image_bytes(), b.image_size);
      }
    }
    return b;
  }

  Batch next() {
    if (!started) start_producer();
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return !queue.empty() || error; });
    if (queue.empty()) std::rethrow_exception(error);
    Ready ready = std::move(queue.front());
    queue.pop_front();
    queue_bytes -= ready.bytes;
    current = ready.after;
    cv.notify_all();
    for (const auto& [reason, n] : ready.batch.dropped) dropped_total[reason] += n;
    return std::move(ready.batch);
  }

  void restore(const std::vector<std::string>& states) {
    if (states.empty()) throw Error(ErrorKind::kData, "loader restore: no states given");
    // Every state is checked before the running stream is touched: a refused restore leaves
    // the loader as it was.
    std::vector<StreamState> parsed;
    parsed.reserve(states.size());
    for (const std::string& s : states) parsed.push_back(parse_state(s, identity));
    StreamState mine;
    if (static_cast<int>(parsed.size()) == world_size) {
      mine = parsed[rank];
      if (mine.rank != rank || mine.world_size != world_size) {
        throw Error(ErrorKind::kData, "loader restore: state " + std::to_string(rank) +
                                          " is for rank " + std::to_string(mine.rank) + " of " +
                                          std::to_string(mine.world_size));
      }
    } else {
      mine = repartition(parsed, identity, world_size)[rank];
      FLAM_LOG(INFO) << "loader " << to_string(kind) << ": repartitioned the work of "
                     << parsed.size() << " ranks onto " << world_size;
    }
    stop_producer();
    std::map<std::string, int64_t> dropped;
    stream->load(mine, dropped);
    buffer_bytes = stream->buffered_bytes();
    pending_dropped = std::move(dropped);
    current = std::make_shared<const StreamState>(std::move(mine));
  }

  std::string state() const {
    std::lock_guard<std::mutex> lock(mu);
    return serialize_state(*current, identity);
  }
};

Loader::Loader(DatasetSpec spec, int rank, int world_size, uint64_t seed)
    : impl_(std::make_unique<Impl>(std::move(spec), rank, world_size, seed)) {}

Loader::~Loader() = default;

Batch Loader::next() { return impl_->next(); }

std::string Loader::state() const { return impl_->state(); }

void Loader::restore(const std::vector<std::string>& states) { impl_->restore(states); }

int64_t Loader::queued_bytes() const { return impl_->queue_bytes + impl_->buffer_bytes; }

DatasetKind Loader::kind() const { return impl_->kind; }

const std::map<std::string, int64_t>& Loader::dropped_total() const { return impl_->dropped_total; }

}  // namespace flam::pipeline
