// Our loader (pipeline::Loader) on LAION or MMC4 shards, for bench/peers/loader.sh: the first
// batch is a warm-up (threads start, shuffle buffer fills); then BATCHES batches are timed.
// Prints samples per CPU-second of the whole process (every thread: reader, packer, decoders)
// and per wall-second.
//   bench_peers_loader laion|mmc4 TOKENIZER.model SHARD_SPEC BATCHES THREADS
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "pipeline/loader.h"
#include "pipeline/tokenizer.h"

namespace {

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec * 1e-6 + u.ru_stime.tv_sec +
         u.ru_stime.tv_usec * 1e-6;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s laion|mmc4 TOKENIZER SHARDS BATCHES THREADS\n", argv[0]);
    return 2;
  }
  using flam::pipeline::DatasetKind;
  const std::string kind_name = argv[1];
  const DatasetKind kind = kind_name == "mmc4" ? DatasetKind::kMmc4 : DatasetKind::kLaion;
  const int batches = std::atoi(argv[4]);
  flam::pipeline::DataOptions o;  // defaults: OpenFlamingo's 9B run (224 px, 32x32, 16x256x6)
  o.tokenizer = argv[2];
  o.loader.threads = std::atoi(argv[5]);
  (kind == DatasetKind::kMmc4 ? o.mmc4.shards : o.laion.shards) = {argv[3]};
  const flam::pipeline::Tokenizer tok(o.tokenizer);
  flam::pipeline::Loader loader(flam::pipeline::dataset_spec(o, kind, tok), 0, 1, 1234);
  flam::pipeline::Batch b = loader.next();  // warm-up
  const double cpu0 = cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  long samples = 0, images = 0;
  for (int i = 0; i < batches; ++i) {
    b = loader.next();
    samples += b.batch_size;
    for (uint8_t p : b.image_present) images += p;
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = cpu_seconds() - cpu0;
  std::printf("samples %ld images %ld cpu_s %.3f wall_s %.3f samples_per_cpu_s %.2f\n", samples,
              images, cpu, wall, samples / cpu);
  return 0;
}
