#include "common/hash.h"

#include <algorithm>
#include <cstring>

namespace v4agent {
namespace {

constexpr uint64_t kMul1 = 0x9E3779B185EBCA87ull;
constexpr uint64_t kMul2 = 0xC2B2AE3D27D4EB4Full;

inline uint64_t Load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

inline uint64_t Mix(uint64_t acc, uint64_t v) {
  acc += v * kMul2;
  acc = (acc << 31) | (acc >> 33);
  return acc * kMul1;
}

inline uint64_t Avalanche(uint64_t h) {
  h ^= h >> 33;
  h *= kMul2;
  h ^= h >> 29;
  h *= kMul1;
  h ^= h >> 32;
  return h;
}

}  // namespace

// Four independent lanes over 32-byte blocks (so the multiplies overlap), then the tail.
namespace {

inline void InitLanes(uint64_t seed, uint64_t* l) {
  l[0] = seed + kMul1 + kMul2;
  l[1] = seed + kMul2;
  l[2] = seed;
  l[3] = seed - kMul1;
}

inline void Block(const uint8_t* p, uint64_t* l) {
  l[0] = Mix(l[0], Load64(p));
  l[1] = Mix(l[1], Load64(p + 8));
  l[2] = Mix(l[2], Load64(p + 16));
  l[3] = Mix(l[3], Load64(p + 24));
}

uint64_t Final(const uint64_t* l, const uint8_t* tail, size_t tail_size, uint64_t total) {
  uint64_t h = ((l[0] << 1) | (l[0] >> 63)) + ((l[1] << 7) | (l[1] >> 57)) +
               ((l[2] << 12) | (l[2] >> 52)) + ((l[3] << 18) | (l[3] >> 46));
  h ^= total * kMul1;
  size_t i = 0;
  for (; i + 8 <= tail_size; i += 8) h = Mix(h, Load64(tail + i));
  uint64_t last = 0;
  if (tail_size > i) std::memcpy(&last, tail + i, tail_size - i);
  h = Mix(h, last ^ (static_cast<uint64_t>(tail_size - i) << 56));
  return Avalanche(h);
}

}  // namespace

uint64_t Hash64(const void* data, size_t size, uint64_t seed) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint64_t l[4];
  InitLanes(seed, l);
  size_t i = 0;
  for (; i + 32 <= size; i += 32) Block(p + i, l);
  return Final(l, p + i, size - i, size);
}

Hash64Stream::Hash64Stream(uint64_t seed) { InitLanes(seed, lanes_); }

void Hash64Stream::Update(const void* data, size_t size) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  total_ += size;
  if (buffered_ > 0) {
    const size_t take = std::min(size, 32 - buffered_);
    std::memcpy(buf_ + buffered_, p, take);
    buffered_ += take;
    p += take;
    size -= take;
    if (buffered_ < 32) return;
    Block(buf_, lanes_);
    buffered_ = 0;
  }
  size_t i = 0;
  for (; i + 32 <= size; i += 32) Block(p + i, lanes_);
  if (size > i) std::memcpy(buf_, p + i, size - i);
  buffered_ = size - i;
}

uint64_t Hash64Stream::Finish() const { return Final(lanes_, buf_, buffered_, total_); }

}  // namespace v4agent
