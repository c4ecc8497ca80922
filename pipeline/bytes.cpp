#include "pipeline/bytes.h"

#include <algorithm>
#include <cstring>
#include <new>

namespace flam::pipeline {
namespace {
constexpr size_t kAlign = 64;
}

Bytes::Bytes(std::string_view text) { *this = text; }

Bytes& Bytes::operator=(const Bytes& other) {
  if (this != &other) *this = other.view();
  return *this;
}

Bytes& Bytes::operator=(std::string_view text) {
  clear();
  resize(text.size());  // no reallocation if text lies in this buffer
  if (!text.empty()) std::memmove(data(), text.data(), text.size());
  return *this;
}

void Bytes::resize(size_t n) {
  if (n > capacity_) {
    size_t capacity = std::max(n, capacity_ + capacity_ / 2);
    capacity = (capacity + kAlign - 1) / kAlign * kAlign;
    char* grown = static_cast<char*>(std::aligned_alloc(kAlign, capacity));
    if (grown == nullptr) throw std::bad_alloc();
    if (size_ > 0) std::memcpy(grown, data_.get(), size_);
    data_.reset(grown);
    capacity_ = capacity;
  }
  size_ = n;
}

void Bytes::swap(Bytes& other) noexcept {
  std::swap(data_, other.data_);
  std::swap(size_, other.size_);
  std::swap(capacity_, other.capacity_);
}

}  // namespace flam::pipeline
