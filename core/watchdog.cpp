#include "core/watchdog.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/exit_codes.h"
#include "core/log.h"
#include "core/mpi_check.h"
#include "core/signals.h"
#include "core/world.h"

namespace flam {
namespace {

constexpr int kTag = 7001;
constexpr int kAlive = 1;
constexpr int kGoodbye = 0;
constexpr int kHostLen = 64;
// After a stop signal a predecessor silent this long counts as dead, whatever the timeout. Slurm
// ends a step whose task died (srun --kill-on-bad-exit) with SIGTERM, and SIGKILL only KillWait
// (30 s by default) later; the SIGTERM handler merely asks for a checkpoint at the next step
// boundary, which a rank blocked in a collective with the dead one never reaches. A live peer
// keeps heartbeating (every second at most) while it checkpoints, so it is not mistaken for dead.
constexpr double kSilenceAfterStopSeconds = 3.0;
// Seconds MPI_Abort gets to end the job before the process exits on its own.
constexpr double kAbortGraceSeconds = 2.0;
using Clock = std::chrono::steady_clock;

// Waits up to `seconds` for `request`; true if it completed.
bool test_until(MPI_Request& request, double seconds) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  while (request != MPI_REQUEST_NULL) {
    int done = 0;
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (done) return true;
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace

Watchdog::Watchdog(MPI_Comm comm, double timeout_seconds) : timeout_seconds_(timeout_seconds) {
  MPI_Comm_size(comm, &size_);
  if (timeout_seconds_ <= 0 || size_ < 2) return;
  int provided = 0;
  MPI_Query_thread(&provided);
  if (provided < MPI_THREAD_MULTIPLE) {
    FLAM_LOG(WARN) << "watchdog off: MPI provides thread level " << provided
                   << ", the heartbeat thread needs MPI_THREAD_MULTIPLE";
    return;
  }
  MPI_CHECK(MPI_Comm_dup(comm, &comm_));
  MPI_Comm_rank(comm_, &rank_);
  char host[kHostLen] = {};
  gethostname(host, kHostLen - 1);
  std::vector<char> all(static_cast<size_t>(kHostLen) * size_);
  MPI_CHECK(MPI_Allgather(host, kHostLen, MPI_CHAR, all.data(), kHostLen, MPI_CHAR, comm_));
  for (int r = 0; r < size_; ++r) hosts_.emplace_back(all.data() + r * kHostLen);
  thread_ = std::thread([this] { run(); });
}

Watchdog::~Watchdog() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  // Goodbye to the rank watching us, so that it stops watching.
  const int next = (rank_ + 1) % size_;
  if (test_until(send_request_, 1.0)) {
    send_payload_ = kGoodbye;
    MPI_Isend(&send_payload_, 1, MPI_INT, next, kTag, comm_, &send_request_);
    test_until(send_request_, 1.0);
  }
}

void Watchdog::run() {
  const int next = (rank_ + 1) % size_;
  const int prev = (rank_ + size_ - 1) % size_;
  const auto interval = std::chrono::duration<double>(std::clamp(timeout_seconds_ / 5, 0.05, 1.0));
  auto last_heard = Clock::now();
  bool watching = true;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    lock.unlock();
    int sent = 1;
    if (send_request_ != MPI_REQUEST_NULL) MPI_Test(&send_request_, &sent, MPI_STATUS_IGNORE);
    if (sent) {
      send_payload_ = kAlive;
      MPI_Isend(&send_payload_, 1, MPI_INT, next, kTag, comm_, &send_request_);
    }
    for (;;) {
      int flag = 0;
      MPI_Iprobe(prev, kTag, comm_, &flag, MPI_STATUS_IGNORE);
      if (!flag) break;
      int payload = 0;
      MPI_Recv(&payload, 1, MPI_INT, prev, kTag, comm_, MPI_STATUS_IGNORE);
      last_heard = Clock::now();
      if (payload == kGoodbye) watching = false;
    }
    const double silent = std::chrono::duration<double>(Clock::now() - last_heard).count();
    const bool stopping = stop_requested() != 0;
    const double limit =
        stopping ? std::min(timeout_seconds_, kSilenceAfterStopSeconds) : timeout_seconds_;
    if (watching && silent > limit) {
      const std::string message = "watchdog: rank " + std::to_string(prev) + " (host " +
                                  hosts_[prev] + ") silent for " + std::to_string(silent) +
                                  " s (dead, stopped or cut off; timeout " + std::to_string(limit) +
                                  " s" + (stopping ? " after a stop signal" : "") +
                                  ", noticed by rank " + std::to_string(rank_) +
                                  "); aborting the job so it can restart from the last checkpoint";
      FLAM_LOG(ERROR) << message;
      std::fprintf(stderr, "%s\n", message.c_str());
      std::fflush(stderr);
      // MPI_Abort itself can hang when the cut also separates this rank from the launcher
      // (PMIx asks srun's side to end the job): a timer ends the process regardless.
      std::thread([] {
        std::this_thread::sleep_for(std::chrono::duration<double>(kAbortGraceSeconds));
        std::_Exit(kExitPeerFailure);
      }).detach();
      World::abort(kExitPeerFailure);
    }
    lock.lock();
    cv_.wait_for(lock, interval, [this] { return stop_; });
  }
}

}  // namespace flam
