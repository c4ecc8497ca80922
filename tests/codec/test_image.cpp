// pipeline/image.h against python3-pil as the oracle: make_fixtures.py encodes the real photos
// (JPEG, PNG, WebP; gray, CMYK, palette, RGBA variants) and writes PIL's decode, CLIP
// preprocessing and bicubic resize results; we decode and preprocess the same files and compare.
// Also: broken inputs (truncated, random, HTML, oversized headers, zero size), encode round trips,
// and the geometric helpers.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/atomic_file.h"
#include "pipeline/image.h"
#include "pipeline/image_internal.h"

namespace flam::pipeline {
namespace {

namespace fs = std::filesystem;

struct Reference {
  std::string kind;   // decode | clip | resize
  std::string input;  // file name in the fixture directory
  int size = 0;       // clip: the CLIP size
  int width = 0;      // the reference's size
  int height = 0;
  std::string raw;  // raw RGB bytes of the reference
};

// Runs make_fixtures.py once for the whole binary into a fresh temporary directory.
class Fixtures : public ::testing::Environment {
 public:
  static const fs::path& dir() { return dir_; }
  static const std::vector<Reference>& references() { return references_; }

  void SetUp() override {
    const char* source = std::getenv("FLAM_SOURCE_DIR");
    const fs::path root = source != nullptr ? fs::path(source) : fs::path(FLAM_TEST_SOURCE_DIR);
    char tmpl[] = "/tmp/flam_codec_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    const char* python = std::getenv("FLAM_PYTHON");
    const std::string command = std::string(python != nullptr ? python : "python3") + " " +
                                (root / "tests/codec/make_fixtures.py").string() + " " +
                                (root / "tests/data/photos").string() + " " + dir_.string();
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
    std::ifstream manifest(dir_ / "manifest.txt");
    Reference r;
    while (manifest >> r.kind >> r.input >> r.size >> r.width >> r.height >> r.raw) {
      references_.push_back(r);
    }
    ASSERT_GT(references_.size(), 50u);
  }

  void TearDown() override { fs::remove_all(dir_); }

