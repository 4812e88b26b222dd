// AVX2 tile kernels of packed_matmul.h, for CPUs without AVX-512: a tile's 16 rows in two
// 8-lane halves, the same conversions and the same per-row order of fused multiply-adds as
// the AVX-512 and scalar kernels (bit-identical results); one token streams the weights
// through registers, more convert each tile to fp32 once. Like the AVX-512 file, it
// instantiates nothing from the standard library.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx2,fma")
#endif

#include <immintrin.h>

#include <cstdint>

#include "engine/kernels/cpu/packed_matmul.h"
#include "engine/kernels/cpu/scratch.h"

namespace v4agent::engine::kernels {
namespace {

alignas(32) const float kE2m1Magnitude[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};

inline __m256 Fp8Raw8(const uint8_t* p) {
  const __m256i sx = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_and_si256(_mm256_slli_epi32(sx, 20),
                                              _mm256_set1_epi32(static_cast<int>(0x87F00000u))));
}

inline __m256 Ue8m0x8(const uint8_t* p) {
  const __m256i e = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
}

// e2m1 codes in the low 4 bits of each lane (higher bits ignored) as floats.
inline __m256 E2m1x8(__m256i codes, __m256 magnitudes) {
  const __m256 m = _mm256_permutevar8x32_ps(magnitudes, codes);
  const __m256i sign = _mm256_and_si256(_mm256_slli_epi32(codes, 28),
                                        _mm256_set1_epi32(static_cast<int>(0x80000000u)));
  return _mm256_or_ps(m, _mm256_castsi256_ps(sign));
}

inline void Store8(const TileJob& job, int64_t tile, int half, int64_t tok, __m256 acc) {
  const int64_t r0 = tile * kTileRows + half * 8;
  float* dst = job.y + tok * job.y_stride + (r0 - job.row_origin);
  const int64_t valid = job.row_end - r0;
  if (valid >= 8) {
    _mm256_storeu_ps(dst, acc);
    return;
  }
  alignas(32) float tmp[8];
  _mm256_store_ps(tmp, acc);
  for (int64_t i = 0; i < valid; ++i) dst[i] = tmp[i];
}

// The tile's weights as [in][16] fp32; for FP4 the e2m1 values only, and its block scales as
// [in / 32][16] fp32 into `scale`.
void ConvertTile(const PackedLinear& w, int64_t t, float* out, float* scale) {
  const int64_t in = w.in;
  const uint8_t* base = w.TileData(t);
  const int64_t stride = w.StepStride(t);
  switch (w.format) {
    case WeightFormat::kFP8: {
      const float* mult = reinterpret_cast<const float*>(w.scales.data()) + t * w.k_blocks();
      for (int64_t k = 0; k < in; ++k) {
        const __m256 m = _mm256_set1_ps(mult[k / kFp8Block]);
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
          _mm256_store_ps(out + k * kTileRows + 8 * h,
                          _mm256_mul_ps(Fp8Raw8(base + k * stride + 8 * h), m));
        }
      }
      break;
    }
    case WeightFormat::kFP4: {
      const __m256 mags = _mm256_load_ps(kE2m1Magnitude);
      const uint8_t* sc = w.TileScales(t);
      for (int64_t p = 0; p < in / 2; ++p) {
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
          const __m256i codes = _mm256_cvtepu8_epi32(
              _mm_loadl_epi64(reinterpret_cast<const __m128i*>(base + p * stride + 8 * h)));
          _mm256_store_ps(out + 2 * p * kTileRows + 8 * h, E2m1x8(codes, mags));
          _mm256_store_ps(out + (2 * p + 1) * kTileRows + 8 * h,
                          E2m1x8(_mm256_srli_epi32(codes, 4), mags));
        }
      }
      for (int64_t b = 0; b < in / kFp4Block; ++b) {
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
          _mm256_store_ps(scale + b * kTileRows + 8 * h,
                          Ue8m0x8(sc + b * w.ScaleStride(t) + 8 * h));
        }
      }
      break;
    }
    case WeightFormat::kBF16: {
      const __m256i hi = _mm256_set1_epi32(static_cast<int>(0xFFFF0000u));
      for (int64_t p = 0; p < w.in_pairs(); ++p) {
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
          const __m256i v =
              _mm256_load_si256(reinterpret_cast<const __m256i*>(base + p * stride + 32 * h));
          _mm256_store_ps(out + 2 * p * kTileRows + 8 * h,
                          _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
          if (2 * p + 1 < in) {
            _mm256_store_ps(out + (2 * p + 1) * kTileRows + 8 * h,
                            _mm256_castsi256_ps(_mm256_and_si256(v, hi)));
          }
        }
      }
      break;
    }
    case WeightFormat::kF32:
      for (int64_t k = 0; k < in; ++k) {
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
          _mm256_store_ps(
              out + k * kTileRows + 8 * h,
              _mm256_load_ps(reinterpret_cast<const float*>(base + k * stride) + 8 * h));
        }
      }
      break;
  }
}

