// The transform-only baseline of bench/shard/run.sh: decode + resize + encode (transform_image,
// `flam shard`'s defaults) of every file in a directory, on one thread, for at least `seconds`.
// Prints "transform_images_per_cpu_second N".
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "shard/transform.h"

namespace {

double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_shard_transform DIR [seconds]\n");
    return 2;
  }
  const double seconds = argc > 2 ? std::atof(argv[2]) : 3.0;
  std::vector<std::string> images;
  for (const auto& entry : std::filesystem::directory_iterator(argv[1])) {
    std::ifstream f(entry.path(), std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    images.push_back(ss.str());
  }
  flam::shard::TransformOptions options;
  int64_t done = 0, failed = 0;
  const double start = cpu_seconds();
  while (cpu_seconds() - start < seconds) {
    for (const auto& bytes : images) {
      auto r = flam::shard::transform_image(bytes, options);
      if (!r.ok()) ++failed;
      flam::shard::sha256_hex(bytes);
      ++done;
    }
  }
  const double cpu = cpu_seconds() - start;
  std::printf("transform_images_per_cpu_second %.1f\n", static_cast<double>(done) / cpu);
  return failed == 0 ? 0 : 1;
}
