// safetensors reader/writer: round trips across dtypes, dtype conversion, sharded index, and
// corrupt files (flipped header bytes, bad lengths, out-of-range or overlapping offsets,
// truncation) rejected with flam::Error naming the file and tensor, never read out of bounds.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "train/weights/safetensors.h"

namespace flam::weights {
namespace {

namespace fs = std::filesystem;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("flam_safetensors_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

std::string slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void spit(const std::string& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A file from a hand-written header and `data_bytes` bytes of data.
std::string raw_file(const std::string& header, size_t data_bytes) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + std::string(data_bytes, '\x01');
}

// Expects opening `p` to throw kData whose message names `needle`.
void expect_rejected(const std::string& p, const std::string& needle) {
  try {
    SafetensorsFile f(p);
    ADD_FAILURE() << "accepted " << p;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kData) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

TEST_F(SafetensorsTest, RoundTripAllDtypes) {
  NamedTensors in = {
      {"f32", torch::randn({3, 4})},
      {"f16", torch::randn({5}).to(torch::kFloat16)},
      {"bf16", torch::randn({2, 2, 2}).to(torch::kBFloat16)},
      {"i64", torch::arange(7, torch::kLong)},
      {"mask", torch::tensor({true, false, true})},
      {"scalar", torch::tensor(3.5f)},
      {"empty", torch::zeros({0, 4})},
      {"strided", torch::randn({4, 6}).t()},
  };
  write_safetensors(path("a.safetensors"), in, {{"format", "pt"}});
  SafetensorsFile f(path("a.safetensors"));
  EXPECT_EQ(f.names().size(), in.size());
  EXPECT_EQ(f.metadata().at("format"), "pt");
  for (const auto& [name, t] : in) {
    auto got = f.load(name);
    EXPECT_EQ(got.scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(got, t)) << name;
  }
  EXPECT_EQ(f.info("f32").shape, (std::vector<int64_t>{3, 4}));
  // Conversion on load, and on write.
  EXPECT_TRUE(torch::equal(f.load("bf16", torch::kFloat32), in[2].second.to(torch::kFloat32)));
  write_safetensors(path("b.safetensors"), {{"x", torch::randn({8})}}, {}, torch::kBFloat16);
  EXPECT_EQ(SafetensorsFile(path("b.safetensors")).info("x").dtype, torch::kBFloat16);
  // The header is padded to 8 bytes, as Hugging Face's writer does.
  const std::string bytes = slurp(path("a.safetensors"));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[i]);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_FALSE(fs::exists(path("a.safetensors.tmp")));
}

TEST_F(SafetensorsTest, ShardedIndex) {
  NamedTensors in;
  for (int i = 0; i < 5; ++i) in.emplace_back("t" + std::to_string(i), torch::randn({10, 10}));
  const std::string index = write_sharded_safetensors(path("sharded"), in, 900);
  EXPECT_TRUE(fs::exists(path("sharded/model-00001-of-00003.safetensors")));
  EXPECT_TRUE(fs::exists(path("sharded/model-00003-of-00003.safetensors")));
  TensorSource src(index);
  EXPECT_EQ(src.names().size(), 5u);
  for (const auto& [name, t] : in) EXPECT_TRUE(torch::equal(src.load(name), t)) << name;
  TensorSource single(path("sharded/model-00002-of-00003.safetensors"));
  EXPECT_EQ(single.names().size(), 2u);

  // An index naming a shard that lacks the tensor is rejected, naming the tensor.
  spit(path("sharded/bad.index.json"),
       R"({"weight_map": {"t0": "model-00002-of-00003.safetensors"}})");
  try {
    TensorSource bad(path("sharded/bad.index.json"));
    ADD_FAILURE() << "accepted a wrong weight map";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("t0"), std::string::npos) << e.what();
  }
}

TEST_F(SafetensorsTest, CorruptFilesAreRejected) {
  const std::string ok_header = R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";
  spit(path("ok"), raw_file(ok_header, 16));
  EXPECT_NO_THROW(SafetensorsFile(path("ok")));

  spit(path("short"), "abc");
  expect_rejected(path("short"), "too short");

  std::string huge = raw_file(ok_header, 16);
  huge[0] = '\xff';
  huge[5] = '\x7f';
  spit(path("huge_len"), huge);
  expect_rejected(path("huge_len"), "header length");

  std::string flipped = raw_file(ok_header, 16);
  flipped[8 + 1] = '}';  // {"a... -> {}a...
  spit(path("flipped"), flipped);
  expect_rejected(path("flipped"), "JSON");

  spit(path("oob"), raw_file(R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,64]}})", 16));
  expect_rejected(path("oob"), "a");
  expect_rejected(path("oob"), "outside the data section");

  spit(path("span"), raw_file(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}})", 16));
  expect_rejected(path("span"), "need 24");

  spit(path("neg"), raw_file(R"({"a":{"dtype":"F32","shape":[-1,4],"data_offsets":[0,16]}})", 16));
  expect_rejected(path("neg"), "non-negative");

  spit(path("dtype"), raw_file(R"({"a":{"dtype":"F12","shape":[4],"data_offsets":[0,16]}})", 16));
  expect_rejected(path("dtype"), "F12");

  spit(path("overflow"),
       raw_file(R"({"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,16]}})",
                16));
  expect_rejected(path("overflow"), "2^64");

  spit(path("overlap"), raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                 R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                 16));
  expect_rejected(path("overlap"), "overlap");

  // Truncating a real file anywhere is caught at open time.
  write_safetensors(path("real"), {{"w", torch::randn({16})}, {"v", torch::randn({3})}});
  const std::string real = slurp(path("real"));
  for (size_t cut : {real.size() - 1, real.size() - 20, size_t{30}, size_t{9}}) {
    spit(path("cut"), real.substr(0, cut));
    EXPECT_THROW(SafetensorsFile(path("cut")), Error) << "cut at " << cut;
  }
}

TEST_F(SafetensorsTest, MissingFileIsAnIoError) {
  try {
    SafetensorsFile f(path("nope.safetensors"));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
  }
}

}  // namespace
}  // namespace flam::weights
