// The clock helpers every module shares: elapsed seconds on the monotonic clock (for durations,
// rates and deadlines) and the wall-clock time as UTC ISO 8601 (for files people read).
//
// Thread safety: pure functions; call from any thread.
#pragma once

#include <chrono>
#include <string>

namespace flam {

using SteadyClock = std::chrono::steady_clock;

// Seconds elapsed since `start` on the steady clock.
double seconds_since(SteadyClock::time_point start);

// The current time as "YYYY-MM-DDTHH:MM:SSZ".
std::string utc_now();

// The current wall-clock time in seconds since the Unix epoch (fractional).
double unix_seconds();

}  // namespace flam
