// decode_image: JPEG through TurboJPEG, PNG through libpng, WebP through libwebp, GIF through
// giflib (the first frame), BMP through stb_image (Debian libstb-dev), each into 8-bit RGB. Every
// decoder reads the header first and rejects images over max_pixels before it allocates the pixel
// buffer. Conversions follow PIL's Image.open(...).convert("RGB"): gray is replicated, CMYK JPEGs
// are taken as Adobe-inverted and mapped with PIL's cmyk2rgb, alpha is dropped.
//
// decode_clip_preprocess decodes a JPEG through the libjpeg API instead when the center crop
// leaves part of it unused: only the iMCU columns (jpeg_crop_scanline) and rows (skipped above,
// never decoded below) around the pixels the resize reads, with two chroma samples of margin.
// libjpeg-turbo's inverse DCT works per block, and only the chroma upsampling at a cut edge differs
// from a full decode (it replicates the edge sample instead of blending in its neighbour, within
// one chroma sample of the cut), so the pixels the resize reads are the full decode's, bit for bit
// (tests/codec ImageRegionDecode proves it over the test photos' geometries and JPEG variants).
// Whatever that path does not cover goes to the full decode: CMYK/YCCK, arithmetic coding, a file
// that does not end in EOI (truncation keeps the full decode's error), any libjpeg error or
// warning (the full decode then reports it as before), and crops that would save nothing.
// clang-format off
#include <cstdio>  // jpeglib.h uses FILE and size_t without declaring them
#include <jpeglib.h>
// clang-format on
#include <gif_lib.h>
#include <png.h>
#include <stb_image.h>  // Debian libstb-dev: the library is libstb.so
#include <turbojpeg.h>
#include <webp/decode.h>

#include <algorithm>
#include <csetjmp>
#include <cstring>
#include <memory>

#include "core/check.h"
#include "pipeline/image.h"
#include "pipeline/image_internal.h"

namespace flam::pipeline {
namespace {

DecodeResult failure(ImageFormat format, const char* reason, std::string message) {
  DecodeResult r;
  r.format = format;
  r.reason = reason;
  r.message = std::move(message);
  return r;
}

// Checks the header's size against the options; "" when acceptable, else the reason.
const char* size_reason(int64_t width, int64_t height, const DecodeOptions& options) {
  if (width <= 0 || height <= 0) return "decode_error";
  if (width * height > options.max_pixels) return "too_large";
  return "";
}

std::string size_message(int64_t width, int64_t height, const DecodeOptions& options) {
  return std::to_string(width) + "x" + std::to_string(height) + " image (limit " +
         std::to_string(options.max_pixels) + " pixels)";
}

// ---- JPEG -----------------------------------------------------------------------------------

// One TurboJPEG decompressor per thread, created on first use: handles are not thread-safe and
// cost an allocation each. After a failed call libjpeg-turbo 2.1 can leave the handle stuck on
// its last error ("Bogus DQT index" for every later image), so a failure replaces it.
class JpegDecompressor {
 public:
  static JpegDecompressor& for_this_thread() {
    thread_local JpegDecompressor d;
    return d;
  }
  ~JpegDecompressor() { reset(); }
  tjhandle get() {
    if (h_ == nullptr) h_ = tjInitDecompress();
    return h_;
  }
  void reset() {
    if (h_ != nullptr) tjDestroy(h_);
    h_ = nullptr;
  }

