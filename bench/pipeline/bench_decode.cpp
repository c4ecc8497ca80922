// bench_decode DIR: images per second on one thread over the *.jpg files in DIR for
//   ours         decode_clip_preprocess(224)  (the loader's per-image work)
//   ours_fast    the same with data.image.fast_downscale's DCT-domain scale-down
//                (DecodeOptions::target_short_side 224: only JPEGs at least twice that change)
//   decode_only  TurboJPEG tjDecompress2 to RGB
//   preprocess_only  clip_preprocess(224) of the same images, decoded beforehand (the resize +
//                    crop share of ours)
// ours and decode_only from the same bytes, already in memory: the loader decodes each image from
// the tar stream's buffer, so reading the files is set-up, not timed (a read per image would add
// syscalls and page copies that neither the loader nor the baseline does). Rates are per second of
// this thread's CPU time (the machines are shared: wall time would measure the neighbours). Rounds
// of the three alternate so that noise hits both alike; the median counts. Prints
// "ours_images_per_s X", "decode_only_images_per_s Y" and "preprocess_only_images_per_s Z" for
// bench/pipeline/run.sh, and "ours_fast_images_per_s W".
#include <time.h>
#include <turbojpeg.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "core/atomic_file.h"
#include "pipeline/image.h"

namespace {

using Clock = std::chrono::steady_clock;

// Seconds of CPU time this thread has used.
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: bench_decode DIR_OF_JPEGS\n");
    return 2;
  }
  std::vector<std::string> paths;
  for (const auto& entry : std::filesystem::directory_iterator(argv[1])) {
    if (entry.path().extension() == ".jpg") paths.push_back(entry.path().string());
  }
  std::sort(paths.begin(), paths.end());
  if (paths.empty()) {
    std::fprintf(stderr, "no .jpg files in %s\n", argv[1]);
    return 1;
  }
  std::vector<std::string> bytes;
  for (const auto& p : paths) bytes.push_back(flam::read_file(p));

  tjhandle tj = tjInitDecompress();
  std::vector<uint8_t> buffer;
  uint64_t checksum = 0;
  auto decode_only = [&] {
    const double start = thread_cpu_seconds();
    for (const std::string& b : bytes) {
      const auto* data = reinterpret_cast<const unsigned char*>(b.data());
      int w = 0, h = 0, sub = 0, cs = 0;
      if (tjDecompressHeader3(tj, data, b.size(), &w, &h, &sub, &cs) != 0) return 0.0;
      buffer.resize(static_cast<size_t>(w) * h * 3);
      if (tjDecompress2(tj, data, b.size(), buffer.data(), w, 0, h, TJPF_RGB, 0) != 0) return 0.0;
      checksum += buffer[buffer.size() / 2];
    }
    return bytes.size() / (thread_cpu_seconds() - start);
  };
  flam::pipeline::Image out;  // reused, as a loader decode thread does
  auto preprocessed = [&](const flam::pipeline::DecodeOptions& options) {
    const double start = thread_cpu_seconds();
    for (const std::string& b : bytes) {
      if (!flam::pipeline::decode_clip_preprocess(b, 224, options, &out).ok()) {
        return 0.0;
      }
      checksum += out.pixels[out.pixels.size() / 2];
    }
    return bytes.size() / (thread_cpu_seconds() - start);
  };
  flam::pipeline::DecodeOptions fast;
  fast.target_short_side = 224;
  auto ours = [&] { return preprocessed({}); };
  auto ours_fast = [&] { return preprocessed(fast); };

  std::vector<flam::pipeline::Image> decoded;
  for (const std::string& b : bytes) {
    flam::pipeline::DecodeResult r = flam::pipeline::decode_image(b);
    if (!r.ok()) return 1;
    decoded.push_back(std::move(r.image));
  }
  auto preprocess_only = [&] {
    const double start = thread_cpu_seconds();
    for (const flam::pipeline::Image& image : decoded) {
      checksum += flam::pipeline::clip_preprocess(image, 224).pixels[0];
    }
    return decoded.size() / (thread_cpu_seconds() - start);
  };

  ours();  // warm caches and the thread's decompressor
  ours_fast();
  decode_only();
  preprocess_only();
  std::vector<double> ours_rates, fast_rates, decode_rates, preprocess_rates;
  const auto deadline = Clock::now() + std::chrono::seconds(6);
  while (ours_rates.size() < 3 || (Clock::now() < deadline && ours_rates.size() < 15)) {
    ours_rates.push_back(ours());
    fast_rates.push_back(ours_fast());
    decode_rates.push_back(decode_only());
    preprocess_rates.push_back(preprocess_only());
  }
  tjDestroy(tj);
  std::printf("images %zu rounds %zu checksum %llu\n", paths.size(), ours_rates.size(),
              static_cast<unsigned long long>(checksum));
  std::printf("ours_images_per_s %.1f\n", median(ours_rates));
  std::printf("ours_fast_images_per_s %.1f\n", median(fast_rates));
  std::printf("decode_only_images_per_s %.1f\n", median(decode_rates));
  std::printf("preprocess_only_images_per_s %.1f\n", median(preprocess_rates));
  return 0;
}
