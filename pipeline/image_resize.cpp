// PIL-exact bicubic resampling (Pillow's libImaging/Resample.c semantics, 8 bits per channel).
//
// PIL resamples in two separable passes, horizontal then vertical, each rounding to uint8. A pass
// is a convolution whose coefficients per output index come from precompute_coeffs(): the Keys
// cubic (a = -0.5) with its support widened by the downscale factor, normalised to sum 1, then
// quantised to 22-bit fixed point and accumulated in int32. We reproduce the coefficients bit for
// bit, so every kernel below gives PIL's bytes exactly:
//   horizontal  per output pixel, RGB as int32 lanes; AVX2 does two output pixels per register
//   vertical    whole output rows at once (every byte of a row shares the coefficient)
// Only the kept (cropped) output pixels and the input rows they need are computed.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <utility>

#include "core/check.h"
#include "pipeline/image_internal.h"

namespace flam::pipeline {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // PIL's PRECISION_BITS for 8-bit images
constexpr int32_t kHalf = 1 << (kPrecisionBits - 1);

double bicubic(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// Fixed-point coefficients for output indices [first, first + count) of an in_size -> out_size
// pass. Output index i reads inputs [start[i], start[i] + taps[i]) with weights k[i * ksize + t]
// (zero beyond taps[i]).
struct Coefficients {
  int ksize = 0;
  std::vector<int> start;
  std::vector<int> taps;
  std::vector<int32_t> k;
};

Coefficients precompute(int in_size, int out_size, int first, int count) {
  // PIL passes the box as floats: in1 - in0 is computed in float, exactly for these sizes.
  const float in0 = 0.0f;
  const float in1 = static_cast<float>(in_size);
  const double scale = static_cast<double>(in1 - in0) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 2.0 * filterscale;
  Coefficients c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.start.resize(count);
  c.taps.resize(count);
  c.k.assign(static_cast<size_t>(count) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  for (int i = 0; i < count; ++i) {
    const int xx = first + i;
    const double center = in0 + (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    // PIL rounds so (truncating a value that may be negative), and we must match it bit for bit.
    // NOLINTNEXTLINE(bugprone-incorrect-roundings)
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    // NOLINTNEXTLINE(bugprone-incorrect-roundings)
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[x] = bicubic((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (int x = 0; x < xmax; ++x) {
      double v = w[x];
      if (ww != 0.0) v /= ww;
      c.k[static_cast<size_t>(i) * c.ksize + x] =
          v < 0 ? static_cast<int32_t>(-0.5 + v * (1 << kPrecisionBits))
                // NOLINTNEXTLINE(bugprone-incorrect-roundings): PIL's rounding, kept bit-exact
                : static_cast<int32_t>(0.5 + v * (1 << kPrecisionBits));
    }
    c.start[i] = xmin;
    c.taps[i] = xmax;
  }
  return c;
}

inline uint8_t clip8(int32_t acc) {
  return static_cast<uint8_t>(std::clamp(acc >> kPrecisionBits, 0, 255));
}

// ---- portable kernels -----------------------------------------------------------------------

// src is the row's byte at input column `base / 3` (a region's first column).
void horizontal_row_portable(const uint8_t* src, int base, const Coefficients& c, int width,
                             uint8_t* out) {
  for (int i = 0; i < width; ++i) {
    const uint8_t* p = src + (c.start[i] * 3 - base);
    const int32_t* k = &c.k[static_cast<size_t>(i) * c.ksize];
    int32_t r = kHalf, g = kHalf, b = kHalf;
    for (int t = 0; t < c.taps[i]; ++t, p += 3) {
      r += p[0] * k[t];
      g += p[1] * k[t];
      b += p[2] * k[t];
    }
    out[i * 3 + 0] = clip8(r);
    out[i * 3 + 1] = clip8(g);
    out[i * 3 + 2] = clip8(b);
  }
}

// out[j] = clip8(half + sum_t k[t] * src[t * stride + j]) for j in [0, n). Blocks with a fixed
// trip count let the compiler vectorise with whatever the baseline ISA offers.
void vertical_row_portable(const uint8_t* src, size_t stride, int taps, const int32_t* k,
                           uint8_t* out, size_t n) {
  constexpr size_t kBlock = 64;
  size_t j0 = 0;
  for (; j0 + kBlock <= n; j0 += kBlock) {
    int32_t acc[kBlock];
    for (size_t j = 0; j < kBlock; ++j) acc[j] = kHalf;
    for (int t = 0; t < taps; ++t) {
      const uint8_t* row = src + t * stride + j0;
      for (size_t j = 0; j < kBlock; ++j) acc[j] += row[j] * k[t];
    }
    for (size_t j = 0; j < kBlock; ++j) out[j0 + j] = clip8(acc[j]);
  }
  for (size_t j = j0; j < n; ++j) {
    int32_t acc = kHalf;
    for (int t = 0; t < taps; ++t) acc += src[t * stride + j] * k[t];
    out[j] = clip8(acc);
  }
}

// ---- AVX2 kernels ---------------------------------------------------------------------------

// The horizontal coefficients rearranged for horizontal_row_avx2: output pixels in pairs (a, b),
// per pair and tap a register of weights [ka ka ka 0 kb kb kb 0], and per pair the byte offsets
// of the two pixels' first input pixels. Every pair runs `taps` taps (the largest count); taps
// past a pixel's own count have weight 0.
struct PairTable {
  int pairs = 0;
  int taps = 0;
  std::vector<int32_t> k;      // [pairs][taps][8]
  std::vector<int32_t> start;  // [pairs][2]
};

PairTable make_pair_table(const Coefficients& c, int width) {
  PairTable p;
  p.pairs = (width + 1) / 2;
  p.taps = *std::max_element(c.taps.begin(), c.taps.end());
  p.k.assign(static_cast<size_t>(p.pairs) * p.taps * 8, 0);
  p.start.assign(static_cast<size_t>(p.pairs) * 2, 0);
  for (int j = 0; j < p.pairs; ++j) {
    for (int half = 0; half < 2; ++half) {
      const int i = std::min(2 * j + half, width - 1);  // an odd last pixel pairs with itself
      p.start[2 * j + half] = c.start[i] * 3;
      for (int t = 0; t < c.taps[i]; ++t) {
        int32_t* lanes = &p.k[(static_cast<size_t>(j) * p.taps + t) * 8 + half * 4];
        lanes[0] = lanes[1] = lanes[2] = c.k[static_cast<size_t>(i) * c.ksize + t];
      }
    }
  }
  return p;
}

// Bytes horizontal_row_avx2 may read past a pixel's last input pixel.
size_t avx2_read_slack(const PairTable& p) { return static_cast<size_t>(p.taps) * 3 + 16; }

// kPick[t] is the byte shuffle that widens pixel t (0..4) of each 128-bit half's 16-byte window
// into int32 lanes 0..2 of that half (-1: zero).
#define FLAM_PICK(t)                                                                          \
  {                                                                                           \
    3 * (t), -1, -1, -1, 3 * (t) + 1, -1, -1, -1, 3 * (t) + 2, -1, -1, -1, -1, -1, -1, -1,    \
        3 * (t), -1, -1, -1, 3 * (t) + 1, -1, -1, -1, 3 * (t) + 2, -1, -1, -1, -1, -1, -1, -1 \
  }
alignas(32) constexpr int8_t kPick[5][32] = {FLAM_PICK(0), FLAM_PICK(1), FLAM_PICK(2), FLAM_PICK(3),
                                             FLAM_PICK(4)};
#undef FLAM_PICK

__attribute__((target("avx2"))) inline __m256i pick(int t) {
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(kPick[t]));
}

__attribute__((target("avx2"))) inline __m256i load_windows(const uint8_t* a, const uint8_t* b) {
  return _mm256_inserti128_si256(
      _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a))),
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(b)), 1);
}

// Stores the RGB of int32 lanes 0..2 (pixel a) and 4..6 (pixel b) after the final shift.
__attribute__((target("avx2"))) inline void store_pair(__m256i acc, uint8_t* out, bool has_b) {
  acc = _mm256_srai_epi32(acc, kPrecisionBits);
  const __m256i words = _mm256_packs_epi32(acc, acc);
  const __m256i bytes = _mm256_packus_epi16(words, words);
  const int32_t pa = _mm256_extract_epi32(bytes, 0);
  const int32_t pb = _mm256_extract_epi32(bytes, 4);
  std::memcpy(out, &pa, 4);
  if (has_b) std::memcpy(out + 3, &pb, 4);
}

// Stores the RGB of two pairs, (a, b) in `ab` and (c, d) in `cd`, as 12 contiguous bytes with one
// 16-byte store (4 bytes past them are overwritten).
__attribute__((target("avx2"))) inline void store_quad(__m256i ab, __m256i cd, uint8_t* out) {
  const __m256i words = _mm256_packs_epi32(_mm256_srai_epi32(ab, kPrecisionBits),
                                           _mm256_srai_epi32(cd, kPrecisionBits));
  // Dwords a, c in the low half and b, d in the high half; put a, b, c, d first, drop lane 3.
  const __m256i bytes = _mm256_packus_epi16(words, words);
  const __m128i abcd = _mm256_castsi256_si128(
      _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 0, 0, 0, 0)));
  const __m128i packed =
      _mm_shuffle_epi8(abcd, _mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), packed);
}

