// Comm: the collectives the trainer needs, over raw buffers, with two backends: MpiComm (host
// memory, core/mpi_comm.h) and NcclComm (device memory, core/nccl/, built with FLAM_WITH_CUDA).
// train/ wraps at::Tensor onto these calls; nothing here knows about torch.
//
// Padding contract: all_gather and reduce_scatter split a buffer evenly across ranks. They take
// `count`, the number of elements per rank; the full buffer holds size() * count elements and
// rank r's part starts at element r * count. A caller with a total that is not a multiple of
// size() pads it up (train/zero3's flat partition does, with zeros), so no collective here ever
// sees an uneven split.
//
// Ordering: every rank must issue the same collectives in the same order. start_*() return at
// once; the result is in the buffers after Work::wait(). Buffers must stay alive and untouched
// until then. Waits are bounded: a collective that does not complete within the communicator's
// timeout throws flam::Error(kComm) ("a peer rank died or is stopped").
//
// Thread safety: one thread issues collectives on a Comm at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace flam {

enum class DType : uint8_t { kFloat32, kBFloat16, kInt64 };
enum class ReduceOp : uint8_t { kSum, kAvg, kMax };

size_t dtype_size(DType dtype);
const char* to_string(DType dtype);

// An outstanding collective.
class Work {
 public:
  virtual ~Work() = default;
  // Blocks until the collective is complete (host backends) or ordered before later work on the
  // compute stream (device backends). Throws flam::Error(kComm) on timeout or peer failure.
  virtual void wait() = 0;
};

class Comm {
 public:
  virtual ~Comm() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual const char* backend() const = 0;

  // recv[size() * count] <- every rank's send[count], in rank order. `send` may alias
  // recv + rank() * count (in place).
  virtual std::unique_ptr<Work> start_all_gather(const void* send, void* recv, size_t count,
                                                 DType dtype) = 0;
  // recv[count] <- op over ranks of send[rank() * count .. (rank() + 1) * count).
  virtual std::unique_ptr<Work> start_reduce_scatter(const void* send, void* recv, size_t count,
                                                     DType dtype, ReduceOp op) = 0;
  // buf[count] <- op over ranks of buf[count], on every rank.
  virtual std::unique_ptr<Work> start_all_reduce(void* buf, size_t count, DType dtype,
                                                 ReduceOp op) = 0;
  // buf[count] on every rank <- buf[count] of `root`.
  virtual std::unique_ptr<Work> start_broadcast(void* buf, size_t count, DType dtype, int root) = 0;
  virtual void barrier() = 0;

  // Blocking forms of the above.
  void all_gather(const void* send, void* recv, size_t count, DType dtype) {
    start_all_gather(send, recv, count, dtype)->wait();
  }
  void reduce_scatter(const void* send, void* recv, size_t count, DType dtype, ReduceOp op) {
    start_reduce_scatter(send, recv, count, dtype, op)->wait();
  }
  void all_reduce(void* buf, size_t count, DType dtype, ReduceOp op) {
    start_all_reduce(buf, count, dtype, op)->wait();
  }
  void broadcast(void* buf, size_t count, DType dtype, int root) {
    start_broadcast(buf, count, dtype, root)->wait();
  }
};

// bf16 <-> fp32 conversions (round to nearest even), shared by the backends and tests.
uint16_t float_to_bf16(float value);
float bf16_to_float(uint16_t value);

}  // namespace flam
