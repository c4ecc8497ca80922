#include "core/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>

#include "core/error.h"

namespace flam::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::INFO)};
std::atomic<int> g_rank{-1};

const char kLevelChar[] = {'D', 'I', 'W', 'E'};

}  // namespace

void set_level(Level level) { g_level = static_cast<int>(level); }
Level level() { return static_cast<Level>(g_level.load(std::memory_order_relaxed)); }
void set_rank(int rank) { g_rank = rank; }

Level parse_level(const char* text) {
  std::string t = text;
  if (t == "debug") return Level::DEBUG;
  if (t == "info") return Level::INFO;
  if (t == "warn") return Level::WARN;
  if (t == "error") return Level::ERROR;
  throw Error(ErrorKind::kUsage, "unknown log level '" + t + "' (debug, info, warn, error)");
}

Line::Line(Level level, const char* file, int line) {
  auto now = std::chrono::system_clock::now();
  std::time_t secs = std::chrono::system_clock::to_time_t(now);
  int ms = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm tm{};
  localtime_r(&secs, &tm);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  const char* base = std::strrchr(file, '/');
  stream_ << kLevelChar[static_cast<int>(level)] << ' ' << buf << ' ';
  int rank = g_rank.load(std::memory_order_relaxed);
  if (rank >= 0) stream_ << 'r' << rank << ' ';
  stream_ << (base ? base + 1 : file) << ':' << line << "] ";
}

Line::~Line() {
  stream_ << '\n';
  std::string s = stream_.str();
  // One write(2) per line so that lines from threads and ranks do not interleave.
  ssize_t unused = ::write(STDERR_FILENO, s.data(), s.size());
  (void)unused;
}

}  // namespace flam::log
