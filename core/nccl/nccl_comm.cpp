#include "core/nccl/nccl_comm.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "core/error.h"
#include "core/exit_codes.h"
#include "core/log.h"

namespace flam {
namespace {

using Clock = std::chrono::steady_clock;

void check_cuda(cudaError_t rc, const char* call) {
  if (rc != cudaSuccess) {
    throw Error(ErrorKind::kComm, std::string(call) + " failed: " + cudaGetErrorString(rc));
  }
}

void check_nccl(ncclResult_t rc, const char* call) {
  if (rc != ncclSuccess) {
    throw Error(ErrorKind::kComm, std::string(call) + " failed: " + ncclGetErrorString(rc));
  }
}

ncclDataType_t nccl_type(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return ncclFloat32;
    case DType::kBFloat16:
      return ncclBfloat16;
    case DType::kInt64:
      return ncclInt64;
  }
  return ncclFloat32;
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return ncclSum;
    case ReduceOp::kAvg:
      return ncclAvg;
    case ReduceOp::kMax:
      return ncclMax;
  }
  return ncclSum;
}

// A CUDA event, destroyed when its last holder (a Work, the watchdog's queue) lets go.
class Event {
 public:
  Event() {
    check_cuda(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming),
               "cudaEventCreateWithFlags");
  }
  ~Event() { cudaEventDestroy(event_); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

class NcclWork : public Work {
 public:
  NcclWork(std::shared_ptr<Event> done, cudaStream_t compute)
      : done_(std::move(done)), compute_(compute) {}
  void wait() override {
    check_cuda(cudaStreamWaitEvent(compute_, done_->get(), 0), "cudaStreamWaitEvent");
  }

 private:
  std::shared_ptr<Event> done_;
  cudaStream_t compute_;
};

}  // namespace

struct NcclComm::State {
  struct Pending {
    std::shared_ptr<Event> done;
    const char* what;
    size_t bytes;
    Clock::time_point started;
  };

  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;   // the collectives' stream
  cudaStream_t compute = nullptr;  // the caller's
  cudaEvent_t ready = nullptr;     // recorded on `compute` before each collective
  float* barrier_buffer = nullptr;
  int device = 0;
  int rank = 0;
  int size = 1;
  double timeout_seconds = 0.0;

  std::mutex mutex;
  std::condition_variable wake;
  std::deque<Pending> pending;  // launched collectives, oldest first
  bool stopping = false;
  std::thread watchdog;

  // Queues `launch` (one NCCL call on `stream`) after the work already on the compute stream.
  template <typename Launch>
  std::shared_ptr<Event> run(const char* what, size_t bytes, Launch launch) {
    check_cuda(cudaEventRecord(ready, compute), "cudaEventRecord");
    check_cuda(cudaStreamWaitEvent(stream, ready, 0), "cudaStreamWaitEvent");
    check_nccl(launch(), what);
    auto done = std::make_shared<Event>();
    check_cuda(cudaEventRecord(done->get(), stream), "cudaEventRecord");
    if (timeout_seconds > 0) {
      std::lock_guard<std::mutex> lock(mutex);
      pending.push_back({done, what, bytes, Clock::now()});
    }
    return done;
  }

  [[noreturn]] void fatal(const std::string& message) {
    FLAM_LOG(ERROR) << "rank " << rank << ": " << message
                    << "; aborting the NCCL communicator and exiting with code "
                    << kExitPeerFailure;
    ncclCommAbort(comm);
    std::_Exit(kExitPeerFailure);
  }

  void watch() {
    cudaSetDevice(device);
    std::unique_lock<std::mutex> lock(mutex);
    while (!stopping) {
      wake.wait_for(lock, std::chrono::milliseconds(100));
      while (!pending.empty()) {
        const cudaError_t rc = cudaEventQuery(pending.front().done->get());
        if (rc == cudaErrorNotReady) break;
        if (rc != cudaSuccess) {
          fatal(std::string("CUDA error after NCCL ") + pending.front().what + ": " +
                cudaGetErrorString(rc));
        }
        pending.pop_front();
      }
      ncclResult_t async = ncclSuccess;
      ncclCommGetAsyncError(comm, &async);
      if (async != ncclSuccess) {
        fatal(std::string("asynchronous NCCL error: ") + ncclGetErrorString(async));
      }
      if (!pending.empty()) {
        const Pending& oldest = pending.front();
        const double waited = std::chrono::duration<double>(Clock::now() - oldest.started).count();
        if (waited > timeout_seconds) {
          fatal(std::string("NCCL ") + oldest.what + " of " + std::to_string(oldest.bytes) +
                " bytes not finished after " + std::to_string(waited) +
                " s: a peer rank died, is stopped or is stuck");
        }
      }
    }
  }
};