template <int T>
void TokensOverTile(const TileJob& job, int64_t t, const float* tile, int64_t tok0) {
  const int64_t in = job.w->in;
  __m256 acc[T][2];
  const float* x[T];
#pragma GCC unroll 16
  for (int i = 0; i < T; ++i) {
    acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    x[i] = job.x + (tok0 + i) * job.x_stride;
  }
  for (int64_t k = 0; k < in; ++k) {
    const __m256 w0 = _mm256_load_ps(tile + k * kTileRows);
    const __m256 w1 = _mm256_load_ps(tile + k * kTileRows + 8);
#pragma GCC unroll 16
    for (int i = 0; i < T; ++i) {
      const __m256 xk = _mm256_broadcast_ss(x[i] + k);
      acc[i][0] = _mm256_fmadd_ps(w0, xk, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(w1, xk, acc[i][1]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < T; ++i) {
    Store8(job, t, 0, tok0 + i, acc[i][0]);
    Store8(job, t, 1, tok0 + i, acc[i][1]);
  }
}

// FP4's order: a partial sum per 32-column block, scaled into the accumulator.
template <int T>
void TokensOverTileBlocked(const TileJob& job, int64_t t, const float* tile, const float* scale,
                           int64_t tok0) {
  const int64_t in = job.w->in;
  __m256 acc[T][2];
  const float* x[T];
#pragma GCC unroll 16
  for (int i = 0; i < T; ++i) {
    acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    x[i] = job.x + (tok0 + i) * job.x_stride;
  }
  for (int64_t b = 0; b < in / kFp4Block; ++b) {
    __m256 part[T][2];
#pragma GCC unroll 16
    for (int i = 0; i < T; ++i) part[i][0] = part[i][1] = _mm256_setzero_ps();
    for (int64_t k = b * kFp4Block; k < (b + 1) * kFp4Block; ++k) {
      const __m256 w0 = _mm256_load_ps(tile + k * kTileRows);
      const __m256 w1 = _mm256_load_ps(tile + k * kTileRows + 8);
#pragma GCC unroll 16
      for (int i = 0; i < T; ++i) {
        const __m256 xk = _mm256_broadcast_ss(x[i] + k);
        part[i][0] = _mm256_fmadd_ps(w0, xk, part[i][0]);
        part[i][1] = _mm256_fmadd_ps(w1, xk, part[i][1]);
      }
    }
    const __m256 s0 = _mm256_load_ps(scale + b * kTileRows);
    const __m256 s1 = _mm256_load_ps(scale + b * kTileRows + 8);
#pragma GCC unroll 16
    for (int i = 0; i < T; ++i) {
      acc[i][0] = _mm256_fmadd_ps(part[i][0], s0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(part[i][1], s1, acc[i][1]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < T; ++i) {
    Store8(job, t, 0, tok0 + i, acc[i][0]);
    Store8(job, t, 1, tok0 + i, acc[i][1]);
  }
}

template <int T>
void TokenBlock(const TileJob& job, int64_t t, const float* tile, const float* scale,
                int64_t tok0) {
  if (job.w->format == WeightFormat::kFP4) {
    TokensOverTileBlocked<T>(job, t, tile, scale, tok0);
  } else {
    TokensOverTile<T>(job, t, tile, tok0);
  }
}

// ---- one token (decode): G tiles of one group, weights converted in registers as they
// stream, with the arithmetic of ConvertTile and the order of TokensOverTile(Blocked)<1> (so
// the same bits as the tile path), the group's stream prefetched kGemvPrefetchBytes ahead ----

// Always inlined, as Prefetch in packed_matmul_avx512.cpp: GCC may delete a call to a function
// that only prefetches as dead code.
__attribute__((always_inline)) inline void PrefetchStep(const uint8_t* at, int64_t bytes) {
  for (int64_t off = 0; off < bytes; off += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(at + kGemvPrefetchBytes + off), _MM_HINT_T0);
  }
}

template <int G>
void StoreGroup(const TileJob& job, int64_t t0, const __m256 (&acc)[G][2]) {
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g) {
    Store8(job, t0 + g, 0, 0, acc[g][0]);
    Store8(job, t0 + g, 1, 0, acc[g][1]);
  }
}

template <int G>
void GemvFp8(const TileJob& job, int64_t t0) {
  const PackedLinear& w = *job.w;
  const int64_t in = w.in, kbs = w.k_blocks(), stride = w.StepStride(t0);
  const uint8_t* const base = w.TileData(t0);  // tile g's step is kTileRows bytes after g - 1's
  const float* mult = reinterpret_cast<const float*>(w.scales.data());
  __m256 acc[G][2];
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g) acc[g][0] = acc[g][1] = _mm256_setzero_ps();
  for (int64_t kb = 0; kb < kbs; ++kb) {
    __m256 m[G];
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) m[g] = _mm256_set1_ps(mult[(t0 + g) * kbs + kb]);
    const int64_t k_end = (kb + 1) * kFp8Block < in ? (kb + 1) * kFp8Block : in;
    for (int64_t k = kb * kFp8Block; k < k_end; ++k) {
      const uint8_t* step = base + k * stride;
      PrefetchStep(step, stride);
      const __m256 xk = _mm256_broadcast_ss(job.x + k);
#pragma GCC unroll 8
      for (int g = 0; g < G; ++g) {
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
          const __m256 wv = _mm256_mul_ps(Fp8Raw8(step + g * kTileRows + 8 * h), m[g]);
          acc[g][h] = _mm256_fmadd_ps(wv, xk, acc[g][h]);
        }
      }
    }
  }
  StoreGroup<G>(job, t0, acc);
}

template <int G>
void GemvFp4(const TileJob& job, int64_t t0) {
  const PackedLinear& w = *job.w;
  const int64_t blocks = w.in / kFp4Block, stride = w.StepStride(t0);
  const int64_t sstride = w.ScaleStride(t0);
  const uint8_t* const base = w.TileData(t0);
  const uint8_t* const sc = w.TileScales(t0);
  const __m256 mags = _mm256_load_ps(kE2m1Magnitude);
  __m256 acc[G][2];
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g) acc[g][0] = acc[g][1] = _mm256_setzero_ps();
  for (int64_t b = 0; b < blocks; ++b) {
    __m256 part[G][2];
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) part[g][0] = part[g][1] = _mm256_setzero_ps();
    for (int64_t p = b * (kFp4Block / 2); p < (b + 1) * (kFp4Block / 2); ++p) {
      const uint8_t* step = base + p * stride;
      PrefetchStep(step, stride);
      const __m256 x0 = _mm256_broadcast_ss(job.x + 2 * p);
      const __m256 x1 = _mm256_broadcast_ss(job.x + 2 * p + 1);
#pragma GCC unroll 8
      for (int g = 0; g < G; ++g) {
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
          const __m256i codes = _mm256_cvtepu8_epi32(
              _mm_loadl_epi64(reinterpret_cast<const __m128i*>(step + g * kTileRows + 8 * h)));
          part[g][h] = _mm256_fmadd_ps(E2m1x8(codes, mags), x0, part[g][h]);
          part[g][h] = _mm256_fmadd_ps(E2m1x8(_mm256_srli_epi32(codes, 4), mags), x1, part[g][h]);
        }
      }
    }
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) {
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) {
        const __m256 s = Ue8m0x8(sc + b * sstride + g * kTileRows + 8 * h);
        acc[g][h] = _mm256_fmadd_ps(part[g][h], s, acc[g][h]);
      }
    }
  }
  StoreGroup<G>(job, t0, acc);
}

