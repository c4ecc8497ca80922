// MpiComm collectives on 1..4 real MPI ranks, against results computed by hand from the inputs
// every rank can reconstruct: value(rank, i) below.
#include <gtest/gtest.h>

#include <vector>

#include "core/comm.h"
#include "core/error.h"
#include "core/mpi_comm.h"

namespace flam {
namespace {

float value(int rank, size_t i) { return static_cast<float>(rank * 100 + static_cast<int>(i)); }

class MpiCommTest : public ::testing::Test {
 protected:
  MpiComm comm;
  int r = comm.rank();
  int n = comm.size();
};

TEST_F(MpiCommTest, AllGatherFloatAndInPlace) {
  const size_t count = 5;
  std::vector<float> send(count), recv(count * n);
  for (size_t i = 0; i < count; ++i) send[i] = value(r, i);
  comm.all_gather(send.data(), recv.data(), count, DType::kFloat32);
  for (int k = 0; k < n; ++k)
    for (size_t i = 0; i < count; ++i) EXPECT_EQ(recv[k * count + i], value(k, i));
  std::vector<float> inplace(count * n, -1.0f);
  for (size_t i = 0; i < count; ++i) inplace[r * count + i] = value(r, i);
  comm.all_gather(inplace.data() + r * count, inplace.data(), count, DType::kFloat32);
  EXPECT_EQ(inplace, recv);
}

TEST_F(MpiCommTest, ReduceScatterSumAndAvgWithPadding) {
  // 10 elements do not split over 3 ranks: the caller pads to a multiple of n, as documented.
  const size_t total = 10;
  const size_t per_rank = (total + n - 1) / n;
  std::vector<float> send(per_rank * n, 0.0f);
  for (size_t i = 0; i < total; ++i) send[i] = value(r, i);
  std::vector<float> sum(per_rank), avg(per_rank);
  comm.reduce_scatter(send.data(), sum.data(), per_rank, DType::kFloat32, ReduceOp::kSum);
  comm.reduce_scatter(send.data(), avg.data(), per_rank, DType::kFloat32, ReduceOp::kAvg);
  for (size_t j = 0; j < per_rank; ++j) {
    size_t i = r * per_rank + j;
    float expect = 0.0f;
    if (i < total)
      for (int k = 0; k < n; ++k) expect += value(k, i);
    EXPECT_FLOAT_EQ(sum[j], expect) << "element " << i;
    EXPECT_FLOAT_EQ(avg[j], expect / n) << "element " << i;
  }
}

TEST_F(MpiCommTest, AllReduceSumAvgMaxInt64) {
  std::vector<int64_t> buf = {r + 1, 10 * (r + 1), -r};
  std::vector<int64_t> mx = buf;
  comm.all_reduce(buf.data(), buf.size(), DType::kInt64, ReduceOp::kSum);
  comm.all_reduce(mx.data(), mx.size(), DType::kInt64, ReduceOp::kMax);
  int64_t tri = static_cast<int64_t>(n) * (n + 1) / 2;
  EXPECT_EQ(buf, (std::vector<int64_t>{tri, 10 * tri, -(tri - n)}));
  EXPECT_EQ(mx, (std::vector<int64_t>{n, 10 * n, 0}));
}

TEST_F(MpiCommTest, Bf16SumAllGatherAndReduceScatter) {
  // Small integers are exact in bf16, so the expected sums are exact too.
  const size_t per_rank = 3;
  std::vector<uint16_t> send(per_rank * n);
  for (size_t i = 0; i < send.size(); ++i)
    send[i] = float_to_bf16(static_cast<float>(r + static_cast<int>(i)));
  std::vector<uint16_t> all(send);
  comm.all_reduce(all.data(), all.size(), DType::kBFloat16, ReduceOp::kSum);
  for (size_t i = 0; i < all.size(); ++i) {
    float expect = 0;
    for (int k = 0; k < n; ++k) expect += static_cast<float>(k + static_cast<int>(i));
    EXPECT_EQ(bf16_to_float(all[i]), expect);
  }
  std::vector<uint16_t> part(per_rank);
  comm.reduce_scatter(send.data(), part.data(), per_rank, DType::kBFloat16, ReduceOp::kAvg);
  for (size_t j = 0; j < per_rank; ++j) {
    float expect = 0;
    for (int k = 0; k < n; ++k)
      expect += static_cast<float>(k + static_cast<int>(r * per_rank + j));
    EXPECT_EQ(bf16_to_float(part[j]), bf16_to_float(float_to_bf16(expect / n)));
  }
  std::vector<uint16_t> gathered(per_rank * n);
  comm.all_gather(part.data(), gathered.data(), per_rank, DType::kBFloat16);
  for (int k = 0; k < n; ++k)
    for (size_t j = 0; j < per_rank; ++j) {
      float expect = 0;
      for (int q = 0; q < n; ++q)
        expect += static_cast<float>(q + static_cast<int>(k * per_rank + j));
      EXPECT_EQ(bf16_to_float(gathered[k * per_rank + j]),
                bf16_to_float(float_to_bf16(expect / n)));
    }
}

TEST_F(MpiCommTest, BroadcastFromLastRankAndOverlappingStarts) {
  std::vector<float> buf(4, static_cast<float>(r));
  comm.broadcast(buf.data(), buf.size(), DType::kFloat32, n - 1);
  EXPECT_EQ(buf, std::vector<float>(4, static_cast<float>(n - 1)));
  // Two collectives in flight at once (the ZeRO-3 prefetch pattern), waited in order.
  std::vector<float> a(2 * n), b(2 * n), sa = {1.0f * r, 2.0f}, sb = {3.0f, 4.0f * r};
  auto wa = comm.start_all_gather(sa.data(), a.data(), 2, DType::kFloat32);
  auto wb = comm.start_all_gather(sb.data(), b.data(), 2, DType::kFloat32);
  wa->wait();
  wb->wait();
  for (int k = 0; k < n; ++k) {
    EXPECT_EQ(a[2 * k], 1.0f * k);
    EXPECT_EQ(b[2 * k + 1], 4.0f * k);
  }
  comm.barrier();
}

}  // namespace
}  // namespace flam
