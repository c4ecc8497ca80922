#include "core/comm.h"

#include <atomic>
#include <cstring>

#include "core/check.h"
#include "core/comm_wait.h"

namespace flam {
namespace {
std::atomic<double> g_comm_wait_seconds{0.0};
}  // namespace

double comm_wait_seconds() { return g_comm_wait_seconds.load(std::memory_order_relaxed); }

void add_comm_wait_seconds(double seconds) {
  g_comm_wait_seconds.fetch_add(seconds, std::memory_order_relaxed);
}

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return 4;
    case DType::kBFloat16:
      return 2;
    case DType::kInt64:
      return 8;
  }
  FLAM_CHECK(false) << "unknown dtype";
  return 0;
}

const char* to_string(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "float32";
    case DType::kBFloat16:
      return "bfloat16";
    case DType::kInt64:
      return "int64";
  }
  return "unknown";
}

uint16_t float_to_bf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);  // NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);  // round to nearest even
  return static_cast<uint16_t>(bits >> 16);
}

float bf16_to_float(uint16_t value) {
  uint32_t bits = static_cast<uint32_t>(value) << 16;
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

}  // namespace flam