 private:
  static inline fs::path dir_;
  static inline std::vector<Reference> references_;
};

const auto* const kFixtures = ::testing::AddGlobalTestEnvironment(new Fixtures);

std::string read_fixture(const std::string& name) { return read_file(Fixtures::dir() / name); }

Image raw_image(const Reference& r) {
  const std::string bytes = read_fixture(r.raw);
  Image image;
  image.width = r.width;
  image.height = r.height;
  image.pixels.assign(bytes.begin(), bytes.end());
  EXPECT_EQ(image.pixels.size(), static_cast<size_t>(r.width) * r.height * 3) << r.raw;
  return image;
}

struct Diff {
  double mean = 0;
  int max = 0;
};

Diff compare(const Image& a, const Image& b) {
  EXPECT_EQ(a.width, b.width);
  EXPECT_EQ(a.height, b.height);
  if (a.pixels.size() != b.pixels.size() || a.pixels.empty()) return {255, 255};
  Diff d;
  double sum = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) {
    const int e = std::abs(static_cast<int>(a.pixels[i]) - static_cast<int>(b.pixels[i]));
    sum += e;
    d.max = std::max(d.max, e);
  }
  d.mean = sum / a.pixels.size();
  return d;
}

Image decode_ok(const std::string& bytes, const DecodeOptions& options = {}) {
  DecodeResult r = decode_image(bytes, options);
  EXPECT_TRUE(r.ok()) << r.reason << ": " << r.message;
  return std::move(r.image);
}

TEST(ImageParity, MatchesPilOnRealPhotos) {
  double worst_mean = 0;
  int worst_max = 0;
  for (const Reference& r : Fixtures::references()) {
    SCOPED_TRACE(r.kind + " " + r.input + " " + std::to_string(r.size));
    const Image decoded = decode_ok(read_fixture(r.input));
    Image ours;
    if (r.kind == "decode") {
      ours = decoded;
    } else if (r.kind == "clip") {
      ours = clip_preprocess(decoded, r.size);
      // The fused, buffer-reusing path gives the same bytes (`fused` is reused across sizes).
      static Image fused;
      const DecodeResult status = decode_clip_preprocess(read_fixture(r.input), r.size, {}, &fused);
      ASSERT_TRUE(status.ok()) << status.message;
      EXPECT_TRUE(status.image.empty());
      EXPECT_EQ(status.original_width, decoded.width);
      EXPECT_EQ(fused.pixels, ours.pixels);
    } else {
      ASSERT_EQ(r.kind, "resize");
      ours = resize_bicubic(decoded, r.width, r.height);
    }
    const Diff d = compare(ours, raw_image(r));
    EXPECT_LE(d.mean, 1.0);
    worst_mean = std::max(worst_mean, d.mean);
    worst_max = std::max(worst_max, d.max);
    if (d.max > 0) {
      std::cout << "  " << r.kind << " " << r.input << " " << r.size << ": mean " << d.mean
                << " max " << d.max << "\n";
    }
  }
  std::cout << "parity with PIL over " << Fixtures::references().size()
            << " references: worst mean abs diff " << worst_mean << ", worst max diff " << worst_max
            << "\n";
}

// GIF (first frame) and BMP decode exactly as PIL's convert("RGB").
TEST(ImageParity, GifAndBmpAreBitExactWithPil) {
  int checked = 0;
  for (const Reference& r : Fixtures::references()) {
    if (r.kind != "decode" || !(r.input.ends_with(".gif") || r.input.ends_with(".bmp"))) continue;
    SCOPED_TRACE(r.input);
    const DecodeResult d = decode_image(read_fixture(r.input));
    ASSERT_TRUE(d.ok()) << d.reason << " " << d.message;
    EXPECT_EQ(d.format, r.input.ends_with(".gif") ? ImageFormat::kGif : ImageFormat::kBmp);
    EXPECT_EQ(compare(d.image, raw_image(r)).max, 0);
    ++checked;
  }
  EXPECT_EQ(checked, 10);
}

// 16-bit grayscale PNG: ours keeps the high byte of each sample (the 8-bit photo it was made
// from); PIL's convert("RGB") clips the 16-bit value to 255 (white almost everywhere). Declared in
// docs/fidelity.md.
TEST(ImageDecode, Gray16PngKeepsTheHighByte) {
  const DecodeResult d = decode_image(read_fixture("camera.gray16.png"));
  ASSERT_TRUE(d.ok()) << d.message;
  EXPECT_EQ(d.image.pixels, decode_ok(read_fixture("camera.gray.png")).pixels);
}

// DCT scaling is off by default because PIL (as OpenFlamingo calls it) decodes at full size; this
// measures how far the faster path drifts from that reference.
TEST(ImageParity, DctScaledJpegStaysClose) {
  int scaled = 0;
  double worst_mean = 0;
  for (const Reference& r : Fixtures::references()) {
    if (r.kind != "clip" || sniff_format(read_fixture(r.input)) != ImageFormat::kJpeg) continue;
    SCOPED_TRACE(r.input + " " + std::to_string(r.size));
    DecodeOptions options;
    options.target_short_side = r.size;
    const DecodeResult result = decode_image(read_fixture(r.input), options);
    ASSERT_TRUE(result.ok()) << result.message;
    EXPECT_GE(std::min(result.image.width, result.image.height), r.size);
    if (result.image.width != result.original_width) ++scaled;
    const Diff d = compare(clip_preprocess(result.image, r.size), raw_image(r));
    EXPECT_LE(d.mean, 8.0);
    worst_mean = std::max(worst_mean, d.mean);
    std::cout << "  dct-scaled " << r.input << " " << r.size << ": " << result.original_width << "x"
              << result.original_height << " -> " << result.image.width << "x"
              << result.image.height << ", mean " << d.mean << " max " << d.max << "\n";
  }
  EXPECT_GT(scaled, 0);
  std::cout << "DCT-scaled decode vs PIL: worst mean abs diff " << worst_mean << "\n";
}

TEST(ImageDecode, FormatsAndOriginalSize) {
  const std::string jpg = read_fixture("rocket.q90.jpg");
  const std::string png = read_fixture("chelsea.palette.png");
  const std::string webp = read_fixture("coffee.q90.webp");
  EXPECT_EQ(sniff_format(jpg), ImageFormat::kJpeg);
  EXPECT_EQ(sniff_format(png), ImageFormat::kPng);
  EXPECT_EQ(sniff_format(webp), ImageFormat::kWebp);
  EXPECT_EQ(sniff_format("GIF89a......"), ImageFormat::kGif);
  EXPECT_EQ(sniff_format(read_fixture("coffee.bmp")), ImageFormat::kBmp);
  EXPECT_EQ(sniff_format("GIF90a......"), ImageFormat::kUnknown);
  EXPECT_STREQ(to_string(ImageFormat::kGif), "gif");
  EXPECT_STREQ(to_string(ImageFormat::kBmp), "bmp");
  const DecodeResult r = decode_image(webp);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.format, ImageFormat::kWebp);
  EXPECT_EQ(r.original_width, 600);
  EXPECT_EQ(r.original_height, 400);
  EXPECT_STREQ(to_string(r.format), "webp");
  DecodeOptions options;
  options.target_short_side = 100;  // 427 >= 2 x 100: scaled while the short side stays >= 100
  const DecodeResult scaled = decode_image(jpg, options);
  ASSERT_TRUE(scaled.ok());
  EXPECT_EQ(scaled.original_width, 640);
  EXPECT_LT(scaled.image.height, 427);
  EXPECT_GE(scaled.image.height, 100);
  EXPECT_LT(scaled.image.height, 200);
}

