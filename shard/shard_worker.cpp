#include "shard/shard_worker.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>

#include "core/atomic_file.h"
#include "core/base64.h"
#include "core/check.h"
#include "core/clock.h"
#include "pipeline/packer.h"
#include "pipeline/tar_writer.h"
#include "pipeline/text.h"
#include "pipeline/thread_pool.h"
#include "shard/downloader.h"
#include "shard/exif.h"
#include "shard/rows_parquet.h"
#include "shard/transform.h"

namespace flam::shard {
namespace {

using Clock = SteadyClock;
using ojson = nlohmann::ordered_json;

// One image URL of one row, from download to encoded bytes.
struct ImageSlot {
  int row = 0;  // index within the shard
  std::string url;
  std::string reason;  // "" when ok
  std::string message;
  bool download_failed = false;
  int attempts = 0;
  int64_t bytes_downloaded = 0;
  TransformResult image;
  std::string sha256;
  std::string exif;  // img2dataset's exif JSON text (shard/exif.h)
};

struct RowState {
  std::vector<int> slots;  // indices into the shard's ImageSlot vector, in the row's image order
  ojson document;          // MMC4: the parsed document
  std::string error;       // malformed row
  std::string reason;      // with an error: its counted reason
  int pending = 0;         // slots not finished yet; guarded by Impl::mu
};

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
      const InputRow& in = rows[static_cast<size_t>(i)];
      RowState& st = (*states)[static_cast<size_t>(i - begin)];
      const int row = static_cast<int>(i - begin);
      auto add = [&](std::string url) {
        st.slots.push_back(static_cast<int>(slots->size()));
        ImageSlot s;
        s.row = row;
        s.url = std::move(url);
        slots->push_back(std::move(s));
      };
      if (!in.error.empty()) {
        st.error = in.error;
        st.reason = in.reason.empty() ? "bad_row" : in.reason;
      } else if (!mmc4) {
        add(in.url);
      } else {
        st.document = ojson::parse(in.document, nullptr, false);
        st.reason = "bad_row";
        if (!pipeline::valid_utf8(in.document)) {
          st.error = "the document is not UTF-8";
          st.reason = "invalid_utf8";
        } else if (st.document.is_discarded() || !st.document.is_object()) {
          st.error = "not a JSON object";
        } else if (!st.document.contains("image_info") || !st.document["image_info"].is_array()) {
          st.error = "no image_info list";
        } else {
          for (const auto& info : st.document["image_info"]) {
            std::string url;
            if (info.is_object() && info.contains("raw_url") && info["raw_url"].is_string()) {
              url = info["raw_url"].get<std::string>();
            }
            add(std::move(url));
          }
        }
      }
      st.pending = static_cast<int>(st.slots.size());
    }
  }

  void transform(ImageSlot* slot, std::string body, RowState* state) {
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
    RowState& st = states[i];
    const InputRow& in = rows[begin + i];
    const std::string key = sample_key(shard, static_cast<int64_t>(i), per_shard);
    ojson line;
    line["key"] = key;
    std::string status;
    if (!st.error.empty()) {
      status = "bad_row";
      stats.reasons[st.reason] += 1;
      line["status"] = status;
      line["reason"] = st.reason;
      line["message"] = st.error;
      if (!mmc4) records.push_back(failed_row_record(in, options, key, status, st.error));
    } else if (!mmc4) {
      ImageSlot& s = slots[st.slots[0]];
      stats.images += 1;
      stats.attempts += s.attempts;
      line["url"] = s.url;
      if (s.reason.empty()) {
        status = "success";
        stats.images_ok += 1;
        stats.bytes_downloaded += s.bytes_downloaded;
        ojson j;
        j["url"] = s.url;
        j["caption"] = options.caption_col.empty() ? ojson() : ojson(in.caption);
        j["key"] = key;
        j["status"] = "success";
        j["error_message"] = nullptr;
        j["width"] = s.image.width;
        j["height"] = s.image.height;
        j["original_width"] = s.image.original_width;
        j["original_height"] = s.image.original_height;
        j["exif"] = s.exif;
        j["sha256"] = s.sha256;
        for (size_t c = 0; c < options.save_cols.size(); ++c) {
          j[options.save_cols[c]] = in.extra[c];
        }
        tar.add(key + "." + s.image.extension, s.image.encoded);
        if (!options.caption_col.empty()) tar.add(key + ".txt", in.caption);
        tar.add(key + ".json", j.dump());
        records.push_back(std::move(j));
      } else {
        status = s.download_failed ? "failed_to_download" : "failed_to_resize";
        stats.reasons[s.reason] += 1;
        line["reason"] = s.reason;
        line["message"] = s.message;
        records.push_back(failed_row_record(in, options, key, status, s.message));
      }
      line["status"] = status;
      s.image.encoded.clear();
      s.image.encoded.shrink_to_fit();
    } else {
      ojson kept_info = ojson::array();
      ojson kept_sim = ojson::array();
      const ojson& info = st.document["image_info"];
      const ojson* sim = st.document.contains("similarity_matrix") &&
                                 st.document["similarity_matrix"].is_array() &&
                                 st.document["similarity_matrix"].size() == info.size()
                             ? &st.document["similarity_matrix"]
                             : nullptr;
      std::vector<std::pair<std::string, const std::string*>> members;
      ojson reasons = ojson::object();
      for (size_t k = 0; k < st.slots.size(); ++k) {
        ImageSlot& s = slots[st.slots[k]];
        stats.images += 1;
        stats.attempts += s.attempts;
        if (!s.reason.empty()) {
          stats.reasons[s.reason] += 1;
          reasons[s.reason] = reasons.value(s.reason, 0) + 1;
          continue;
        }
        stats.images_ok += 1;
        stats.bytes_downloaded += s.bytes_downloaded;
        ojson entry = info[k];
        entry["width"] = s.image.width;
        entry["height"] = s.image.height;
        entry["original_width"] = s.image.original_width;
        entry["original_height"] = s.image.original_height;
        entry["sha256"] = s.sha256;
        if (options.mmc4_layout == "members") {
          std::string member = std::to_string(kept_info.size()) + "." + s.image.extension;
          entry["image_member"] = member;
          members.emplace_back(key + "." + member, &s.image.encoded);
        } else {
          entry["image_base64"] = base64_encode(s.image.encoded);
        }
        kept_info.push_back(std::move(entry));
        if (sim) kept_sim.push_back((*sim)[k]);
      }
      line["images"] = st.slots.size();
      line["images_ok"] = kept_info.size();
      if (!reasons.empty()) line["reasons"] = reasons;
      if (kept_info.empty()) {
        status = "no_images";
      } else {
        status = "success";
        ojson doc = st.document;
        doc["image_info"] = std::move(kept_info);
        if (sim) doc["similarity_matrix"] = std::move(kept_sim);
        doc["key"] = key;
        tar.add(key + ".json", doc.dump());
        for (const auto& [name, bytes] : members) tar.add(name, *bytes);
      }
      line["status"] = status;
      for (int k : st.slots) {
        slots[k].image.encoded.clear();
        slots[k].image.encoded.shrink_to_fit();
      }
      st.document = ojson();
    }
    stats.samples += 1;
    stats.status[status] += 1;
    if (status == "success") stats.successes += 1;
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
        pool.submit([this, slot, state, body = std::move(r.body)]() mutable {
          transform(slot, std::move(body), state);
        });
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
