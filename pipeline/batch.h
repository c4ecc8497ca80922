// Batch: what the loader hands the trainer for one dataset, one rank and one micro-step. Plain
// host buffers (no torch), row-major, fully padded to static shapes so every step has the same
// tensor shapes: train/ wraps them into tensors without copying.
//
// Thread safety: a plain value; moved from the loader's producer thread to the caller.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace flam::pipeline {

enum class DatasetKind { kLaion, kMmc4 };

// "laion" | "mmc4".
const char* to_string(DatasetKind kind);

struct Batch {
  DatasetKind kind = DatasetKind::kLaion;
  int batch_size = 0;  // B
  int max_images = 0;  // T_img: 1 for LAION, data.mmc4.max_images for MMC4
  int image_size = 0;  // S: data.image.size
  int seq_len = 0;     // T

  // [B, T_img, 1, 3, S, S] uint8 RGB planes (CHW), not normalised; slots without an image are
  // zeros. Image slot j of row b belongs to the j-th <image> token of row b (in token order).
  std::vector<uint8_t> images;
  std::vector<uint8_t> image_present;  // [B, T_img] 1 where a real image sits
  // [B, T_img] where each slot's image came from in its row's sample (keys[b]): the index in the
  // MMC4 document's image_info, 0 for LAION; -1 for an empty slot.
  std::vector<int32_t> image_sources;
  std::vector<int64_t> input_ids;       // [B, T] padded with Tokenizer::pad_id()
  std::vector<int64_t> attention_mask;  // [B, T] 1 on real tokens, 0 on padding
  std::vector<int64_t> labels;          // [B, T] target ids, -100 where no loss
  // Samples (and shards) dropped while this batch was made, by reason (pipeline/drop_reason.h:
  // "decode_error", "bad_json", "invalid_utf8", "too_few_images", "corrupt_shard", ...).
  std::map<std::string, int64_t> dropped;
  // [B] "SHARD#KEY" of each row's sample (shard path or URL), for inspection and tests.
  std::vector<std::string> keys;
  // [B] the epoch each row's sample was read in.
  std::vector<int64_t> epochs;

  size_t image_bytes() const { return static_cast<size_t>(image_size) * image_size * 3; }
  // Byte offset of image slot (b, j) in `images`.
  size_t image_offset(int b, int j) const {
    return (static_cast<size_t>(b) * max_images + j) * image_bytes();
  }
};

}  // namespace flam::pipeline
