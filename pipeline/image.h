// The image codec layer shared by pipeline/ (read side) and shard/ (write side): decode JPEG
// (TurboJPEG), PNG (libpng) and WebP (libwebp) into 8-bit RGB, PIL-exact bicubic resampling, crop,
// flip, CLIP's eval preprocessing, and JPEG/WebP/PNG encoding.
//
// Every function is a pure function of its arguments and thread-safe: callable from any number of
// decode threads at once. (Each thread keeps its own TurboJPEG handles, resize coefficient tables
// for the last few geometries and a scratch buffer; nothing is shared between threads.) Broken
// input bytes are per-item failures and come back as a DecodeResult with a reason; invalid
// arguments (negative sizes, a crop outside the image) are bugs and hit FLAM_CHECK.
//
// Parity: decode_image + clip_preprocess reproduce python3-pil's Image.open().convert("RGB") +
// torchvision Resize/CenterCrop byte for byte on JPEG (libjpeg-turbo's default ISLOW DCT and fancy
// upsampling, as PIL uses), PNG and WebP (tests/codec). Known differences: 16-bit grayscale PNGs
// keep their high byte (PIL clips "I;16" to 255), and no EXIF orientation is applied (neither
// does PIL's open()).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace flam::pipeline {

// An 8-bit RGB image: pixels is [height, width, 3] row-major (HWC), size width * height * 3.
// A default Image (0 x 0, no pixels) is "empty".
struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // [height, width, 3]

  bool empty() const { return width == 0 || height == 0; }
};

enum class ImageFormat { kUnknown, kJpeg, kPng, kWebp, kGif, kBmp };

// "unknown", "jpeg", "png", "webp", "gif", "bmp".
const char* to_string(ImageFormat format);

// The format named by the leading magic bytes (JPEG FF D8 FF, PNG's 8-byte signature,
// RIFF....WEBP, GIF87a / GIF89a, BM with a known DIB header size); kUnknown otherwise. Reads at
// most the first 18 bytes.
ImageFormat sniff_format(std::string_view bytes);

struct DecodeOptions {
  // Images with more pixels than this are rejected from their header, before the pixel buffer is
  // allocated (PIL's decompression-bomb guard is 89478485).
  int64_t max_pixels = 89478485;
  // > 0: a JPEG whose shorter side is at least 2 x target_short_side is decoded with TurboJPEG's
  // DCT scaling at the largest scale-down (1/2, 3/8, 1/4, 1/8, ...) that keeps its shorter side
  // >= target_short_side, so a following resize_bicubic still does the final step. Faster, but no
  // longer bit-comparable with PIL (which OpenFlamingo uses without draft()): after
  // clip_preprocess the real test photos differ from PIL by 1.1-3.4 levels mean absolute
  // difference at 1/2 scale and up to 5.9 at 1/8, over the 1.0 parity tolerance, so it is 0
  // (full-size decode) unless the shard writer's downscaling or data.image.fast_downscale asks
  // for it. Other formats ignore it.
  int target_short_side = 0;
};

// Per-item failure as a value. reason is "" on success, else one of:
//   "not_an_image"  the bytes are not JPEG, PNG, WebP, GIF or BMP (HTML, random bytes, empty)
//   "decode_error"  a recognised format whose header or data is broken (truncated, corrupt),
//                   or a zero-size image
//   "too_large"     width * height > max_pixels, decided from the header alone
// message is a short human-readable detail (the library's own message where it gives one).
struct DecodeResult {
  Image image;  // empty unless ok()
  ImageFormat format = ImageFormat::kUnknown;
  int original_width = 0;  // from the header (before any DCT scaling); 0 if unreadable
  int original_height = 0;
  std::string reason;
  std::string message;

  bool ok() const { return reason.empty(); }
};

// Decodes JPEG, PNG, WebP, GIF (the first frame) or BMP bytes into RGB, as PIL's
// Image.open(...).convert("RGB") does (bit-exact for GIF and BMP; see image_decode.cpp for JPEG).
// Grayscale, CMYK/YCCK, palette and 16-bit images are converted to 8-bit RGB; an alpha channel is
// dropped (no blending). 16-bit grayscale PNG keeps the high byte (PIL clips the value to 255, a
// PIL defect we do not copy: docs/fidelity.md).
// Does not keep a reference to bytes.
DecodeResult decode_image(std::string_view bytes, const DecodeOptions& options = {});

