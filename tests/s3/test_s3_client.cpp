// S3Client against the moto server that tests/s3/with_s3.py starts on 127.0.0.1 (bucket
// "flam-test", requests through its fault-injecting proxy: FLAM_S3_FAULTS arms the faults).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "core/error.h"
#include "pipeline/s3.h"
#include "pipeline/shard_list.h"

namespace flam::pipeline {
namespace {

std::string pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed;
  for (auto& c : s) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

void arm(const std::string& fault, int count) {
  const char* file = std::getenv("FLAM_S3_FAULTS");
  ASSERT_NE(file, nullptr) << "run under tests/s3/with_s3.py --proxy";
  std::ofstream(file) << fault << " " << count << "\n";
}

int remaining_faults() {
  std::ifstream in(std::getenv("FLAM_S3_FAULTS"));
  std::string mode;
  int count = 0;
  in >> mode >> count;
  return count;
}

std::string read_all(ByteSource& source, size_t chunk = 4096) {
  std::string out, buf(chunk, '\0');
  while (size_t n = source.read(buf.data(), buf.size())) out.append(buf.data(), n);
  return out;
}

S3Options small_parts() {
  S3Options o;
  o.part_bytes = 5 << 20;
  o.backoff_seconds = 0.01;
  return o;
}

TEST(S3Url, ParsesBucketAndKey) {
  EXPECT_EQ(parse_s3_url("s3://my-bucket/a/b.tar").bucket, "my-bucket");
  EXPECT_EQ(parse_s3_url("s3://my-bucket/a/b.tar").key, "a/b.tar");
  EXPECT_EQ(parse_s3_url("s3://my-bucket").key, "");
  EXPECT_THROW(parse_s3_url("s3://Bad_Bucket/x"), Error);
  EXPECT_THROW(parse_s3_url("s3:///x"), Error);
}

TEST(S3Client, PutGetHeadRemove) {
  S3Client s3(small_parts());
  const std::string body = pattern(100000, 1);
  s3.put("s3://flam-test/small/a.bin", body);
  EXPECT_EQ(s3.get("s3://flam-test/small/a.bin"), body);
  EXPECT_EQ(s3.head("s3://flam-test/small/a.bin"), std::optional<int64_t>(100000));
  EXPECT_EQ(s3.head("s3://flam-test/small/missing.bin"), std::nullopt);
  s3.remove("s3://flam-test/small/a.bin");
  EXPECT_EQ(s3.head("s3://flam-test/small/a.bin"), std::nullopt);
}

TEST(S3Client, GetRefusesAnObjectOverTheByteLimit) {
  S3Options o = small_parts();
  o.max_get_bytes = 1000;
  S3Client s3(o);
  s3.put("s3://flam-test/small/big.bin", pattern(5000, 9));
  try {
    s3.get("s3://flam-test/small/big.bin");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    EXPECT_NE(std::string(e.what()).find("limit of 1000 bytes"), std::string::npos) << e.what();
  }
}

TEST(S3Client, MultipartUploadAndStreamedRead) {
  S3Client s3(small_parts());
  const std::string body = pattern((11 << 20) + 123, 2);  // three parts
  s3.put("s3://flam-test/big/b.bin", body);
  auto source = s3.open("s3://flam-test/big/b.bin");
  EXPECT_EQ(source->name(), "s3://flam-test/big/b.bin");
  EXPECT_EQ(read_all(*source, 1 << 16), body);
  EXPECT_EQ(source->offset(), static_cast<int64_t>(body.size()));

  const std::string path = ::testing::TempDir() + "/s3_upload.bin";
  std::ofstream(path, std::ios::binary) << body;
  s3.put_file("s3://flam-test/big/from_file.bin", path);
  EXPECT_EQ(s3.get("s3://flam-test/big/from_file.bin"), body);
}

TEST(S3Client, ListFollowsContinuationTokensInKeyOrder) {
  S3Options o = small_parts();
  o.list_page_keys = 3;
  S3Client s3(o);
  for (int i : {6, 0, 3, 1, 5, 2, 4}) {
    s3.put("s3://flam-test/list/" + std::to_string(i) + ".tar", "x" + std::to_string(i));
  }
  s3.put("s3://flam-test/listing-elsewhere.tar", "y");
  std::vector<S3Object> got = s3.list("s3://flam-test/list/");
  ASSERT_EQ(got.size(), 7u);
  for (int i = 0; i < 7; ++i) {
    EXPECT_EQ(got[i].url, "s3://flam-test/list/" + std::to_string(i) + ".tar");
    EXPECT_EQ(got[i].size, 2);
  }
}

TEST(S3ShardList, BracePatternsAndPrefixListing) {
  S3Client s3(small_parts());
  for (int i = 0; i < 3; ++i)
    s3.put("s3://flam-test/shards/0000" + std::to_string(i) + ".tar", "t");
  s3.put("s3://flam-test/shards/00000_stats.json", "{}");
  EXPECT_EQ(expand_shard_list({"s3://flam-test/shards/{00000..00002}.tar"}),
            (std::vector<std::string>{"s3://flam-test/shards/00000.tar",
                                      "s3://flam-test/shards/00001.tar",
                                      "s3://flam-test/shards/00002.tar"}));
  EXPECT_EQ(expand_shard_list({"s3://flam-test/shards/"}),
            expand_shard_list({"s3://flam-test/shards/{00000..00002}.tar"}));
}

TEST(S3ShardList, ListFileInTheBucket) {
  S3Client s3(small_parts());
  s3.put("s3://flam-test/lists/shards.txt",
         "# two shards by pattern, one by name\n"
         "s3://flam-test/shards/{00000..00001}.tar\n\n  s3://flam-test/other/x.tar \r\n");
  const std::vector<std::string> want{"s3://flam-test/shards/00000.tar",
                                      "s3://flam-test/shards/00001.tar",
                                      "s3://flam-test/other/x.tar"};
  EXPECT_EQ(expand_shard_list({"s3://flam-test/lists/shards.txt"}), want);
  EXPECT_EQ(expand_shard_list({"@s3://flam-test/lists/shards.txt"}), want);
  try {
    expand_shard_list({"s3://flam-test/lists/missing.txt"});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.context().url, "s3://flam-test/lists/missing.txt") << e.what();
  }
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

TEST(S3Cache, LocalCopyOfAnObjectAndOfAPrefix) {
  S3Options o = small_parts();
  o.cache_dir = ::testing::TempDir() + "/flam_s3_cache_" + std::to_string(::getpid());
  S3Client s3(o);
  const std::string big = pattern((5 << 20) + 3, 9);  // multipart, streamed into the cache
  s3.put("s3://flam-test/folder/config.json", "{}");
  s3.put("s3://flam-test/folder/sub/model.bin", big);
  s3.put("s3://flam-test/folder-not/x", "not under the prefix");

  const std::string file = s3.local_copy("s3://flam-test/folder/sub/model.bin");
  EXPECT_EQ(file, o.cache_dir + "/flam-test/folder/sub/model.bin");
  EXPECT_EQ(slurp(file), big);

  const std::string dir = s3.local_copy("s3://flam-test/folder/");
  EXPECT_EQ(dir, o.cache_dir + "/flam-test/folder/");
  EXPECT_EQ(slurp(dir + "config.json"), "{}");
  EXPECT_EQ(slurp(dir + "sub/model.bin"), big);
  EXPECT_FALSE(std::filesystem::exists(o.cache_dir + "/flam-test/folder-not"));

  // Same size and ETag: the cached bytes are used as they are (tampered here to show it).
  std::ofstream(dir + "config.json", std::ios::trunc) << "[]";
  s3.local_copy("s3://flam-test/folder/");
  EXPECT_EQ(slurp(dir + "config.json"), "[]");
  // A changed object (same size, new ETag) is fetched again.
  s3.put("s3://flam-test/folder/config.json", "{ ");
  s3.local_copy("s3://flam-test/folder/config.json");
  EXPECT_EQ(slurp(dir + "config.json"), "{ ");
  for (const auto& entry : std::filesystem::recursive_directory_iterator(o.cache_dir)) {
    EXPECT_EQ(entry.path().string().find(".part."), std::string::npos) << entry.path();
  }
  std::filesystem::remove_all(o.cache_dir);
}

TEST(S3Cache, MissingObjectsAndUnsafeKeysAreErrorsNamingTheUrl) {
  S3Options o = small_parts();
  o.cache_dir = ::testing::TempDir() + "/flam_s3_cache_bad_" + std::to_string(::getpid());
  S3Client s3(o);
  try {
    s3.local_copy("s3://flam-test/nope/weights.safetensors");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    EXPECT_EQ(e.context().url, "s3://flam-test/nope/weights.safetensors");
  }
  try {
    s3.local_copy("s3://flam-test/nope-prefix/");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    EXPECT_EQ(e.context().url, "s3://flam-test/nope-prefix/");
  }
  try {
    s3.local_copy("s3://flam-test/escape/../../outside.bin");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kData);
    EXPECT_EQ(e.context().url, "s3://flam-test/escape/../../outside.bin");
  }
  EXPECT_FALSE(std::filesystem::exists(o.cache_dir + "/outside.bin"));
  std::filesystem::remove_all(o.cache_dir);
}

TEST(S3Faults, SlowDownBurstSucceedsAfterRetries) {
  S3Client s3(small_parts());
  const std::string body = pattern(50000, 3);
  arm("slowdown", 3);
  s3.put("s3://flam-test/faults/slow.bin", body);
  EXPECT_EQ(remaining_faults(), 0);
  arm("slowdown", 3);
  auto source = s3.open("s3://flam-test/faults/slow.bin");
  EXPECT_EQ(read_all(*source), body);
  EXPECT_EQ(remaining_faults(), 0);
}

TEST(S3Faults, SlowDownBeyondTheAttemptsIsANetworkErrorNamingTheCode) {
  S3Options o = small_parts();
  o.max_attempts = 2;
  S3Client s3(o);
  arm("slowdown", 5);
  try {
    s3.put("s3://flam-test/faults/slow.bin", "never stored");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNetwork);
    EXPECT_NE(std::string(e.what()).find("SlowDown"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("s3://flam-test/faults/slow.bin"), std::string::npos);
  }
  arm("slowdown", 0);
}

TEST(S3Faults, TheStreamDeadlineCountsEveryAttempt) {
  S3Options o = small_parts();
  o.max_attempts = 1000;
  o.stream.deadline_seconds = 0.5;
  S3Client s3(o);
  s3.put("s3://flam-test/faults/deadline.bin", "x");
  arm("slowdown", 1000);
  try {
    auto source = s3.open("s3://flam-test/faults/deadline.bin");
    read_all(*source);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNetwork);
    EXPECT_EQ(e.context().key, "data.stream.deadline_seconds") << e.what();
    EXPECT_EQ(e.context().url, "s3://flam-test/faults/deadline.bin");
  }
  EXPECT_GT(remaining_faults(), 0);  // ended by the deadline, not by running out of faults
  arm("slowdown", 0);
}

