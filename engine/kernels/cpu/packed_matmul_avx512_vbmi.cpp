// The one-token FP8 GEMV for AVX-512 CPUs with VBMI and GFNI (Isa::kAvx512Vbmi). FP8 decode is
// bound by the conversion, not by memory, on such CPUs with the plain AVX-512 kernel (about
// 19 GB/s per thread on a matrix in L2 on the Intel VM of docs/benchmarks.md, against 14 GB/s
// of memory bandwidth): here one GF2P8AFFINEQB and two VPERMBs turn 32 e4m3 bytes into the
// same floats as Fp8Raw, where the plain kernel spends nine shifts and masks per 64 bytes.
// Compiled for VBMI and GFNI whatever the build's -march (the pragma below) and run only where
// DetectIsa() found them; nothing from the standard library is instantiated here (see
// packed_matmul_avx512.cpp).
#if defined(__clang__)
#pragma clang attribute push(                                                               \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,bmi2,avx512vbmi,gfni"))), \
    apply_to = function)
#else
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma,bmi2,avx512vbmi,gfni")
#endif
#if !defined(__clang__)
// GCC 12 warns inside its own AVX-512 headers (_mm512_undefined_*): not our code.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <immintrin.h>

#include <cstdint>

#include "engine/kernels/cpu/packed_matmul.h"
#include "engine/kernels/cpu/packed_matmul_avx512_common.h"