// The int32 sums [Ra Ga Ba 0 Rb Gb Bb 0] (before the final shift) of one pair of output pixels
// whose first input pixels are at byte offsets start[0] - base, start[1] - base of src, with
// weights k[taps][8].
template <int kTaps>
__attribute__((target("avx2"))) inline __m256i pair_sum(const uint8_t* src, int base,
                                                        const int32_t* start, const int32_t* k,
                                                        int taps) {
  const uint8_t* a = src + (start[0] - base);
  const uint8_t* b = src + (start[1] - base);
  __m256i acc = _mm256_set1_epi32(kHalf);
  if constexpr (kTaps > 0) {
    const __m256i window = load_windows(a, b);
#pragma GCC unroll 5
    for (int t = 0; t < kTaps; ++t) {
      const __m256i kt = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(k + t * 8));
      acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(_mm256_shuffle_epi8(window, pick(t)), kt));
    }
  } else {
    for (int t0 = 0; t0 < taps; t0 += 5) {
      const __m256i window = load_windows(a + 3 * t0, b + 3 * t0);
      const int n = std::min(5, taps - t0);
      for (int t = 0; t < n; ++t) {
        const __m256i kt = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(k + (t0 + t) * 8));
        acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(_mm256_shuffle_epi8(window, pick(t)), kt));
      }
    }
  }
  return acc;
}

