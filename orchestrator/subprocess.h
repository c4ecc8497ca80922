// Subprocess: runs a program as an argv vector (fork + execvp, never a shell), captures its
// stdout and stderr, and waits for it with a deadline. The orchestrator's only way to call Slurm
// (sbatch, squeue, scontrol, sacct, scancel), so that no value is ever parsed by a shell.
//
// Thread safety: reentrant; each call owns its child and pipes.
#pragma once

#include <string>
#include <vector>

namespace flam::orchestrator {

struct ProcessResult {
  int exit_code = -1;      // the exit status when the child exited normally, else -1
  int signal = 0;          // the signal that ended the child, 0 when it exited
  bool timed_out = false;  // killed (SIGKILL) at the deadline
  bool not_found = false;  // execvp failed (ENOENT/EACCES): the program is not installed
  std::string out;
  std::string err;
  bool ok() const { return exit_code == 0; }
};

// REQUIRES: argv non-empty. Never throws for a failing child; throws flam::Error(kInternal) only
// when pipes or fork themselves fail.
ProcessResult run_process(const std::vector<std::string>& argv, double timeout_seconds = 60.0);

// "argv[0] argv[1] ..." with arguments quoted for display in logs (never executed).
std::string describe_argv(const std::vector<std::string>& argv);

}  // namespace flam::orchestrator
