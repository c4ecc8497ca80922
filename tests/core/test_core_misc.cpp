// Errors carry context; atomic writes replace whole files; bf16 conversion rounds to even; base64
// round-trips as MMC4 documents use it; the clock helpers.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <csignal>
#include <filesystem>
#include <regex>

#include "core/atomic_file.h"
#include "core/base64.h"
#include "core/clock.h"
#include "core/comm.h"
#include "core/error.h"
#include "core/signals.h"

namespace flam {
namespace {

TEST(Error, FormatsContext) {
  ErrorContext ctx;
  ctx.file = "shard-000.tar";
  ctx.offset = 1536;
  Error e(ErrorKind::kData, "bad header checksum", ctx);
  EXPECT_STREQ(e.what(), "shard-000.tar: offset 1536: bad header checksum");
  EXPECT_EQ(e.kind(), ErrorKind::kData);
  ErrorContext url;
  url.url = "http://127.0.0.1:1/x.tar";
  EXPECT_STREQ(Error(ErrorKind::kNetwork, "HTTP 404", url).what(),
               "http://127.0.0.1:1/x.tar: HTTP 404");
}

TEST(AtomicFile, ReplacesWholeAndLeavesNoTemp) {
  std::string dir = ::testing::TempDir() + "atomic";
  std::filesystem::create_directories(dir);
  std::string path = dir + "/state.json";
  write_file_atomic(path, "first");
  write_file_atomic(path, "second, longer");
  EXPECT_EQ(read_file(path), "second, longer");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(AtomicFile, FailureNamesPathAndKeepsOld) {
  std::string dir = ::testing::TempDir() + "atomic_ro";
  std::filesystem::create_directories(dir);
  std::string path = dir + "/x";
  write_file_atomic(path, "old");
  try {
    write_file_atomic(dir + "/missing-dir/x", "new");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    EXPECT_NE(std::string(e.what()).find("missing-dir/x.tmp"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_file(path), "old");
}

TEST(Bf16, RoundTripAndRounding) {
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f)), 1.0f);
  EXPECT_EQ(bf16_to_float(float_to_bf16(-3.5f)), -3.5f);
  // 1 + 2^-8 lies halfway between bf16 neighbours 1 and 1 + 2^-7: ties go to even (1).
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + 1.0f / 256)), 1.0f);
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + 3.0f / 256)), 1.0f + 4.0f / 256);
}

TEST(Signals, FlagIsSetNotActedOn) {
  install_stop_signal_handlers();
  clear_stop_request();
  EXPECT_EQ(stop_requested(), 0);
  std::raise(SIGUSR1);
  EXPECT_EQ(stop_requested(), SIGUSR1);
  clear_stop_request();
}

TEST(Base64, RoundTripsEveryLengthAndReadsWhatWritersWrite) {
  std::string bytes;
  for (int n = 0; n < 70; ++n) {
    std::string back;
    ASSERT_TRUE(base64_decode(base64_encode(bytes), &back)) << n;
    EXPECT_EQ(back, bytes) << n;
    bytes.push_back(static_cast<char>(n * 37 + 11));
  }
  EXPECT_EQ(base64_encode("hello"), "aGVsbG8=");
  std::string out;
  EXPECT_TRUE(base64_decode("aGVsbG8", &out));  // padding left off
  EXPECT_EQ(out, "hello");
  EXPECT_TRUE(base64_decode(" aGVs\nbG8=\r\n", &out));  // line breaks, as some writers wrap
  EXPECT_EQ(out, "hello");
  EXPECT_TRUE(base64_decode("", &out));
  EXPECT_EQ(out, "");
  EXPECT_FALSE(base64_decode("aGVs*G8=", &out));    // not the alphabet
  EXPECT_FALSE(base64_decode("aGVsbG8=aa", &out));  // data after padding
  EXPECT_FALSE(base64_decode("aGVsb", &out));       // a length no encoding has
}

TEST(Clock, UtcNowIsIso8601AndSecondsSinceCountsUp) {
  EXPECT_TRUE(std::regex_match(utc_now(), std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")))
      << utc_now();
  const SteadyClock::time_point start = SteadyClock::now() - std::chrono::seconds(2);
  EXPECT_GE(seconds_since(start), 2.0);
}

}  // namespace
}  // namespace flam