 private:
  tjhandle h_ = nullptr;
};

// The largest TurboJPEG scale-down that keeps the shorter side >= target (1/1 if none applies).
tjscalingfactor pick_scale(int width, int height, int target) {
  tjscalingfactor best{1, 1};
  const int shorter = std::min(width, height);
  if (target <= 0 || shorter < 2 * target) return best;
  int count = 0;
  const tjscalingfactor* factors = tjGetScalingFactors(&count);
  for (int i = 0; i < count; ++i) {
    const tjscalingfactor f = factors[i];
    if (f.num >= f.denom) continue;
    if (TJSCALED(shorter, f) < target) continue;
    if (static_cast<int64_t>(f.num) * best.denom < static_cast<int64_t>(best.num) * f.denom) {
      best = f;
    }
  }
  return best;
}

// PIL's cmyk2rgb on Adobe-inverted CMYK (PIL reads CMYK JPEGs with rawmode "CMYK;I").
void cmyk_to_rgb(const uint8_t* cmyk, size_t pixels, uint8_t* rgb) {
  for (size_t i = 0; i < pixels; ++i, cmyk += 4, rgb += 3) {
    const int nk = cmyk[3];  // 255 - (255 - stored k)
    for (int c = 0; c < 3; ++c) {
      const int v = 255 - cmyk[c];
      const int tmp = v * nk + 128;
      rgb[c] = static_cast<uint8_t>(std::clamp(nk - (((tmp >> 8) + tmp) >> 8), 0, 255));
    }
  }
}

DecodeResult decode_jpeg(std::string_view bytes, const DecodeOptions& options,
                         std::vector<uint8_t> buffer) {
  JpegDecompressor& decompressor = JpegDecompressor::for_this_thread();
  tjhandle h = decompressor.get();
  if (h == nullptr) return failure(ImageFormat::kJpeg, "decode_error", "tjInitDecompress failed");
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  const unsigned long size = bytes.size();
  int width = 0;
  int height = 0;
  int subsampling = 0;
  int colorspace = 0;
  if (tjDecompressHeader3(h, data, size, &width, &height, &subsampling, &colorspace) != 0) {
    DecodeResult r = failure(ImageFormat::kJpeg, "decode_error", tjGetErrorStr2(h));
    decompressor.reset();
    return r;
  }
  if (const char* why = size_reason(width, height, options); *why != '\0') {
    DecodeResult r = failure(ImageFormat::kJpeg, why, size_message(width, height, options));
    r.original_width = width;
    r.original_height = height;
    return r;
  }
  const tjscalingfactor scale = pick_scale(width, height, options.target_short_side);
  const int out_w = TJSCALED(width, scale);
  const int out_h = TJSCALED(height, scale);
  const bool cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
  const int channels = cmyk ? 4 : 3;
  DecodeResult r;
  r.format = ImageFormat::kJpeg;
  r.original_width = width;
  r.original_height = height;
  buffer.resize(static_cast<size_t>(out_w) * out_h * channels);
  const int flags = TJFLAG_LIMITSCANS;  // bounds the work a hostile progressive file can cause
  if (tjDecompress2(h, data, size, buffer.data(), out_w, 0, out_h, cmyk ? TJPF_CMYK : TJPF_RGB,
                    flags) != 0) {
    const std::string message = tjGetErrorStr2(h);
    // Warnings leave a complete image (PIL accepts those too), except a truncated stream, whose
    // missing rows libjpeg fills with gray: PIL refuses it ("image file is truncated").
    const bool fatal = tjGetErrorCode(h) != TJERR_WARNING;
    if (fatal) decompressor.reset();
    if (fatal || message.find("Premature end") != std::string::npos) {
      return failure(ImageFormat::kJpeg, "decode_error", message);
    }
  }
  r.image.width = out_w;
  r.image.height = out_h;
  if (cmyk) {
    r.image.pixels.resize(static_cast<size_t>(out_w) * out_h * 3);
    cmyk_to_rgb(buffer.data(), static_cast<size_t>(out_w) * out_h, r.image.pixels.data());
  } else {
    r.image.pixels = std::move(buffer);
  }
  return r;
}

// ---- JPEG region decode (decode_clip_preprocess) -------------------------------------------

// libjpeg reports errors through error_exit, which must not return: it longjmps back to
// read_jpeg_region's setjmp. Warnings only raise `warned` (the image then goes to the full decode).
struct JpegErrors {
  jpeg_error_mgr mgr;  // first: libjpeg's err pointer is cast back to JpegErrors
  jmp_buf jump;
  bool warned = false;
};

[[noreturn]] void jpeg_on_error(j_common_ptr cinfo) {
  longjmp(reinterpret_cast<JpegErrors*>(cinfo->err)->jump, 1);
}

void jpeg_on_message(j_common_ptr cinfo, int level) {
  if (level < 0) reinterpret_cast<JpegErrors*>(cinfo->err)->warned = true;
}

// TJFLAG_LIMITSCANS's bound, as TurboJPEG 2.1 applies it: more than 500 scans is an error.
void jpeg_on_progress(j_common_ptr cinfo) {
  if (reinterpret_cast<j_decompress_ptr>(cinfo)->input_scan_number > 500) jpeg_on_error(cinfo);
}

// One libjpeg decompressor per thread (created on first use, reused after jpeg_abort).
class JpegRegionDecoder {
 public:
  static JpegRegionDecoder& for_this_thread() {
    thread_local JpegRegionDecoder d;
    return d;
  }
  JpegRegionDecoder(const JpegRegionDecoder&) = delete;
  JpegRegionDecoder& operator=(const JpegRegionDecoder&) = delete;
  ~JpegRegionDecoder() {
    if (created_) jpeg_destroy_decompress(&cinfo_);
  }
  // REQUIRES: called where a libjpeg error can longjmp (it may fail for memory).
  jpeg_decompress_struct* cinfo() {
    if (!created_) {
      jpeg_create_decompress(&cinfo_);
      cinfo_.progress = &progress_;
      created_ = true;
    }
    return &cinfo_;
  }
  JpegErrors* errors() { return &errors_; }
  // Ends the current image (the decompressor is then ready for the next).
  void abort() {
    if (created_) jpeg_abort_decompress(&cinfo_);
  }