namespace v4agent::engine::kernels {
namespace {

// The 8x8 bit matrix of GF2P8AFFINEQB that sets bit i of each output byte to bit src[i] of
// the input byte (-1: zero). The instruction takes output bit i from the matrix's byte 7 - i.
constexpr uint64_t BitMatrix(int s0, int s1, int s2, int s3, int s4, int s5, int s6, int s7) {
  const int src[8] = {s0, s1, s2, s3, s4, s5, s6, s7};
  uint64_t m = 0;
  for (int i = 0; i < 8; ++i) {
    if (src[i] >= 0) m |= (uint64_t{1} << src[i]) << (8 * (7 - i));
  }
  return m;
}

// Fp8Raw's float for e4m3 byte b is sign << 31 | (b & 0x7F) << 20: its byte 3 is
// sign 0 0 0 0 b6 b5 b4 and its byte 2 is b3 b2 b1 b0 0 0 0 0, both bit maps of b.
constexpr uint64_t kByte3 = BitMatrix(4, 5, 6, -1, -1, -1, -1, 7);
constexpr uint64_t kByte2 = BitMatrix(-1, -1, -1, -1, 0, 1, 2, 3);

// VPERMB indices that build tile a's 16 floats (a = 0, 1 of the two tiles in a 32-byte half
// step) from the affine's output: byte 3 of lane j from byte 16a + j (the low 256 bits hold
// byte 3 of each weight), byte 2 from byte 32 + 16a + j (the high 256 bits hold byte 2);
// bytes 0 and 1 are zeroed by the mask.
struct PlaceIndices {
  alignas(64) uint8_t tile[2][64];
};
constexpr PlaceIndices MakePlaceIndices() {
  PlaceIndices p{};
  for (int a = 0; a < 2; ++a) {
    for (int j = 0; j < kTileRows; ++j) {
      p.tile[a][4 * j + 2] = static_cast<uint8_t>(32 + 16 * a + j);
      p.tile[a][4 * j + 3] = static_cast<uint8_t>(16 * a + j);
    }
  }
  return p;
}
alignas(64) constexpr PlaceIndices kPlace = MakePlaceIndices();
constexpr __mmask64 kHighBytes = 0xCCCCCCCCCCCCCCCCull;  // bytes 2 and 3 of every lane

struct Converter {
  __m512i matrix, place0, place1;
  Converter()
      : matrix(_mm512_set_epi64(kByte2, kByte2, kByte2, kByte2, kByte3, kByte3, kByte3, kByte3)),
        place0(_mm512_load_si512(kPlace.tile[0])),
        place1(_mm512_load_si512(kPlace.tile[1])) {}
  // The two tiles whose 32 bytes start at p, as Fp8Raw would convert them.
  __attribute__((always_inline)) void Convert(const uint8_t* p, __m512* w0, __m512* w1) const {
    const __m512i v =
        _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    const __m512i bytes = _mm512_gf2p8affine_epi64_epi8(v, matrix, 0);
    *w0 = _mm512_castsi512_ps(_mm512_maskz_permutexvar_epi8(kHighBytes, place0, bytes));
    *w1 = _mm512_castsi512_ps(_mm512_maskz_permutexvar_epi8(kHighBytes, place1, bytes));
  }
};

// One step (one k) of a group: 8 tiles, 128 bytes, times xk (exact case: x times the
// multiplier), or with the weights times m first (inexact case), as GemvFp8Quads does.
template <bool kScaleWeights>
__attribute__((always_inline)) inline void GroupStep(const Converter& cv, const uint8_t* step,
                                                     __m512 xk, __m512 m,
                                                     __m512 (&acc)[kGroupTiles]) {
#pragma GCC unroll 4
  for (int h = 0; h < kGroupTiles / 2; ++h) {
    __m512 w0, w1;
    cv.Convert(step + 2 * kTileRows * h, &w0, &w1);
    if constexpr (kScaleWeights) {
      w0 = _mm512_mul_ps(w0, m);
      w1 = _mm512_mul_ps(w1, m);
    }
    acc[2 * h] = _mm512_fmadd_ps(w0, xk, acc[2 * h]);
    acc[2 * h + 1] = _mm512_fmadd_ps(w1, xk, acc[2 * h + 1]);
  }
}

// S whole groups from t0 (group s at t0 + 8 s), one token; accumulator [s][g] holds tile
// t0 + 8 s + g in row order. Every row takes one fma per k in increasing k with the operands of
// GemvFp8Quads, so the bits are the same.
template <int S>
void GemvFp8Vbmi(const TileJob& job, int64_t t0, const ManyContext& ctx) {
  constexpr int G = kGroupTiles;
  const PackedLinear& w = *job.w;
  const Converter cv;
  const uint8_t* base[S];
  float* xs[S];
#pragma GCC unroll 2
  for (int s = 0; s < S; ++s) {
    base[s] = w.TileData(t0 + s * G);
    xs[s] = s == 0 ? ctx.xs : ctx.xs_second;
  }
  const float* const x[1] = {job.x};
  __m512 acc[S][G];
#pragma GCC unroll 2
  for (int s = 0; s < S; ++s) {
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) acc[s][g] = _mm512_setzero_ps();
  }
  const __m512 one = _mm512_set1_ps(1.0f);
  const int64_t stride = w.StepStride(t0);
  Fp8Blocks<S, 1>(
      job, t0, ctx, x, xs,
      [&](int s, int64_t k, const float* xs_k) __attribute__((always_inline)) {
        const uint8_t* step = base[s] + k * stride;
        Prefetch(step, stride);
        GroupStep<false>(cv, step, _mm512_set1_ps(*xs_k), one, acc[s]);
      },
      [&](int s, int64_t k, __m512 m) __attribute__((always_inline)) {
        GroupStep<true>(cv, base[s] + k * stride, _mm512_set1_ps(x[0][k]), m, acc[s]);
      });
#pragma GCC unroll 2
  for (int s = 0; s < S; ++s) {
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) Store(job, t0 + s * G + g, 0, acc[s][g]);
  }
}

}  // namespace

void GemvFp8GroupsVbmi(const TileJob& job, int64_t t0, int streams, const ManyContext& ctx) {
  if (streams == 2) {
    GemvFp8Vbmi<2>(job, t0, ctx);
  } else {
    GemvFp8Vbmi<1>(job, t0, ctx);
  }
}

}  // namespace v4agent::engine::kernels

#if defined(__clang__)
#pragma clang attribute pop
#endif
