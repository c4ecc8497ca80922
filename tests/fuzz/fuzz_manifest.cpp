// The checkpoint manifest (train/checkpoint/manifest.h, torch-free): JSON with the step, world
// size, flat layout, loader states and checksums.
#include "core/error.h"
#include "train/checkpoint/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    flam::train::Manifest m = flam::train::parse_manifest(
        std::string(reinterpret_cast<const char*>(data), size), "fuzz/manifest.json");
    flam::train::manifest_to_json(m);
  } catch (const flam::Error&) {
  }
  return 0;
}
