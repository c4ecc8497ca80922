#include "core/progress.h"

#include <cmath>
#include <cstdio>

#include "core/log.h"

namespace flam {

Progress::Progress(std::string name, int64_t total, double interval_seconds)
    : name_(std::move(name)),
      total_(total),
      interval_(interval_seconds),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string Progress::format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e8) return "?";
  const int64_t s = std::llround(seconds);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                static_cast<long long>((s / 60) % 60), static_cast<long long>(s % 60));
  return buf;
}

void Progress::update(int64_t done, const std::string& extra, int64_t rate_count) {
  auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - last_print_).count() < interval_) return;
  last_print_ = now;
  print(done, extra, rate_count);
}

void Progress::finish(int64_t done, const std::string& extra, int64_t rate_count) {
  print(done, extra, rate_count);
}

void Progress::print(int64_t done, const std::string& extra, int64_t rate_count) {
  double elapsed = elapsed_seconds();
  double rate =
      elapsed > 0 ? static_cast<double>(rate_count >= 0 ? rate_count : done) / elapsed : 0.0;
  char head[160];
  if (total_ > 0) {
    double done_rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
    double eta = done_rate > 0 ? static_cast<double>(total_ - done) / done_rate : -1.0;
    std::snprintf(head, sizeof(head), "%s %lld/%lld (%.1f%%) %.1f/s ETA %s", name_.c_str(),
                  static_cast<long long>(done), static_cast<long long>(total_),
                  100.0 * static_cast<double>(done) / static_cast<double>(total_), rate,
                  format_duration(eta).c_str());
  } else {
    std::snprintf(head, sizeof(head), "%s %lld %.1f/s elapsed %s", name_.c_str(),
                  static_cast<long long>(done), rate, format_duration(elapsed).c_str());
  }
  FLAM_LOG(INFO) << head << (extra.empty() ? "" : " | ") << extra;
}

}  // namespace flam
