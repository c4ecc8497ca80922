// The image decoders (JPEG, PNG, WebP, sniffed from the bytes) and the CLIP preprocessing of what
// decodes, with a small pixel limit so that a bomb is refused from its header.
#include "core/error.h"
#include "pipeline/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  flam::pipeline::DecodeOptions options;
  options.max_pixels = 4 << 20;
  try {
    flam::pipeline::DecodeResult r = flam::pipeline::decode_image(
        std::string_view(reinterpret_cast<const char*>(data), size), options);
    if (r.ok()) flam::pipeline::clip_preprocess(r.image, 16);
  } catch (const flam::Error&) {
  }
  return 0;
}
