// AVX2 tile kernels of packed_matmul.h, for CPUs without AVX-512: a tile's 16 rows in two
// 8-lane halves, the same conversions and the same per-row order of fused multiply-adds as
// the AVX-512 and scalar kernels (bit-identical results). Like the AVX-512 file, it
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

}  // namespace

// One path for every token count: a tile converted once, then blocks of up to 6 tokens (12
// accumulators; FP4's block partials double that, and spill). For one token the conversion
// is not reused, which AVX2 machines accept.
void RunTilesAvx2(const TileJob& job) {
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