// Exactly PIL's Image.resize((out_width, out_height), Image.BICUBIC) on an RGB image: a separable
// two-pass convolution (horizontal, then vertical; a pass whose size does not change is skipped),
// Keys cubic with a = -0.5, support widened by the downscale factor (antialiasing), PIL's 22-bit
// fixed-point coefficients, rounding and clipping to uint8.
// REQUIRES: !in.empty(), out_width >= 1, out_height >= 1.
Image resize_bicubic(const Image& in, int out_width, int out_height);

// crop(resize_bicubic(in, out_width, out_height), left, top, width, height), bit for bit, computing
// only the kept pixels. REQUIRES: the rectangle lies inside out_width x out_height, non-empty.
Image resize_bicubic_crop(const Image& in, int out_width, int out_height, int left, int top,
                          int width, int height);

// The size torchvision's Resize(size) gives for a PIL image: the shorter side becomes `size`, the
// longer becomes int(size * long / short) (truncated, as torchvision computes it).
// REQUIRES: width, height, size >= 1.
void shorter_side_size(int width, int height, int size, int* out_width, int* out_height);

// The [top, top + height) x [left, left + width) rectangle of `in`, copied.
// REQUIRES: the rectangle lies inside the image and is non-empty.
Image crop(const Image& in, int left, int top, int width, int height);

// torchvision's CenterCrop offsets: round((in - out) / 2) with Python's round-half-to-even.
// REQUIRES: in.width >= width, in.height >= height.
Image center_crop(const Image& in, int width, int height);

// Mirrors left and right.
Image flip_horizontal(const Image& in);
// Mirrors *image left and right in its own buffer. REQUIRES: image != nullptr.
void flip_horizontal_in_place(Image* image);

// OpenFlamingo's image processor (open_clip's eval transform) without normalisation: resize the
// shorter side to `size` (bicubic, torchvision's rounding of the longer side), then center crop
// size x size. The result is size x size uint8 RGB; the trainer normalises it on its device:
// (pixel / 255 - kClipMean[c]) / kClipStd[c] per channel c (R, G, B). REQUIRES: !in.empty(),
// size >= 1.
Image clip_preprocess(const Image& in, int size);

// CLIP's normalisation (open_clip's OPENAI_DATASET_MEAN / OPENAI_DATASET_STD), RGB.
inline constexpr float kClipMean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
inline constexpr float kClipStd[3] = {0.26862954f, 0.26130258f, 0.27577711f};

// decode_image + clip_preprocess in one call, for the loader's decode threads, with the same bytes
// out: the decode stays in a per-thread buffer and out->pixels is reused, so a thread that passes
// the same `out` every time allocates nothing per image in steady state (fresh multi-100-KB
// buffers per image cost page faults: ~15% of the per-image CPU time in bench/pipeline). A JPEG
// whose center crop leaves part of it unused is decoded only around the part the resize reads
// (image_decode.cpp), bit for bit what the full decode gives there. One difference on damaged
// input: a baseline JPEG whose damage lies only in rows below the ones the crop needs, and that
// still ends in an EOI marker, decodes here while decode_image may refuse it. Returns the
// decode's status and sizes with an empty image; *out is the size x size result when ok(),
// unchanged otherwise. REQUIRES: size >= 1, out != nullptr.
DecodeResult decode_clip_preprocess(std::string_view bytes, int size, const DecodeOptions& options,
                                    Image* out);

// Encoders. REQUIRES: !image.empty(), image.pixels.size() == width * height * 3,
// quality in [1, 100]. A failure inside the library throws flam::Error (kInternal).
std::string encode_jpeg(const Image& image, int quality);  // TurboJPEG, 4:2:0 chroma subsampling
std::string encode_webp(const Image& image, int quality);  // libwebp lossy
std::string encode_png(const Image& image);                // libpng, 8-bit RGB, default zlib level

}  // namespace flam::pipeline
