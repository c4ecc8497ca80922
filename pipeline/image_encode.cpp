// Encoders for the shard writer: JPEG (TurboJPEG, 4:2:0), WebP (libwebp lossy), PNG (libpng).
#include <png.h>
#include <turbojpeg.h>
#include <webp/encode.h>

#include <csetjmp>

#include "core/check.h"
#include "core/error.h"
#include "pipeline/image.h"

namespace flam::pipeline {
namespace {

void check_encodable(const Image& image, int quality) {
  FLAM_CHECK(!image.empty() &&
             image.pixels.size() == static_cast<size_t>(image.width) * image.height * 3)
      << "encode of an empty or malformed image " << image.width << "x" << image.height;
  FLAM_CHECK(quality >= 1 && quality <= 100) << "quality " << quality << " outside [1, 100]";
}

// One TurboJPEG compressor per thread (handles are not thread-safe).
tjhandle jpeg_compressor() {
  struct Handle {
    tjhandle h = tjInitCompress();
    ~Handle() {
      if (h != nullptr) tjDestroy(h);
    }
  };
  thread_local Handle handle;
  return handle.h;
}

struct PngWriteState {
  std::string out;
  std::string error;
};

void png_write_bytes(png_structp png, png_bytep data, png_size_t length) {
  static_cast<PngWriteState*>(png_get_io_ptr(png))
      ->out.append(reinterpret_cast<const char*>(data), length);
}

void png_flush(png_structp) {}

void png_on_error(png_structp png, png_const_charp message) {
  static_cast<PngWriteState*>(png_get_error_ptr(png))->error = message;
  png_longjmp(png, 1);
}

void png_on_warning(png_structp, png_const_charp) {}

struct PngWriteStructs {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~PngWriteStructs() { png_destroy_write_struct(&png, info != nullptr ? &info : nullptr); }
};

}  // namespace

std::string encode_jpeg(const Image& image, int quality) {
  check_encodable(image, quality);
  tjhandle h = jpeg_compressor();
  if (h == nullptr) throw Error(ErrorKind::kInternal, "tjInitCompress failed");
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  if (tjCompress2(h, image.pixels.data(), image.width, 0, image.height, TJPF_RGB, &buffer, &size,
                  TJSAMP_420, quality, 0) != 0) {
    const std::string message = tjGetErrorStr2(h);
    tjFree(buffer);
    throw Error(ErrorKind::kInternal, "JPEG encoding failed: " + message);
  }
  std::string out(reinterpret_cast<const char*>(buffer), size);
  tjFree(buffer);
  return out;
}

std::string encode_webp(const Image& image, int quality) {
  check_encodable(image, quality);
  uint8_t* buffer = nullptr;
  const size_t size = WebPEncodeRGB(image.pixels.data(), image.width, image.height, image.width * 3,
                                    static_cast<float>(quality), &buffer);
  if (size == 0) {
    WebPFree(buffer);
    throw Error(ErrorKind::kInternal, "WebP encoding failed for a " + std::to_string(image.width) +
                                          "x" + std::to_string(image.height) + " image");
  }
  std::string out(reinterpret_cast<const char*>(buffer), size);
  WebPFree(buffer);
  return out;
}

std::string encode_png(const Image& image) {
  check_encodable(image, 100);
  PngWriteState state;
  PngWriteStructs s;
  s.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &state, png_on_error, png_on_warning);
  if (s.png == nullptr) throw Error(ErrorKind::kInternal, "png_create_write_struct failed");
  s.info = png_create_info_struct(s.png);
  if (s.info == nullptr) throw Error(ErrorKind::kInternal, "png_create_info_struct failed");
  if (setjmp(png_jmpbuf(s.png)) != 0) {
    throw Error(ErrorKind::kInternal, "PNG encoding failed: " + state.error);
  }
  png_set_write_fn(s.png, &state, png_write_bytes, png_flush);
  png_set_IHDR(s.png, s.info, image.width, image.height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(s.png, s.info);
  const size_t stride = static_cast<size_t>(image.width) * 3;
  for (int y = 0; y < image.height; ++y) {
    png_write_row(s.png, image.pixels.data() + y * stride);
  }
  png_write_end(s.png, nullptr);
  return std::move(state.out);
}

}  // namespace flam::pipeline
