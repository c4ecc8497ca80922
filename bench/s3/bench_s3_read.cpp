// bench_s3_read: reads every member of each shard named on the command line (local paths or
// s3:// names, through pipeline::open_source and TarReader, as the loader does) and prints
// "samples N bytes B seconds S" for bench/s3/run.sh to turn into ratios.
#include <chrono>
#include <cstdio>
#include <string>

#include "core/error.h"
#include "pipeline/byte_source.h"
#include "pipeline/bytes.h"
#include "pipeline/tar_reader.h"

int main(int argc, char** argv) {
  using Clock = std::chrono::steady_clock;
  int64_t members = 0, bytes = 0;
  const auto start = Clock::now();
  try {
    for (int i = 1; i < argc; ++i) {
      flam::pipeline::TarReader reader(flam::pipeline::open_source(argv[i]));
      flam::pipeline::TarEntry entry;
      flam::pipeline::Bytes data;
      while (reader.next(entry, data)) {
        ++members;
        bytes += entry.size;
      }
    }
  } catch (const flam::Error& e) {
    std::fprintf(stderr, "bench_s3_read: %s\n", e.what());
    return 1;
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("members %lld bytes %lld seconds %.4f\n", static_cast<long long>(members),
              static_cast<long long>(bytes), seconds);
  return 0;
}
