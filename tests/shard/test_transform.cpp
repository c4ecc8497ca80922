// transform_image on real photographs: img2dataset's resize modes, filters and encoders.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "pipeline/image.h"
#include "shard/transform.h"

namespace flam::shard {
namespace {

std::string photo(const std::string& name) {
  const char* src = std::getenv("FLAM_SOURCE_DIR");
  std::ifstream f(std::string(src ? src : ".") + "/tests/data/photos/" + name, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TransformResult run(const std::string& bytes, const std::string& mode, int size = 256,
                    bool only_bigger = false) {
  TransformOptions o;
  o.resize_mode = mode;
  o.image_size = size;
  o.resize_only_if_bigger = only_bigger;
  return transform_image(bytes, o);
}

// The encoded image decodes to the recorded size.
void expect_decodes(const TransformResult& r) {
  ASSERT_TRUE(r.ok()) << r.reason << " " << r.message;
  auto d = pipeline::decode_image(r.encoded);
  ASSERT_TRUE(d.ok()) << d.reason;
  EXPECT_EQ(d.image.width, r.width);
  EXPECT_EQ(d.image.height, r.height);
}

TEST(Transform, ResizeModesOnA451x300Photo) {
  const std::string cat = photo("chelsea.png");
  auto keep = run(cat, "keep_ratio");
  expect_decodes(keep);
  EXPECT_EQ(keep.original_width, 451);
  EXPECT_EQ(keep.original_height, 300);
  EXPECT_EQ(keep.width, 385);
  EXPECT_EQ(keep.height, 256);
  EXPECT_EQ(keep.extension, "jpg");

  auto crop = run(cat, "center_crop");
  expect_decodes(crop);
  EXPECT_EQ(crop.width, 256);
  EXPECT_EQ(crop.height, 256);

  auto border = run(cat, "border");
  expect_decodes(border);
  EXPECT_EQ(border.width, 256);
  EXPECT_EQ(border.height, 256);
  auto d = pipeline::decode_image(border.encoded);
  // 256 x 170 centred: the first rows are the white border (JPEG rounding aside).
  for (int x = 0; x < 256; x += 17) EXPECT_GT(d.image.pixels[x * 3], 245);

  auto none = run(cat, "no");
  expect_decodes(none);
  EXPECT_EQ(none.width, 451);
  EXPECT_EQ(none.height, 300);
}

TEST(Transform, OnlyIfBiggerAndKeptBytes) {
  const std::string cat = photo("chelsea.png");
  auto small = run(cat, "keep_ratio", 512, true);
  expect_decodes(small);
  EXPECT_EQ(small.width, 451);
  auto bigger = run(cat, "keep_ratio", 512, false);
  expect_decodes(bigger);
  EXPECT_EQ(bigger.height, 512);
  const std::string rocket = photo("rocket.jpg");
  auto kept = run(rocket, "no");
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept.encoded, rocket);  // already JPEG: stored as downloaded
}

TEST(Transform, FiltersAndFailures) {
  const std::string cat = photo("chelsea.png");
  TransformOptions o;
  o.min_image_size = 400;
  EXPECT_EQ(transform_image(cat, o).reason, "too_small");
  o.min_image_size = 0;
  o.max_aspect_ratio = 1.2;
  EXPECT_EQ(transform_image(cat, o).reason, "bad_aspect_ratio");
  o.max_aspect_ratio = 2;
  EXPECT_TRUE(transform_image(cat, o).ok());
  EXPECT_EQ(transform_image("<html></html>", o).reason, "not_an_image");
  o.max_pixels = 1000;
  auto big = transform_image(cat, o);
  EXPECT_EQ(big.reason, "image_too_large");
  EXPECT_EQ(big.original_width, 451);
}

TEST(Transform, WebpOutputAndGreyInput) {
  TransformOptions o;
  o.encode_format = "webp";
  o.encode_quality = 80;
  auto r = transform_image(photo("camera.png"), o);
  expect_decodes(r);
  EXPECT_EQ(r.extension, "webp");
  EXPECT_EQ(r.encoded.substr(0, 4), "RIFF");
  EXPECT_EQ(r.width, 256);
}

TEST(Sha256, KnownVector) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace flam::shard
