#include "shard/transform.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/check.h"
#include "pipeline/image.h"

namespace flam::shard {
namespace {

using pipeline::Image;

int scaled(int side, int target, int reference) {
  return std::max(1, static_cast<int>(std::lround(static_cast<double>(side) * target / reference)));
}

// The shorter side becomes `size` (albumentations' SmallestMaxSize).
Image smallest_max_size(const Image& in, int size) {
  int s = std::min(in.width, in.height);
  if (s == size) return in;
  int w = in.width <= in.height ? size : scaled(in.width, size, s);
  int h = in.width <= in.height ? scaled(in.height, size, s) : size;
  return pipeline::resize_bicubic(in, w, h);
}

// The longer side becomes `size` (albumentations' LongestMaxSize).
Image longest_max_size(const Image& in, int size) {
  int l = std::max(in.width, in.height);
  if (l == size) return in;
  int w = in.width >= in.height ? size : scaled(in.width, size, l);
  int h = in.width >= in.height ? scaled(in.height, size, l) : size;
  return pipeline::resize_bicubic(in, w, h);
}

// Pads with white to at least size x size, the image centred (top/left get the smaller half).
Image pad_white(const Image& in, int size) {
  if (in.width >= size && in.height >= size) return in;
  Image out;
  out.width = std::max(in.width, size);
  out.height = std::max(in.height, size);
  out.pixels.assign(static_cast<size_t>(out.width) * out.height * 3, 255);
  int left = (out.width - in.width) / 2;
  int top = (out.height - in.height) / 2;
  for (int y = 0; y < in.height; ++y) {
    std::memcpy(&out.pixels[(static_cast<size_t>(y + top) * out.width + left) * 3],
                &in.pixels[static_cast<size_t>(y) * in.width * 3],
                static_cast<size_t>(in.width) * 3);
  }
  return out;
}

}  // namespace

std::string sha256_hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  FLAM_CHECK(EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_sha256(), nullptr) == 1);
  static const char* kHex = "0123456789abcdef";
  std::string out(len * 2, '0');
  for (unsigned i = 0; i < len; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 15];
  }
  return out;
}

TransformResult transform_image(std::string_view bytes, const TransformOptions& options) {
  TransformResult r;
  const int size = options.image_size;
  const std::string& mode = options.resize_mode;
  pipeline::DecodeOptions decode;
  decode.max_pixels = options.max_pixels;
  if (options.fast_decode && (mode == "keep_ratio" || mode == "center_crop")) {
    decode.target_short_side = size;
  }
  pipeline::DecodeResult d = pipeline::decode_image(bytes, decode);
  r.original_width = d.original_width;
  r.original_height = d.original_height;
  if (!d.ok()) {
    r.reason = d.reason == "too_large" ? "image_too_large" : d.reason;
    r.message = d.message;
    return r;
  }
  const int w = d.original_width, h = d.original_height;
  if (w < options.min_image_size || h < options.min_image_size) {
    r.reason = "too_small";
    r.message = std::to_string(w) + "x" + std::to_string(h) + " is under " +
                std::to_string(options.min_image_size);
    return r;
  }
  if (options.max_aspect_ratio > 0 &&
      static_cast<double>(std::max(w, h)) / std::min(w, h) > options.max_aspect_ratio) {
    r.reason = "bad_aspect_ratio";
    r.message = std::to_string(w) + "x" + std::to_string(h);
    return r;
  }
  Image img = std::move(d.image);
  const bool only_bigger = options.resize_only_if_bigger;
  if (mode == "keep_ratio") {
    if (!only_bigger || std::min(w, h) > size) img = smallest_max_size(img, size);
  } else if (mode == "center_crop") {
    if (!only_bigger || std::min(w, h) > size) {
      img = smallest_max_size(img, size);
      img = pipeline::center_crop(img, size, size);
    }
  } else if (mode == "border") {
    if (!only_bigger || std::max(w, h) > size) img = longest_max_size(img, size);
    img = pad_white(img, size);
  } else {
    FLAM_CHECK(mode == "no") << "unknown resize mode " << mode;
  }
  r.width = img.width;
  r.height = img.height;
  const bool webp = options.encode_format == "webp";
  r.extension = webp ? "webp" : "jpg";
  pipeline::ImageFormat want = webp ? pipeline::ImageFormat::kWebp : pipeline::ImageFormat::kJpeg;
  if (mode == "no" && d.format == want) {
    r.encoded.assign(bytes);
  } else {
    r.encoded = webp ? pipeline::encode_webp(img, options.encode_quality)
                     : pipeline::encode_jpeg(img, options.encode_quality);
  }
  return r;
}

}  // namespace flam::shard
