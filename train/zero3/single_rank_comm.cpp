#include "train/zero3/single_rank_comm.h"

#include <torch/torch.h>

#include "core/check.h"

namespace flam::train {
namespace {

class DoneWork : public Work {
 public:
  void wait() override {}
};

}  // namespace

std::unique_ptr<Work> SingleRankComm::copy(const void* from, void* to, size_t bytes) {
  if (from != to && bytes > 0) {
    const auto options = torch::TensorOptions().dtype(torch::kUInt8).device(device_);
    const int64_t n = static_cast<int64_t>(bytes);
    torch::from_blob(to, {n}, options)
        .copy_(torch::from_blob(const_cast<void*>(from), {n}, options));
  }
  return std::make_unique<DoneWork>();
}

std::unique_ptr<Work> SingleRankComm::start_all_gather(const void* send, void* recv, size_t count,
                                                       DType dtype) {
  return copy(send, recv, count * dtype_size(dtype));
}

std::unique_ptr<Work> SingleRankComm::start_reduce_scatter(const void* send, void* recv,
                                                           size_t count, DType dtype, ReduceOp) {
  return copy(send, recv, count * dtype_size(dtype));  // sum, average and max of one rank
}

std::unique_ptr<Work> SingleRankComm::start_all_reduce(void*, size_t, DType, ReduceOp) {
  return std::make_unique<DoneWork>();
}

std::unique_ptr<Work> SingleRankComm::start_broadcast(void*, size_t, DType, int root) {
  FLAM_CHECK(root == 0) << "broadcast from rank " << root << " of a one-rank job";
  return std::make_unique<DoneWork>();
}

}  // namespace flam::train
