// Bytes: an owned, growable byte buffer for tar member data (TarReader::next, Sample::members).
// Unlike std::string, its storage is 64-byte aligned, because the kernel copies page-cache data
// into a cache-line-aligned destination faster (~12% in bench/tar), and growing it does not
// zero-fill, because the reader overwrites every byte it sizes for.
//
// Contract: after resize(n), bytes [old size, n) are unspecified until written. Capacity only
// grows (geometrically), so a Bytes reused for members of varying size allocates O(log) times.
// Copies are deep. Thread safety: none (a value type).
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

namespace flam::pipeline {

class Bytes {
 public:
  Bytes() = default;
  explicit Bytes(std::string_view text);
  Bytes(const Bytes& other) : Bytes(other.view()) {}
  Bytes& operator=(const Bytes& other);
  Bytes(Bytes&& other) noexcept { swap(other); }
  Bytes& operator=(Bytes&& other) noexcept {
    swap(other);
    return *this;
  }
  Bytes& operator=(std::string_view text);

  char* data() { return data_.get(); }
  const char* data() const { return data_.get(); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  void resize(size_t n);
  void clear() { size_ = 0; }
  void swap(Bytes& other) noexcept;

  std::string_view view() const { return {data_.get(), size_}; }
  operator std::string_view() const { return view(); }
  std::string str() const { return std::string(view()); }

  friend bool operator==(const Bytes& a, std::string_view b) { return a.view() == b; }

 private:
  struct Free {
    void operator()(char* p) const { std::free(p); }
  };
  std::unique_ptr<char, Free> data_;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace flam::pipeline
