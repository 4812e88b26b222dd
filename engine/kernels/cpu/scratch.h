// Per-thread scratch memory for kernels: one growing 64-byte aligned buffer per thread, reused
// across calls so a hot loop never allocates (fresh large allocations page-fault every time).
// Defined in an ordinary translation unit so that instruction-set-specific kernel files
// instantiate nothing from the standard library.
#pragma once

#include <cstddef>

namespace v4agent::engine::kernels {

// At least n floats, valid until the next call on this thread.
float* ScratchFloats(size_t n);

}  // namespace v4agent::engine::kernels
