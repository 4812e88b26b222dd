#include "engine/kernels/cpu/scratch.h"

#include <cstdlib>
#include <memory>

namespace v4agent::engine::kernels {

namespace {

struct Buffer {
  float* p = nullptr;
  size_t n = 0;
  ~Buffer() { std::free(p); }

  float* Get(size_t want) {
    if (want > n) {
      std::free(p);
      const size_t bytes = (want * sizeof(float) + 63) / 64 * 64;
      p = static_cast<float*>(std::aligned_alloc(64, bytes));
      n = want;
    }
    return p;
  }
};

}  // namespace

float* ScratchFloats(size_t n) {
  thread_local Buffer b;
  return b.Get(n);
}

float* SharedScratchFloats(size_t n) {
  thread_local Buffer b;
  return b.Get(n);
}

}  // namespace v4agent::engine::kernels
