// Downloader against a real HTTP server on 127.0.0.1 (tests/common/http_server.py) with faults.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "shard/downloader.h"

namespace flam::shard {
namespace {

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class DownloaderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    src_ = std::getenv("FLAM_SOURCE_DIR") ? std::getenv("FLAM_SOURCE_DIR") : ".";
    dir_ = std::filesystem::temp_directory_path() / ("flam_dl_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    const std::string port_file = (dir_ / "port").string();
    const std::string script = src_ + "/tests/common/http_server.py";
    const std::string root = src_ + "/tests/data/photos";
    server_ = ::fork();
    if (server_ == 0) {
      ::execlp("python3", "python3", script.c_str(), "--root", root.c_str(), "--port-file",
               port_file.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 200 && !std::filesystem::exists(port_file); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    port_ = read_all(port_file);
    base_ = "http://127.0.0.1:" + port_;
  }
  static void TearDownTestSuite() {
    ::kill(server_, SIGKILL);
    ::waitpid(server_, nullptr, 0);
    std::filesystem::remove_all(dir_);
  }

  void SetUp() override { ASSERT_FALSE(port_.empty()) << "the test HTTP server did not start"; }

  // Timeouts short enough for a fast test, long enough for a loaded CI machine.
  static DownloadOptions fast() {
    DownloadOptions o;
    o.connect_timeout_seconds = 3;
    o.total_timeout_seconds = 3;
    o.retries = 2;
    o.retry_backoff_seconds = 0.05;
    o.max_body_bytes = 1000000;
    return o;
  }

  // Fetches every URL and returns the results by tag (= position).
  static std::vector<FetchResult> fetch(const std::vector<std::string>& urls,
                                        const DownloadOptions& options = fast()) {
    Downloader d(options);
    for (size_t i = 0; i < urls.size(); ++i) d.submit(i, urls[i]);
    std::vector<FetchResult> done, out(urls.size());
    std::vector<int> seen(urls.size(), 0);
    while (d.pending() > 0) d.poll(50, &done);
    for (auto& r : done) {
      seen.at(r.tag) += 1;
      out[r.tag] = std::move(r);
    }
    for (int s : seen) EXPECT_EQ(s, 1);
    return out;
  }

  static std::string src_;
  static std::filesystem::path dir_;
  static pid_t server_;
  static std::string port_;
  static std::string base_;
};

std::string DownloaderTest::src_;
std::filesystem::path DownloaderTest::dir_;
pid_t DownloaderTest::server_ = 0;
std::string DownloaderTest::port_;
std::string DownloaderTest::base_;

TEST_F(DownloaderTest, GoodFilesAndRetries) {
  auto r = fetch({base_ + "/f/rocket.jpg", base_ + "/x/fail=2:g1/f/chelsea.png",
                  base_ + "/x/throttle=1:g2/f/rocket.jpg", base_ + "/x/redirect=3/f/rocket.jpg"});
  const std::string rocket = read_all(src_ + "/tests/data/photos/rocket.jpg");
  ASSERT_TRUE(r[0].ok()) << r[0].reason << " " << r[0].message;
  EXPECT_EQ(r[0].body, rocket);
  EXPECT_EQ(r[0].attempts, 1);
  ASSERT_TRUE(r[1].ok()) << r[1].reason;
  EXPECT_EQ(r[1].attempts, 3);
  EXPECT_EQ(r[1].body, read_all(src_ + "/tests/data/photos/chelsea.png"));
  ASSERT_TRUE(r[2].ok()) << r[2].reason;
  EXPECT_EQ(r[2].attempts, 2);
  ASSERT_TRUE(r[3].ok()) << r[3].reason;
  EXPECT_EQ(r[3].body, rocket);
}

TEST_F(DownloaderTest, FailuresAreValuesWithReasons) {
  auto r = fetch({
      base_ + "/x/status=404/f/rocket.jpg",
      base_ + "/x/status=410/f/rocket.jpg",
      base_ + "/x/status=500/f/rocket.jpg",
      base_ + "/x/hang=30/f/rocket.jpg",
      base_ + "/x/slow=2000/f/rocket.jpg",
      base_ + "/x/cut=500/f/rocket.jpg",
      base_ + "/x/loop/f/rocket.jpg",
      base_ + "/x/location=file%3A%2F%2F%2Fetc%2Fpasswd/f/rocket.jpg",
      base_ + "/x/header=X-Robots-Tag:noimageai/f/rocket.jpg",
      base_ + "/gen/2000000",
      base_ + "/x/nolength/gen/2000000",
      "ftp://127.0.0.1/rocket.jpg",
      "",
      "http://127.0.0.1:1/closed",
  });
  const char* want[] = {"http_404",  "http_4xx",      "http_5xx",   "timeout",   "timeout",
                        "truncated", "redirect_loop", "bad_scheme", "opted_out", "too_large",
                        "too_large", "bad_scheme",    "bad_url",    "connect"};
  for (size_t i = 0; i < r.size(); ++i) {
    EXPECT_EQ(r[i].reason, want[i]) << "url " << i << ": " << r[i].message;
    EXPECT_TRUE(r[i].body.empty());
  }
  EXPECT_EQ(r[0].attempts, 1);  // 404 is not retried
  EXPECT_EQ(r[2].attempts, 3);  // 5xx is
  EXPECT_EQ(r[3].attempts, 3);  // and so are timeouts
}

// Issue #17: a trickle above curl's low-speed limit fails on the minimum average rate, an endless
// body at a good rate on the total deadline, non-HTTP bytes are a bad response (not a bad
// scheme), a Content-Length lie is a truncation, and a gzip Content-Encoding is decoded.
TEST_F(DownloaderTest, DeadlinesRatesAndOddReplies) {
  DownloadOptions o = fast();
  o.retries = 0;
  o.total_timeout_seconds = 2;
  o.min_average_bytes_per_second = 1000;
  o.min_average_grace_seconds = 0.5;
  DownloadOptions deadline_only = o;
  deadline_only.min_average_bytes_per_second = 0;
  auto slow = fetch({base_ + "/x/trickle=50/f/rocket.jpg"}, o);
  EXPECT_EQ(slow[0].reason, "too_slow") << slow[0].message;
  EXPECT_NE(slow[0].message.find("min_average_bytes_per_second"), std::string::npos);
  auto endless = fetch({base_ + "/x/endless=20000/f/rocket.jpg"}, deadline_only);
  EXPECT_EQ(endless[0].reason, "timeout") << endless[0].message;
  EXPECT_NE(endless[0].message.find("total_timeout_seconds"), std::string::npos);
  auto r = fetch({base_ + "/x/garbage/f/rocket.jpg", base_ + "/x/lie=1000/f/rocket.jpg",
                  base_ + "/x/gzip/f/rocket.jpg"},
                 o);
  EXPECT_EQ(r[0].reason, "bad_response") << r[0].message;
  EXPECT_EQ(r[1].reason, "truncated") << r[1].message;
  ASSERT_TRUE(r[2].ok()) << r[2].reason << " " << r[2].message;
  EXPECT_EQ(r[2].body, read_all(src_ + "/tests/data/photos/rocket.jpg"));
}

TEST_F(DownloaderTest, OptOutCanBeSwitchedOff) {
  DownloadOptions o = fast();
  o.respect_opt_out = false;
  auto r = fetch({base_ + "/x/header=X-Robots-Tag:noai/f/rocket.jpg"}, o);
  EXPECT_TRUE(r[0].ok()) << r[0].reason;
}

TEST_F(DownloaderTest, ManyTransfersEachComeBackOnce) {
  DownloadOptions o = fast();
  o.concurrency = 8;
  o.per_host_connections = 3;
  std::vector<std::string> urls;
  for (int i = 0; i < 60; ++i)
    urls.push_back(base_ + "/f/" + (i % 2 ? "rocket.jpg" : "camera.png"));
  auto r = fetch(urls, o);
  for (const auto& x : r) EXPECT_TRUE(x.ok()) << x.reason;
}

TEST(RobotsTag, Directives) {
  EXPECT_TRUE(robots_tag_opts_out("noai", "flamboyance"));
  EXPECT_TRUE(robots_tag_opts_out("NoImageIndex", "flamboyance"));
  EXPECT_TRUE(robots_tag_opts_out("nofollow, noindex", "flamboyance"));
  EXPECT_TRUE(robots_tag_opts_out("flamboyance: noai", "flamboyance"));
  EXPECT_FALSE(robots_tag_opts_out("googlebot: noai", "flamboyance"));
  EXPECT_FALSE(robots_tag_opts_out("nofollow, noarchive", "flamboyance"));
  EXPECT_FALSE(robots_tag_opts_out("", "flamboyance"));
}

}  // namespace
}  // namespace flam::shard