void expect_failure(const std::string& bytes, const std::string& reason,
                    const DecodeOptions& options = {}) {
  const DecodeResult r = decode_image(bytes, options);
  EXPECT_EQ(r.reason, reason) << r.message;
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.image.empty());
  EXPECT_TRUE(r.image.pixels.empty());
}

TEST(ImageDecode, TruncatedFilesAreDecodeErrors) {
  for (const char* name :
       {"chelsea.q90.jpg", "chelsea.rgb.png", "chelsea.q90.webp", "camera.gray.jpg",
        "coffee.cmyk.jpg", "chelsea.palette.png", "chelsea.gif", "chelsea.flat.gif", "coffee.bmp",
        "chelsea.palette.bmp"}) {
    SCOPED_TRACE(name);
    const std::string bytes = read_fixture(name);
    for (size_t keep : {bytes.size() / 2, bytes.size() * 9 / 10, size_t{20}, size_t{3}}) {
      SCOPED_TRACE(keep);
      const std::string cut = bytes.substr(0, keep);
      const DecodeResult r = decode_image(cut);
      EXPECT_EQ(r.reason, keep >= 12 || sniff_format(cut) != ImageFormat::kUnknown ? "decode_error"
                                                                                   : "not_an_image")
          << r.message;
      EXPECT_TRUE(r.image.empty());
    }
  }
}

// Flipped bytes anywhere past the signature: every outcome is a value (ok with the header's size,
// or a reason), never a crash.
TEST(ImageDecode, ByteFlipsNeverCrash) {
  const Image small = crop(decode_ok(read_fixture("chelsea.rgb.png")), 100, 50, 64, 48);
  std::mt19937 rng(5);
  for (const std::string& clean :
       {encode_jpeg(small, 90), encode_png(small), encode_webp(small, 80),
        read_fixture("chelsea.gif"), read_fixture("grass.bw.bmp")}) {
    SCOPED_TRACE(to_string(sniff_format(clean)));
    int failures = 0;
    for (int round = 0; round < 150; ++round) {
      std::string bytes = clean;
      for (int f = 0; f < 1 + round % 4; ++f) {
        const size_t at = 12 + rng() % (bytes.size() - 12);
        bytes[at] = static_cast<char>(bytes[at] ^ (1 << (rng() % 8)));
      }
      const DecodeResult r = decode_image(bytes);
      if (r.ok()) {
        EXPECT_EQ(r.image.pixels.size(), static_cast<size_t>(r.image.width) * r.image.height * 3);
      } else {
        EXPECT_TRUE(r.reason == "decode_error" || r.reason == "too_large") << r.reason;
        EXPECT_TRUE(r.image.pixels.empty());
        ++failures;
      }
    }
    std::cout << "  " << to_string(sniff_format(clean)) << ": " << failures
              << " of 150 corrupted files rejected\n";
  }
  EXPECT_TRUE(decode_image(encode_jpeg(small, 90)).ok());
}

