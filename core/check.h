// FLAM_CHECK: invariants whose failure is a bug in Flamboyance, not bad input. A failed check
// prints the condition, file and line (and an optional streamed message) and aborts, so a core
// dump or debugger lands on the bug. Never use it for input validation: that is flam::Error.
#pragma once

#include <sstream>
#include <string>

namespace flam::detail {

[[noreturn]] void check_failed(const char* condition, const char* file, int line,
                               const std::string& message);

// Collects an optional message streamed after FLAM_CHECK(cond) and aborts in its destructor.
class CheckMessage {
 public:
  CheckMessage(const char* condition, const char* file, int line)
      : condition_(condition), file_(file), line_(line) {}
  [[noreturn]] ~CheckMessage() { check_failed(condition_, file_, line_, stream_.str()); }
  std::ostream& stream() { return stream_; }

 private:
  const char* condition_;
  const char* file_;
  int line_;
  std::ostringstream stream_;
};

}  // namespace flam::detail

#define FLAM_CHECK(cond)                              \
  if (__builtin_expect(static_cast<bool>(cond), 1)) { \
  } else                                              \
    ::flam::detail::CheckMessage(#cond, __FILE__, __LINE__).stream()