// Bytes horizontal_row_avx2 may write past width * 3.
constexpr size_t kAvx2WriteSlack = 16;

// REQUIRES: src readable for avx2_read_slack(p) bytes past the row; out writable for
// kAvx2WriteSlack bytes past width * 3. kTaps == p.taps when in [1, 5], else 0 (any count). src is
// the row's byte at input column base / 3.
template <int kTaps>
__attribute__((target("avx2"))) void horizontal_row_avx2(const uint8_t* src, int base,
                                                         const PairTable& p, int width,
                                                         uint8_t* out) {
  // Locals, so that the byte stores to `out` cannot make the compiler reload them.
  const int pairs = p.pairs;
  const int taps = kTaps > 0 ? kTaps : p.taps;
  const int32_t* k = p.k.data();
  const int32_t* start = p.start.data();
  const size_t pair_k = static_cast<size_t>(taps) * 8;
  int j = 0;
  for (; j + 1 < pairs; j += 2) {  // two independent pairs per step, one store
    const __m256i ab = pair_sum<kTaps>(src, base, start + 2 * j, k + j * pair_k, taps);
    const __m256i cd = pair_sum<kTaps>(src, base, start + 2 * j + 2, k + (j + 1) * pair_k, taps);
    store_quad(ab, cd, out + 6 * j);
  }
  if (j < pairs) {
    store_pair(pair_sum<kTaps>(src, base, start + 2 * j, k + j * pair_k, taps), out + 6 * j,
               2 * j + 1 < width);
  }
}

