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

// clip_preprocess's geometry for an in_width x in_height image: the resized size and the crop's
// top-left corner.
void clip_geometry(int in_width, int in_height, int size, int* width, int* height, int* left,
                   int* top);

// decode_image, decoding into `buffer`'s storage (reused when large enough).
DecodeResult decode_image_reusing(std::string_view bytes, const DecodeOptions& options,
                                  std::vector<uint8_t> buffer);

}  // namespace flam::pipeline::detail
