// What the AVX-512 kernel files (packed_matmul_avx512.cpp; packed_matmul_avx512_vbmi.cpp for
// CPUs with VBMI and GFNI; packed_matmul_dot_avx512.cpp for AVX-512 BF16) share: the prefetch
// of a group's stream, the tile store, the UE8M0 scale conversion, and the FP8 block context of
// the one-token GEMV. Included only after
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

// 16 UE8M0 bytes as floats 2^(e - 127) (0 for e = 0).
inline __m512 Ue8m0(const uint8_t* p) {
  const __m512i e = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
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

// The column-block loop of an FP8 GEMV over S groups (group s at t0 + 8 s) for T tokens, shared
// by the kernels that convert FP8 differently. Per 128-column block: when x times every group's
// multiplier is exact (ScaleFp8Block), the groups take their steps side by side on the scaled
// x; otherwise one group at a time, an exact one on its scaled x and the others with their
// weights times the multiplier, on x itself. exact_step(s, k, xs_k): group s's step k, token
// i's scaled x at xs_k[i * kFp8Block]; scaled_step(s, k, m): group s's step k, weights times m.
template <int S, int T, class ExactStep, class ScaledStep>
__attribute__((always_inline)) inline void Fp8Blocks(const TileJob& job, int64_t t0,
                                                     const ManyContext& ctx,
                                                     const float* const (&x)[T],
                                                     float* const (&xs)[S], ExactStep exact_step,
                                                     ScaledStep scaled_step) {
  const PackedLinear& w = *job.w;
  const int64_t in = w.in, kbs = w.k_blocks();
  const float* mult = reinterpret_cast<const float*>(w.scales.data());
  for (int64_t kb = 0; kb < kbs; ++kb) {
    const int64_t k_begin = kb * kFp8Block;
    const int64_t k_end = k_begin + kFp8Block < in ? k_begin + kFp8Block : in;
    float m0[S];
    bool exact[S], all = true;
#pragma GCC unroll 2
    for (int s = 0; s < S; ++s) {
      m0[s] = mult[(t0 + s * kGroupTiles) * kbs + kb];
      exact[s] = ScaleFp8Block<T>(ctx, x, kbs, kb, k_begin, k_end, m0[s], xs[s]);
      all = all && exact[s];
    }
    if (all) {
      for (int64_t k = k_begin; k < k_end; ++k) {
#pragma GCC unroll 2
        for (int s = 0; s < S; ++s) exact_step(s, k, xs[s] + (k - k_begin));
      }
      continue;
    }
#pragma GCC unroll 2
    for (int s = 0; s < S; ++s) {
      if (exact[s]) {
        for (int64_t k = k_begin; k < k_end; ++k) exact_step(s, k, xs[s] + (k - k_begin));
        continue;
      }
      const __m512 m = _mm512_set1_ps(m0[s]);
      for (int64_t k = k_begin; k < k_end; ++k) scaled_step(s, k, m);
    }
  }
}

}  // namespace
}  // namespace v4agent::engine::kernels
