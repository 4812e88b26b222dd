#include "engine/kernels/cpu/scratch.h"

#include <cstdlib>
#include <memory>

namespace v4agent::engine::kernels {

float* ScratchFloats(size_t n) {
  struct Buffer {
    float* p = nullptr;
    size_t n = 0;
    ~Buffer() { std::free(p); }
  };
  thread_local Buffer b;
  if (n > b.n) {
    std::free(b.p);
    const size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    b.p = static_cast<float*>(std::aligned_alloc(64, bytes));
    b.n = n;
  }
  return b.p;
}

}  // namespace v4agent::engine::kernels
