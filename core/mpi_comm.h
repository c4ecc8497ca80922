// MpiComm: Comm over MPI for host (CPU) buffers. Collectives are non-blocking MPI calls
// (MPI_Iallgather, MPI_Ireduce_scatter_block, MPI_Iallreduce, MPI_Ibcast) waited on with a
// deadline, so a dead or stopped peer becomes flam::Error(kComm) instead of a hang.
// bf16 sums and maxima use MPI user operations that accumulate in fp32 per element pair.
//
// REQUIRES: World::init() was called. Thread safety: as Comm.
#pragma once

#include <mpi.h>

#include "core/comm.h"

namespace flam {

struct MpiCommOptions {
  double timeout_seconds = 600.0;  // per collective; <= 0 waits forever
};

class MpiComm : public Comm {
 public:
  // Duplicates `comm` so that our traffic never matches anyone else's.
  explicit MpiComm(MPI_Comm comm = MPI_COMM_WORLD, MpiCommOptions options = {});
  ~MpiComm() override;
  MpiComm(const MpiComm&) = delete;
  MpiComm& operator=(const MpiComm&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend() const override { return "mpi"; }

  std::unique_ptr<Work> start_all_gather(const void* send, void* recv, size_t count,
                                         DType dtype) override;
  std::unique_ptr<Work> start_reduce_scatter(const void* send, void* recv, size_t count,
                                             DType dtype, ReduceOp op) override;
  std::unique_ptr<Work> start_all_reduce(void* buf, size_t count, DType dtype,
                                         ReduceOp op) override;
  std::unique_ptr<Work> start_broadcast(void* buf, size_t count, DType dtype, int root) override;
  void barrier() override;

  MPI_Comm handle() const { return comm_; }

 private:
  MPI_Comm comm_;
  MpiCommOptions options_;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace flam
