// ShardOptions: the `shard:` section: turning URL tables (LAION) or MMC4 documents into tar
// shards (shard/shard_job.h). Defaults follow img2dataset where it has one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config_map.h"

namespace flam::shard {

struct DownloadOptions {
  int concurrency = 64;  // transfers in flight per rank
  int per_host_connections = 16;
  double connect_timeout_seconds = 10.0;
  double total_timeout_seconds = 30.0;
  int retries = 2;                        // for timeouts, 5xx and 429 only
  double retry_backoff_seconds = 1.0;     // wait before retry k (k = 1, 2, ...): backoff * 2^(k-1)
  double max_retry_after_seconds = 60.0;  // cap on a server's Retry-After
  int low_speed_bytes_per_second = 1000;  // abort a transfer slower than this ...
  double low_speed_seconds = 10.0;        // ... for this long
  // After min_average_grace_seconds, abort a transfer averaging under this many bytes/s (0: no
  // minimum); counted too_slow.
  double min_average_bytes_per_second = 1000;
  double min_average_grace_seconds = 5.0;
  int max_redirects = 5;
  int64_t max_body_bytes = 20 * 1000 * 1000;
  bool respect_opt_out = true;  // X-Robots-Tag noai, noimageai, noindex, noimageindex
  std::string user_agent = "flamboyance/0.1 (+https://github.com/flamboyance)";
};

struct TransformOptions {
  int image_size = 256;
  std::string resize_mode = "keep_ratio";  // no | keep_ratio | center_crop | border
  bool resize_only_if_bigger = false;
  int min_image_size = 0;
  double max_aspect_ratio = 0.0;      // 0: no limit
  std::string encode_format = "jpg";  // jpg | webp
  int encode_quality = 95;
  int64_t max_pixels = 89478485;
  // Decode large JPEGs with DCT scaling down to about the target size before the bicubic resize
  // (keep_ratio and center_crop only): several times faster, not bit-comparable with PIL.
  bool fast_decode = true;
};

struct ShardOptions {
  std::string input_kind = "laion";  // laion | mmc4
  // LAION: .tsv .csv .jsonl (each also .gz or .zst) or .parquet; MMC4: .jsonl.zip as it ships,
  // or .jsonl, .jsonl.gz, .jsonl.zst. Shell globs expand, sorted.
  std::vector<std::string> inputs;
  std::string input_format = "auto";  // auto | tsv | csv | jsonl | parquet
  std::string url_col = "url";
  std::string caption_col = "caption";
  std::vector<std::string> save_cols;  // extra columns carried into each sample's json
  // More input rows than this fraction not what their format says: the run stops (exit 2).
  double max_bad_row_fraction = 0.1;
  std::string output_dir = "shards";
  int samples_per_shard = 10000;
  bool zstd = false;
  int zstd_level = 3;
  std::string mmc4_layout = "base64";  // base64 (OpenFlamingo's converted form) | members
  int transform_threads = 0;           // decode/resize/encode threads per rank; 0: cores / ranks
  double progress_seconds = 5.0;       // rank 0's progress line interval
  DownloadOptions download;
  TransformOptions transform;
};

inline void describe(ConfigMap& m, DownloadOptions& o) {
  m.field("concurrency", o.concurrency, Bounds::between(1, 4096));
  m.field("per_host_connections", o.per_host_connections, Bounds::between(1, 4096));
  m.field("connect_timeout_seconds", o.connect_timeout_seconds, Bounds::positive());
  m.field("total_timeout_seconds", o.total_timeout_seconds, Bounds::positive());
  m.field("retries", o.retries, Bounds::non_negative());
  m.field("retry_backoff_seconds", o.retry_backoff_seconds, Bounds::non_negative());
  m.field("max_retry_after_seconds", o.max_retry_after_seconds, Bounds::non_negative());
  m.field("low_speed_bytes_per_second", o.low_speed_bytes_per_second, Bounds::non_negative());
  m.field("low_speed_seconds", o.low_speed_seconds, Bounds::positive());
  m.field("min_average_bytes_per_second", o.min_average_bytes_per_second, Bounds::non_negative());
  m.field("min_average_grace_seconds", o.min_average_grace_seconds, Bounds::non_negative());
  m.field("max_redirects", o.max_redirects, Bounds::non_negative());
  m.field("max_body_bytes", o.max_body_bytes, Bounds::between(1, 1LL << 31));
  m.field("respect_opt_out", o.respect_opt_out);
  m.field("user_agent", o.user_agent);
}

inline void describe(ConfigMap& m, TransformOptions& o) {
  m.field("image_size", o.image_size, Bounds::between(1, 8192));
  m.choice("resize_mode", o.resize_mode, {"no", "keep_ratio", "center_crop", "border"});
  m.field("resize_only_if_bigger", o.resize_only_if_bigger);
  m.field("min_image_size", o.min_image_size, Bounds::non_negative());
  m.field("max_aspect_ratio", o.max_aspect_ratio, Bounds::non_negative());
  m.choice("encode_format", o.encode_format, {"jpg", "webp"});
  m.field("encode_quality", o.encode_quality, Bounds::between(1, 100));
  m.field("max_pixels", o.max_pixels, Bounds::at_least(1));
  m.field("fast_decode", o.fast_decode);
}

inline void describe(ConfigMap& m, ShardOptions& o) {
  m.choice("input_kind", o.input_kind, {"laion", "mmc4"});
  m.field("inputs", o.inputs);
  m.choice("input_format", o.input_format, {"auto", "tsv", "csv", "jsonl", "parquet"});
  m.field("url_col", o.url_col);
  m.field("caption_col", o.caption_col);
  m.field("save_cols", o.save_cols);
  m.field("max_bad_row_fraction", o.max_bad_row_fraction, Bounds::between(0, 1));
  m.field("output_dir", o.output_dir);
  m.field("samples_per_shard", o.samples_per_shard, Bounds::between(1, 10000000));
  m.field("zstd", o.zstd);
  m.field("zstd_level", o.zstd_level, Bounds::between(1, 19));
  m.choice("mmc4_layout", o.mmc4_layout, {"base64", "members"});
  m.field("transform_threads", o.transform_threads, Bounds::between(0, 1024));
  m.field("progress_seconds", o.progress_seconds, Bounds::positive());
  m.section("download", o.download);
  m.section("transform", o.transform);
}

}  // namespace flam::shard
