// Progress: a periodic line on stderr for long work, with count, rate and ETA:
//   shard 120/1000 (12.0%) 45.2/s ETA 0:19:28 | ok 97.5% 3.1 MB/s
// Prints at most once per `interval_seconds` (and once at finish()).
//
// Thread safety: one thread updates a Progress.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace flam {

class Progress {
 public:
  // `total` <= 0 means unknown (no percentage, no ETA).
  Progress(std::string name, int64_t total, double interval_seconds = 5.0);

  // `done` is the absolute count; `rate_count` (default: done) is what the rate is measured in
  // (e.g. images while `done` counts shards). `extra` is appended after " | ".
  void update(int64_t done, const std::string& extra = "", int64_t rate_count = -1);
  void finish(int64_t done, const std::string& extra = "", int64_t rate_count = -1);

  double elapsed_seconds() const;
  static std::string format_duration(double seconds);

 private:
  void print(int64_t done, const std::string& extra, int64_t rate_count);

  std::string name_;
  int64_t total_;
  double interval_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_print_;
};

}  // namespace flam
