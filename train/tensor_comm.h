// Tensor adapters over core/comm.h: the same collectives, taking at::Tensor instead of raw
// buffers. The tensors must be contiguous, of a dtype Comm knows (float32, bfloat16, int64), on
// the device the Comm's backend serves (CPU for MpiComm, CUDA for NcclComm), and stay alive and
// untouched until the returned Work is waited on.
//
// Thread safety: as Comm (one thread issues collectives at a time).
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>

#include "core/comm.h"

namespace flam::train {

// The Comm dtype of a tensor; FLAM_CHECKs that it is one Comm supports.
DType comm_dtype(const at::Tensor& tensor);

// recv [size() * send.numel()] <- every rank's send, in rank order.
std::unique_ptr<Work> start_all_gather(Comm& comm, const at::Tensor& send, const at::Tensor& recv);
// recv [send.numel() / size()] <- op over ranks of this rank's part of send.
std::unique_ptr<Work> start_reduce_scatter(Comm& comm, const at::Tensor& send,
                                           const at::Tensor& recv, ReduceOp op);
std::unique_ptr<Work> start_all_reduce(Comm& comm, const at::Tensor& buf, ReduceOp op);

void all_gather(Comm& comm, const at::Tensor& send, const at::Tensor& recv);
void reduce_scatter(Comm& comm, const at::Tensor& send, const at::Tensor& recv, ReduceOp op);
void all_reduce(Comm& comm, const at::Tensor& buf, ReduceOp op);
void broadcast(Comm& comm, const at::Tensor& buf, int root);

}  // namespace flam::train
