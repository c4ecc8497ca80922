// The zstd and gzip sources of pipeline::open_source: the first byte picks the format, the rest
// is the compressed stream, read to its end.
#include <vector>

#include "core/error.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string path =
      flam::fuzz::write_input(data + 1, size - 1, data[0] & 1 ? ".gz" : ".zst");
  try {
    auto source = flam::pipeline::open_source(path);
    std::vector<char> buf(1 + data[0] % 8192);
    int64_t total = 0;
    while (size_t n = source->read(buf.data(), buf.size())) {
      total += static_cast<int64_t>(n);
      if (total > (16 << 20)) break;  // a bomb is bounded by the reader's caller, not here
    }
  } catch (const flam::Error&) {
  }
  return 0;
}
