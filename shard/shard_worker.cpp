#include "shard/shard_worker.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>

#include "core/atomic_file.h"
#include "core/check.h"
#include "core/clock.h"
#include "pipeline/tar_writer.h"
#include "pipeline/thread_pool.h"
#include "shard/downloader.h"
#include "shard/exif.h"
#include "shard/rows_parquet.h"
#include "shard/sample_format.h"
#include "shard/transform.h"

namespace flam::shard {
namespace {

using Clock = SteadyClock;
using ojson = nlohmann::ordered_json;

}  // namespace

std::string shard_stem(int64_t shard) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%05lld", static_cast<long long>(shard));
  return buf;
}

std::string sample_key(int64_t shard, int64_t index, int samples_per_shard) {
  int width = 4;
  for (int64_t v = 10000; v < samples_per_shard; v *= 10) ++width;
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%06lld%0*lld", static_cast<long long>(shard), width,
                static_cast<long long>(index));
  return buf;
}

std::string shard_tar_path(const ShardOptions& o, int64_t shard) {
  return o.output_dir + "/" + shard_stem(shard) + (o.zstd ? ".tar.zst" : ".tar");
}
std::string shard_stats_path(const ShardOptions& o, int64_t shard) {
  return o.output_dir + "/" + shard_stem(shard) + "_stats.json";
}
std::string shard_rows_path(const ShardOptions& o, int64_t shard) {
  return o.output_dir + "/" + shard_stem(shard) + "_rows.jsonl";
}

struct ShardWorker::Impl {
  const ShardOptions& options;
  const std::vector<InputRow>& rows;
  const bool mmc4;

  // `mu` guards RowState::pending, `backlog` and `transform_seconds`.
  std::mutex mu;
  std::condition_variable done_cv;
  size_t backlog = 0;  // slots handed to the pool, not finished
  double transform_seconds = 0;
  pipeline::ThreadPool pool;  // the transform threads; last, so it stops first

  Impl(const ShardOptions& o, const std::vector<InputRow>& r, int n)
      : options(o), rows(r), mmc4(o.input_kind == "mmc4"), pool(n) {}

  // Fills `states` and `slots` for rows [begin, end).
  void prepare(int64_t begin, int64_t end, std::vector<RowState>* states,
               std::vector<ImageSlot>* slots) {
    for (int64_t i = begin; i < end; ++i) {
      plan_row(rows[static_cast<size_t>(i)], mmc4, static_cast<int>(i - begin),
               &(*states)[static_cast<size_t>(i - begin)], slots);
    }
  }

  void transform(ImageSlot* slot, const std::string& body, RowState* state) {
    Clock::time_point t0 = Clock::now();
    slot->image = transform_image(body, options.transform);
    if (slot->image.ok()) {
      slot->sha256 = sha256_hex(body);
      slot->exif = exif_json(body);
    } else {
      slot->reason = slot->image.reason;
      slot->message = slot->image.message;
    }
    double dt = seconds_since(t0);
    {
      std::lock_guard<std::mutex> lock(mu);
      --state->pending;
      --backlog;
      transform_seconds += dt;
    }
    done_cv.notify_one();
  }

  ShardStats process(int64_t shard);
};

ShardWorker::ShardWorker(const ShardOptions& options, const std::vector<InputRow>& rows,
                         int threads)
    : impl_(std::make_unique<Impl>(options, rows, std::max(1, threads))) {}

ShardWorker::~ShardWorker() = default;

int64_t ShardWorker::shard_count() const {
  const int64_t n = static_cast<int64_t>(impl_->rows.size());
  return (n + impl_->options.samples_per_shard - 1) / impl_->options.samples_per_shard;
}

ShardStats ShardWorker::process(int64_t shard) {
  FLAM_CHECK(shard >= 0 && shard < shard_count()) << "shard " << shard << " out of range";
  return impl_->process(shard);
}