TEST(ImageDecode, FusedPreprocessLeavesOutputAloneOnFailure) {
  Image out;
  ASSERT_TRUE(decode_clip_preprocess(read_fixture("coffee.q90.webp"), 32, {}, &out).ok());
  const std::vector<uint8_t> before = out.pixels;
  const DecodeResult r = decode_clip_preprocess("<html></html>", 32, {}, &out);
  EXPECT_EQ(r.reason, "not_an_image");
  DecodeOptions small;
  small.max_pixels = 100;
  EXPECT_EQ(decode_clip_preprocess(read_fixture("coffee.q90.jpg"), 32, small, &out).reason,
            "too_large");
  EXPECT_EQ(out.pixels, before);
  EXPECT_EQ(out.width, 32);
}

std::vector<std::string> region_fixtures() {
  std::ifstream list(Fixtures::dir() / "region.txt");
  std::vector<std::string> names;
  for (std::string name; list >> name;) names.push_back(name);
  return names;
}

// The region decode (only the iMCU rows and columns around what the crop reads) against the full
// decode + clip_preprocess, bit for bit, over every region fixture and CLIP size, at full scale
// and DCT-scaled; each JPEG kind must have taken the region path somewhere.
TEST(ImageRegionDecode, BitExactWithTheFullDecode) {
  const std::vector<std::string> names = region_fixtures();
  ASSERT_GE(names.size(), 100u);
  std::map<std::string, int> regions_by_kind;
  int checked = 0;
  int regions = 0;
  Image out;
  for (const std::string& name : names) {
    const std::string bytes = read_fixture(name);
    const std::string kind = name.substr(name.rfind('.', name.size() - 5) + 1);
    for (int size : {224, 32, 100, 256}) {
      for (bool fast : {false, true}) {
        SCOPED_TRACE(name + " size " + std::to_string(size) + (fast ? " fast" : ""));
        DecodeOptions options;
        options.target_short_side = fast ? size : 0;
        const Image expected = clip_preprocess(decode_ok(bytes, options), size);
        bool region_used = false;
        const DecodeResult r =
            detail::decode_clip_preprocess_with(true, bytes, size, options, &out, &region_used);
        ASSERT_TRUE(r.ok()) << r.message;
        EXPECT_EQ(out.width, size);
        EXPECT_EQ(out.pixels, expected.pixels);
        ++checked;
        if (region_used) {
          ++regions;
          ++regions_by_kind[kind];
        }
      }
    }
  }
  std::cout << "region decode: " << regions << " of " << checked << " decodes cropped, all equal\n";
  for (const char* kind : {"420.jpg", "422.jpg", "444.jpg", "prog.jpg", "opt422.jpg", "gray.jpg"}) {
    EXPECT_GT(regions_by_kind[kind], 10) << kind;
  }
  EXPECT_EQ(regions_by_kind["cmyk.jpg"], 0);  // CMYK goes to the full decode
}

