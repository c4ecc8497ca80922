// NcclComm collectives on real MPI ranks, one GPU each (built with FLAM_WITH_NCCL; skipped where
// there is no GPU), against results computed by hand as in test_mpi_comm.cpp: every rank can
// reconstruct value(rank, i).
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "core/comm.h"
#include "core/mpi_comm.h"
#include "core/nccl/nccl_comm.h"

namespace flam {
namespace {

float value(int rank, size_t i) { return static_cast<float>(rank * 100 + static_cast<int>(i)); }

// A device copy of a host vector; back() waits for the device and copies it home.
template <typename T>
class DeviceVector {
 public:
  explicit DeviceVector(const std::vector<T>& host) : n_(host.size()) {
    EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&ptr_), n_ * sizeof(T)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(ptr_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~DeviceVector() { cudaFree(ptr_); }
  DeviceVector(const DeviceVector&) = delete;
  DeviceVector& operator=(const DeviceVector&) = delete;
  T* get() { return ptr_; }
  std::vector<T> back() const {
    std::vector<T> host(n_);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(host.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return host;
  }

 private:
  T* ptr_ = nullptr;
  size_t n_;
};

class NcclCommTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int devices = 0;
    const cudaError_t rc = cudaGetDeviceCount(&devices);
    if (rc != cudaSuccess || devices == 0) {
      GTEST_SKIP() << "no CUDA device here (" << cudaGetErrorString(rc) << ")";
    }
    comm_ = std::make_unique<NcclComm>(host, r % devices, NcclCommOptions{60.0, nullptr});
  }

  MpiComm host;
  int r = host.rank();
  int n = host.size();
  std::unique_ptr<NcclComm> comm_;
};

TEST_F(NcclCommTest, AllGatherInPlaceAndOverlapping) {
  const size_t count = 5;
  std::vector<float> send(count), inplace(count * n, -1.0f);
  for (size_t i = 0; i < count; ++i) send[i] = inplace[r * count + i] = value(r, i);
  DeviceVector<float> d_send(send), d_recv(std::vector<float>(count * n, 0.0f)), d_inplace(inplace);
  auto a = comm_->start_all_gather(d_send.get(), d_recv.get(), count, DType::kFloat32);
  auto b =
      comm_->start_all_gather(d_inplace.get() + r * count, d_inplace.get(), count, DType::kFloat32);
  b->wait();
  a->wait();
  const std::vector<float> recv = d_recv.back();
  for (int k = 0; k < n; ++k)
    for (size_t i = 0; i < count; ++i) EXPECT_EQ(recv[k * count + i], value(k, i));
  EXPECT_EQ(d_inplace.back(), recv);
}

TEST_F(NcclCommTest, ReduceScatterSumAndAvg) {
  const size_t per_rank = 4;
  std::vector<float> send(per_rank * n);
  for (size_t i = 0; i < send.size(); ++i) send[i] = value(r, i);
  DeviceVector<float> d_send(send), d_sum{std::vector<float>(per_rank)},
      d_avg{std::vector<float>(per_rank)};
  comm_->reduce_scatter(d_send.get(), d_sum.get(), per_rank, DType::kFloat32, ReduceOp::kSum);
  comm_->reduce_scatter(d_send.get(), d_avg.get(), per_rank, DType::kFloat32, ReduceOp::kAvg);
  const std::vector<float> sum = d_sum.back(), avg = d_avg.back();
  for (size_t j = 0; j < per_rank; ++j) {
    float expect = 0.0f;
    for (int k = 0; k < n; ++k) expect += value(k, r * per_rank + j);
    EXPECT_FLOAT_EQ(sum[j], expect);
    EXPECT_FLOAT_EQ(avg[j], expect / n);
  }
}

TEST_F(NcclCommTest, AllReduceInt64Bf16AndBroadcast) {
  DeviceVector<int64_t> sum(std::vector<int64_t>{r + 1, -r}), mx(std::vector<int64_t>{r, 7});
  comm_->all_reduce(sum.get(), 2, DType::kInt64, ReduceOp::kSum);
  comm_->all_reduce(mx.get(), 2, DType::kInt64, ReduceOp::kMax);
  const int64_t tri = static_cast<int64_t>(n) * (n + 1) / 2;
  EXPECT_EQ(sum.back(), (std::vector<int64_t>{tri, -(tri - n)}));
  EXPECT_EQ(mx.back(), (std::vector<int64_t>{n - 1, 7}));

  DeviceVector<uint16_t> bf16(std::vector<uint16_t>{float_to_bf16(1.5f), float_to_bf16(-2.0f)});
  comm_->all_reduce(bf16.get(), 2, DType::kBFloat16, ReduceOp::kSum);
  const std::vector<uint16_t> got = bf16.back();
  EXPECT_EQ(bf16_to_float(got[0]), 1.5f * n);
  EXPECT_EQ(bf16_to_float(got[1]), -2.0f * n);

  DeviceVector<float> buf(std::vector<float>{value(r, 0), value(r, 1)});
  comm_->broadcast(buf.get(), 2, DType::kFloat32, n - 1);
  EXPECT_EQ(buf.back(), (std::vector<float>{value(n - 1, 0), value(n - 1, 1)}));
  comm_->barrier();
}

}  // namespace
}  // namespace flam