// Each failed attempt is short and passes the per-transfer rate check on its own; the rate over
// all of them (pauses included) fails the stream long before the attempts run out.
TEST(S3Faults, TheMinimumAverageRateCountsEveryAttempt) {
  S3Options o = small_parts();
  o.max_attempts = 1000;
  o.stream.deadline_seconds = 0;
  o.stream.min_average_bytes_per_second = 1 << 20;
  o.stream.min_average_grace_seconds = 0.3;
  S3Client s3(o);
  s3.put("s3://flam-test/faults/slow_rate.bin", "x");
  arm("slowdown", 1000);
  try {
    auto source = s3.open("s3://flam-test/faults/slow_rate.bin");
    read_all(*source);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNetwork);
    EXPECT_EQ(e.context().key, "data.stream.min_average_bytes_per_second") << e.what();
    EXPECT_EQ(e.context().url, "s3://flam-test/faults/slow_rate.bin");
  }
  EXPECT_GT(remaining_faults(), 900);
  arm("slowdown", 0);
}

TEST(S3Faults, StreamCutMidObjectResumesWithARange) {
  S3Client s3(small_parts());
  const std::string body = pattern(3 << 20, 5);
  s3.put("s3://flam-test/faults/cut.bin", body);
  arm("cut_get", 2);  // the first answer and the first ranged one are both cut
  auto source = s3.open("s3://flam-test/faults/cut.bin");
  EXPECT_EQ(read_all(*source, 1 << 16), body);
  EXPECT_EQ(remaining_faults(), 0);
}