// Damaged JPEGs: where both paths decode, the pixels agree; where the region path refuses, the
// full decode refuses for the same reason. The region path may accept a file the full decode
// refuses only when the damage lies below the rows it reads (image.h).
TEST(ImageRegionDecode, DamagedFilesAgreeWithTheFullDecode) {
  const Image photo = decode_ok(read_fixture("coffee.rgb.png"));
  std::mt19937 rng(11);
  int both_ok = 0, both_failed = 0, only_region_ok = 0;
  for (const std::string& clean :
       {encode_jpeg(resize_bicubic(photo, 384, 256), 95), read_fixture("rocket.progressive.jpg"),
        read_fixture("region.256x384.444.jpg")}) {
    for (int round = 0; round < 200; ++round) {
      std::string bytes = clean;
      for (int f = 0; f < 1 + round % 3; ++f) {
        const size_t at = 2 + rng() % (bytes.size() - 4);
        bytes[at] = static_cast<char>(bytes[at] ^ (1 << (rng() % 8)));
      }
      if (round % 5 == 4) bytes.resize(bytes.size() - bytes.size() / 4);  // truncated
      SCOPED_TRACE(round);
      Image full;
      const DecodeResult expected =
          detail::decode_clip_preprocess_with(false, bytes, 224, {}, &full, nullptr);
      Image region;
      const DecodeResult r =
          detail::decode_clip_preprocess_with(true, bytes, 224, {}, &region, nullptr);
      if (r.ok() && expected.ok()) {
        EXPECT_EQ(region.pixels, full.pixels);
        ++both_ok;
      } else if (!r.ok()) {
        EXPECT_EQ(r.reason, expected.reason);
        EXPECT_EQ(r.message, expected.message);
        ++both_failed;
      } else {
        ++only_region_ok;
      }
    }
  }
  std::cout << "damaged JPEGs: " << both_ok << " decoded by both, " << both_failed
            << " refused by both, " << only_region_ok << " decoded by the region path only\n";
  EXPECT_GT(both_ok, 0);
  EXPECT_GT(both_failed, 0);
}

TEST(ImageDecode, GarbageIsNotAnImage) {
  std::mt19937 rng(7);
  std::string random(4096, '\0');
  for (char& c : random) c = static_cast<char>(rng());
  random[0] = 'x';
  expect_failure(random, "not_an_image");
  expect_failure("<!DOCTYPE html><html><body>404 Not Found</body></html>", "not_an_image");
  expect_failure("", "not_an_image");
  // A real signature followed by noise is a broken image, not a non-image.
  expect_failure(std::string("\xFF\xD8\xFF", 3) + random, "decode_error");
  expect_failure(std::string("\x89PNG\r\n\x1a\n", 8) + random, "decode_error");
  expect_failure(std::string("RIFF\x10\x00\x00\x00WEBPVP8 ", 16) + random, "decode_error");
  expect_failure(std::string("GIF89a\4\0\4\0\0\0\0", 13) + random, "decode_error");  // 4x4
  // A 4x4 24-bit BMP header whose pixel rows are missing.
  expect_failure(std::string("BM\0\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0\4\0\0\0\4\0\0\0\1\0\x18\0"
                             "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
                             54) +
                     "short",
                 "decode_error");
  expect_failure("BMW 320i, red, 1991", "not_an_image");
  // A broken JPEG leaves the thread's decompressor usable for the next image.
  EXPECT_TRUE(decode_image(read_fixture("chelsea.q90.jpg")).ok());
}

TEST(ImageDecode, OversizedHeadersAreRejectedBeforeAllocation) {
  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  for (const char* name : {"huge.png", "huge.jpg"}) {
    SCOPED_TRACE(name);
    const DecodeResult r = decode_image(read_fixture(name));
    EXPECT_EQ(r.reason, "too_large") << r.message;
    EXPECT_GE(r.original_width, 60000);
    EXPECT_GE(r.original_height, 60000);
  }
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  // A decoded 60000x60000 RGB image would be 10 GB; nothing near that may have been touched.
  EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 64 * 1024) << "KiB of peak RSS growth";
  DecodeOptions small;
  small.max_pixels = 1000;
  for (const char* name : {"chelsea.q90.jpg", "chelsea.rgb.png", "chelsea.q90.webp"}) {
    SCOPED_TRACE(name);
    const DecodeResult r = decode_image(read_fixture(name), small);
    EXPECT_EQ(r.reason, "too_large");
    EXPECT_EQ(r.original_width, 451);
    EXPECT_EQ(r.original_height, 300);
  }
  // Wider than libpng's default limit of 1M per side: still our "too_large", from the header.
  DecodeOptions million;
  million.max_pixels = 1000000;
  const DecodeResult wide = decode_image(read_fixture("wide.png"), million);
  EXPECT_EQ(wide.reason, "too_large") << wide.message;
  EXPECT_EQ(wide.original_width, 3000000);
  expect_failure(read_fixture("zero.png"), "decode_error");
}

