// AVX-512 BF16 kernels of packed_matmul_dot.h: the weights converted to bf16 in registers
// (FP8 with shifts and a mask, FP4 with one 32-entry word lookup per 32 weights) and
// multiplied by `vdpbf16ps`, the order of the header's definition exactly. Compiled for
// AVX-512 BF16 whatever the build's -march (the pragma), run only where HasAvx512Bf16();
// nothing from the standard library is instantiated here (see packed_matmul_avx512.cpp).
#if defined(__clang__)
#pragma clang attribute push(                                                          \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,bmi2"))), \
    apply_to = function)
#else
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,bmi2")
#endif
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <immintrin.h>

#include <cstdint>

#include "engine/kernels/cpu/packed_matmul_avx512_common.h"
#include "engine/kernels/cpu/packed_matmul_dot.h"
#include "engine/kernels/cpu/scratch.h"

namespace v4agent::engine::kernels {
namespace {

// Tokens per register block of the many-token kernel. FP8: 6, with its two tiles 12
// independent chains of vdpbf16ps (4 tokens, 8 chains, left the FP8 GEMM 10-20% slower);
// FP4 and BF16: 4 (FP4's four converted vectors per tile leave no registers for 6, and it
// ran 20% slower with them; `bench_kernels --numerics fast-bf16`, docs/benchmarks.md).
// (BF16 at 4 tiles x 3 tokens, also 12 chains, was no faster than 2 x 4.)
template <WeightFormat F>
constexpr int64_t kDotTokens = F == WeightFormat::kFP8 ? 6 : 4;

// Every e2m1 code's value as bf16, twice (vpermw indexes with 5 bits).
alignas(64) constexpr uint16_t kE2m1Bf16[32] = {
    0x0000, 0x3F00, 0x3F80, 0x3FC0, 0x4000, 0x4040, 0x4080, 0x40C0, 0x8000, 0xBF00, 0xBF80,
    0xBFC0, 0xC000, 0xC040, 0xC080, 0xC0C0, 0x0000, 0x3F00, 0x3F80, 0x3FC0, 0x4000, 0x4040,
    0x4080, 0x40C0, 0x8000, 0xBF00, 0xBF80, 0xBFC0, 0xC000, 0xC040, 0xC080, 0xC0C0};

inline __m512 Dot(__m512 acc, __m512i w, uint32_t pair) {
  return _mm512_dpbf16_ps(acc, (__m512bh)w, (__m512bh)_mm512_set1_epi32(static_cast<int>(pair)));
}

// G tiles of one group (tile g's step 64 bytes after tile g - 1's) for tokens [i0, i0 + T).
template <WeightFormat F, int G, int T>
void DotTiles(const TileJob& job, const DotActivations& act, int64_t t0, int64_t i0,
              bool prefetch) {
  const PackedLinear& w = *job.w;
  constexpr int64_t kStep = kTileRows * 4;
  const uint8_t* const base = w.TileData(t0);
  const int64_t stride = w.StepStride(t0);
  const int64_t steps = w.steps();
  // Steps per block of the definition's step 4.
  const int64_t block_steps = F == WeightFormat::kFP8   ? kFp8Block / 4
                              : F == WeightFormat::kFP4 ? kFp4Block / 8
                                                        : steps;
  const uint32_t* a[T];
#pragma GCC unroll 8
  for (int i = 0; i < T; ++i) a[i] = act.pairs + (i0 + i) * act.stride;
  const __m512i mask = _mm512_set1_epi16(static_cast<short>(0x87F0));
  const __m512i table = _mm512_load_si512(kE2m1Bf16);
  const float* mult = reinterpret_cast<const float*>(w.scales.data());
  const uint8_t* const sc = F == WeightFormat::kFP4 ? w.TileScales(t0) : nullptr;
  __m512 acc[G][T];
#pragma GCC unroll 16
  for (int g = 0; g < G; ++g) {
#pragma GCC unroll 8
    for (int i = 0; i < T; ++i) acc[g][i] = _mm512_setzero_ps();
  }
  for (int64_t b = 0, s0 = 0; s0 < steps; ++b, s0 += block_steps) {
    const int64_t s1 = s0 + block_steps < steps ? s0 + block_steps : steps;
    __m512 part[G][T];
#pragma GCC unroll 16
    for (int g = 0; g < G; ++g) {
#pragma GCC unroll 8
      for (int i = 0; i < T; ++i) part[g][i] = _mm512_setzero_ps();
    }
    for (int64_t s = s0; s < s1; ++s) {
      const uint8_t* step = base + s * stride;
      if (prefetch) Prefetch(step, stride);
#pragma GCC unroll 16
      for (int g = 0; g < G; ++g) {
        const __m512i v = _mm512_load_si512(step + g * kStep);
        if constexpr (F == WeightFormat::kFP8) {
          // Low bytes: the pair (4s, 4s + 1); high bytes: (4s + 2, 4s + 3). Each byte goes to
          // sign << 15 | magnitude << 4, bf16 for 2^-120 times its value.
          const __m512i lo = _mm512_and_si512(_mm512_srai_epi16(_mm512_slli_epi16(v, 8), 4), mask);
          const __m512i hi = _mm512_and_si512(_mm512_srai_epi16(v, 4), mask);
#pragma GCC unroll 8
          for (int i = 0; i < T; ++i) {
            part[g][i] = Dot(part[g][i], lo, a[i][2 * s]);
            part[g][i] = Dot(part[g][i], hi, a[i][2 * s + 1]);
          }
        } else if constexpr (F == WeightFormat::kFP4) {
          // vpermw reads the low 5 bits of each word: the table repeats, so nibble q needs
          // only a shift.
          const __m512i w0 = _mm512_permutexvar_epi16(v, table);
          const __m512i w1 = _mm512_permutexvar_epi16(_mm512_srli_epi16(v, 4), table);
          const __m512i w2 = _mm512_permutexvar_epi16(_mm512_srli_epi16(v, 8), table);
          const __m512i w3 = _mm512_permutexvar_epi16(_mm512_srli_epi16(v, 12), table);
#pragma GCC unroll 8
          for (int i = 0; i < T; ++i) {
            part[g][i] = Dot(part[g][i], w0, a[i][4 * s]);
            part[g][i] = Dot(part[g][i], w1, a[i][4 * s + 1]);
            part[g][i] = Dot(part[g][i], w2, a[i][4 * s + 2]);
            part[g][i] = Dot(part[g][i], w3, a[i][4 * s + 3]);
          }
        } else {
#pragma GCC unroll 8
          for (int i = 0; i < T; ++i) part[g][i] = Dot(part[g][i], v, a[i][s]);
        }
      }
    }
#pragma GCC unroll 16
    for (int g = 0; g < G; ++g) {
      if constexpr (F == WeightFormat::kFP8) {
        const __m512 m = _mm512_set1_ps(mult[(t0 + g) * w.k_blocks() + b]);
#pragma GCC unroll 8
        for (int i = 0; i < T; ++i) acc[g][i] = _mm512_fmadd_ps(part[g][i], m, acc[g][i]);
      } else if constexpr (F == WeightFormat::kFP4) {
        const __m512 m = Ue8m0(sc + b * w.ScaleStride(t0) + g * kTileRows);
#pragma GCC unroll 8
        for (int i = 0; i < T; ++i) acc[g][i] = _mm512_fmadd_ps(part[g][i], m, acc[g][i]);
      } else {
#pragma GCC unroll 8
        for (int i = 0; i < T; ++i) acc[g][i] = part[g][i];
      }
    }
  }
#pragma GCC unroll 16
  for (int g = 0; g < G; ++g) {
#pragma GCC unroll 8
    for (int i = 0; i < T; ++i) {
      Store(job, t0 + g, i0 + i, _mm512_mul_ps(acc[g][i], _mm512_set1_ps(act.unscale[i0 + i])));
    }
  }
}

// One token over a whole group of n tiles (one contiguous stream).
template <WeightFormat F>
void DotGroup(const TileJob& job, const DotActivations& act, int64_t t0, int64_t n) {
  switch (n) {
    case 8:
      return DotTiles<F, 8, 1>(job, act, t0, 0, true);
    case 7:
      return DotTiles<F, 7, 1>(job, act, t0, 0, true);
    case 6:
      return DotTiles<F, 6, 1>(job, act, t0, 0, true);
    case 5:
      return DotTiles<F, 5, 1>(job, act, t0, 0, true);
    case 4:
      return DotTiles<F, 4, 1>(job, act, t0, 0, true);
    case 3:
      return DotTiles<F, 3, 1>(job, act, t0, 0, true);
    case 2:
      return DotTiles<F, 2, 1>(job, act, t0, 0, true);
    default:
      return DotTiles<F, 1, 1>(job, act, t0, 0, true);
  }
}

template <WeightFormat F, int G>
void DotTokens(const TileJob& job, const DotActivations& act, int64_t t0, int64_t i0, int64_t n) {
  switch (n) {
    case 6:
      return DotTiles<F, G, 6>(job, act, t0, i0, false);
    case 5:
      return DotTiles<F, G, 5>(job, act, t0, i0, false);
    case 4:
      return DotTiles<F, G, 4>(job, act, t0, i0, false);
    case 3:
      return DotTiles<F, G, 3>(job, act, t0, i0, false);
    case 2:
      return DotTiles<F, G, 2>(job, act, t0, i0, false);
    default:
      return DotTiles<F, G, 1>(job, act, t0, i0, false);
  }
}

// PrepareDotActivations (the definition, in packed_matmul_dot.cpp) with vectors: the same
// maximum (vmaxps keeps its second operand when the first is NaN, as the scalar comparison
// does), the same products and the same integer rounding to bf16.
DotActivations Prepare(const TileJob& job) {
  const PackedLinear& w = *job.w;
  const int64_t stride = DotPairsStride(w);
  float* scratch = ScratchFloats(static_cast<size_t>(job.tokens * (stride + 1)));
  uint32_t* pairs = reinterpret_cast<uint32_t*>(scratch);
  float* unscale = scratch + job.tokens * stride;
  const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF);
  for (int64_t i = 0; i < job.tokens; ++i) {
    const float* x = job.x + i * job.x_stride;
    __m512 hi = _mm512_setzero_ps();
    for (int64_t k = 0; k < w.in; k += 16) {
      const int64_t n = w.in - k < 16 ? w.in - k : 16;
      const __m512 v = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), x + k);
      hi = _mm512_max_ps(_mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), abs_mask)),
                         hi);
    }
    const int s = DotShift(_mm512_reduce_max_ps(hi), w.format);
    const __m512 up = _mm512_castsi512_ps(_mm512_set1_epi32((s + 127) << 23));
    unscale[i] = _mm_cvtss_f32(_mm_castsi128_ps(_mm_cvtsi32_si128((127 - s) << 23)));
    uint32_t* dst = pairs + i * stride;
    for (int64_t p = 0; p < stride; p += 8) {
      const int64_t k = 2 * p;
      const int64_t left = w.in - k;
      const int64_t n = left <= 0 ? 0 : (left < 16 ? left : 16);
      const __m512 v =
          _mm512_mul_ps(_mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), x + k), up);
      const __m512i u = _mm512_castps_si512(v);
      const __mmask16 nan =
          _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, abs_mask), _mm512_set1_epi32(0x7F800000));
      const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
      __m512i r = _mm512_srli_epi32(
          _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7FFF)), lsb), 16);
      r = _mm512_mask_mov_epi32(r, nan,
                                _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + p), _mm512_cvtepi32_epi16(r));
    }
  }
  return {pairs, stride, unscale};
}

