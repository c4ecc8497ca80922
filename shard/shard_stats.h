// ShardStats: the accounting of one shard (or, summed, of a run): how many samples and images went
// in, how many came out, failures by reason, bytes and seconds. Its JSON form is the shard's
// `{shard:05d}_stats.json`, written last: its presence marks the shard done (docs/formats.md).
// The JSON also carries img2dataset's fields (count, successes, failed_to_download,
// failed_to_resize, duration, start_time, end_time, status_dict) so its tools read ours.
// `reasons` counts by the drop-reason names of pipeline/drop_reason.h (the loader's too) and
// shard/downloader.h's download failures.
//
// Thread safety: a value type; no shared state.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace flam::shard {

struct ShardStats {
  int64_t shard = -1;                      // -1 in a run summary
  int64_t samples = 0;                     // input rows (LAION rows or MMC4 documents)
  int64_t successes = 0;                   // samples written to the tar
  int64_t images = 0;                      // image URLs attempted (one per LAION row)
  int64_t images_ok = 0;                   // images written
  std::map<std::string, int64_t> status;   // per sample: success, failed_to_download, ...
  std::map<std::string, int64_t> reasons;  // per failed image (or malformed row): reason -> count
  int64_t attempts = 0;                    // HTTP requests made, retries included
  int64_t bytes_downloaded = 0;            // response bodies kept (successful downloads)
  int64_t bytes_written = 0;               // the tar file's size
  double duration_seconds = 0;             // wall time
  double transform_seconds = 0;            // decode + resize + encode, summed over threads
  double start_time = 0;                   // wall clock (seconds since 1970) at the start ...
  double end_time = 0;                     // ... and the end (a summary: earliest and latest)

  void add(const ShardStats& other);
  nlohmann::ordered_json to_json() const;
  // Throws flam::Error(kData) naming `file` when `j` is not a stats object.
  static ShardStats from_json(const nlohmann::json& j, const std::string& file);
};

}  // namespace flam::shard
