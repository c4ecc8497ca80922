// WatchLock: RUN/watch.lock, held by the one `flam watch` that supervises a run, so that a
// second watch refuses instead of racing on state.json. The file is JSON:
//   {"pid": 1234, "host": "login1", "since": "2026-01-02T03:04:05Z",
//    "heartbeat": "2026-01-02T03:14:05Z", "heartbeat_unix": 1767323645.0}
// A lock is stale, and may be taken over, when its pid is dead (checked on the same host) or its
// heartbeat is older than watch_stale_seconds(); `flam status` calls a run "unsupervised" then.
//
// Thread safety: one WatchLock per run and process; other processes only read the file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "orchestrator/options.h"

namespace flam::orchestrator {

struct WatchLockInfo {
  int64_t pid = -1;
  std::string host;
  std::string since;      // UTC, when the watch started
  std::string heartbeat;  // UTC, its latest beat
  double heartbeat_unix = 0;
};

// How old a heartbeat may be before the lock counts as stale: three polls, at least 60 s.
double watch_stale_seconds(const SlurmOptions& options);

// The lock of `run_dir`; nullopt when there is none or it does not parse.
std::optional<WatchLockInfo> read_watch_lock(const std::string& run_dir);

// True when the watch that wrote `info` is alive: its heartbeat at most `stale_seconds` old and,
// on this host, its pid running.
bool watch_alive(const WatchLockInfo& info, double stale_seconds);

class WatchLock {
 public:
  // Takes RUN/watch.lock for this process, replacing a stale one. Throws flam::Error(kUsage)
  // "RUN is watched by pid N on HOST since T" when a live watch holds it; kIo when the file
  // cannot be created.
  WatchLock(const std::string& run_dir, double stale_seconds);
  // Removes the lock when it is still this process's.
  ~WatchLock();
  WatchLock(const WatchLock&) = delete;
  WatchLock& operator=(const WatchLock&) = delete;

  // Refreshes the heartbeat (atomic replace).
  void beat();

 private:
  std::string path_;
  WatchLockInfo info_;
};

}  // namespace flam::orchestrator
