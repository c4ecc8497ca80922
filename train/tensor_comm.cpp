#include "train/tensor_comm.h"

#include "core/check.h"

namespace flam::train {

DType comm_dtype(const at::Tensor& tensor) {
  switch (tensor.scalar_type()) {
    case at::kFloat:
      return DType::kFloat32;
    case at::kBFloat16:
      return DType::kBFloat16;
    case at::kLong:
      return DType::kInt64;
    default:
      break;
  }
  FLAM_CHECK(false) << "no collective for dtype " << tensor.scalar_type();
  return DType::kFloat32;
}

namespace {

void check_buffer(const at::Tensor& tensor) {
  FLAM_CHECK(tensor.defined() && tensor.is_contiguous()) << "collective on a non-contiguous tensor";
}

}  // namespace

std::unique_ptr<Work> start_all_gather(Comm& comm, const at::Tensor& send, const at::Tensor& recv) {
  check_buffer(send);
  check_buffer(recv);
  FLAM_CHECK(recv.numel() == send.numel() * comm.size() && recv.scalar_type() == send.scalar_type())
      << "all_gather of " << send.numel() << " into " << recv.numel();
  return comm.start_all_gather(send.data_ptr(), recv.data_ptr(), send.numel(), comm_dtype(send));
}

std::unique_ptr<Work> start_reduce_scatter(Comm& comm, const at::Tensor& send,
                                           const at::Tensor& recv, ReduceOp op) {
  check_buffer(send);
  check_buffer(recv);
  FLAM_CHECK(send.numel() == recv.numel() * comm.size() && recv.scalar_type() == send.scalar_type())
      << "reduce_scatter of " << send.numel() << " into " << recv.numel();
  return comm.start_reduce_scatter(send.data_ptr(), recv.data_ptr(), recv.numel(), comm_dtype(send),
                                   op);
}

std::unique_ptr<Work> start_all_reduce(Comm& comm, const at::Tensor& buf, ReduceOp op) {
  check_buffer(buf);
  return comm.start_all_reduce(buf.data_ptr(), buf.numel(), comm_dtype(buf), op);
}

void all_gather(Comm& comm, const at::Tensor& send, const at::Tensor& recv) {
  start_all_gather(comm, send, recv)->wait();
}

void reduce_scatter(Comm& comm, const at::Tensor& send, const at::Tensor& recv, ReduceOp op) {
  start_reduce_scatter(comm, send, recv, op)->wait();
}

void all_reduce(Comm& comm, const at::Tensor& buf, ReduceOp op) {
  start_all_reduce(comm, buf, op)->wait();
}

void broadcast(Comm& comm, const at::Tensor& buf, int root) {
  check_buffer(buf);
  comm.broadcast(buf.data_ptr(), buf.numel(), comm_dtype(buf), root);
}

}  // namespace flam::train
