// ShardWorker: makes one shard from its slice of the input rows: downloads every image of every
// row (Downloader), transforms them on a thread pool (transform_image), and writes, in input
// order, `{shard:05d}.tar` (or .tar.zst) through pipeline::TarWriter, then
// `{shard:05d}_rows.jsonl` (every row's status), then `{shard:05d}_stats.json` (last: the shard is
// done). Samples are written strictly in row order, so a shard's bytes depend only on the inputs
// and the server's responses, never on which transfer finished first. What a row becomes
// (members, rows line, stats) is shard/sample_format.h's. Formats: docs/formats.md.
//
// Thread safety: one thread calls process(); the worker owns its transform threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "shard/options.h"
#include "shard/shard_stats.h"
#include "shard/url_reader.h"

namespace flam::shard {

// "00042": a shard's file name stem.
std::string shard_stem(int64_t shard);
// The key of row `index` of shard `shard`: shard as 6 digits, then the index as max(4, digits of
// samples_per_shard - 1) digits, e.g. 0000420017.
std::string sample_key(int64_t shard, int64_t index, int samples_per_shard);
// Paths of a shard's files under output_dir.
std::string shard_tar_path(const ShardOptions& options, int64_t shard);
std::string shard_stats_path(const ShardOptions& options, int64_t shard);
std::string shard_rows_path(const ShardOptions& options, int64_t shard);

class ShardWorker {
 public:
  // `rows` is the whole input (shard s holds rows [s * samples_per_shard, ...)); it must outlive
  // the worker. `threads` >= 1 transform threads.
  ShardWorker(const ShardOptions& options, const std::vector<InputRow>& rows, int threads);
  ~ShardWorker();
  ShardWorker(const ShardWorker&) = delete;
  ShardWorker& operator=(const ShardWorker&) = delete;

  // Makes shard `shard` from scratch (overwriting leftovers of an interrupted attempt) and
  // returns its stats. REQUIRES: 0 <= shard < shard_count. Throws flam::Error(kIo) when a file
  // cannot be written; per-item failures are counted, never thrown.
  ShardStats process(int64_t shard);

  int64_t shard_count() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flam::shard