TEST(ImageEncode, RoundTrips) {
  const Image original = decode_ok(read_fixture("astronaut.rgb.png"));
  const Image from_jpeg = decode_ok(encode_jpeg(original, 95));
  EXPECT_LT(compare(from_jpeg, original).mean, 3.0);
  const Image from_webp = decode_ok(encode_webp(original, 90));
  EXPECT_LT(compare(from_webp, original).mean, 4.0);
  const Image from_png = decode_ok(encode_png(original));
  EXPECT_EQ(from_png.pixels, original.pixels);
  // Lower quality, smaller file.
  EXPECT_LT(encode_jpeg(original, 50).size(), encode_jpeg(original, 95).size());
  EXPECT_LT(encode_webp(original, 30).size(), encode_webp(original, 90).size());
  // Odd sizes survive 4:2:0 subsampling.
  const Image odd = crop(original, 3, 5, 33, 17);
  const Image odd_back = decode_ok(encode_jpeg(odd, 90));
  EXPECT_EQ(odd_back.width, 33);
  EXPECT_EQ(odd_back.height, 17);
  EXPECT_EQ(sniff_format(encode_webp(odd, 80)), ImageFormat::kWebp);
}

Image gradient(int width, int height) {
  Image image;
  image.width = width;
  image.height = height;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      image.pixels.push_back(static_cast<uint8_t>(x));
      image.pixels.push_back(static_cast<uint8_t>(y));
      image.pixels.push_back(static_cast<uint8_t>(x + y));
    }
  }
  return image;
}

TEST(ImageGeometry, CropFlipAndCenterOffsets) {
  const Image g = gradient(10, 7);
  const Image c = crop(g, 2, 3, 4, 2);
  ASSERT_EQ(c.width, 4);
  ASSERT_EQ(c.height, 2);
  EXPECT_EQ(c.pixels[0], 2);  // x of the top-left pixel
  EXPECT_EQ(c.pixels[1], 3);  // y
  const Image f = flip_horizontal(g);
  EXPECT_EQ(f.pixels[0], 9);
  EXPECT_EQ(flip_horizontal(f).pixels, g.pixels);
  // torchvision rounds (in - out) / 2 half to even: 1 -> 0, 2 -> 1, 3 -> 2, 5 -> 2, 7 -> 4.
  for (auto [diff, left] : {std::pair{1, 0}, {2, 1}, {3, 2}, {5, 2}, {7, 4}}) {
    EXPECT_EQ(center_crop(g, 10 - diff, 7).pixels[0], left) << diff;
  }
  int w = 0;
  int h = 0;
  shorter_side_size(640, 427, 224, &w, &h);
  EXPECT_EQ(w, 335);  // int(224 * 640 / 427) = int(335.7)
  EXPECT_EQ(h, 224);
  shorter_side_size(300, 451, 224, &w, &h);
  EXPECT_EQ(w, 224);
  EXPECT_EQ(h, 336);
  // Same size is the identity; resize_bicubic_crop equals crop(resize_bicubic()).
  EXPECT_EQ(resize_bicubic(g, 10, 7).pixels, g.pixels);
  const Image photo = decode_ok(read_fixture("coffee.q90.jpg"));
  EXPECT_EQ(resize_bicubic_crop(photo, 301, 203, 17, 9, 200, 150).pixels,
            crop(resize_bicubic(photo, 301, 203), 17, 9, 200, 150).pixels);
  EXPECT_EQ(resize_bicubic_crop(photo, 600, 203, 100, 9, 200, 150).pixels,
            crop(resize_bicubic(photo, 600, 203), 100, 9, 200, 150).pixels);
}

