// MPI_CHECK: the one checking wrapper for MPI calls. A failing MPI call (which with
// MPI_ERRORS_RETURN means a peer or the transport failed) throws flam::Error(kComm) naming the
// call, file and line; cli/ maps that to kExitPeerFailure so the job is restarted.
#pragma once

#include <mpi.h>

namespace flam::detail {
void throw_mpi_error(int code, const char* call, const char* file, int line);
}

#define MPI_CHECK(call)                                                         \
  do {                                                                          \
    int flam_mpi_rc_ = (call);                                                  \
    if (flam_mpi_rc_ != MPI_SUCCESS)                                            \
      ::flam::detail::throw_mpi_error(flam_mpi_rc_, #call, __FILE__, __LINE__); \
  } while (0)
