// Process exit codes of every `flam` command. The orchestrator (orchestrator/supervisor.cpp)
// decides from these alone whether a failed job is worth resubmitting, so they are part of the
// contract between `flam train` / `flam shard` and `flam watch`. Documented in README.md.
#pragma once

namespace flam {

enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,      // unexpected failure: retry from the last checkpoint if progress was made
  kExitUsage = 2,        // bad command line, bad config, or a subcommand not built: never retry
  kExitRequeue = 3,      // stopped by SIGUSR1/SIGTERM after writing a checkpoint: requeue
  kExitPeerFailure = 4,  // a peer rank died or a collective timed out: restart from checkpoint
  kExitDataError = 5,    // too much bad data (beyond the configured tolerance): do not retry
  kExitIoError = 6,      // file system failure (disk full, no checkpoint writable): retry later
};

}  // namespace flam
