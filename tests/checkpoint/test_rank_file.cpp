// Rank file format: CRC32C against the RFC 3720 check value and a bitwise reference, round trip
// of sections, every single flipped byte or truncation caught by verification, and the scalars
// codec (exact, NaN included; a truncated section is an error).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "core/atomic_file.h"
#include "core/error.h"
#include "train/checkpoint/crc32c.h"
#include "train/checkpoint/rank_file.h"

namespace flam::train {
namespace {

namespace fs = std::filesystem;

uint32_t crc32c_bitwise(const std::string& s) {
  uint32_t crc = ~0u;
  for (unsigned char c : s) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
  }
  return ~crc;
}

TEST(Crc32c, MatchesTheCheckValueAndABitwiseReference) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  std::mt19937 rng(1);
  for (size_t len : {0, 1, 7, 8, 9, 63, 64, 1000, 4097}) {
    std::string s(len, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    EXPECT_EQ(crc32c(s.data(), s.size()), crc32c_bitwise(s)) << len;
    // Extending piecewise gives the same value as one call.
    const size_t cut = len / 3;
    EXPECT_EQ(crc32c_extend(crc32c(s.data(), cut), s.data() + cut, len - cut), crc32c_bitwise(s));
  }
}

class RankFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("flam_rank_file_" + std::to_string(getpid()));
    fs::create_directories(dir_);
    path_ = (dir_ / "rank_00000.bin").string();
    floats_.resize(33);
    for (size_t i = 0; i < floats_.size(); ++i) floats_[i] = 0.5f * static_cast<float>(i);
    summary_ = write_rank_file(path_, {{"meta", meta_.data(), meta_.size()},
                                       {"empty", nullptr, 0},
                                       {"master/0", floats_.data(), floats_.size() * 4}});
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
  std::string path_;
  std::string meta_ = R"({"rank":0})";
  std::vector<float> floats_;
  RankFileSummary summary_;
};

TEST_F(RankFileTest, RoundTrip) {
  EXPECT_EQ(summary_.bytes, fs::file_size(path_));
  verify_rank_file(path_, summary_.bytes, summary_.header_crc);
  const RankFileHeader h = read_rank_file_header(path_);
  ASSERT_EQ(h.sections.size(), 3u);
  EXPECT_EQ(h.header_crc, summary_.header_crc);
  EXPECT_EQ(read_section(path_, h, "meta"), meta_);
  EXPECT_EQ(read_section(path_, h, "empty"), "");
  std::vector<float> part(10);
  read_section_range(path_, h, "master/0", 4 * 20, 4 * 10, part.data());
  EXPECT_EQ(part, std::vector<float>(floats_.begin() + 20, floats_.begin() + 30));
  EXPECT_EQ(h.find("master/0")->offset % 64, 0u);
  EXPECT_THROW(read_section(path_, h, "absent"), Error);
}

TEST_F(RankFileTest, EveryFlippedByteIsCaught) {
  const std::string original = read_file(path_);
  const RankFileHeader h = read_rank_file_header(path_);
  for (size_t at = 0; at < original.size(); ++at) {
    // Every byte, except only every 61st of the long zero padding after the header.
    if (at > h.header_end && at < h.data_offset && at % 61 != 0) continue;
    std::string bad = original;
    bad[at] = static_cast<char>(bad[at] ^ 0x01);
    std::ofstream(path_, std::ios::binary | std::ios::trunc) << bad;
    EXPECT_THROW(verify_rank_file(path_, summary_.bytes, summary_.header_crc), Error)
        << "flip at byte " << at << " not caught";
  }
}

TEST_F(RankFileTest, TruncationAndUnwritableDirectoryAreErrors) {
  fs::resize_file(path_, summary_.bytes - 3);
  try {
    verify_rank_file(path_, summary_.bytes, summary_.header_crc);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kData);
    EXPECT_EQ(e.context().file, path_);
  }
  try {
    write_rank_file((dir_ / "missing_dir" / "x.bin").string(), {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
  }
}

TEST(Scalars, RoundTripIsExactNanIncludedAndTruncationIsAnError) {
  const std::map<std::string, double> scalars = {{"optimizer_step", 12345.0},
                                                 {"skipped_steps", 3.0},
                                                 {"nan_counter", std::nan("")},
                                                 {"tiny", 1e-300}};
  const std::string bytes = encode_scalars(scalars);
  const std::map<std::string, double> back = decode_scalars(bytes, "x.bin");
  ASSERT_EQ(back.size(), scalars.size());
  EXPECT_EQ(back.at("optimizer_step"), 12345.0);
  EXPECT_EQ(back.at("skipped_steps"), 3.0);
  EXPECT_EQ(back.at("tiny"), 1e-300);
  EXPECT_TRUE(std::isnan(back.at("nan_counter")));
  EXPECT_TRUE(decode_scalars(encode_scalars({}), "x.bin").empty());
  EXPECT_THROW(decode_scalars(bytes.substr(0, bytes.size() - 1), "x.bin"), Error);
}

}  // namespace
}  // namespace flam::train
