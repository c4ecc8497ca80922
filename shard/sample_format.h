// Sample formatting for `flam shard`: what one input row becomes once its images are downloaded
// and transformed. plan_row() reads a row (a LAION url/caption row or an MMC4 document) into the
// image URLs to fetch; format_row() turns the finished row into its tar members (LAION:
// KEY.{ext}, KEY.txt, KEY.json in img2dataset's layout; MMC4: KEY.json with the kept image_info,
// images as base64 or as KEY.N.{ext} members per shard.mmc4_layout), its `_rows.jsonl` line, its
// rows-parquet record (LAION) and its counts in the shard's stats. Formats: docs/formats.md.
// The ShardWorker schedules downloads and transforms and calls these in row order.
//
// Thread safety: plain functions of their arguments; the caller serialises access to a row.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pipeline/tar_writer.h"
#include "shard/options.h"
#include "shard/shard_stats.h"
#include "shard/transform.h"
#include "shard/url_reader.h"

namespace flam::shard {

// One image URL of one row, from download to encoded bytes.
struct ImageSlot {
  int row = 0;  // index within the shard
  std::string url;
  std::string reason;  // "" when ok (a drop reason: pipeline/drop_reason.h, downloader.h)
  std::string message;
  bool download_failed = false;
  int attempts = 0;
  int64_t bytes_downloaded = 0;
  TransformResult image;
  std::string sha256;
  std::string exif;  // img2dataset's exif JSON text (shard/exif.h)
};

// One row of a shard while its images are fetched. (nlohmann::ordered_json's move may throw, so
// clang-tidy flags the implicit moves; a throw there could only be std::bad_alloc.)
struct RowState {                   // NOLINT(bugprone-exception-escape)
  std::vector<int> slots;           // indices into the shard's ImageSlot vector, in image order
  nlohmann::ordered_json document;  // MMC4: the parsed document
  std::string error;                // malformed row
  std::string reason;               // with an error: its counted reason
  int pending = 0;                  // slots not finished yet (the ShardWorker guards it)
};

// Fills `state` for input row `in` (row `row` of its shard) and appends one slot per image URL
// to `slots` (none for a malformed row: state->error and state->reason say why).
void plan_row(const InputRow& in, bool mmc4, int row, RowState* state,
              std::vector<ImageSlot>* slots);

// Writes the finished row (every slot done) under `key`: its members to `tar`, its counts to
// `stats`, its parquet record to `records` (LAION only); returns its `_rows.jsonl` line. Frees
// the row's image bytes and document. Throws flam::Error(kIo) when the tar cannot be written.
nlohmann::ordered_json format_row(const InputRow& in, const ShardOptions& options, bool mmc4,
                                  const std::string& key, RowState& state,
                                  std::vector<ImageSlot>& slots, pipeline::TarWriter& tar,
                                  ShardStats& stats, std::vector<nlohmann::ordered_json>* records);

}  // namespace flam::shard
