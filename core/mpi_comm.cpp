#include "core/mpi_comm.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <string>

#include "core/check.h"
#include "core/comm_wait.h"
#include "core/error.h"
#include "core/mpi_check.h"

namespace flam {
namespace {

void bf16_sum(void* in, void* inout, int* len, MPI_Datatype*) {
  auto* a = static_cast<const uint16_t*>(in);
  auto* b = static_cast<uint16_t*>(inout);
  for (int i = 0; i < *len; ++i) b[i] = float_to_bf16(bf16_to_float(a[i]) + bf16_to_float(b[i]));
}

void bf16_max(void* in, void* inout, int* len, MPI_Datatype*) {
  auto* a = static_cast<const uint16_t*>(in);
  auto* b = static_cast<uint16_t*>(inout);
  for (int i = 0; i < *len; ++i) {
    if (bf16_to_float(a[i]) > bf16_to_float(b[i])) b[i] = a[i];
  }
}

MPI_Op bf16_op(ReduceOp op) {
  static MPI_Op sum = MPI_OP_NULL, max = MPI_OP_NULL;
  if (sum == MPI_OP_NULL) {
    MPI_CHECK(MPI_Op_create(&bf16_sum, /*commute=*/1, &sum));
    MPI_CHECK(MPI_Op_create(&bf16_max, /*commute=*/1, &max));
  }
  return op == ReduceOp::kMax ? max : sum;
}

MPI_Datatype mpi_type(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return MPI_FLOAT;
    case DType::kBFloat16:
      return MPI_UINT16_T;
    case DType::kInt64:
      return MPI_INT64_T;
  }
  return MPI_DATATYPE_NULL;
}

MPI_Op mpi_op(ReduceOp op, DType dtype) {
  if (dtype == DType::kBFloat16) return bf16_op(op);
  return op == ReduceOp::kMax ? MPI_MAX : MPI_SUM;
}

// MPI counts are int: larger buffers would need derived types; we refuse them loudly instead.
int checked_count(size_t count) {
  FLAM_CHECK(count <= static_cast<size_t>(INT32_MAX)) << "collective of " << count << " elements";
  return static_cast<int>(count);
}

// Divides buf[count] by `divisor`, for ReduceOp::kAvg after a sum.
void divide(void* buf, size_t count, DType dtype, int divisor) {
  switch (dtype) {
    case DType::kFloat32: {
      auto* p = static_cast<float*>(buf);
      float inv = 1.0f / static_cast<float>(divisor);
      for (size_t i = 0; i < count; ++i) p[i] *= inv;
      break;
    }
    case DType::kBFloat16: {
      auto* p = static_cast<uint16_t*>(buf);
      float inv = 1.0f / static_cast<float>(divisor);
      for (size_t i = 0; i < count; ++i) p[i] = float_to_bf16(bf16_to_float(p[i]) * inv);
      break;
    }
    case DType::kInt64: {
      auto* p = static_cast<int64_t*>(buf);
      for (size_t i = 0; i < count; ++i) p[i] /= divisor;
      break;
    }
  }
}

class MpiWork : public Work {
 public:
  MpiWork(const char* name, double timeout, std::function<void()> after)
      : name_(name), timeout_(timeout), after_(std::move(after)) {}
  ~MpiWork() override {
    // A Work dropped without wait() must still complete before its buffers go away.
    if (request_ != MPI_REQUEST_NULL) MPI_Wait(&request_, MPI_STATUS_IGNORE);
  }

  MPI_Request* request() { return &request_; }

  void wait() override {
    using clock = std::chrono::steady_clock;
    auto start = clock::now();
    int done = 0;
    for (int spins = 0; !done; ++spins) {
      MPI_CHECK(MPI_Test(&request_, &done, MPI_STATUS_IGNORE));
      if (done) break;
      if (spins > 1000) {
        usleep(spins > 100000 ? 1000 : 20);  // back off: ranks may share cores
        if (timeout_ > 0 &&
            std::chrono::duration<double>(clock::now() - start).count() > timeout_) {
          throw Error(ErrorKind::kComm, std::string(name_) + " did not complete within " +
                                            std::to_string(static_cast<int>(timeout_)) +
                                            " s: a peer rank died, hangs or is stopped");
        }
      }
    }
    request_ = MPI_REQUEST_NULL;
    add_comm_wait_seconds(std::chrono::duration<double>(clock::now() - start).count());
    if (after_) after_();
  }

 private:
  const char* name_;
  double timeout_;
  std::function<void()> after_;
  MPI_Request request_ = MPI_REQUEST_NULL;
};

}  // namespace

MpiComm::MpiComm(MPI_Comm comm, MpiCommOptions options) : options_(options) {
  MPI_CHECK(MPI_Comm_dup(comm, &comm_));
  MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  MPI_CHECK(MPI_Comm_size(comm_, &size_));
}

MpiComm::~MpiComm() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Comm_free(&comm_);
}

std::unique_ptr<Work> MpiComm::start_all_gather(const void* send, void* recv, size_t count,
                                                DType dtype) {
  auto work = std::make_unique<MpiWork>("all_gather", options_.timeout_seconds, nullptr);
  const char* own = static_cast<const char*>(recv) + rank_ * count * dtype_size(dtype);
  const void* src = send == own ? MPI_IN_PLACE : send;
  MPI_CHECK(MPI_Iallgather(src, checked_count(count), mpi_type(dtype), recv, checked_count(count),
                           mpi_type(dtype), comm_, work->request()));
  return work;
}

std::unique_ptr<Work> MpiComm::start_reduce_scatter(const void* send, void* recv, size_t count,
                                                    DType dtype, ReduceOp op) {
  std::function<void()> after;
  if (op == ReduceOp::kAvg) after = [=, n = size_] { divide(recv, count, dtype, n); };
  auto work = std::make_unique<MpiWork>("reduce_scatter", options_.timeout_seconds, after);
  MPI_CHECK(MPI_Ireduce_scatter_block(send, recv, checked_count(count), mpi_type(dtype),
                                      mpi_op(op, dtype), comm_, work->request()));
  return work;
}

std::unique_ptr<Work> MpiComm::start_all_reduce(void* buf, size_t count, DType dtype, ReduceOp op) {
  std::function<void()> after;
  if (op == ReduceOp::kAvg) after = [=, n = size_] { divide(buf, count, dtype, n); };
  auto work = std::make_unique<MpiWork>("all_reduce", options_.timeout_seconds, after);
  MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, buf, checked_count(count), mpi_type(dtype),
                           mpi_op(op, dtype), comm_, work->request()));
  return work;
}

std::unique_ptr<Work> MpiComm::start_broadcast(void* buf, size_t count, DType dtype, int root) {
  auto work = std::make_unique<MpiWork>("broadcast", options_.timeout_seconds, nullptr);
  MPI_CHECK(MPI_Ibcast(buf, checked_count(count), mpi_type(dtype), root, comm_, work->request()));
  return work;
}

void MpiComm::barrier() {
  auto work = std::make_unique<MpiWork>("barrier", options_.timeout_seconds, nullptr);
  MPI_CHECK(MPI_Ibarrier(comm_, work->request()));
  work->wait();
}

}  // namespace flam