 private:
  JpegRegionDecoder() {
    cinfo_.err = jpeg_std_error(&errors_.mgr);
    errors_.mgr.error_exit = jpeg_on_error;
    errors_.mgr.emit_message = jpeg_on_message;
    progress_.progress_monitor = jpeg_on_progress;
  }
  jpeg_decompress_struct cinfo_{};
  JpegErrors errors_{};
  jpeg_progress_mgr progress_{};
  bool created_ = false;
};

// What read_jpeg_region decoded: the region of the (DCT-scaled) image the resize needs, with the
// CLIP geometry of that image.
struct JpegRegion {
  int width = 0;  // the header's size
  int height = 0;
  detail::ImageRegion pixels;  // into the caller's buffer
  int resized_width = 0;
  int resized_height = 0;
  int left = 0;
  int top = 0;
};

// Decodes the part of the JPEG `bytes` that clip_preprocess(size) reads into *buffer; false when
// the full decode must do it (see the top of this file). Only plain data lives in this frame
// between setjmp and a longjmp out of libjpeg; *buffer and *rows are the caller's.
bool read_jpeg_region(std::string_view bytes, int size, const DecodeOptions& options,
                      std::vector<uint8_t>* buffer, std::vector<JSAMPROW>* rows,
                      JpegRegion* region) {
  JpegRegionDecoder& decoder = JpegRegionDecoder::for_this_thread();
  JpegErrors* errors = decoder.errors();
  if (setjmp(errors->jump) != 0) {
    decoder.abort();
    return false;
  }
  jpeg_decompress_struct* cinfo = decoder.cinfo();
  errors->warned = false;
  jpeg_mem_src(cinfo, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  jpeg_read_header(cinfo, TRUE);
  const int width = static_cast<int>(cinfo->image_width);
  const int height = static_cast<int>(cinfo->image_height);
  if (cinfo->arith_code || cinfo->jpeg_color_space == JCS_CMYK ||
      cinfo->jpeg_color_space == JCS_YCCK || *size_reason(width, height, options) != '\0') {
    jpeg_abort_decompress(cinfo);
    return false;
  }
  const tjscalingfactor scale = pick_scale(width, height, options.target_short_side);
  cinfo->scale_num = scale.num;
  cinfo->scale_denom = scale.denom;
  cinfo->out_color_space = JCS_EXT_RGB;  // as TurboJPEG's TJPF_RGB; ISLOW DCT, fancy upsampling
  jpeg_calc_output_dimensions(cinfo);
  const int full_w = static_cast<int>(cinfo->output_width);
  const int full_h = static_cast<int>(cinfo->output_height);
  detail::clip_geometry(full_w, full_h, size, &region->resized_width, &region->resized_height,
                        &region->left, &region->top);
  int x0 = 0, x1 = 0, y0 = 0, y1 = 0;
  detail::resize_input_range(full_w, region->resized_width, region->left, size, &x0, &x1);
  detail::resize_input_range(full_h, region->resized_height, region->top, size, &y0, &y1);
  // At a cut edge the chroma upsampling replicates the edge's chroma sample instead of blending
  // in its neighbour, which changes the pixels within one chroma sample (samp_factor pixels) of
  // the cut: two chroma samples of margin beyond the pixels the resize reads keep those exact.
  // The cut then moves out to an iMCU boundary (jpeg_crop_scanline's; rows: where skipping ends).
  const int imcu_w = cinfo->max_h_samp_factor * cinfo->min_DCT_scaled_size;
  const int imcu_h = cinfo->max_v_samp_factor * cinfo->min_DCT_scaled_size;
  const int margin_x = 2 * cinfo->max_h_samp_factor;
  const int margin_y = 2 * cinfo->max_v_samp_factor;
  x0 = std::max(0, x0 - margin_x) / imcu_w * imcu_w;
  x1 = std::min(full_w, x1 + margin_x);
  y0 = std::max(0, y0 - margin_y) / imcu_h * imcu_h;
  y1 = std::min(full_h, y1 + margin_y);
  const bool crop_columns = x0 > 0 || (x1 + imcu_w - 1) / imcu_w * imcu_w < full_w;
  if (!crop_columns && y0 == 0 && y1 == full_h) {
    jpeg_abort_decompress(cinfo);
    return false;
  }
  jpeg_start_decompress(cinfo);
  JDIMENSION x_offset = x0;
  JDIMENSION columns = full_w;
  if (crop_columns) {
    columns = x1 - x0;
    jpeg_crop_scanline(cinfo, &x_offset, &columns);  // x_offset stays: it is iMCU-aligned
  }
  if (y0 > 0 && jpeg_skip_scanlines(cinfo, y0) != static_cast<JDIMENSION>(y0)) {
    jpeg_abort_decompress(cinfo);
    return false;
  }
  const size_t stride = static_cast<size_t>(cinfo->output_width) * 3;
  const int region_rows = y1 - y0;
  buffer->resize(stride * region_rows);
  rows->resize(region_rows);
  for (int y = 0; y < region_rows; ++y) (*rows)[y] = buffer->data() + y * stride;
  while (cinfo->output_scanline < static_cast<JDIMENSION>(y1)) {
    const int done = static_cast<int>(cinfo->output_scanline) - y0;
    if (jpeg_read_scanlines(cinfo, rows->data() + done, region_rows - done) == 0) break;
  }
  const bool complete = cinfo->output_scanline >= static_cast<JDIMENSION>(y1);
  const bool clean = !errors->warned;
  region->width = width;
  region->height = height;
  region->pixels = {buffer->data(),
                    buffer->size(),
                    static_cast<int>(x_offset),
                    y0,
                    static_cast<int>(cinfo->output_width),
                    region_rows,
                    full_w,
                    full_h};
  jpeg_abort_decompress(cinfo);
  return complete && clean;
}

// ---- PNG ------------------------------------------------------------------------------------

// State shared with libpng's callbacks. libpng reports errors by longjmp to the setjmp in
// decode_png; everything that must survive that jump lives here, in memory libpng can reach.
struct PngState {
  std::string_view bytes;
  size_t offset = 0;
  std::string error;
  std::vector<uint8_t> pixels;
  std::vector<png_bytep> rows;
};

void png_read_bytes(png_structp png, png_bytep out, png_size_t length) {
  auto* state = static_cast<PngState*>(png_get_io_ptr(png));
  if (state->bytes.size() - state->offset < length) {
    png_error(png, "truncated PNG data");
  }
  std::memcpy(out, state->bytes.data() + state->offset, length);
  state->offset += length;
}

void png_on_error(png_structp png, png_const_charp message) {
  auto* state = static_cast<PngState*>(png_get_error_ptr(png));
  state->error = message;
  png_longjmp(png, 1);
}

void png_on_warning(png_structp, png_const_charp) {}

struct PngStructs {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~PngStructs() { png_destroy_read_struct(&png, info != nullptr ? &info : nullptr, nullptr); }
};

DecodeResult decode_png(std::string_view bytes, const DecodeOptions& options,
                        std::vector<uint8_t> buffer) {
  PngState state;
  state.bytes = bytes;
  state.pixels = std::move(buffer);
  PngStructs s;
  s.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &state, png_on_error, png_on_warning);
  if (s.png == nullptr) return failure(ImageFormat::kPng, "decode_error", "png_create failed");
  s.info = png_create_info_struct(s.png);
  if (s.info == nullptr) return failure(ImageFormat::kPng, "decode_error", "png_create failed");
  DecodeResult r;
  r.format = ImageFormat::kPng;
  if (setjmp(png_jmpbuf(s.png)) != 0) {
    return failure(ImageFormat::kPng, "decode_error", state.error);
  }
  png_set_read_fn(s.png, &state, png_read_bytes);
  // Our max_pixels decides what is too large (libpng's own 1M x 1M default would answer such
  // headers with an error instead of "too_large"); PNG's format limit is 2^31 - 1 per side.
  png_set_user_limits(s.png, 0x7fffffff, 0x7fffffff);
  png_read_info(s.png, s.info);
  const int64_t width = png_get_image_width(s.png, s.info);
  const int64_t height = png_get_image_height(s.png, s.info);
  r.original_width = static_cast<int>(width);
  r.original_height = static_cast<int>(height);
  if (const char* why = size_reason(width, height, options); *why != '\0') {
    r.reason = why;
    r.message = size_message(width, height, options);
    return r;
  }
  const int color = png_get_color_type(s.png, s.info);
  png_set_expand(s.png);  // palette -> RGB, gray < 8 bits -> 8 bits, tRNS -> alpha
  png_set_strip_16(s.png);
  png_set_strip_alpha(s.png);
  if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) {
    png_set_gray_to_rgb(s.png);
  }
  png_set_interlace_handling(s.png);
  png_read_update_info(s.png, s.info);
  if (png_get_channels(s.png, s.info) != 3 || png_get_bit_depth(s.png, s.info) != 8) {
    return failure(ImageFormat::kPng, "decode_error", "unsupported PNG layout");
  }
  const size_t stride = static_cast<size_t>(width) * 3;
  state.pixels.resize(stride * height);
  state.rows.resize(height);
  for (int64_t y = 0; y < height; ++y) state.rows[y] = state.pixels.data() + y * stride;
  png_read_image(s.png, state.rows.data());
  r.image.width = static_cast<int>(width);
  r.image.height = static_cast<int>(height);
  r.image.pixels = std::move(state.pixels);
  return r;
}

// ---- WebP -----------------------------------------------------------------------------------

DecodeResult decode_webp(std::string_view bytes, const DecodeOptions& options,
                         std::vector<uint8_t> pixels) {
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  WebPBitstreamFeatures features;
  const VP8StatusCode status = WebPGetFeatures(data, bytes.size(), &features);
  if (status != VP8_STATUS_OK) {
    return failure(ImageFormat::kWebp, "decode_error",
                   "WebPGetFeatures failed with status " + std::to_string(status));
  }
  DecodeResult r;
  r.format = ImageFormat::kWebp;
  r.original_width = features.width;
  r.original_height = features.height;
  if (const char* why = size_reason(features.width, features.height, options); *why != '\0') {
    r.reason = why;
    r.message = size_message(features.width, features.height, options);
    return r;
  }
  if (features.has_animation) {
    return failure(ImageFormat::kWebp, "decode_error", "animated WebP is not supported");
  }
  const size_t stride = static_cast<size_t>(features.width) * 3;
  pixels.resize(stride * features.height);
  if (WebPDecodeRGBInto(data, bytes.size(), pixels.data(), pixels.size(),
                        static_cast<int>(stride)) == nullptr) {
    return failure(ImageFormat::kWebp, "decode_error", "WebPDecodeRGBInto failed");
  }
  r.image.width = features.width;
  r.image.height = features.height;
  r.image.pixels = std::move(pixels);
  return r;
}

// ---- GIF (first frame) ----------------------------------------------------------------------

struct GifInput {
  std::string_view bytes;
  size_t offset = 0;
};

int gif_read(GifFileType* gif, GifByteType* out, int length) {
  auto* in = static_cast<GifInput*>(gif->UserData);
  const size_t n = std::min(static_cast<size_t>(length), in->bytes.size() - in->offset);
  std::memcpy(out, in->bytes.data() + in->offset, n);
  in->offset += n;
  return static_cast<int>(n);
}

struct GifCloser {
  void operator()(GifFileType* gif) const {
    int error = 0;
    DGifCloseFile(gif, &error);
  }
};

// PIL's first frame of a GIF: the logical screen, filled with the first frame's transparent
// index where it declares one (else index 0), the frame's rectangle drawn over it, then every
// index mapped through the frame's local color table (else the global one); indices past the
// table are black. Without any table the indices are gray levels.
DecodeResult decode_gif(std::string_view bytes, const DecodeOptions& options,
                        std::vector<uint8_t> pixels) {
  GifInput in{bytes};
  int error = 0;
  std::unique_ptr<GifFileType, GifCloser> gif(DGifOpen(&in, gif_read, &error));
  if (gif == nullptr) return failure(ImageFormat::kGif, "decode_error", GifErrorString(error));
  auto gif_failure = [&](const char* what) {
    const char* detail = GifErrorString(gif->Error);
    return failure(ImageFormat::kGif, "decode_error",
                   std::string(what) + (detail != nullptr ? std::string(": ") + detail : ""));
  };
  DecodeResult r;
  r.format = ImageFormat::kGif;
  const int64_t width = gif->SWidth, height = gif->SHeight;
  r.original_width = static_cast<int>(width);
  r.original_height = static_cast<int>(height);
  if (const char* why = size_reason(width, height, options); *why != '\0') {
    r.reason = why;
    r.message = size_message(width, height, options);
    return r;
  }
  int transparent = -1;
  GifRecordType type = UNDEFINED_RECORD_TYPE;
  while (type != IMAGE_DESC_RECORD_TYPE) {
    if (DGifGetRecordType(gif.get(), &type) == GIF_ERROR) return gif_failure("bad record");
    if (type == TERMINATE_RECORD_TYPE) return gif_failure("no image in the GIF");
    if (type != EXTENSION_RECORD_TYPE) continue;
    int code = 0;
    GifByteType* ext = nullptr;
    if (DGifGetExtension(gif.get(), &code, &ext) == GIF_ERROR) return gif_failure("bad extension");
    while (ext != nullptr) {
      if (code == GRAPHICS_EXT_FUNC_CODE && ext[0] >= 4 && (ext[1] & 1) != 0) transparent = ext[4];
      if (DGifGetExtensionNext(gif.get(), &ext) == GIF_ERROR) return gif_failure("bad extension");
    }
  }
  if (DGifGetImageDesc(gif.get()) == GIF_ERROR) return gif_failure("bad image descriptor");
  const GifImageDesc& frame = gif->Image;
  if (frame.Width <= 0 || frame.Height <= 0) return gif_failure("empty frame");
  std::vector<uint8_t> index(static_cast<size_t>(width) * height,
                             static_cast<uint8_t>(transparent >= 0 ? transparent : 0));
  std::vector<GifPixelType> line(frame.Width);
  auto put_row = [&](int y) {
    const int64_t sy = frame.Top + y;
    if (sy < 0 || sy >= height) return;
    for (int x = 0; x < frame.Width; ++x) {
      const int64_t sx = frame.Left + x;
      if (sx >= 0 && sx < width) index[sy * width + sx] = line[x];
    }
  };
  if (frame.Interlace) {
    static constexpr int kStart[4] = {0, 4, 2, 1}, kStep[4] = {8, 8, 4, 2};
    for (int pass = 0; pass < 4; ++pass) {
      for (int y = kStart[pass]; y < frame.Height; y += kStep[pass]) {
        if (DGifGetLine(gif.get(), line.data(), frame.Width) == GIF_ERROR)
          return gif_failure("truncated image data");
        put_row(y);
      }
    }
  } else {
    for (int y = 0; y < frame.Height; ++y) {
      if (DGifGetLine(gif.get(), line.data(), frame.Width) == GIF_ERROR)
        return gif_failure("truncated image data");
      put_row(y);
    }
  }
  const ColorMapObject* map = frame.ColorMap != nullptr ? frame.ColorMap : gif->SColorMap;
  pixels.resize(index.size() * 3);
  for (size_t i = 0; i < index.size(); ++i) {
    uint8_t* out = pixels.data() + i * 3;
    const int k = index[i];
    if (map == nullptr) {
      out[0] = out[1] = out[2] = static_cast<uint8_t>(k);
    } else if (k < map->ColorCount) {
      out[0] = map->Colors[k].Red;
      out[1] = map->Colors[k].Green;
      out[2] = map->Colors[k].Blue;
    } else {
      out[0] = out[1] = out[2] = 0;
    }
  }
  r.image.width = static_cast<int>(width);
  r.image.height = static_cast<int>(height);
  r.image.pixels = std::move(pixels);
  return r;
}

// ---- BMP ------------------------------------------------------------------------------------

// The bytes an uncompressed BMP's pixel array needs (file header's offset + rows), or 0 when the
// header is not one of those (compressed or unknown layouts are left to stb_image).
size_t bmp_uncompressed_size(std::string_view bytes) {
  const auto* b = reinterpret_cast<const uint8_t*>(bytes.data());
  auto u16 = [&](size_t at) { return static_cast<uint32_t>(b[at] | (b[at + 1] << 8)); };
  auto u32 = [&](size_t at) { return u16(at) | (u16(at + 2) << 16); };
  if (bytes.size() < 30) return 0;
  const uint32_t offset = u32(10), dib = u32(14);
  int64_t width, height, bpp;
  if (dib == 12) {
    width = u16(18);
    height = u16(20);
    bpp = u16(24);
  } else {
    if (bytes.size() < 34) return 0;
    const uint32_t compression = u32(30);
    if (compression != 0 && compression != 3 && compression != 6) return 0;
    width = static_cast<int32_t>(u32(18));
    height = static_cast<int32_t>(u32(22));
    bpp = u16(28);
  }
  if (width <= 0 || height == 0 || bpp <= 0 || bpp > 32) return 0;
  const int64_t stride = (width * bpp + 31) / 32 * 4;
  return static_cast<size_t>(offset + stride * std::abs(height));
}

DecodeResult decode_bmp(std::string_view bytes, const DecodeOptions& options,
                        std::vector<uint8_t> pixels) {
  const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int length = static_cast<int>(std::min<size_t>(bytes.size(), INT32_MAX));
  int width = 0, height = 0, channels = 0;
  if (stbi_info_from_memory(data, length, &width, &height, &channels) == 0) {
    return failure(ImageFormat::kBmp, "decode_error", stbi_failure_reason());
  }
  DecodeResult r;
  r.format = ImageFormat::kBmp;
  r.original_width = width;
  r.original_height = height;
  if (const char* why = size_reason(width, height, options); *why != '\0') {
    r.reason = why;
    r.message = size_message(width, height, options);
    return r;
  }
  // stb_image reads zeros past the end of its input; PIL rejects a truncated file.
  if (bytes.size() < bmp_uncompressed_size(bytes)) {
    return failure(ImageFormat::kBmp, "decode_error", "truncated BMP data");
  }
  std::unique_ptr<stbi_uc, void (*)(void*)> rgb(
      stbi_load_from_memory(data, length, &width, &height, &channels, 3), stbi_image_free);
  if (rgb == nullptr) return failure(ImageFormat::kBmp, "decode_error", stbi_failure_reason());
  pixels.assign(rgb.get(), rgb.get() + static_cast<size_t>(width) * height * 3);
  r.image.width = width;
  r.image.height = height;
  r.image.pixels = std::move(pixels);
  return r;
}

}  // namespace