ShardStats ShardWorker::Impl::process(int64_t shard) {
  const Clock::time_point t0 = Clock::now();
  const double start_time = unix_seconds();
  const int per_shard = options.samples_per_shard;
  const int64_t begin = shard * per_shard;
  const int64_t end = std::min<int64_t>(begin + per_shard, static_cast<int64_t>(rows.size()));
  const size_t n = static_cast<size_t>(end - begin);
  std::vector<RowState> states(n);
  std::vector<ImageSlot> slots;
  prepare(begin, end, &states, &slots);
  transform_seconds = 0;

  ShardStats stats;
  stats.shard = shard;
  const std::string tar_path = shard_tar_path(options, shard);
  pipeline::TarWriter tar(tar_path, {options.zstd, options.zstd_level});
  std::string rows_jsonl;
  std::vector<ojson> records;  // img2dataset's {shard}.parquet, LAION only

  auto write_row = [&](size_t i) {
    const std::string key = sample_key(shard, static_cast<int64_t>(i), per_shard);
    const ojson line =
        format_row(rows[begin + i], options, mmc4, key, states[i], slots, tar, stats, &records);
    rows_jsonl += line.dump();
    rows_jsonl += '\n';
  };

  // Transform tasks point into `states` and `slots`: however this function is left, first drop
  // the queued tasks and wait for the running ones.
  struct Drain {
    Impl* impl;
    ~Drain() {
      const size_t dropped = impl->pool.cancel_queued();
      std::unique_lock<std::mutex> lock(impl->mu);
      impl->backlog -= dropped;
      impl->done_cv.wait(lock, [this] { return impl->backlog == 0; });
    }
  } drain{this};
  Downloader downloader(options.download);
  const size_t concurrency = static_cast<size_t>(options.download.concurrency);
  const size_t max_backlog = static_cast<size_t>(pool.size()) * 4 + concurrency;
  std::vector<FetchResult> done;
  size_t next_row = 0, next_write = 0;
  while (next_write < n) {
    while (next_row < n && downloader.pending() < 2 * concurrency) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (backlog >= max_backlog) break;
      }
      for (int k : states[next_row].slots)
        downloader.submit(static_cast<uint64_t>(k), slots[k].url);
      ++next_row;
    }
    if (downloader.pending() > 0) {
      done.clear();
      downloader.poll(20, &done);
      for (FetchResult& r : done) {
        ImageSlot* slot = &slots[r.tag];
        RowState* state = &states[slot->row];
        slot->attempts = r.attempts;
        if (!r.ok()) {
          slot->reason = r.reason;
          slot->message = r.message;
          slot->download_failed = true;
          std::lock_guard<std::mutex> lock(mu);
          --state->pending;
          continue;
        }
        slot->bytes_downloaded = static_cast<int64_t>(r.body.size());
        {
          std::lock_guard<std::mutex> lock(mu);
          ++backlog;
        }
        pool.submit(
            [this, slot, state, body = std::move(r.body)] { transform(slot, body, state); });
      }
    }
    std::unique_lock<std::mutex> lock(mu);
    if (downloader.pending() == 0) {
      done_cv.wait_for(lock, std::chrono::milliseconds(50),
                       [&] { return next_write < n && states[next_write].pending == 0; });
    }
    while (next_write < n && states[next_write].pending == 0) {
      lock.unlock();
      write_row(next_write++);
      lock.lock();
    }
  }
  tar.close();
  stats.bytes_written = static_cast<int64_t>(std::filesystem::file_size(tar_path));
  {
    std::lock_guard<std::mutex> lock(mu);
    stats.transform_seconds = transform_seconds;
  }
  write_file_atomic(shard_rows_path(options, shard), rows_jsonl);
  if (!mmc4) write_rows_parquet(shard_parquet_path(options, shard), records, options);
  stats.duration_seconds = seconds_since(t0);
  stats.start_time = start_time;
  stats.end_time = unix_seconds();
  write_file_atomic(shard_stats_path(options, shard), stats.to_json().dump(2) + "\n");
  return stats;
}

}  // namespace flam::shard