using HorizontalRow = void (*)(const uint8_t*, int, const PairTable&, int, uint8_t*);

HorizontalRow horizontal_row_avx2_for(int taps) {
  switch (taps) {
    case 1:
      return horizontal_row_avx2<1>;
    case 2:
      return horizontal_row_avx2<2>;
    case 3:
      return horizontal_row_avx2<3>;
    case 4:
      return horizontal_row_avx2<4>;
    case 5:
      return horizontal_row_avx2<5>;
    default:
      return horizontal_row_avx2<0>;
  }
}

// 8 bytes widened to 8 int32 lanes.
__attribute__((target("avx2"))) inline __m256i load8(const uint8_t* p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

__attribute__((target("avx2"))) void vertical_row_avx2(const uint8_t* src, size_t stride, int taps,
                                                       const int32_t* k, uint8_t* out, size_t n) {
  const __m256i half = _mm256_set1_epi32(kHalf);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  size_t j = 0;
  for (; j + 32 <= n; j += 32) {
    __m256i a0 = half, a1 = half, a2 = half, a3 = half;
    for (int t = 0; t < taps; ++t) {
      const uint8_t* row = src + t * stride + j;
      const __m256i kt = _mm256_set1_epi32(k[t]);
      a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(load8(row), kt));
      a1 = _mm256_add_epi32(a1, _mm256_mullo_epi32(load8(row + 8), kt));
      a2 = _mm256_add_epi32(a2, _mm256_mullo_epi32(load8(row + 16), kt));
      a3 = _mm256_add_epi32(a3, _mm256_mullo_epi32(load8(row + 24), kt));
    }
    const __m256i s01 = _mm256_packs_epi32(_mm256_srai_epi32(a0, kPrecisionBits),
                                           _mm256_srai_epi32(a1, kPrecisionBits));
    const __m256i s23 = _mm256_packs_epi32(_mm256_srai_epi32(a2, kPrecisionBits),
                                           _mm256_srai_epi32(a3, kPrecisionBits));
    const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(s01, s23), order);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j), bytes);
  }
  vertical_row_portable(src + j, stride, taps, k, out + j, n - j);
}

// Scratch that survives between calls on one thread (no allocation per image in steady state).
std::vector<uint8_t>& thread_scratch() {
  thread_local std::vector<uint8_t> scratch;
  return scratch;
}

// Scratch above this size is freed after use: one huge resize must not pin its buffer in every
// thread for the rest of the run.
constexpr size_t kMaxKeptScratch = size_t{32} << 20;

// One pass's coefficients: output indices [first, first + count) of an in_size -> out_size pass,
// the input range [lo, hi) they read, and (avx2) the AVX2 layout.
struct PassKey {
  int in_size, out_size, first, count;
  bool avx2;
  bool operator==(const PassKey&) const = default;
};

struct Pass {
  Coefficients c;
  PairTable table;
  int lo = 0;
  int hi = 0;
};

Pass make_pass(const PassKey& key) {
  Pass pass;
  pass.c = precompute(key.in_size, key.out_size, key.first, key.count);
  pass.lo = pass.c.start.front();
  for (int i = 0; i < key.count; ++i) pass.hi = std::max(pass.hi, pass.c.start[i] + pass.c.taps[i]);
  if (key.avx2) pass.table = make_pair_table(pass.c, key.count);
  return pass;
}