NcclComm::NcclComm(Comm& bootstrap, int device, NcclCommOptions options)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.device = device;
  s.rank = bootstrap.rank();
  s.size = bootstrap.size();
  s.timeout_seconds = options.timeout_seconds;
  s.compute = static_cast<cudaStream_t>(options.compute_stream);
  check_cuda(cudaSetDevice(device), "cudaSetDevice");

  ncclUniqueId id;
  static_assert(sizeof(id) % sizeof(int64_t) == 0, "ncclUniqueId travels as int64 words");
  if (s.rank == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
  bootstrap.broadcast(&id, sizeof(id) / sizeof(int64_t), DType::kInt64, /*root=*/0);
  check_nccl(ncclCommInitRank(&s.comm, s.size, id, s.rank), "ncclCommInitRank");

  check_cuda(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking),
             "cudaStreamCreateWithFlags");
  check_cuda(cudaEventCreateWithFlags(&s.ready, cudaEventDisableTiming),
             "cudaEventCreateWithFlags");
  check_cuda(cudaMalloc(reinterpret_cast<void**>(&s.barrier_buffer), sizeof(float)), "cudaMalloc");
  if (s.timeout_seconds > 0) s.watchdog = std::thread([&s] { s.watch(); });
}

NcclComm::~NcclComm() {
  State& s = *state_;
  cudaStreamSynchronize(s.stream);  // the watchdog still guards this
  if (s.watchdog.joinable()) {
    {
      std::lock_guard<std::mutex> lock(s.mutex);
      s.stopping = true;
    }
    s.wake.notify_one();
    s.watchdog.join();
  }
  ncclCommDestroy(s.comm);
  cudaFree(s.barrier_buffer);
  cudaEventDestroy(s.ready);
  cudaStreamDestroy(s.stream);
}

int NcclComm::rank() const { return state_->rank; }
int NcclComm::size() const { return state_->size; }

std::unique_ptr<Work> NcclComm::start_all_gather(const void* send, void* recv, size_t count,
                                                 DType dtype) {
  State& s = *state_;
  auto done = s.run("all_gather", count * s.size * dtype_size(dtype), [&] {
    return ncclAllGather(send, recv, count, nccl_type(dtype), s.comm, s.stream);
  });
  return std::make_unique<NcclWork>(std::move(done), s.compute);
}

std::unique_ptr<Work> NcclComm::start_reduce_scatter(const void* send, void* recv, size_t count,
                                                     DType dtype, ReduceOp op) {
  State& s = *state_;
  auto done = s.run("reduce_scatter", count * s.size * dtype_size(dtype), [&] {
    return ncclReduceScatter(send, recv, count, nccl_type(dtype), nccl_op(op), s.comm, s.stream);
  });
  return std::make_unique<NcclWork>(std::move(done), s.compute);
}

std::unique_ptr<Work> NcclComm::start_all_reduce(void* buf, size_t count, DType dtype,
                                                 ReduceOp op) {
  State& s = *state_;
  auto done = s.run("all_reduce", count * dtype_size(dtype), [&] {
    return ncclAllReduce(buf, buf, count, nccl_type(dtype), nccl_op(op), s.comm, s.stream);
  });
  return std::make_unique<NcclWork>(std::move(done), s.compute);
}

std::unique_ptr<Work> NcclComm::start_broadcast(void* buf, size_t count, DType dtype, int root) {
  State& s = *state_;
  auto done = s.run("broadcast", count * dtype_size(dtype), [&] {
    return ncclBroadcast(buf, buf, count, nccl_type(dtype), root, s.comm, s.stream);
  });
  return std::make_unique<NcclWork>(std::move(done), s.compute);
}

void NcclComm::barrier() {
  State& s = *state_;
  auto done = s.run("barrier", sizeof(float), [&] {
    return ncclAllReduce(s.barrier_buffer, s.barrier_buffer, 1, ncclFloat32, ncclSum, s.comm,
                         s.stream);
  });
  const auto deadline =
      Clock::now() + std::chrono::duration<double>(s.timeout_seconds > 0 ? s.timeout_seconds : 1e9);
  for (;;) {
    const cudaError_t rc = cudaEventQuery(done->get());
    if (rc == cudaSuccess) return;
    if (rc != cudaErrorNotReady) check_cuda(rc, "cudaEventQuery");
    if (Clock::now() > deadline) {
      throw Error(ErrorKind::kComm, "NCCL barrier not finished after " +
                                        std::to_string(s.timeout_seconds) +
                                        " s: a peer rank died or is stopped");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

}  // namespace flam
