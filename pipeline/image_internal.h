// Internal to the codec layer: the pieces behind pipeline/image.h that its files share, and the
// resampling kernels, selectable so that tests can hold the SIMD kernels to the portable ones bit
// for bit. Callers outside pipeline/image_*.cpp and tests/codec use pipeline/image.h instead.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "pipeline/image.h"

namespace flam::pipeline::detail {

enum class ResizeKernels {
  kAuto,     // AVX2 where the CPU has it, else portable
  kPortable  // plain C++, any CPU
};

// True when kAuto runs the AVX2 kernels on this CPU.
bool avx2_kernels_available();

// resize_bicubic_crop with the given kernels, into *out: its pixel buffer is reused (no
// allocation when it already holds width * height * 3 bytes). Results are identical for every
// choice of kernels. REQUIRES: out != &in.
void resize_bicubic_crop_into(ResizeKernels kernels, const Image& in, int out_width, int out_height,
                              int left, int top, int width, int height, Image* out);

// Rows [y0, y0 + height) and columns [x0, x0 + width) of a full_width x full_height RGB image, as
// a region decode leaves them: row y, column x at pixels[((y - y0) * width + (x - x0)) * 3].
// Does not own pixels (bytes of them).
struct ImageRegion {
  const uint8_t* pixels = nullptr;
  size_t bytes = 0;
  int x0 = 0;
  int y0 = 0;
  int width = 0;
  int height = 0;
  int full_width = 0;
  int full_height = 0;
};

// The input indices [*lo, *hi) that outputs [first, first + count) of an in_size -> out_size
// resize_bicubic pass read (the filter's support included); [first, first + count) when
// in_size == out_size (no pass).
void resize_input_range(int in_size, int out_size, int first, int count, int* lo, int* hi);

// resize_bicubic_crop_into of the full image, reading only `in`'s region. Bit for bit the same as
// on the full image. REQUIRES: the region holds every input pixel the kept outputs read
// (resize_input_range of both axes); out's pixels are not the region's.
void resize_region_into(ResizeKernels kernels, const ImageRegion& in, int out_width, int out_height,
                        int left, int top, int width, int height, Image* out);

// clip_preprocess's geometry for an in_width x in_height image: the resized size and the crop's
// top-left corner.
void clip_geometry(int in_width, int in_height, int size, int* width, int* height, int* left,
                   int* top);

// decode_image, decoding into `buffer`'s storage (reused when large enough).
DecodeResult decode_image_reusing(std::string_view bytes, const DecodeOptions& options,
                                  std::vector<uint8_t> buffer);

// decode_clip_preprocess, choosing whether a JPEG may be decoded as the region the crop needs
// (allow_region, the default of decode_clip_preprocess) or always whole; *region_used (when not
// null) says which happened.
DecodeResult decode_clip_preprocess_with(bool allow_region, std::string_view bytes, int size,
                                         const DecodeOptions& options, Image* out,
                                         bool* region_used);

}  // namespace flam::pipeline::detail