// BF16 and F32: a step of a tile is 64 bytes (16 rows x a pair of bf16, or 16 floats).
template <int G>
void GemvWide(const TileJob& job, int64_t t0) {
  const PackedLinear& w = *job.w;
  const int64_t in = w.in, stride = w.StepStride(t0);
  constexpr int64_t kStep = kTileRows * 4;
  const uint8_t* const base = w.TileData(t0);
  __m256 acc[G][2];
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g) acc[g][0] = acc[g][1] = _mm256_setzero_ps();
  if (w.format == WeightFormat::kBF16) {
    const __m256i hi = _mm256_set1_epi32(static_cast<int>(0xFFFF0000u));
    for (int64_t p = 0; p < w.in_pairs(); ++p) {
      const uint8_t* step = base + p * stride;
      PrefetchStep(step, stride);
      const __m256 x0 = _mm256_broadcast_ss(job.x + 2 * p);
      const bool odd = 2 * p + 1 < in;
      const __m256 x1 = odd ? _mm256_broadcast_ss(job.x + 2 * p + 1) : _mm256_setzero_ps();
#pragma GCC unroll 8
      for (int g = 0; g < G; ++g) {
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
          const __m256i v =
              _mm256_load_si256(reinterpret_cast<const __m256i*>(step + g * kStep + 32 * h));
          acc[g][h] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v, 16)), x0, acc[g][h]);
          if (odd) {
            acc[g][h] =
                _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v, hi)), x1, acc[g][h]);
          }
        }
      }
    }
  } else {
    for (int64_t k = 0; k < in; ++k) {
      const uint8_t* step = base + k * stride;
      const __m256 xk = _mm256_broadcast_ss(job.x + k);
#pragma GCC unroll 8
      for (int g = 0; g < G; ++g) {
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
          const __m256 wv =
              _mm256_load_ps(reinterpret_cast<const float*>(step + g * kStep + 32 * h));
          acc[g][h] = _mm256_fmadd_ps(wv, xk, acc[g][h]);
        }
      }
    }
  }
  StoreGroup<G>(job, t0, acc);
}

