// Stop requests from the scheduler: SIGUSR1 (Slurm's --signal warning before pre-emption or the
// time limit) and SIGTERM (scancel, pre-emption). The handler only records the signal; the
// trainer polls stop_requested() at step boundaries, agrees with the other ranks, checkpoints
// and exits with kExitRequeue (core/exit_codes.h).
//
// Thread safety: install once on the main thread; poll from any thread.
#pragma once

namespace flam {

void install_stop_signal_handlers();
// The signal number received (SIGUSR1 or SIGTERM), or 0.
int stop_requested();
// For tests: forget a received signal.
void clear_stop_request();

}  // namespace flam
