// Rng: the loader's small, serialisable random generator (SplitMix64: one 64-bit word of state),
// and mix_seed(), which derives independent seeds from tuples such as (seed, epoch, shard,
// ordinal). Every random choice of the loader comes from one of these, so results depend on the
// seed and the position of a sample, never on threads or timing.
//
// Thread safety: an Rng is a plain value, used by one thread at a time.
#pragma once

#include <cstdint>
#include <initializer_list>

namespace flam::pipeline {

class Rng {
 public:
  explicit Rng(uint64_t state = 0) : state_(state) {}

  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Uniform in [0, n). REQUIRES: n > 0. (Lemire's multiply-shift; the tiny bias is irrelevant.)
  uint64_t below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }
  uint64_t state() const { return state_; }

 private:
  uint64_t state_;
};

// A seed from an ordered tuple of values; distinct tuples give unrelated seeds.
inline uint64_t mix_seed(std::initializer_list<uint64_t> values) {
  Rng rng(0x243f6a8885a308d3ULL);
  uint64_t h = rng.next();
  for (const uint64_t v : values) {
    Rng step(h ^ v);
    h = step.next();
  }
  return h;
}

}  // namespace flam::pipeline
