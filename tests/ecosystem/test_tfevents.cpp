// TfEventsWriter against TensorBoard itself: the event files it writes are read back by the
// tensorboard package's EventAccumulator (the venv's python3), tag for tag, step for step.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/tfevents.h"

namespace flam {
namespace {

namespace fs = std::filesystem;

std::string run(const std::string& command) {
  std::string out;
  std::FILE* p = popen(command.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << command;
  return out;
}

std::string read_back(const std::string& dir) {
  return run("python3 " + std::string(FLAM_SOURCE_DIR) + "/tests/ecosystem/read_tfevents.py " +
             dir);
}

class TfEventsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("flam_tb_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST(Crc32c, KnownValues) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);  // the CRC-32C check value
  EXPECT_EQ(crc32c("", 0), 0u);
}

TEST_F(TfEventsTest, TensorBoardReadsTheScalarsOfMetricsLines) {
  TfEventsWriter w;
  w.open(dir_.string());
  EXPECT_TRUE(fs::path(w.path()).filename().string().rfind("events.out.tfevents.", 0) == 0);
  w.add_metrics(10, nlohmann::json::parse(R"({"step": 10, "loss_laion": 2.5, "lr": 0.0001,
      "skipped_steps": 0, "note": "text is skipped", "memory": {"master_bytes": 4096}})"),
                1700000000.25);
  w.add_metrics(20, nlohmann::json::parse(R"({"step": 20, "loss_laion": 2.25, "lr": 0.0002,
      "skipped_steps": 1, "memory": {"master_bytes": 8192}, "wall_time": 1700000010.5})"));
  w.add_scalar("images_per_s", 300000000000, 1234.5, 1700000020.0);
  EXPECT_EQ(read_back(dir_.string()),
            "images_per_s 300000000000 1234.5 1700000020.000000\n"
            "loss_laion 10 2.5 1700000000.250000\n"
            "loss_laion 20 2.25 1700000010.500000\n"
            "lr 10 9.99999975e-05 1700000000.250000\n"
            "lr 20 0.000199999995 1700000010.500000\n"
            "memory/master_bytes 10 4096 1700000000.250000\n"
            "memory/master_bytes 20 8192 1700000010.500000\n"
            "skipped_steps 10 0 1700000000.250000\n"
            "skipped_steps 20 1 1700000010.500000\n");
}

TEST_F(TfEventsTest, AFlippedByteDropsOnlyThatRecord) {
  std::string path;
  {
    TfEventsWriter w;
    w.open(dir_.string());
    path = w.path();
    w.add_scalar("a", 1, 1.0, 1.0);
    w.add_scalar("a", 2, 2.0, 2.0);
    w.add_scalar("a", 3, 3.0, 3.0);
  }
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    bytes = ss.str();
  }
  // The records of steps 1..3 have the same length: flip the last payload byte of the last one
  // (its float value), so its data CRC no longer matches.
  bytes[bytes.size() - 5] ^= 0x40;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  const std::string got = read_back(dir_.string());
  EXPECT_EQ(got.rfind("a 1 1 1.000000\na 2 2 2.000000\n", 0), 0u) << got;
  EXPECT_EQ(got.find("a 3 3"), std::string::npos) << got;
}

TEST_F(TfEventsTest, AnUnopenedWriterWritesNothing) {
  TfEventsWriter w;
  w.add_scalar("a", 1, 1.0);
  EXPECT_FALSE(w.is_open());
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST(TfEventsOpen, AMissingRunDirectoryIsAnIoError) {
  TfEventsWriter w;
  EXPECT_THROW(w.open("/nonexistent/flam/run"), Error);
}

}  // namespace
}  // namespace flam
