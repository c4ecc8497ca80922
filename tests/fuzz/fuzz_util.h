// Shared by the libFuzzer targets of tests/fuzz/: the input as a ByteSource, and a private file
// for the readers that open a path. A target calls one public parse function and accepts any
// flam::Error (bad input is an error, never a crash, a hang or undefined behaviour).
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>

#include "pipeline/byte_source.h"

namespace flam::fuzz {

// The fuzzer's bytes as a stream, handed out in small pieces so that buffer refills run too.
class MemorySource final : public pipeline::ByteSource {
 public:
  MemorySource(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  size_t read(void* buf, size_t n) override {
    const size_t k = std::min({n, size_ - pos_, size_t{4099}});
    std::memcpy(buf, data_ + pos_, k);
    pos_ += k;
    return k;
  }
  const std::string& name() const override { return name_; }
  int64_t offset() const override { return static_cast<int64_t>(pos_); }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  std::string name_ = "fuzz-input";
};

// Writes the input to a file of this process named "fuzz-<pid><suffix>" in /dev/shm (memory, for
// speed) or else /tmp; returns its path.
inline std::string write_input(const uint8_t* data, size_t size, const std::string& suffix) {
  static const std::string dir = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  const std::string path = dir + "/fuzz-" + std::to_string(::getpid()) + suffix;
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

}  // namespace flam::fuzz
