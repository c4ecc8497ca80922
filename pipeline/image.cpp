// Format sniffing and the geometric operations on Image (crop, flip, CLIP preprocessing).
// Decoding lives in image_decode.cpp, encoding in image_encode.cpp, resampling in image_resize.cpp.
#include "pipeline/image.h"

#include <algorithm>
#include <cstring>

#include "core/check.h"
#include "pipeline/image_internal.h"

namespace flam::pipeline {

const char* to_string(ImageFormat format) {
  switch (format) {
    case ImageFormat::kJpeg:
      return "jpeg";
    case ImageFormat::kPng:
      return "png";
    case ImageFormat::kWebp:
      return "webp";
    case ImageFormat::kGif:
      return "gif";
    case ImageFormat::kBmp:
      return "bmp";
    case ImageFormat::kUnknown:
      break;
  }
  return "unknown";
}

ImageFormat sniff_format(std::string_view bytes) {
  if (bytes.size() >= 3 && static_cast<uint8_t>(bytes[0]) == 0xFF &&
      static_cast<uint8_t>(bytes[1]) == 0xD8 && static_cast<uint8_t>(bytes[2]) == 0xFF) {
    return ImageFormat::kJpeg;
  }
  if (bytes.size() >= 8 && bytes.substr(0, 8) == std::string_view("\x89PNG\r\n\x1a\n", 8)) {
    return ImageFormat::kPng;
  }
  if (bytes.size() >= 12 && bytes.substr(0, 4) == "RIFF" && bytes.substr(8, 4) == "WEBP") {
    return ImageFormat::kWebp;
  }
  if (bytes.size() >= 6 && (bytes.substr(0, 6) == "GIF87a" || bytes.substr(0, 6) == "GIF89a")) {
    return ImageFormat::kGif;
  }
  if (bytes.size() >= 18 && bytes.substr(0, 2) == "BM") {
    // "BM" alone is too common a start of text: also require a known DIB header size.
    const auto* b = reinterpret_cast<const uint8_t*>(bytes.data());
    const uint32_t dib =
        b[14] | (b[15] << 8) | (b[16] << 16) | (static_cast<uint32_t>(b[17]) << 24);
    if (dib == 12 || dib == 40 || dib == 52 || dib == 56 || dib == 64 || dib == 108 || dib == 124) {
      return ImageFormat::kBmp;
    }
  }
  return ImageFormat::kUnknown;
}

void shorter_side_size(int width, int height, int size, int* out_width, int* out_height) {
  FLAM_CHECK(width >= 1 && height >= 1 && size >= 1)
      << "shorter_side_size(" << width << ", " << height << ", " << size << ")";
  const int shorter = std::min(width, height);
  const int longer = std::max(width, height);
  // torchvision: int(size * long / short), a float division truncated toward zero.
  const int new_long = static_cast<int>(static_cast<double>(size) * longer / shorter);
  if (width <= height) {
    *out_width = size;
    *out_height = new_long;
  } else {
    *out_width = new_long;
    *out_height = size;
  }
}

Image crop(const Image& in, int left, int top, int width, int height) {
  FLAM_CHECK(width >= 1 && height >= 1 && left >= 0 && top >= 0 && left + width <= in.width &&
             top + height <= in.height)
      << "crop " << width << "x" << height << "+" << left << "+" << top << " outside " << in.width
      << "x" << in.height;
  Image out;
  out.width = width;
  out.height = height;
  out.pixels.resize(static_cast<size_t>(width) * height * 3);
  const size_t row = static_cast<size_t>(width) * 3;
  for (int y = 0; y < height; ++y) {
    std::memcpy(out.pixels.data() + y * row,
                in.pixels.data() + (static_cast<size_t>(top + y) * in.width + left) * 3, row);
  }
  return out;
}

namespace {

// torchvision's CenterCrop offset: int(round(diff / 2.0)), Python rounding half to even.
int center_offset(int diff) {
  const int half = diff / 2;
  return (diff % 2 == 0 || half % 2 == 0) ? half : half + 1;
}

}  // namespace

Image center_crop(const Image& in, int width, int height) {
  FLAM_CHECK(in.width >= width && in.height >= height)
      << "center crop " << width << "x" << height << " of " << in.width << "x" << in.height;
  return crop(in, center_offset(in.width - width), center_offset(in.height - height), width,
              height);
}

Image flip_horizontal(const Image& in) {
  Image out;
  out.width = in.width;
  out.height = in.height;
  out.pixels.resize(in.pixels.size());
  for (int y = 0; y < in.height; ++y) {
    const uint8_t* src = in.pixels.data() + static_cast<size_t>(y) * in.width * 3;
    uint8_t* dst = out.pixels.data() + static_cast<size_t>(y) * in.width * 3;
    for (int x = 0; x < in.width; ++x) {
      std::memcpy(dst + (in.width - 1 - x) * 3, src + x * 3, 3);
    }
  }
  return out;
}

void flip_horizontal_in_place(Image* image) {
  FLAM_CHECK(image != nullptr) << "flip of a null image";
  for (int y = 0; y < image->height; ++y) {
    uint8_t* row = image->pixels.data() + static_cast<size_t>(y) * image->width * 3;
    for (int a = 0, b = image->width - 1; a < b; ++a, --b) {
      std::swap_ranges(row + a * 3, row + a * 3 + 3, row + b * 3);
    }
  }
}

namespace detail {

void clip_geometry(int in_width, int in_height, int size, int* width, int* height, int* left,
                   int* top) {
  shorter_side_size(in_width, in_height, size, width, height);
  *left = center_offset(*width - size);
  *top = center_offset(*height - size);
}

}  // namespace detail

Image clip_preprocess(const Image& in, int size) {
  FLAM_CHECK(!in.empty() && size >= 1)
      << "clip_preprocess of " << in.width << "x" << in.height << " to " << size;
  int width = 0;
  int height = 0;
  int left = 0;
  int top = 0;
  detail::clip_geometry(in.width, in.height, size, &width, &height, &left, &top);
  return resize_bicubic_crop(in, width, height, left, top, size, size);
}

}  // namespace flam::pipeline
