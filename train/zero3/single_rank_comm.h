// SingleRankComm: the Comm of a one-rank job on any torch device (CPU or CUDA), so ZeRO-3 code
// runs unchanged on one GPU without NCCL (scripts/device-check.sh times one device this way).
// With one rank every collective is a copy (all_gather, reduce_scatter when not in place) or
// nothing (all_reduce, broadcast, barrier); copies go through torch on `device`, in stream order.
//
// Thread safety: as Comm.
#pragma once

#include <c10/core/Device.h>

#include "core/comm.h"

namespace flam::train {

class SingleRankComm : public Comm {
 public:
  explicit SingleRankComm(c10::Device device) : device_(device) {}

  int rank() const override { return 0; }
  int size() const override { return 1; }
  const char* backend() const override { return "single"; }

  std::unique_ptr<Work> start_all_gather(const void* send, void* recv, size_t count,
                                         DType dtype) override;
  std::unique_ptr<Work> start_reduce_scatter(const void* send, void* recv, size_t count,
                                             DType dtype, ReduceOp op) override;
  std::unique_ptr<Work> start_all_reduce(void* buf, size_t count, DType dtype,
                                         ReduceOp op) override;
  std::unique_ptr<Work> start_broadcast(void* buf, size_t count, DType dtype, int root) override;
  void barrier() override {}

 private:
  std::unique_ptr<Work> copy(const void* from, void* to, size_t bytes);
  c10::Device device_;
};

}  // namespace flam::train