template <int G>
void GemvGroupAvx2(const TileJob& job, int64_t t0) {
  switch (job.w->format) {
    case WeightFormat::kFP8:
      return GemvFp8<G>(job, t0);
    case WeightFormat::kFP4:
      return GemvFp4<G>(job, t0);
    case WeightFormat::kBF16:
    case WeightFormat::kF32:
      return GemvWide<G>(job, t0);
  }
}

void GemvTilesAvx2(const TileJob& job) {
  // Tiles per call within the 16 ymm registers: 4 (8 accumulators), FP4 2 (its block
  // partials double them).
  const int64_t per = job.w->format == WeightFormat::kFP4 ? 2 : 4;
  int64_t t = job.tile_begin;
  while (t < job.tile_end) {
    // Never across a group: the tiles of one call share the group's step stride.
    const int64_t group_end = (t / kGroupTiles + 1) * kGroupTiles;
    int64_t n = (group_end < job.tile_end ? group_end : job.tile_end) - t;
    if (n > per) n = per;
    switch (n) {
      case 4:
        GemvGroupAvx2<4>(job, t);
        break;
      case 3:
        GemvGroupAvx2<3>(job, t);
        break;
      case 2:
        GemvGroupAvx2<2>(job, t);
        break;
      default:
        GemvGroupAvx2<1>(job, t);
        break;
    }
    t += n;
  }
}

}  // namespace

// One token streams (GemvTilesAvx2); more convert a tile once, then run blocks of up to 6
// tokens over it (12 accumulators; FP4's block partials double that, and spill).
void RunTilesAvx2(const TileJob& job) {
  if (job.tokens == 1) {
    GemvTilesAvx2(job);
    return;
  }
  const int64_t in = job.w->in;
  float* tile =
      ScratchFloats(static_cast<size_t>(in * kTileRows + (in / kFp4Block + 1) * kTileRows));
  float* scale = tile + in * kTileRows;
  for (int64_t t = job.tile_begin; t < job.tile_end; ++t) {
    ConvertTile(*job.w, t, tile, scale);
    int64_t tok = 0;
    for (; tok + 6 <= job.tokens; tok += 6) TokenBlock<6>(job, t, tile, scale, tok);
    switch (job.tokens - tok) {
      case 5:
        TokenBlock<5>(job, t, tile, scale, tok);
        break;
      case 4:
        TokenBlock<4>(job, t, tile, scale, tok);
        break;
      case 3:
        TokenBlock<3>(job, t, tile, scale, tok);
        break;
      case 2:
        TokenBlock<2>(job, t, tile, scale, tok);
        break;
      case 1:
        TokenBlock<1>(job, t, tile, scale, tok);
        break;
      default:
        break;
    }
  }
}

}  // namespace v4agent::engine::kernels

#if defined(__clang__)
#pragma clang attribute pop
#endif