DecodeResult decode_image(std::string_view bytes, const DecodeOptions& options) {
  return detail::decode_image_reusing(bytes, options, {});
}

namespace detail {

DecodeResult decode_image_reusing(std::string_view bytes, const DecodeOptions& options,
                                  std::vector<uint8_t> buffer) {
  switch (sniff_format(bytes)) {
    case ImageFormat::kJpeg:
      return decode_jpeg(bytes, options, std::move(buffer));
    case ImageFormat::kPng:
      return decode_png(bytes, options, std::move(buffer));
    case ImageFormat::kWebp:
      return decode_webp(bytes, options, std::move(buffer));
    case ImageFormat::kGif:
      return decode_gif(bytes, options, std::move(buffer));
    case ImageFormat::kBmp:
      return decode_bmp(bytes, options, std::move(buffer));
    case ImageFormat::kUnknown:
      break;
  }
  return failure(ImageFormat::kUnknown, "not_an_image",
                 bytes.empty() ? "empty input" : "not a JPEG, PNG, WebP, GIF or BMP file");
}

}  // namespace detail

// Per-thread buffers above this size are freed after use rather than kept: 32 MB holds a
// 10-megapixel decode, far above the 256-pixel images of a shard.
constexpr size_t kMaxKeptBytes = size_t{32} << 20;