TEST(S3Faults, ConnectionResetMidUploadIsRetried) {
  S3Client s3(small_parts());
  const std::string body = pattern((6 << 20) + 7, 4);  // multipart: two parts
  arm("reset_put", 2);
  s3.put("s3://flam-test/faults/reset.bin", body);
  EXPECT_EQ(remaining_faults(), 0);
  EXPECT_EQ(s3.get("s3://flam-test/faults/reset.bin"), body);
}

TEST(S3Errors, MissingKeyAndMissingBucket) {
  S3Client s3(small_parts());
  try {
    s3.get("s3://flam-test/nope/missing.bin");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    EXPECT_NE(std::string(e.what()).find("NoSuchKey"), std::string::npos) << e.what();
  }
  try {
    auto source = s3.open("s3://no-such-bucket-here/x.tar");
    read_all(*source);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    EXPECT_NE(std::string(e.what()).find("NoSuchBucket"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("s3://no-such-bucket-here/x.tar"), std::string::npos);
  }
}

TEST(S3Errors, WrongSecretIsAConfigErrorThatNeverPrintsTheSecret) {
  const std::string good = std::getenv("AWS_SECRET_ACCESS_KEY");
  const std::string wrong = "Wr0ngSecretValueThatMustNotBePrinted";
  setenv("AWS_SECRET_ACCESS_KEY", wrong.c_str(), 1);
  S3Client s3(small_parts());
  setenv("AWS_SECRET_ACCESS_KEY", good.c_str(), 1);
  try {
    s3.put("s3://flam-test/denied.bin", "x");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    EXPECT_NE(std::string(e.what()).find("SignatureDoesNotMatch"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find(wrong), std::string::npos);
    EXPECT_EQ(std::string(e.what()).find(good), std::string::npos);
  }
}

TEST(S3Client, CredentialsFromAProfileFile) {
  const std::string key = std::getenv("AWS_ACCESS_KEY_ID");
  const std::string secret = std::getenv("AWS_SECRET_ACCESS_KEY");
  const std::string file = ::testing::TempDir() + "/s3_credentials";
  std::ofstream(file) << "[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n"
                      << "[flam]\naws_access_key_id = " << key
                      << "\naws_secret_access_key = " << secret << "\n";
  unsetenv("AWS_ACCESS_KEY_ID");
  unsetenv("AWS_SECRET_ACCESS_KEY");
  setenv("AWS_SHARED_CREDENTIALS_FILE", file.c_str(), 1);
  setenv("AWS_PROFILE", "flam", 1);
  S3Client s3(small_parts());
  unsetenv("AWS_PROFILE");
  setenv("AWS_ACCESS_KEY_ID", key.c_str(), 1);
  setenv("AWS_SECRET_ACCESS_KEY", secret.c_str(), 1);
  unsetenv("AWS_SHARED_CREDENTIALS_FILE");
  s3.put("s3://flam-test/profile.bin", "p");
  EXPECT_EQ(s3.get("s3://flam-test/profile.bin"), "p");
}

TEST(S3Client, VirtualHostedAddressing) {
  const std::string endpoint = std::getenv("FLAM_S3_MOTO_URL");  // http://127.0.0.1:PORT
  const std::string saved = std::getenv("AWS_ENDPOINT_URL");
  const std::string localhost = "http://localhost" + endpoint.substr(endpoint.rfind(':'));
  setenv("AWS_ENDPOINT_URL", localhost.c_str(), 1);
  setenv("AWS_S3_ADDRESSING_STYLE", "virtual", 1);
  S3Client s3(small_parts());
  setenv("AWS_ENDPOINT_URL", saved.c_str(), 1);
  unsetenv("AWS_S3_ADDRESSING_STYLE");
  s3.put("s3://flam-test/virtual/v.bin", "virtual");
  S3Client path_style(small_parts());
  EXPECT_EQ(path_style.get("s3://flam-test/virtual/v.bin"), "virtual");
  EXPECT_EQ(s3.list("s3://flam-test/virtual/").size(), 1u);
}

}  // namespace
}  // namespace flam::pipeline
