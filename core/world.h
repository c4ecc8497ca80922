// World: this process's place in the job. Initialises MPI once (under `mpirun`, under Slurm's
// `srun --mpi=pmix`, or as a singleton with neither), reads rank, size and local rank, and
// finalises MPI at exit. The only place that reads the launcher's environment variables.
//
// Thread safety: init() and finalize() on the main thread; the accessors from any thread.
#pragma once

#include <string>

namespace flam {

struct WorldInfo {
  int rank = 0;
  int size = 1;
  int local_rank = 0;  // rank among the processes on this host
  int local_size = 1;
  std::string hostname;
  std::string launcher;  // "mpirun", "srun", or "singleton"
};

class World {
 public:
  // Initialises MPI (with MPI_THREAD_MULTIPLE when available) and the log prefix. Idempotent.
  static const WorldInfo& init(int* argc, char*** argv);
  static bool initialized();
  // REQUIRES: init() was called.
  static const WorldInfo& info();
  // Finalises MPI. Called at normal exit by the CLI; safe to call twice.
  static void finalize();
  // Ends every rank of the job now (MPI_Abort), for a peer that cannot be waited for.
  [[noreturn]] static void abort(int exit_code);
};

}  // namespace flam
