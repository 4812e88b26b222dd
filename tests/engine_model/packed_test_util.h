// What the twin tests of the packed kernels (packed_kernels_test, packed_dot_test) share:
// the model-like random activations, a product through PackedMatMul, a product through one
// scalar tile runner (the oracle or the emulation), the ISA restorer and the shape table row.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "common/thread_pool.h"
#include "engine/kernels/cpu/packed_linear.h"
#include "engine/kernels/cpu/packed_matmul.h"

namespace v4agent::engine::testing {

inline const char* FormatName(WeightFormat f) {
  switch (f) {
    case WeightFormat::kFP8:
      return "fp8";
    case WeightFormat::kFP4:
      return "fp4";
    case WeightFormat::kBF16:
      return "bf16";
    case WeightFormat::kF32:
      return "f32";
  }
  return "?";
}

// Activations like the model's: mostly O(1), a few large outliers, some exact zeros.
inline std::vector<float> RandomX(int64_t tokens, int64_t in, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd;
  std::vector<float> x(static_cast<size_t>(tokens * in));
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = nd(rng);
    if (i % 97 == 5) x[i] *= 40;
    if (i % 89 == 7) x[i] = 0;
  }
  return x;
}

// Rows [row_begin, row_end) of W x for `tokens` tokens, through PackedMatMul.
inline std::vector<float> Packed(const kernels::PackedLinear& p, int64_t row_begin, int64_t row_end,
                                 const std::vector<float>& x, int64_t tokens, ThreadPool* pool) {
  const int64_t rows = row_end - row_begin;
  std::vector<float> y(static_cast<size_t>(tokens * rows), std::nanf(""));
  kernels::PackedMatMul(p, row_begin, row_end, x.data(), p.in, tokens, y.data(), rows, pool);
  return y;
}

// The same rows through one tile runner called directly (kernels::RunTilesScalar,
// kernels::RunTilesDotScalar).
inline std::vector<float> RunTiles(void (*runner)(const kernels::TileJob&),
                                   const kernels::PackedLinear& p, int64_t row_begin,
                                   int64_t row_end, const std::vector<float>& x, int64_t tokens) {
  const int64_t rows = row_end - row_begin;
  std::vector<float> y(static_cast<size_t>(tokens * rows), std::nanf(""));
  kernels::TileJob job{&p,
                       row_begin / kernels::kTileRows,
                       (row_end + kernels::kTileRows - 1) / kernels::kTileRows,
                       row_end,
                       row_begin,
                       x.data(),
                       p.in,
                       tokens,
                       y.data(),
                       rows};
  runner(job);
  return y;
}

// Restores the best instruction set when a test that forced one ends.
struct IsaGuard {
  ~IsaGuard() { kernels::ForceIsa(kernels::DetectIsa()); }
};

struct Shape {
  WeightFormat format;
  int64_t out, in;
  const char* what;
};

}  // namespace v4agent::engine::testing