template <WeightFormat F>
void Run(const TileJob& job) {
  const DotActivations act = Prepare(job);
  if (job.tokens == 1) {
    for (int64_t t = job.tile_begin; t < job.tile_end;) {
      const int64_t group_end = (t / kGroupTiles + 1) * kGroupTiles;
      const int64_t n = (group_end < job.tile_end ? group_end : job.tile_end) - t;
      DotGroup<F>(job, act, t, n);
      t += n;
    }
    return;
  }
  if (job.tokens <= 4) {
    // A few sequences decoding together: a part of a group at a time (4 tiles for 2 tokens,
    // 2 for 3 or 4), streamed with prefetch like the one-token GEMV. Through the tile-pair
    // path below, 2 sequences decoded 1.1x as fast as one; streamed, 1.47x
    // (`bench_kernels --model`, decode of B sequences).
    for (int64_t t = job.tile_begin; t < job.tile_end;) {
      const int64_t group_end = (t / kGroupTiles + 1) * kGroupTiles;
      const int64_t end = group_end < job.tile_end ? group_end : job.tile_end;
      const int64_t most = job.tokens == 2 ? 4 : 2;
      const int64_t n = end - t < most ? end - t : most;
      if (job.tokens == 2) {
        switch (n) {
          case 4:
            DotTiles<F, 4, 2>(job, act, t, 0, true);
            break;
          case 3:
            DotTiles<F, 3, 2>(job, act, t, 0, true);
            break;
          case 2:
            DotTiles<F, 2, 2>(job, act, t, 0, true);
            break;
          default:
            DotTiles<F, 1, 2>(job, act, t, 0, true);
        }
      } else if (job.tokens == 3) {
        n == 2 ? DotTiles<F, 2, 3>(job, act, t, 0, true) : DotTiles<F, 1, 3>(job, act, t, 0, true);
      } else {
        n == 2 ? DotTiles<F, 2, 4>(job, act, t, 0, true) : DotTiles<F, 1, 4>(job, act, t, 0, true);
      }
      t += n;
    }
    return;
  }
  // Chunks of tokens whose activations fit in about 256 KiB; within a chunk, two tiles at a
  // time (their weights stay in L2) run through every token.
  constexpr int64_t kBlock = kDotTokens<F>;
  int64_t chunk = (int64_t{1} << 16) / act.stride / kBlock * kBlock;
  if (chunk < kBlock) chunk = kBlock;
  for (int64_t c0 = 0; c0 < job.tokens; c0 += chunk) {
    const int64_t c1 = c0 + chunk < job.tokens ? c0 + chunk : job.tokens;
    for (int64_t t = job.tile_begin; t < job.tile_end;) {
      // Two tiles only within one group (their steps are adjacent).
      const bool two = t + 1 < job.tile_end && (t + 1) % kGroupTiles != 0;
      for (int64_t i = c0; i < c1; i += kBlock) {
        const int64_t n = c1 - i < kBlock ? c1 - i : kBlock;
        if (two) {
          DotTokens<F, 2>(job, act, t, i, n);
        } else {
          DotTokens<F, 1>(job, act, t, i, n);
        }
      }
      t += two ? 2 : 1;
    }
  }
}

}  // namespace

void RunTilesDotAvx512(const TileJob& job) {
  switch (job.w->format) {
    case WeightFormat::kFP8:
      return Run<WeightFormat::kFP8>(job);
    case WeightFormat::kFP4:
      return Run<WeightFormat::kFP4>(job);
    default:
      return Run<WeightFormat::kBF16>(job);
  }
}

}  // namespace v4agent::engine::kernels

#if defined(__clang__)
#pragma clang attribute pop
#endif
