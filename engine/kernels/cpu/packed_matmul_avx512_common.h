// What the two AVX-512 kernel files (packed_matmul_avx512.cpp, and
// packed_matmul_avx512_vbmi.cpp for CPUs with VBMI and GFNI) share: the prefetch of a group's
// stream, the tile store and the FP8 block context of the one-token GEMV. Included only after
// the including file's target pragma, so each file compiles these with its own instruction set;
// the functions sit in an unnamed namespace so that the linker can never hand the plain AVX-512
// file a copy compiled with VBMI (which would fault on a CPU without it). Nothing from the
// standard library is instantiated here, for the same reason.
#pragma once

#include <immintrin.h>

#include <cfloat>
#include <cstdint>

#include "engine/kernels/cpu/packed_matmul.h"

namespace v4agent::engine::kernels {

// Per token and column block of an FP8 product: whether x times the block's multiplier is
// exact (no overflow, nothing below the normal range). FP8 with x pre-multiplied by the block's
// multiplier (shared by the G tiles, which lie in one 128-row block): fma(raw, x * m, acc)
// rounds the same real number raw * m * x as fma(raw * m, x, acc) does, as long as x * m is
// exact.
struct ManyContext {
  const float* amax;  // [T][k_blocks]: max |x| per column block
  const float* amin;  // [T][k_blocks]: min nonzero |x|
  float* xs;          // [T][kFp8Block]: x times the multiplier of the current block
  float* xs_second;   // [kFp8Block]: the same for the second group of a pair (one token)
};

// The VBMI file's one-token FP8 GEMV: `streams` (1 or 2) whole groups of 8 tiles from t0, the
// second read beside the first as GemvFp8Quads reads a pair; the same bits as GemvFp8Quads.
void GemvFp8GroupsVbmi(const TileJob& job, int64_t t0, int streams, const ManyContext& ctx);

namespace {

// The group's stream `kGemvPrefetchBytes` ahead of `at`: every cache line of the step of `bytes`
// that will be read then (the hardware prefetchers alone reach about 60% of the bandwidth).
// Always inlined: GCC sees a prefetch as free of side effects, so a call to this function that
// is not inlined early is deleted as dead code, silently (it happened inside QuadsExactStep).
__attribute__((always_inline)) inline void Prefetch(const uint8_t* at, int64_t bytes) {
  const char* p = reinterpret_cast<const char*>(at + kGemvPrefetchBytes);
  _mm_prefetch(p, _MM_HINT_T0);
  for (int64_t off = 64; off < bytes; off += 64) _mm_prefetch(p + off, _MM_HINT_T0);
}

inline void Store(const TileJob& job, int64_t tile, int64_t tok, __m512 acc) {
  const int64_t r0 = tile * kTileRows;
  float* dst = job.y + tok * job.y_stride + (r0 - job.row_origin);
  const int64_t valid = job.row_end - r0;
  if (valid >= kTileRows) {
    _mm512_storeu_ps(dst, acc);
  } else {
    _mm512_mask_storeu_ps(dst, static_cast<__mmask16>((1u << valid) - 1), acc);
  }
}

// Whether column block kb is exact for all T tokens (see ManyContext); if so, xs ([T][kFp8Block])
// then holds each token's x over [k_begin, k_end) times the block's multiplier m0.
template <int T>
inline bool ScaleFp8Block(const ManyContext& ctx, const float* const (&x)[T], int64_t kbs,
                          int64_t kb, int64_t k_begin, int64_t k_end, float m0, float* xs) {
  bool exact = true;
#pragma GCC unroll 8
  for (int i = 0; i < T; ++i) {
    exact = exact && ctx.amax[i * kbs + kb] * m0 <= FLT_MAX &&
            (m0 >= 1.0f || ctx.amin[i * kbs + kb] * m0 >= FLT_MIN);
  }
  if (!exact) return false;
#pragma GCC unroll 8
  for (int i = 0; i < T; ++i) {
    for (int64_t k = k_begin; k < k_end; ++k) xs[i * kFp8Block + (k - k_begin)] = x[i][k] * m0;
  }
  return true;
}

}  // namespace
}  // namespace v4agent::engine::kernels
