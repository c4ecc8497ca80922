// Watchdog: ends the job when a rank falls silent (killed, SIGSTOPped, its node gone), so that
// the others never wait for it forever and the scheduler can restart the job from the last
// checkpoint. Each rank runs a heartbeat thread on its own duplicate of the communicator: it
// sends a small message to the next rank in a ring every interval and watches the previous one.
// A rank that hears nothing from its predecessor for `timeout_seconds` logs
//   "watchdog: rank 3 (host n7) silent for 60.1 s (dead, stopped or cut off); aborting the job"
// and calls World::abort(kExitPeerFailure), which ends every rank. After a stop signal
// (core/signals.h: SIGTERM from Slurm ending the step, e.g. srun --kill-on-bad-exit after a rank
// died) a few seconds of silence are enough, since the ranks cannot reach the step boundary
// where they would checkpoint. A rank that shuts down normally sends a goodbye first, so an
// early finisher is not mistaken for a dead one.
//
// Owned by `flam train` (cli/cmd_train.cpp) for the whole run, on its MPI communicator.
//
// REQUIRES: World::init() with MPI_THREAD_MULTIPLE (otherwise the watchdog logs a warning and
// stays off). Construct and destroy on the training thread, at the same point on every rank
// (construction duplicates the communicator, a collective).
#pragma once

#include <mpi.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace flam {

class Watchdog {
 public:
  // timeout_seconds <= 0 or a single rank: off (no thread, no communicator).
  Watchdog(MPI_Comm comm, double timeout_seconds);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  bool active() const { return thread_.joinable(); }

 private:
  void run();

  MPI_Comm comm_ = MPI_COMM_NULL;
  double timeout_seconds_;
  int rank_ = 0;
  int size_ = 1;
  std::vector<std::string> hosts_;  // per rank
  MPI_Request send_request_ = MPI_REQUEST_NULL;
  int send_payload_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
};

}  // namespace flam
