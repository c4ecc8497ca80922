// Drop reasons: the one vocabulary of why a sample, an image or a shard was not used. The packer
// (PackResult::reason), the loader's stream and batches (Batch::dropped, the trainer's "dropped"
// metrics) and `flam shard` (ShardStats::reasons, stats.json "reasons") count by these names, so
// the same failure has the same name wherever it is counted. docs/formats.md lists them.
// `flam shard`'s download failures (shard/downloader.cpp: http_404, timeout, ...) are named there.
//
// Thread safety: constants only.
#pragma once

#include <string_view>

namespace flam::pipeline::drop {

// A row of an input table that is not what its format says (flam shard).
inline constexpr char kBadRow[] = "bad_row";
// Text (caption, MMC4 document) that is not UTF-8.
inline constexpr char kInvalidUtf8[] = "invalid_utf8";

// Images (image_decode.cpp's DecodeResult::reason "too_large" is renamed here: "too_large" is a
// download larger than flam shard's limit).
inline constexpr char kDecodeError[] = "decode_error";
inline constexpr char kNotAnImage[] = "not_an_image";
inline constexpr char kImageTooLarge[] = "image_too_large";  // over data.image.max_pixels

// LAION samples.
inline constexpr char kNoImage[] = "no_image";
inline constexpr char kNoCaption[] = "no_caption";

// MMC4 documents.
inline constexpr char kNoJson[] = "no_json";
inline constexpr char kBadJson[] = "bad_json";
inline constexpr char kNoImages[] = "no_images";  // no image matched a sentence
// Content filters, not corruption: OpenFlamingo's rules for which documents train.
inline constexpr char kTooFewImages[] = "too_few_images";
inline constexpr char kSingleImage[] = "single_image";
inline constexpr char kImageAtEnd[] = "image_at_end";

// Shards, counted once per shard that ends early (its remaining samples are skipped).
inline constexpr char kCorruptShard[] = "corrupt_shard";          // bad tar or compressed bytes
inline constexpr char kUnreachableShard[] = "unreachable_shard";  // cannot open or fetch
// Past data.stream.deadline_seconds or under data.stream.min_average_bytes_per_second.
inline constexpr char kSlowShard[] = "slow_shard";
// Samples a restore() could not read again from their shard.
inline constexpr char kLostOnRestore[] = "lost_on_restore";

// Every reason above, in one order: the trainer sums the counts of all ranks over this list
// (a fixed-size all-reduce) before it writes them to metrics.jsonl.
inline constexpr const char* kAll[] = {
    kBadRow,     kInvalidUtf8,  kDecodeError,      kNotAnImage, kImageTooLarge, kNoImage,
    kNoCaption,  kNoJson,       kBadJson,          kNoImages,   kTooFewImages,  kSingleImage,
    kImageAtEnd, kCorruptShard, kUnreachableShard, kSlowShard,  kLostOnRestore};

// True for reasons that mean broken or unreadable data (logged), false for the content filters
// and for samples that simply have nothing to train on.
inline bool is_corruption(std::string_view reason) {
  return reason != kSingleImage && reason != kTooFewImages && reason != kNoImages &&
         reason != kImageAtEnd;
}

}  // namespace flam::pipeline::drop
