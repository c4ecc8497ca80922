// NcclComm: Comm over NCCL for device (CUDA) buffers. Built only with FLAM_WITH_CUDA, as the
// target flam_nccl (core/CMakeLists.txt); nothing else in core/ sees CUDA or NCCL.
//
// Bootstrap: collective over `bootstrap` (the job's MpiComm, same ranks): rank 0 creates the
// ncclUniqueId and broadcasts it, then every rank joins with ncclCommInitRank on `device`.
//
// Streams: collectives run on a stream of their own (non-blocking, so the compute stream never
// syncs with it implicitly). start_*() makes that stream wait for the work already queued on the
// compute stream (the inputs are ready), queues the collective and returns at once. Work::wait()
// makes the compute stream wait for the collective and returns at once too: the result is
// ordered before anything queued on the compute stream afterwards, which is what the engine
// needs to overlap the next block's gather with this block's compute. A buffer freed after
// wait() is therefore only reused after the collective (the caching allocator allocates on the
// compute stream).
//
// Timeouts: since wait() does not block, a dead or stopped peer shows up as a collective that
// never finishes, and the training thread would hang in its next device sync. A watchdog thread
// polls every outstanding collective; one not finished within `timeout_seconds`, or an
// asynchronous NCCL error, is logged (which collective, how long) and the communicator aborted
// (ncclCommAbort), and the process exits with kExitPeerFailure so that the scheduler restarts
// the job from its checkpoint. barrier() blocks the host, bounded by the same timeout.
//
// REQUIRES: `device` is this process's CUDA device; buffers passed to start_*() are on it.
// Thread safety: as Comm; the watchdog thread only reads the queue of outstanding collectives.
#pragma once

#include <memory>

#include "core/comm.h"

namespace flam {

struct NcclCommOptions {
  double timeout_seconds = 600.0;  // per collective; <= 0: no watchdog
  // The stream the caller computes on, as a cudaStream_t; nullptr is the legacy default stream,
  // LibTorch's current stream unless the caller changed it.
  void* compute_stream = nullptr;
};

class NcclComm : public Comm {
 public:
  // Collective over `bootstrap`. Throws flam::Error(kComm) naming the failing CUDA/NCCL call.
  NcclComm(Comm& bootstrap, int device, NcclCommOptions options = {});
  ~NcclComm() override;
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

  int rank() const override;
  int size() const override;
  const char* backend() const override { return "nccl"; }

  std::unique_ptr<Work> start_all_gather(const void* send, void* recv, size_t count,
                                         DType dtype) override;
  std::unique_ptr<Work> start_reduce_scatter(const void* send, void* recv, size_t count,
                                             DType dtype, ReduceOp op) override;
  std::unique_ptr<Work> start_all_reduce(void* buf, size_t count, DType dtype,
                                         ReduceOp op) override;
  std::unique_ptr<Work> start_broadcast(void* buf, size_t count, DType dtype, int root) override;
  void barrier() override;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace flam