// Recently used passes of this thread, most recent first. Images of one shard share one side's
// size (the shard writer's 256) even when the other varies, so most lookups hit. A returned
// reference stays valid until the thread's next resize (a lookup evicts only the oldest entry, and
// kEntries >= 2 keeps both passes of a resize alive).
const Pass& cached_pass(const PassKey& key) {
  constexpr size_t kEntries = 16;
  thread_local std::vector<std::pair<PassKey, std::unique_ptr<Pass>>> cache;
  for (size_t i = 0; i < cache.size(); ++i) {
    if (cache[i].first == key) {
      std::rotate(cache.begin(), cache.begin() + i, cache.begin() + i + 1);
      return *cache.front().second;
    }
  }
  if (cache.size() == kEntries) cache.pop_back();
  cache.emplace(cache.begin(), key, std::make_unique<Pass>(make_pass(key)));
  return *cache.front().second;
}

}  // namespace

namespace detail {

bool avx2_kernels_available() {
  static const bool available = [] {
    __builtin_cpu_init();  // may run before libgcc's own initialiser, from a static constructor
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return available;
}

// PIL's [xmin, xmax) of output index i (precompute's bounds, without the weights).
void pass_bounds(int in_size, int out_size, int i, int* lo, int* hi) {
  const double scale = static_cast<double>(static_cast<float>(in_size)) / out_size;
  const double support = 2.0 * std::max(scale, 1.0);
  const double center = (i + 0.5) * scale;
  // NOLINTNEXTLINE(bugprone-incorrect-roundings): PIL's rounding, as in precompute
  *lo = std::max(0, static_cast<int>(center - support + 0.5));
  // NOLINTNEXTLINE(bugprone-incorrect-roundings)
  *hi = std::min(in_size, static_cast<int>(center + support + 0.5));
}

void resize_input_range(int in_size, int out_size, int first, int count, int* lo, int* hi) {
  if (in_size == out_size) {
    *lo = first;
    *hi = first + count;
    return;
  }
  int unused = 0;
  pass_bounds(in_size, out_size, first, lo, &unused);
  pass_bounds(in_size, out_size, first + count - 1, &unused, hi);
}

void resize_bicubic_crop_into(ResizeKernels kernels, const Image& in, int out_width, int out_height,
                              int left, int top, int width, int height, Image* out) {
  FLAM_CHECK(!in.empty() && in.pixels.size() == static_cast<size_t>(in.width) * in.height * 3)
      << "resize of an empty or malformed image " << in.width << "x" << in.height;
  FLAM_CHECK(out != &in) << "resize into its own input";
  resize_region_into(
      kernels, {in.pixels.data(), in.pixels.size(), 0, 0, in.width, in.height, in.width, in.height},
      out_width, out_height, left, top, width, height, out);
}

void resize_region_into(ResizeKernels kernels, const ImageRegion& in, int out_width, int out_height,
                        int left, int top, int width, int height, Image* out) {
  FLAM_CHECK(in.width >= 1 && in.height >= 1 &&
             in.bytes == static_cast<size_t>(in.width) * in.height * 3 && in.x0 >= 0 &&
             in.y0 >= 0 && in.x0 + in.width <= in.full_width && in.y0 + in.height <= in.full_height)
      << "resize of a malformed region " << in.width << "x" << in.height << "+" << in.x0 << "+"
      << in.y0 << " of " << in.full_width << "x" << in.full_height;
  FLAM_CHECK(out_width >= 1 && out_height >= 1 && width >= 1 && height >= 1 && left >= 0 &&
             top >= 0 && left + width <= out_width && top + height <= out_height)
      << "crop " << width << "x" << height << "+" << left << "+" << top << " outside " << out_width
      << "x" << out_height;
  const bool avx2 = kernels == ResizeKernels::kAuto && avx2_kernels_available();
  const bool need_horizontal = out_width != in.full_width;
  const bool need_vertical = out_height != in.full_height;
  const Pass* vert =
      need_vertical ? &cached_pass({in.full_height, out_height, top, height, false}) : nullptr;
  const Pass* horiz =
      need_horizontal ? &cached_pass({in.full_width, out_width, left, width, avx2}) : nullptr;
  const size_t in_stride = static_cast<size_t>(in.width) * 3;
  // Input rows [y0, y1) and columns [x0, x1) feed the kept output pixels.
  const int y0 = vert != nullptr ? vert->lo : top;
  const int y1 = vert != nullptr ? vert->hi : top + height;
  const int x0 = horiz != nullptr ? horiz->lo : left;
  const int x1 = horiz != nullptr ? horiz->hi : left + width;
  FLAM_CHECK(in.x0 <= x0 && x1 <= in.x0 + in.width && in.y0 <= y0 && y1 <= in.y0 + in.height)
      << "the resize reads columns [" << x0 << ", " << x1 << ") and rows [" << y0 << ", " << y1
      << "), outside the region " << in.width << "x" << in.height << "+" << in.x0 << "+" << in.y0;
  const int rows = y1 - y0;
  const int base = in.x0 * 3;
  auto in_row = [&](int y) { return in.pixels + static_cast<size_t>(y - in.y0) * in_stride; };

  // Horizontal pass: `mid` holds input rows [y0, y1) at the kept output columns.
  const uint8_t* mid = nullptr;
  size_t mid_stride = 0;
  std::vector<uint8_t>& scratch = thread_scratch();
  if (horiz != nullptr) {
    mid_stride = static_cast<size_t>(width) * 3;
    if (avx2) {
      // Spare bytes past the last row for the wide stores, and a padded copy of each input row
      // too close to the end of the region for the 16-byte loads.
      const HorizontalRow horizontal_row_avx2 = horizontal_row_avx2_for(horiz->table.taps);
      const size_t slack = avx2_read_slack(horiz->table);
      scratch.resize(rows * mid_stride + kAvx2WriteSlack + in_stride + slack);
      uint8_t* last_row = scratch.data() + rows * mid_stride + kAvx2WriteSlack;
      for (int y = y0; y < y1; ++y) {
        const uint8_t* src = in_row(y);
        if (static_cast<size_t>(y - in.y0 + 1) * in_stride + slack > in.bytes) {
          std::memcpy(last_row, src, in_stride);
          src = last_row;
        }
        horizontal_row_avx2(src, base, horiz->table, width, scratch.data() + (y - y0) * mid_stride);
      }
    } else {
      scratch.resize(rows * mid_stride);
      for (int y = y0; y < y1; ++y) {
        horizontal_row_portable(in_row(y), base, horiz->c, width,
                                scratch.data() + (y - y0) * mid_stride);
      }
    }
    mid = scratch.data();
  } else {
    mid_stride = in_stride;
    mid = in_row(y0) + (left - in.x0) * 3;
  }

  out->width = width;
  out->height = height;
  out->pixels.resize(static_cast<size_t>(width) * height * 3);
  const size_t out_stride = static_cast<size_t>(width) * 3;
  for (int i = 0; i < height; ++i) {
    uint8_t* dst = out->pixels.data() + i * out_stride;
    if (vert == nullptr) {
      std::memcpy(dst, mid + (top + i - y0) * mid_stride, out_stride);
      continue;
    }
    const Coefficients& c = vert->c;
    const uint8_t* src = mid + (c.start[i] - y0) * mid_stride;
    const int32_t* k = &c.k[static_cast<size_t>(i) * c.ksize];
    if (avx2) {
      vertical_row_avx2(src, mid_stride, c.taps[i], k, dst, out_stride);
    } else {
      vertical_row_portable(src, mid_stride, c.taps[i], k, dst, out_stride);
    }
  }
  if (scratch.capacity() > kMaxKeptScratch) scratch = {};
}

}  // namespace detail

Image resize_bicubic_crop(const Image& in, int out_width, int out_height, int left, int top,
                          int width, int height) {
  Image out;
  detail::resize_bicubic_crop_into(detail::ResizeKernels::kAuto, in, out_width, out_height, left,
                                   top, width, height, &out);
  return out;
}

Image resize_bicubic(const Image& in, int out_width, int out_height) {
  return resize_bicubic_crop(in, out_width, out_height, 0, 0, out_width, out_height);
}

}  // namespace flam::pipeline
