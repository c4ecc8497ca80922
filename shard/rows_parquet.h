// The per-shard `{shard:05d}.parquet` that img2dataset writes beside each shard: one row per input
// row, failures included, with img2dataset's columns in its order (the save_cols, caption, url,
// key, status, error_message, width, height, original_width, original_height, exif, sha256), so
// tools built on img2dataset's output (its logger, LAION's dedup scripts) read ours. save_cols keep
// the JSON types they had in the input (integers int64, numbers double, booleans, strings). LAION
// tables only; written under FLAM_WITH_PARQUET (shard/parquet/), else not at all.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "shard/options.h"
#include "shard/url_reader.h"

namespace flam::shard {

std::string shard_parquet_path(const ShardOptions& options, int64_t shard);

// The record of a row that produced no sample (status failed_to_download, failed_to_resize or
// bad_row, `message` its reason), with the columns a success's KEY.json has.
nlohmann::ordered_json failed_row_record(const InputRow& row, const ShardOptions& options,
                                         const std::string& key, const std::string& status,
                                         const std::string& message);

// Writes `records` (KEY.json objects and failed_row_record()s, in row order) to `path` through a
// temp file and rename. Throws flam::Error(kIo) naming the file when it cannot be written.
void write_rows_parquet(const std::string& path, const std::vector<nlohmann::ordered_json>& records,
                        const ShardOptions& options);

}  // namespace flam::shard