// Decoder handles, resize plans and scratch are per thread: concurrent decode threads (the
// loader's pool) get the same bytes as one thread does.
TEST(ImageThreads, ConcurrentDecodeAndPreprocessMatchSerial) {
  std::vector<std::string> inputs;
  std::vector<Image> expected;
  for (const Reference& r : Fixtures::references()) {
    if (r.kind != "clip" || r.size != 224) continue;
    inputs.push_back(read_fixture(r.input));
    expected.push_back(clip_preprocess(decode_ok(inputs.back()), r.size));
  }
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 2; ++round) {
        for (size_t i = 0; i < inputs.size(); ++i) {
          const size_t j = (i * 7 + t * 13 + round) % inputs.size();  // a different order each
          const DecodeResult r = decode_image(inputs[j]);
          if (!r.ok() || clip_preprocess(r.image, expected[j].width).pixels != expected[j].pixels) {
            ++mismatches[t];
          }
          Image fused;
          if (!decode_clip_preprocess(inputs[j], expected[j].width, {}, &fused).ok() ||
              fused.pixels != expected[j].pixels) {
            ++mismatches[t];
          }
          // Interleave failures, which replace the thread's JPEG decompressor.
          if (decode_image(inputs[j].substr(0, 40)).ok()) ++mismatches[t];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

Image resize_with(detail::ResizeKernels kernels, const Image& in, int out_w, int out_h, int left,
                  int top, int w, int h) {
  Image out;
  detail::resize_bicubic_crop_into(kernels, in, out_w, out_h, left, top, w, h, &out);
  return out;
}

// The AVX2 kernels against the portable ones, bit for bit, over shapes that stress the edges:
// tiny and odd sizes, up- and downscaling, many taps, crops touching every border.
TEST(ImageResizeKernels, SimdMatchesPortable) {
  if (!detail::avx2_kernels_available()) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937 rng(11);
  const Image photo = decode_ok(read_fixture("rocket.q90.jpg"));
  int checked = 0;
  for (int round = 0; round < 60; ++round) {
    const int in_w = 1 + static_cast<int>(rng() % 90);
    const int in_h = 1 + static_cast<int>(rng() % 90);
    const Image in =
        crop(photo, static_cast<int>(rng() % 300), static_cast<int>(rng() % 200), in_w, in_h);
    const int out_w = 1 + static_cast<int>(rng() % 120);
    const int out_h = 1 + static_cast<int>(rng() % 120);
    const int w = 1 + static_cast<int>(rng() % out_w);
    const int h = 1 + static_cast<int>(rng() % out_h);
    const int left = static_cast<int>(rng() % (out_w - w + 1));
    const int top = static_cast<int>(rng() % (out_h - h + 1));
    SCOPED_TRACE(std::to_string(in_w) + "x" + std::to_string(in_h) + " -> " +
                 std::to_string(out_w) + "x" + std::to_string(out_h));
    const Image simd = resize_with(detail::ResizeKernels::kAuto, in, out_w, out_h, left, top, w, h);
    const Image portable =
        resize_with(detail::ResizeKernels::kPortable, in, out_w, out_h, left, top, w, h);
    ASSERT_EQ(simd.pixels, portable.pixels);
    ++checked;
  }
  // Large downscales (many taps) and the CLIP sizes.
  for (auto [w, h] : {std::pair{7, 5}, {20, 300}, {335, 224}, {224, 224}, {639, 426}}) {
    ASSERT_EQ(resize_with(detail::ResizeKernels::kAuto, photo, w, h, 0, 0, w, h).pixels,
              resize_with(detail::ResizeKernels::kPortable, photo, w, h, 0, 0, w, h).pixels)
        << w << "x" << h;
  }
  EXPECT_EQ(checked, 60);
}

}  // namespace
}  // namespace flam::pipeline
