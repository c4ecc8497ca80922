#include "orchestrator/watch_lock.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/run_layout.h"

namespace flam::orchestrator {
namespace {

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "?";
  return buf;
}

std::string to_text(const WatchLockInfo& i) {
  return nlohmann::json{{"pid", i.pid},
                        {"host", i.host},
                        {"since", i.since},
                        {"heartbeat", i.heartbeat},
                        {"heartbeat_unix", i.heartbeat_unix}}
             .dump() +
         "\n";
}

std::optional<WatchLockInfo> parse(const std::string& text) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("pid") || !j["pid"].is_number_integer()) return std::nullopt;
  WatchLockInfo i;
  i.pid = j["pid"].get<int64_t>();
  i.host = j.value("host", "");
  i.since = j.value("since", "");
  i.heartbeat = j.value("heartbeat", "");
  i.heartbeat_unix = j.value("heartbeat_unix", 0.0);
  return i;
}

// O_EXCL creation: true when this call made the file.
bool create_exclusive(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (errno == EEXIST) return false;
    throw Error(ErrorKind::kIo,
                std::string("cannot create the watch lock: ") + std::strerror(errno),
                at_file(path));
  }
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!ok) throw Error(ErrorKind::kIo, "cannot write the watch lock", at_file(path));
  return true;
}

}  // namespace

double watch_stale_seconds(const SlurmOptions& options) {
  return std::max(60.0, 3.0 * options.poll_seconds);
}

std::optional<WatchLockInfo> read_watch_lock(const std::string& run_dir) {
  const std::string path = run_layout::watch_lock(run_dir);
  if (!std::filesystem::exists(path)) return std::nullopt;
  try {
    return parse(read_file(path));
  } catch (const Error&) {
    return std::nullopt;  // removed between the check and the read
  }
}

bool watch_alive(const WatchLockInfo& info, double stale_seconds) {
  if (unix_seconds() - info.heartbeat_unix > stale_seconds) return false;
  if (info.host == host_name()) {
    return info.pid > 0 && (::kill(static_cast<pid_t>(info.pid), 0) == 0 || errno == EPERM);
  }
  return true;
}

WatchLock::WatchLock(const std::string& run_dir, double stale_seconds)
    : path_(run_layout::watch_lock(run_dir)) {
  info_.pid = ::getpid();
  info_.host = host_name();
  info_.since = utc_now();
  info_.heartbeat = info_.since;
  info_.heartbeat_unix = unix_seconds();
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (create_exclusive(path_, to_text(info_))) return;
    const std::optional<WatchLockInfo> held = read_watch_lock(run_dir);
    if (held && watch_alive(*held, stale_seconds)) {
      throw Error(ErrorKind::kUsage,
                  run_dir + " is watched by pid " + std::to_string(held->pid) + " on " +
                      held->host + " since " + held->since + " (heartbeat " + held->heartbeat +
                      "); stop that watch first, or leave it to supervise the run",
                  at_file(path_));
    }
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);  // stale: its watch is gone
  }
  throw Error(ErrorKind::kUsage, "another flam watch took the lock at the same moment",
              at_file(path_));
}

WatchLock::~WatchLock() {
  try {
    const std::optional<WatchLockInfo> held = parse(read_file(path_));
    if (held && held->pid == info_.pid && held->host == info_.host) {
      std::filesystem::remove(path_);
    }
  } catch (...) {
    // Nothing to remove, or it is no longer ours.
  }
}

void WatchLock::beat() {
  info_.heartbeat = utc_now();
  info_.heartbeat_unix = unix_seconds();
  write_file_atomic(path_, to_text(info_));
}

}  // namespace flam::orchestrator
