// CRC32C (Castagnoli), the checksum of checkpoint files: SSE4.2's crc32 instruction when the CPU
// has it (several GB/s, faster than the disk), a table otherwise. Same values as RFC 3720 /
// Python's `crc32c` package: crc32c("123456789") == 0xE3069283.
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>

namespace flam::train {

// Extends `crc` (the value returned for the bytes before; 0 to start) over data[size].
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t size);
inline uint32_t crc32c(const void* data, size_t size) { return crc32c_extend(0, data, size); }

}  // namespace flam::train
