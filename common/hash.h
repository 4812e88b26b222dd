// Hash64: a fast non-cryptographic 64-bit hash for checksums of files the program wrote itself
// (session files) and for fingerprints (of a model's config and tensors). It detects
// corruption and mismatches, not tampering. Stable across runs, builds and machines
// (little-endian), so values stored in files stay comparable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace v4agent {

uint64_t Hash64(const void* data, size_t size, uint64_t seed = 0);
inline uint64_t Hash64(std::string_view s, uint64_t seed = 0) {
  return Hash64(s.data(), s.size(), seed);
}

// Hash64 over bytes given in pieces: Finish() equals Hash64 of their concatenation, whatever
// the split (for files written and checked in different pieces).
class Hash64Stream {
 public:
  explicit Hash64Stream(uint64_t seed = 0);
  void Update(const void* data, size_t size);
  uint64_t Finish() const;

 private:
  uint64_t lanes_[4];
  uint8_t buf_[32];
  size_t buffered_ = 0;
  uint64_t total_ = 0;
};

// A hash of a sequence of fields: each Update chains one field into the state, so the split
// into fields is part of what is hashed ("ab" + "c" differs from "a" + "bc").
class Hasher {
 public:
  explicit Hasher(uint64_t seed = 0) : state_(seed ^ 0x9E3779B97F4A7C15ull) {}
  Hasher& Update(const void* data, size_t size) {
    state_ = Hash64(data, size, state_);
    return *this;
  }
  Hasher& Update(std::string_view s) { return Update(s.data(), s.size()); }
  template <typename T>
  Hasher& UpdateValue(const T& v) {
    return Update(&v, sizeof(v));
  }
  uint64_t Digest() const { return state_; }

 private:
  uint64_t state_;
};

}  // namespace v4agent
