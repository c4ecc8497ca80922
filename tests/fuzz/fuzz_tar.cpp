// TarReader + SampleGrouper over arbitrary bytes: ustar, GNU long names, base-256 sizes, pax.
#include "core/error.h"
#include "pipeline/sample_grouper.h"
#include "pipeline/tar_reader.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    flam::pipeline::TarReader reader(std::make_unique<flam::fuzz::MemorySource>(data, size));
    flam::pipeline::SampleGrouper grouper(reader);
    flam::pipeline::Sample sample;
    while (grouper.next(sample)) {
    }
  } catch (const flam::Error&) {
  }
  return 0;
}