namespace detail {

DecodeResult decode_clip_preprocess_with(bool allow_region, std::string_view bytes, int size,
                                         const DecodeOptions& options, Image* out,
                                         bool* region_used) {
  FLAM_CHECK(size >= 1) << "CLIP size " << size;
  // The decode lives in this thread's buffer between calls.
  thread_local std::vector<uint8_t> buffer;
  thread_local std::vector<JSAMPROW> rows;
  if (region_used != nullptr) *region_used = false;
  const bool ends_in_eoi = bytes.size() >= 2 &&
                           static_cast<uint8_t>(bytes[bytes.size() - 2]) == 0xFF &&
                           static_cast<uint8_t>(bytes.back()) == 0xD9;
  if (allow_region && ends_in_eoi && sniff_format(bytes) == ImageFormat::kJpeg) {
    JpegRegion region;
    if (read_jpeg_region(bytes, size, options, &buffer, &rows, &region)) {
      resize_region_into(ResizeKernels::kAuto, region.pixels, region.resized_width,
                         region.resized_height, region.left, region.top, size, size, out);
      if (buffer.capacity() > kMaxKeptBytes) buffer = {};
      if (region_used != nullptr) *region_used = true;
      DecodeResult r;
      r.format = ImageFormat::kJpeg;
      r.original_width = region.width;
      r.original_height = region.height;
      return r;
    }
  }
  DecodeResult r = decode_image_reusing(bytes, options, std::move(buffer));
  if (r.ok()) {
    int width = 0;
    int height = 0;
    int left = 0;
    int top = 0;
    clip_geometry(r.image.width, r.image.height, size, &width, &height, &left, &top);
    resize_bicubic_crop_into(ResizeKernels::kAuto, r.image, width, height, left, top, size, size,
                             out);
  }
  buffer = std::move(r.image.pixels);
  // One huge image must not pin its buffer in every decode thread for the rest of the run.
  if (buffer.capacity() > kMaxKeptBytes) buffer = {};
  r.image = Image{};
  return r;
}

}  // namespace detail

DecodeResult decode_clip_preprocess(std::string_view bytes, int size, const DecodeOptions& options,
                                    Image* out) {
  return detail::decode_clip_preprocess_with(true, bytes, size, options, out, nullptr);
}

}  // namespace flam::pipeline
