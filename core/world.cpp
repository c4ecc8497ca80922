#include "core/world.h"

#include <mpi.h>
#include <unistd.h>

#include <cstdlib>

#include "core/check.h"
#include "core/log.h"
#include "core/mpi_check.h"

namespace flam {
namespace {

WorldInfo g_info;
bool g_initialized = false;
bool g_finalized = false;

}  // namespace

const WorldInfo& World::init(int* argc, char*** argv) {
  if (g_initialized) return g_info;
  // The launcher, from the environment it gave us: read before MPI_Init, whose singleton mode
  // sets PMIX_* variables of its own. srun always sets SLURM_STEP_ID.
  if (std::getenv("OMPI_COMM_WORLD_SIZE")) {
    g_info.launcher = "mpirun";
  } else if (std::getenv("SLURM_STEP_ID")) {
    g_info.launcher = "srun";
  } else {
    g_info.launcher = "singleton";
  }
  int provided = 0;
  MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided));
  MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &g_info.rank));
  MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &g_info.size));
  MPI_Comm local;
  MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_info.rank, MPI_INFO_NULL,
                                &local));
  MPI_CHECK(MPI_Comm_rank(local, &g_info.local_rank));
  MPI_CHECK(MPI_Comm_size(local, &g_info.local_size));
  MPI_CHECK(MPI_Comm_free(&local));
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  g_info.hostname = host;
  g_initialized = true;
  if (g_info.size > 1) log::set_rank(g_info.rank);
  if (provided < MPI_THREAD_SERIALIZED) {
    FLAM_LOG(WARN) << "MPI provides thread level " << provided
                   << "; background threads will not call MPI";
  }
  return g_info;
}

bool World::initialized() { return g_initialized; }

const WorldInfo& World::info() {
  FLAM_CHECK(g_initialized) << "World::init() was not called";
  return g_info;
}

void World::finalize() {
  if (!g_initialized || g_finalized) return;
  g_finalized = true;
  MPI_Finalize();
}

void World::abort(int exit_code) {
  if (g_initialized && !g_finalized) MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);
}

}  // namespace flam
