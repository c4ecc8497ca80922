// Logging: one line per message on stderr, prefixed with level, time, rank and source location:
//   I 12:01:02.345 r0 trainer.cpp:88] step 10/100 loss 3.21
// Usage: FLAM_LOG(INFO) << "step " << step;  Levels: DEBUG, INFO, WARN, ERROR.
// The rank is set once by World (core/world.h); before that the prefix has no rank.
// Thread safety: any thread may log; a line is written with one call, so lines never interleave.
#pragma once

#include <sstream>

namespace flam::log {

enum class Level { DEBUG = 0, INFO = 1, WARN = 2, ERROR = 3 };

void set_level(Level level);
Level level();
void set_rank(int rank);
// Parses "debug", "info", "warn", "error"; throws flam::Error(kUsage) on anything else.
Level parse_level(const char* text);

class Line {
 public:
  Line(Level level, const char* file, int line);
  ~Line();
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

}  // namespace flam::log

#define FLAM_LOG(lvl)                                   \
  if (::flam::log::Level::lvl < ::flam::log::level()) { \
  } else                                                \
    ::flam::log::Line(::flam::log::Level::lvl, __FILE__, __LINE__).stream()
