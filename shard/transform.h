// ImageTransform: what `flam shard` does to one downloaded image: decode (the pipeline's codecs),
// filter (minimum size, maximum aspect ratio), resize (img2dataset's modes), encode (JPEG or
// WebP). Follows img2dataset's resizer semantics:
//   no           keep the size; the downloaded bytes are kept as they are when they already are in
//                the output format, else re-encoded
//   keep_ratio   shorter side -> image_size (only if it is bigger, with resize_only_if_bigger)
//   center_crop  shorter side -> image_size, then the central image_size x image_size
//   border       longer side -> image_size, then padded with white to image_size x image_size
//
// Thread safety: pure functions; call from any number of threads.
#pragma once

#include <string>
#include <string_view>

#include "shard/options.h"

namespace flam::shard {

struct TransformResult {
  // "" on success, else: not_an_image, decode_error, image_too_large (over max_pixels, from the
  // header alone), too_small (a side under min_image_size), bad_aspect_ratio.
  std::string reason;
  std::string message;
  std::string encoded;    // the bytes to store when ok()
  std::string extension;  // "jpg" or "webp" (or the kept format's, for resize_mode no)
  int width = 0;          // of `encoded`
  int height = 0;
  int original_width = 0;  // from the downloaded image's header (0 when unreadable)
  int original_height = 0;

  bool ok() const { return reason.empty(); }
};

TransformResult transform_image(std::string_view bytes, const TransformOptions& options);

// Lower-case hex SHA-256 (OpenSSL) of `bytes`.
std::string sha256_hex(std::string_view bytes);

}  // namespace flam::shard
