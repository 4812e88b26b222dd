// AVX-512 tile kernels of packed_matmul.h. Compiled for AVX-512 whatever the build's -march
// (the pragma below), run only where DetectIsa() found it. Nothing from the standard
// library is instantiated here: an inline template compiled with these flags could be picked
// by the linker for code that runs on a CPU without them. The loops over tiles and tokens are
// unrolled by pragma: their accumulators must live in registers, which GCC does not do for
// arrays indexed in a loop it keeps.
#if defined(__clang__)
#pragma clang attribute push( \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,bmi2"))), apply_to = function)
#else
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma,bmi2")
#endif
#if !defined(__clang__)
// GCC 12 warns inside its own AVX-512 headers (_mm512_undefined_*): not our code.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <immintrin.h>

#include <cfloat>
#include <cstdint>

#include "engine/kernels/cpu/packed_matmul.h"
#include "engine/kernels/cpu/packed_matmul_avx512_common.h"
#include "engine/kernels/cpu/scratch.h"
#include "engine/quant/codecs.h"

namespace v4agent::engine::kernels {
namespace {

// Up to this many tokens stream the weights with in-register conversion (decode of a batch of
// sequences); more convert each tile to fp32 once (prefill).
constexpr int64_t kGemvMaxTokens = 8;
// Tokens per pass of the few-token GEMV (their accumulators fill the registers).
constexpr int64_t kManyTokens = 4;

// 16 e4m3 bytes as floats 2^-120 times their values (exact, subnormals included; the
// multiplier restores 2^120 and the block scale).
inline __m512 Fp8Raw(const uint8_t* p) {
  const __m512i sx = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  // Sign-extended: bits 27-31 repeat the sign, bits 20-26 are exponent and mantissa.
  return _mm512_castsi512_ps(_mm512_and_si512(_mm512_slli_epi32(sx, 20),
                                              _mm512_set1_epi32(static_cast<int>(0x87F00000u))));
}

// 16 FP4 bytes (one k pair of a tile's 16 rows) as the e2m1 values of the even and the odd k.
inline void Fp4Pair(const uint8_t* p, __m512 table, __m512* even, __m512* odd) {
  const __m512i codes = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  *even = _mm512_permutexvar_ps(codes, table);
  *odd = _mm512_permutexvar_ps(_mm512_srli_epi32(codes, 4), table);
}

// A 64-byte BF16 pair vector (row j's k = 2p in the low half of lane j, 2p + 1 in the high).
inline __m512 Bf16Even(__m512i v) { return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)); }
inline __m512 Bf16Odd(__m512i v) {
  return _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))));
}

// ---- one token or a few (decode of a batch of sequences): G tiles x T tokens, weights
// converted in registers once and used by every token, one fma per weight in increasing k, so
// a sequence's row is the same bits alone (T = 1) or in a batch ----

// Max |x| and min nonzero |x| of n floats, compared as unsigned integers of their absolute
// values' bits (the same order as for non-negative floats). A NaN compares above infinity, so it
// always lands in `hi` and fails the exactness test, as it must; `lo` starts at FLT_MAX and
// ignores infinities and NaNs, as a float comparison would.
inline void AbsRange(const float* x, int64_t n, float* hi, float* lo) {
  const __m512i mask = _mm512_set1_epi32(0x7FFFFFFF);
  const __m512i none = _mm512_castps_si512(_mm512_set1_ps(FLT_MAX));
  __m512i vhi = _mm512_setzero_si512(), vlo = none;
  for (int64_t k = 0; k < n; k += 16) {
    const __mmask16 m = n - k >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (n - k)) - 1);
    const __m512i a = _mm512_and_si512(_mm512_maskz_loadu_epi32(m, x + k), mask);
    vhi = _mm512_max_epu32(vhi, a);
    // Zeros (and the masked-off tail) stay out of the minimum.
    vlo = _mm512_mask_min_epu32(vlo, _mm512_test_epi32_mask(a, a), vlo, a);
  }
  const uint32_t h = static_cast<uint32_t>(_mm512_reduce_max_epu32(vhi));
  const uint32_t l = static_cast<uint32_t>(_mm512_reduce_min_epu32(vlo));
  __builtin_memcpy(hi, &h, 4);
  __builtin_memcpy(lo, &l, 4);
}

// The context of an FP8 product for all of job's tokens (empty for other formats), in this
// thread's scratch. Each thread's range recomputes it (a pass over x, which is in cache).
ManyContext FillContext(const TileJob& job) {
  const PackedLinear& w = *job.w;
  if (w.format != WeightFormat::kFP8) return {nullptr, nullptr, nullptr, nullptr};
  const int64_t kbs = w.k_blocks();
  float* scratch =
      ScratchFloats(static_cast<size_t>((kManyTokens + 1) * kFp8Block + 2 * job.tokens * kbs));
  float* amax = scratch + (kManyTokens + 1) * kFp8Block;
  float* amin = amax + job.tokens * kbs;
  for (int64_t i = 0; i < job.tokens; ++i) {
    const float* xi = job.x + i * job.x_stride;
    for (int64_t kb = 0; kb < kbs; ++kb) {
      const int64_t k_end = (kb + 1) * kFp8Block < w.in ? (kb + 1) * kFp8Block : w.in;
      AbsRange(xi + kb * kFp8Block, k_end - kb * kFp8Block, &amax[i * kbs + kb],
               &amin[i * kbs + kb]);
    }
  }
  return {amax, amin, scratch, scratch + kManyTokens * kFp8Block};
}

template <int G, int T>
void GemvManyFp8(const TileJob& job, int64_t t0, const ManyContext& ctx) {
  const PackedLinear& w = *job.w;
  const int64_t in = w.in, kbs = w.k_blocks();
  const float* mult = reinterpret_cast<const float*>(w.scales.data());
  // The G tiles lie in one group: tile g's step is kTileRows bytes after tile g - 1's.
  const uint8_t* const base = w.TileData(t0);
  const float* x[T];
  __m512 acc[G][T];
#pragma GCC unroll 16
  for (int g = 0; g < G; ++g) {
#pragma GCC unroll 8
    for (int i = 0; i < T; ++i) acc[g][i] = _mm512_setzero_ps();
  }
#pragma GCC unroll 8
  for (int i = 0; i < T; ++i) x[i] = job.x + i * job.x_stride;
  const int64_t stride = w.StepStride(t0);
  for (int64_t kb = 0; kb < kbs; ++kb) {
    const int64_t k_begin = kb * kFp8Block;
    const int64_t k_end = k_begin + kFp8Block < in ? k_begin + kFp8Block : in;
    const float m0 = mult[t0 * kbs + kb];
    if (ScaleFp8Block<T>(ctx, x, kbs, kb, k_begin, k_end, m0, ctx.xs)) {
      const float* xs = ctx.xs;
      for (int64_t k = k_begin; k < k_end; ++k) {
        const uint8_t* step = base + k * stride;
        Prefetch(step, stride);
#pragma GCC unroll 16
        for (int g = 0; g < G; ++g) {
          const __m512 wv = Fp8Raw(step + g * kTileRows);
#pragma GCC unroll 8
          for (int i = 0; i < T; ++i) {
            acc[g][i] =
                _mm512_fmadd_ps(wv, _mm512_set1_ps(xs[i * kFp8Block + (k - k_begin)]), acc[g][i]);
          }
        }
      }
    } else {
      const __m512 m = _mm512_set1_ps(m0);
      for (int64_t k = k_begin; k < k_end; ++k) {
#pragma GCC unroll 16
        for (int g = 0; g < G; ++g) {
          const __m512 wv = _mm512_mul_ps(Fp8Raw(base + k * stride + g * kTileRows), m);
#pragma GCC unroll 8
          for (int i = 0; i < T; ++i) {
            acc[g][i] = _mm512_fmadd_ps(wv, _mm512_set1_ps(x[i][k]), acc[g][i]);
          }
        }
      }
    }
  }
#pragma GCC unroll 16
  for (int g = 0; g < G; ++g) {
#pragma GCC unroll 8
    for (int i = 0; i < T; ++i) Store(job, t0 + g, i, acc[g][i]);
  }
}

// 64 bytes of an FP8 step (4 tiles x 16 rows) as in Fp8Raw, a byte position of every 32-bit
// lane at a time: q[b] holds, in lane i, byte 4i + b (row 4 (i % 4) + b of tile i / 4). Two
// 16-bit arithmetic shifts put each byte's sign above it; nine operations per 64 weights
// against twelve for four sign extensions.
inline void Fp8Quads(const uint8_t* p, __m512 q[4]) {
  const __m512i v = _mm512_loadu_si512(p);
  const __m512i mask = _mm512_set1_epi32(static_cast<int>(0x87F00000u));
  const __m512i odd = _mm512_srai_epi16(v, 4);                         // bytes 1 and 3
  const __m512i even = _mm512_srai_epi16(_mm512_slli_epi16(v, 8), 4);  // bytes 0 and 2
  q[0] = _mm512_castsi512_ps(_mm512_and_si512(_mm512_slli_epi32(even, 16), mask));
  q[1] = _mm512_castsi512_ps(_mm512_and_si512(_mm512_slli_epi32(odd, 16), mask));
  q[2] = _mm512_castsi512_ps(_mm512_and_si512(even, mask));
  q[3] = _mm512_castsi512_ps(_mm512_and_si512(odd, mask));
}

// One step (one k) of H quads for T tokens, x already times the block's multiplier (the exact
// case of GemvFp8Quads): xs[i * kFp8Block] is token i's.
template <int H, int T>
__attribute__((always_inline)) inline void QuadsExactStep(const uint8_t* step, int64_t stride,
                                                          const float* xs, __m512 (&acc)[H][4][T]) {
  Prefetch(step, stride);
#pragma GCC unroll 8
  for (int h = 0; h < H; ++h) {
    __m512 q[4];
    Fp8Quads(step + h * 64, q);
#pragma GCC unroll 8
    for (int i = 0; i < T; ++i) {
      const __m512 xk = _mm512_set1_ps(xs[i * kFp8Block]);
#pragma GCC unroll 4
      for (int b = 0; b < 4; ++b) acc[h][b][i] = _mm512_fmadd_ps(q[b], xk, acc[h][b][i]);
    }
  }
}

// T tokens over G = 4 or 8 tiles of FP8, converted by Fp8Quads; with S = 2 (one token, G = 8)
// two whole groups at once, t0's and the next, read as two streams side by side (a thread
// reads memory faster from two streams than from one). Accumulator [s][h][b][i] holds, in
// lane l, row 4 (l % 4) + b of tile 4 h + l / 4 of group s for token i; every row still takes
// one fma per k in increasing k with the operands of GemvManyFp8<G, T>, so the bits are the
// same.
template <int G, int T, int S = 1>
void GemvFp8Quads(const TileJob& job, int64_t t0, const ManyContext& ctx) {
  static_assert(G % 4 == 0);
  static_assert(S == 1 || (S == 2 && T == 1 && G == kGroupTiles));
  constexpr int H = G / 4;
  const PackedLinear& w = *job.w;
  const uint8_t* base[S];
  float* xs[S];
#pragma GCC unroll 2
  for (int s = 0; s < S; ++s) {
    base[s] = w.TileData(t0 + s * kGroupTiles);
    xs[s] = s == 0 ? ctx.xs : ctx.xs_second;
  }
  const float* x[T];
#pragma GCC unroll 8
  for (int i = 0; i < T; ++i) x[i] = job.x + i * job.x_stride;
  __m512 acc[S][H][4][T];
#pragma GCC unroll 2
  for (int s = 0; s < S; ++s) {
#pragma GCC unroll 8
    for (int h = 0; h < H; ++h) {
#pragma GCC unroll 4
      for (int b = 0; b < 4; ++b) {
#pragma GCC unroll 8
        for (int i = 0; i < T; ++i) acc[s][h][b][i] = _mm512_setzero_ps();
      }
    }
  }
  const int64_t stride = w.StepStride(t0);
  Fp8Blocks<S, T>(
      job, t0, ctx, x, xs,
      [&](int s, int64_t k, const float* xs_k) __attribute__((always_inline)) {
        QuadsExactStep<H, T>(base[s] + k * stride, stride, xs_k, acc[s]);
      },
      [&](int s, int64_t k, __m512 m) __attribute__((always_inline)) {
#pragma GCC unroll 8
        for (int h = 0; h < H; ++h) {
          __m512 q[4];
          Fp8Quads(base[s] + k * stride + h * 64, q);
#pragma GCC unroll 4
          for (int b = 0; b < 4; ++b) q[b] = _mm512_mul_ps(q[b], m);
#pragma GCC unroll 8
          for (int i = 0; i < T; ++i) {
            const __m512 xk = _mm512_set1_ps(x[i][k]);
#pragma GCC unroll 4
            for (int b = 0; b < 4; ++b) {
              acc[s][h][b][i] = _mm512_fmadd_ps(q[b], xk, acc[s][h][b][i]);
            }
          }
        }
      });
  // Back to row order, once per group.
  alignas(64) float lanes[4][kTileRows];
  alignas(64) float rows[4 * kTileRows];
#pragma GCC unroll 2
  for (int s = 0; s < S; ++s) {
    for (int h = 0; h < H; ++h) {
      for (int i = 0; i < T; ++i) {
        for (int b = 0; b < 4; ++b) _mm512_store_ps(lanes[b], acc[s][h][b][i]);
        for (int l = 0; l < kTileRows; ++l) {
          for (int b = 0; b < 4; ++b) rows[4 * l + b] = lanes[b][l];
        }
        for (int a = 0; a < 4; ++a) {
          Store(job, t0 + s * kGroupTiles + 4 * h + a, i, _mm512_load_ps(rows + kTileRows * a));
        }
      }
    }
  }
}

template <int G, int T>
void GemvManyFp4(const TileJob& job, int64_t t0) {
  const PackedLinear& w = *job.w;
  const int64_t in = w.in, blocks = in / kFp4Block;
  const __m512 table = _mm512_load_ps(quant::kE2m1Table);
  // The G tiles lie in one group: tile g's step (and scales) are kTileRows bytes after tile
  // g - 1's.
  const uint8_t* const base = w.TileData(t0);
  const uint8_t* const sc = w.TileScales(t0);
  const float* x[T];
  __m512 acc[G][T];
#pragma GCC unroll 16
  for (int g = 0; g < G; ++g) {
#pragma GCC unroll 8
    for (int i = 0; i < T; ++i) acc[g][i] = _mm512_setzero_ps();
  }
#pragma GCC unroll 8
  for (int i = 0; i < T; ++i) x[i] = job.x + i * job.x_stride;
  const int64_t stride = w.StepStride(t0), sstride = w.ScaleStride(t0);
  for (int64_t b = 0; b < blocks; ++b) {
    __m512 part[G][T];
#pragma GCC unroll 16
    for (int g = 0; g < G; ++g) {
#pragma GCC unroll 8
      for (int i = 0; i < T; ++i) part[g][i] = _mm512_setzero_ps();
    }
    for (int64_t p = b * (kFp4Block / 2); p < (b + 1) * (kFp4Block / 2); ++p) {
      const uint8_t* step = base + p * stride;
      Prefetch(step, stride);
#pragma GCC unroll 16
      for (int g = 0; g < G; ++g) {
        __m512 even, odd;
        Fp4Pair(step + g * kTileRows, table, &even, &odd);
#pragma GCC unroll 8
        for (int i = 0; i < T; ++i) {
          part[g][i] = _mm512_fmadd_ps(even, _mm512_set1_ps(x[i][2 * p]), part[g][i]);
          part[g][i] = _mm512_fmadd_ps(odd, _mm512_set1_ps(x[i][2 * p + 1]), part[g][i]);
        }
      }
    }
#pragma GCC unroll 16
    for (int g = 0; g < G; ++g) {
      const __m512 s = Ue8m0(sc + b * sstride + g * kTileRows);
#pragma GCC unroll 8
      for (int i = 0; i < T; ++i) acc[g][i] = _mm512_fmadd_ps(part[g][i], s, acc[g][i]);
    }
  }
#pragma GCC unroll 16
  for (int g = 0; g < G; ++g) {
#pragma GCC unroll 8
    for (int i = 0; i < T; ++i) Store(job, t0 + g, i, acc[g][i]);
  }
}

// One token over two whole groups of FP4, t0's and the next, as two streams (see
// GemvFp8Quads), with one instruction fewer per 32 weights than Fp4Pair's zero-extension: a
// step's 64-byte half (4 tiles' 16 rows) is read by four loads, at byte offsets o = 0..3, whose
// 32-bit lane j then holds byte 4j + o at its low end. `vpermps` reads only an index's low four
// bits, so lane j of load o is already the even k's code of that byte, and its shift right by 4
// the odd k's: per 128 weights 4 loads, 4 shifts, 8 permutes and 8 fmas instead of 4 zero
// extensions more (on this generation of Xeon the fmas share ports with the permutes and the
// shifts, so the instructions per weight are what bounds this kernel in the cache). Lane j of
// offset o is row 4 (j % 4) + o of the half's tile j / 4 at every step and in the scales, so
// each row takes its fmas in the order of GemvManyFp4<8, 1>: the same bits. The 32 partial
// sums fit in registers beside the weights; the accumulators live in memory, one fma per
// 32-column block.
void GemvFp4Pair(const TileJob& job, int64_t t0) {
  constexpr int S = 2, kHalves = 2, kOffsets = 4;
  constexpr int64_t kHalf = 64;
  const PackedLinear& w = *job.w;
  const int64_t blocks = w.in / kFp4Block, last_pair = w.in / 2 - 1;
  const __m512 table = _mm512_load_ps(quant::kE2m1Table);
  const __m512i low_byte = _mm512_set1_epi32(0xFF);
  const uint8_t* base[S];
  const uint8_t* sc[S];
#pragma GCC unroll 2
  for (int s = 0; s < S; ++s) {
    base[s] = w.TileData(t0 + s * kGroupTiles);
    sc[s] = w.TileScales(t0 + s * kGroupTiles);
  }
  alignas(64) float acc[S][kHalves][kOffsets][kTileRows];
#pragma GCC unroll 2
  for (int s = 0; s < S; ++s) {
#pragma GCC unroll 2
    for (int c = 0; c < kHalves; ++c) {
#pragma GCC unroll 4
      for (int o = 0; o < kOffsets; ++o) _mm512_store_ps(acc[s][c][o], _mm512_setzero_ps());
    }
  }
  // The 64 bytes at p + o; at the end of a stream only those inside it (the loads past a half
  // read up to 3 bytes of what follows, which may be the end of the buffer).
  auto load = [](const uint8_t* p, int o, bool end) {
    if (end && o > 0) {
      return _mm512_maskz_loadu_epi8((~uint64_t{0}) >> o, p + o);
    }
    return _mm512_loadu_si512(p + o);
  };
  const float* x = job.x;
  const int64_t stride = w.StepStride(t0), sstride = w.ScaleStride(t0);
  for (int64_t b = 0; b < blocks; ++b) {
    __m512 part[S][kHalves][kOffsets];
#pragma GCC unroll 2
    for (int s = 0; s < S; ++s) {
#pragma GCC unroll 2
      for (int c = 0; c < kHalves; ++c) {
#pragma GCC unroll 4
        for (int o = 0; o < kOffsets; ++o) part[s][c][o] = _mm512_setzero_ps();
      }
    }
    // The last step apart, so that only it pays for the masks.
    auto step_at = [&]<bool kEnd>(int64_t p) __attribute__((always_inline)) {
      const __m512 xe = _mm512_set1_ps(x[2 * p]), xo = _mm512_set1_ps(x[2 * p + 1]);
#pragma GCC unroll 2
      for (int s = 0; s < S; ++s) {
        const uint8_t* step = base[s] + p * stride;
        Prefetch(step, stride);
#pragma GCC unroll 2
        for (int c = 0; c < kHalves; ++c) {
#pragma GCC unroll 4
          for (int o = 0; o < kOffsets; ++o) {
            const __m512i codes = load(step + c * kHalf, o, kEnd && c == kHalves - 1);
            const __m512 even = _mm512_permutexvar_ps(codes, table);
            const __m512 odd = _mm512_permutexvar_ps(_mm512_srli_epi32(codes, 4), table);
            part[s][c][o] = _mm512_fmadd_ps(even, xe, part[s][c][o]);
            part[s][c][o] = _mm512_fmadd_ps(odd, xo, part[s][c][o]);
          }
        }
      }
    };
    for (int64_t p = b * (kFp4Block / 2); p < (b + 1) * (kFp4Block / 2); ++p) {
      if (p != last_pair) {
        step_at.template operator()<false>(p);
      } else {
        step_at.template operator()<true>(p);
      }
    }
    const bool end = b == blocks - 1;
#pragma GCC unroll 2
    for (int s = 0; s < S; ++s) {
#pragma GCC unroll 2
      for (int c = 0; c < kHalves; ++c) {
#pragma GCC unroll 4
        for (int o = 0; o < kOffsets; ++o) {
          // The scale bytes lie like a step's code bytes: lane j's low byte is the same row's.
          const __m512i e = _mm512_and_si512(
              load(sc[s] + b * sstride + c * kHalf, o, end && c == kHalves - 1), low_byte);
          const __m512 scale = _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
          _mm512_store_ps(acc[s][c][o],
                          _mm512_fmadd_ps(part[s][c][o], scale, _mm512_load_ps(acc[s][c][o])));
        }
      }
    }
  }
  // Back to tile order: row 4 q + o of the half's tile u is lane 4 u + q of offset o.
  alignas(64) float rows[kTileRows];
#pragma GCC unroll 1
  for (int s = 0; s < S; ++s) {
#pragma GCC unroll 1
    for (int c = 0; c < kHalves; ++c) {
#pragma GCC unroll 1
      for (int u = 0; u < 4; ++u) {
        for (int q = 0; q < 4; ++q) {
          for (int o = 0; o < kOffsets; ++o) rows[4 * q + o] = acc[s][c][o][4 * u + q];
        }
        Store(job, t0 + s * kGroupTiles + c * 4 + u, 0, _mm512_load_ps(rows));
      }
    }
  }
}

// With S = 2 (one token, G = 8): two whole groups at once, t0's and the next, as two streams
// (see GemvFp8Quads); each row's sums are the same either way.
template <int G, int T, int S = 1>
void GemvManyBf16(const TileJob& job, int64_t t0) {
  static_assert(S == 1 || (S == 2 && T == 1 && G == kGroupTiles));
  const PackedLinear& w = *job.w;
  const int64_t in = w.in;
  // The G tiles lie in one group: tile g's step is 64 bytes after tile g - 1's.
  constexpr int64_t kStep = kTileRows * 4;
  const uint8_t* base[S];
#pragma GCC unroll 2
  for (int s = 0; s < S; ++s) base[s] = w.TileData(t0 + s * kGroupTiles);
  const float* x[T];
  __m512 acc[S][G][T];
#pragma GCC unroll 2
  for (int s = 0; s < S; ++s) {
#pragma GCC unroll 16
    for (int g = 0; g < G; ++g) {
#pragma GCC unroll 8
      for (int i = 0; i < T; ++i) acc[s][g][i] = _mm512_setzero_ps();
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < T; ++i) x[i] = job.x + i * job.x_stride;
  const int64_t stride = w.StepStride(t0);
  int64_t p = 0;
  for (; 2 * p + 1 < in; ++p) {
#pragma GCC unroll 2
    for (int s = 0; s < S; ++s) {
      const uint8_t* step = base[s] + p * stride;
      Prefetch(step, stride);
#pragma GCC unroll 16
      for (int g = 0; g < G; ++g) {
        const __m512i v = _mm512_load_si512(step + g * kStep);
        const __m512 even = Bf16Even(v), odd = Bf16Odd(v);
#pragma GCC unroll 8
        for (int i = 0; i < T; ++i) {
          acc[s][g][i] = _mm512_fmadd_ps(even, _mm512_set1_ps(x[i][2 * p]), acc[s][g][i]);
          acc[s][g][i] = _mm512_fmadd_ps(odd, _mm512_set1_ps(x[i][2 * p + 1]), acc[s][g][i]);
        }
      }
    }
  }
  if (2 * p < in) {  // odd width: the last pair holds one column
#pragma GCC unroll 2
    for (int s = 0; s < S; ++s) {
#pragma GCC unroll 16
      for (int g = 0; g < G; ++g) {
        const __m512 even = Bf16Even(_mm512_load_si512(base[s] + p * stride + g * kStep));
#pragma GCC unroll 8
        for (int i = 0; i < T; ++i) {
          acc[s][g][i] = _mm512_fmadd_ps(even, _mm512_set1_ps(x[i][2 * p]), acc[s][g][i]);
        }
      }
    }
  }
#pragma GCC unroll 2
  for (int s = 0; s < S; ++s) {
#pragma GCC unroll 16
    for (int g = 0; g < G; ++g) {
#pragma GCC unroll 8
      for (int i = 0; i < T; ++i) Store(job, t0 + s * kGroupTiles + g, i, acc[s][g][i]);
    }
  }
}

template <int G, int T>
void GemvManyF32(const TileJob& job, int64_t t0) {
  const PackedLinear& w = *job.w;
  const int64_t in = w.in;
  const float* base[G];
  const float* x[T];
  __m512 acc[G][T];
#pragma GCC unroll 16
  for (int g = 0; g < G; ++g) {
    base[g] = reinterpret_cast<const float*>(w.TileData(t0 + g));
#pragma GCC unroll 8
    for (int i = 0; i < T; ++i) acc[g][i] = _mm512_setzero_ps();
  }
#pragma GCC unroll 8
  for (int i = 0; i < T; ++i) x[i] = job.x + i * job.x_stride;
  const int64_t stride = w.StepStride(t0) / 4;
  for (int64_t k = 0; k < in; ++k) {
#pragma GCC unroll 16
    for (int g = 0; g < G; ++g) {
      const __m512 wv = _mm512_load_ps(base[g] + k * stride);
#pragma GCC unroll 8
      for (int i = 0; i < T; ++i) {
        acc[g][i] = _mm512_fmadd_ps(wv, _mm512_set1_ps(x[i][k]), acc[g][i]);
      }
    }
  }
#pragma GCC unroll 16
  for (int g = 0; g < G; ++g) {
#pragma GCC unroll 8
    for (int i = 0; i < T; ++i) Store(job, t0 + g, i, acc[g][i]);
  }
}

// G tiles for T tokens, G * T accumulators (FP4 twice that with its partial sums) within the
// 32 registers beside the converted weights.
template <int T>
void GemvMany(const TileJob& job, int64_t t0, int64_t n, const ManyContext& ctx) {
  constexpr int kG = T <= 2 ? 4 : 2;
  // FP8 converts whole 64-byte steps (4 tiles): 4 T accumulators, 16 at most.
  if (job.w->format == WeightFormat::kFP8 && n == 4) return GemvFp8Quads<4, T>(job, t0, ctx);
  for (; n >= kG; n -= kG, t0 += kG) {
    switch (job.w->format) {
      case WeightFormat::kFP8:
        GemvManyFp8<kG, T>(job, t0, ctx);
        break;
      case WeightFormat::kFP4:
        GemvManyFp4<kG, T>(job, t0);
        break;
      case WeightFormat::kBF16:
        GemvManyBf16<kG, T>(job, t0);
        break;
      case WeightFormat::kF32:
        GemvManyF32<kG, T>(job, t0);
        break;
    }
  }
  for (; n > 0; --n, ++t0) {
    switch (job.w->format) {
      case WeightFormat::kFP8:
        GemvManyFp8<1, T>(job, t0, ctx);
        break;
      case WeightFormat::kFP4:
        GemvManyFp4<1, T>(job, t0);
        break;
      case WeightFormat::kBF16:
        GemvManyBf16<1, T>(job, t0);
        break;
      case WeightFormat::kF32:
        GemvManyF32<1, T>(job, t0);
        break;
    }
  }
}

template <int G>
void Gemv(const TileJob& job, int64_t t0, const ManyContext& ctx, bool vbmi) {
  switch (job.w->format) {
    case WeightFormat::kFP8:
      if constexpr (G == kGroupTiles) {
        if (vbmi) return GemvFp8GroupsVbmi(job, t0, 1, ctx);
      }
      if constexpr (G % 4 == 0) {
        return GemvFp8Quads<G, 1>(job, t0, ctx);
      } else {
        return GemvManyFp8<G, 1>(job, t0, ctx);
      }
    case WeightFormat::kFP4:
      return GemvManyFp4<G, 1>(job, t0);
    case WeightFormat::kBF16:
      return GemvManyBf16<G, 1>(job, t0);
    case WeightFormat::kF32:
      return GemvManyF32<G, 1>(job, t0);
  }
}

void GemvGroup(const TileJob& job, int64_t t, int64_t n, const ManyContext& ctx, bool vbmi) {
  switch (n) {
    case 8:
      Gemv<8>(job, t, ctx, vbmi);
      break;
    case 7:
      Gemv<7>(job, t, ctx, vbmi);
      break;
    case 6:
      Gemv<6>(job, t, ctx, vbmi);
      break;
    case 5:
      Gemv<5>(job, t, ctx, vbmi);
      break;
    case 4:
      Gemv<4>(job, t, ctx, vbmi);
      break;
    case 3:
      Gemv<3>(job, t, ctx, vbmi);
      break;
    case 2:
      Gemv<2>(job, t, ctx, vbmi);
      break;
    case 1:
      Gemv<1>(job, t, ctx, vbmi);
      break;
    default:
      break;
  }
}

// One token: groups of up to 8 tiles that never straddle a 128-row block (FP8's multiplier is
// per block).
void GemvTiles(const TileJob& job, bool vbmi) {
  const ManyContext ctx = FillContext(job);
  const bool two_streams = GemvTwoStreams();
  int64_t t = job.tile_begin;
  while (t < job.tile_end) {
    // Two whole groups as two streams (both full, so they share one step stride).
    if (two_streams && t % kGroupTiles == 0 && t + 2 * kGroupTiles <= job.tile_end) {
      switch (job.w->format) {
        case WeightFormat::kFP8:
          if (vbmi) {
            GemvFp8GroupsVbmi(job, t, 2, ctx);
          } else {
            GemvFp8Quads<kGroupTiles, 1, 2>(job, t, ctx);
          }
          break;
        case WeightFormat::kFP4:
          GemvFp4Pair(job, t);
          break;
        case WeightFormat::kBF16:
          GemvManyBf16<kGroupTiles, 1, 2>(job, t);
          break;
        case WeightFormat::kF32:
          GemvManyF32<kGroupTiles, 1>(job, t);
          GemvManyF32<kGroupTiles, 1>(job, t + kGroupTiles);
          break;
      }
      t += 2 * kGroupTiles;
      continue;
    }
    const int64_t block_end = (t / 8 + 1) * 8;
    const int64_t n = (block_end < job.tile_end ? block_end : job.tile_end) - t;
    GemvGroup(job, t, n, ctx, vbmi);
    t += n;
  }
}

// Tokens in chunks of up to kManyTokens over groups of up to 4 tiles within one 128-row
// block: a group's weights come from memory for the first chunk and from the cache after.
constexpr int64_t kManyGroup = 4;

void GemvManyTiles(const TileJob& job) {
  const int64_t kbs = job.w->k_blocks();
  const ManyContext ctx = FillContext(job);
  int64_t t = job.tile_begin;
  while (t < job.tile_end) {
    const int64_t block_end = (t / 8 + 1) * 8;
    int64_t n = (block_end < job.tile_end ? block_end : job.tile_end) - t;
    if (n > kManyGroup) n = kManyGroup;
    for (int64_t tok0 = 0; tok0 < job.tokens; tok0 += kManyTokens) {
      const int64_t nt = job.tokens - tok0 < kManyTokens ? job.tokens - tok0 : kManyTokens;
      TileJob part = job;
      part.x = job.x + tok0 * job.x_stride;
      part.y = job.y + tok0 * job.y_stride;
      part.tokens = nt;
      ManyContext c = ctx;
      if (c.amax != nullptr) {
        c.amax += tok0 * kbs;
        c.amin += tok0 * kbs;
      }
      switch (nt) {
        case 1:
          GemvMany<1>(part, t, n, c);
          break;
        case 2:
          GemvMany<2>(part, t, n, c);
          break;
        case 3:
          GemvMany<3>(part, t, n, c);
          break;
        default:
          GemvMany<4>(part, t, n, c);
          break;
      }
    }
    t += n;
  }
}

// ---- many tokens: a tile converted to fp32 once, then token blocks over it ----

// The tile's weights as [in][16] fp32, exactly the values the GEMV path multiplies; for FP4
// the e2m1 values only, and its block scales as [in / 32][16] fp32 into `scale`.
void ConvertTile(const PackedLinear& w, int64_t t, float* out, float* scale) {
  const int64_t in = w.in;
  const uint8_t* base = w.TileData(t);
  const int64_t stride = w.StepStride(t);
  switch (w.format) {
    case WeightFormat::kFP8: {
      const float* mult = reinterpret_cast<const float*>(w.scales.data()) + t * w.k_blocks();
      for (int64_t k = 0; k < in; ++k) {
        _mm512_store_ps(out + k * kTileRows, _mm512_mul_ps(Fp8Raw(base + k * stride),
                                                           _mm512_set1_ps(mult[k / kFp8Block])));
      }
      break;
    }
    case WeightFormat::kFP4: {
      const __m512 table = _mm512_load_ps(quant::kE2m1Table);
      const uint8_t* sc = w.TileScales(t);
      for (int64_t p = 0; p < in / 2; ++p) {
        __m512 even, odd;
        Fp4Pair(base + p * stride, table, &even, &odd);
        _mm512_store_ps(out + 2 * p * kTileRows, even);
        _mm512_store_ps(out + (2 * p + 1) * kTileRows, odd);
      }
      for (int64_t b = 0; b < in / kFp4Block; ++b) {
        _mm512_store_ps(scale + b * kTileRows, Ue8m0(sc + b * w.ScaleStride(t)));
      }
      break;
    }
    case WeightFormat::kBF16:
      for (int64_t p = 0; p < w.in_pairs(); ++p) {
        const __m512i v = _mm512_load_si512(base + p * stride);
        _mm512_store_ps(out + 2 * p * kTileRows, Bf16Even(v));
        if (2 * p + 1 < in) _mm512_store_ps(out + (2 * p + 1) * kTileRows, Bf16Odd(v));
      }
      break;
    case WeightFormat::kF32:
      for (int64_t k = 0; k < in; ++k) {
        _mm512_store_ps(out + k * kTileRows,
                        _mm512_load_ps(reinterpret_cast<const float*>(base + k * stride)));
      }
      break;
  }
}

// NT adjacent tiles (16 rows each) x T tokens of accumulators: each weight vector loaded
// serves T tokens and each broadcast activation NT tiles. Every output is still one fma per
// weight in increasing k, so the tile and token blocking change no bit (batch-invariant).
template <int NT, int T>
requires(NT == 1 || NT == 2) void TokensOverTiles(const TileJob& job, int64_t t, const float* tile,
                                                  int64_t tok0) {
  const int64_t in = job.w->in;
  __m512 acc[NT][T];
  const float* x[T];
#pragma GCC unroll 16
  for (int i = 0; i < T; ++i) {
#pragma GCC unroll 2
    for (int n = 0; n < NT; ++n) acc[n][i] = _mm512_setzero_ps();
    x[i] = job.x + (tok0 + i) * job.x_stride;
  }
  for (int64_t k = 0; k < in; ++k) {
    const __m512 w0 = _mm512_load_ps(tile + k * kTileRows);
    const __m512 w1 = NT > 1 ? _mm512_load_ps(tile + (in + k) * kTileRows) : w0;
#pragma GCC unroll 16
    for (int i = 0; i < T; ++i) {
      const __m512 xv = _mm512_set1_ps(x[i][k]);
      acc[0][i] = _mm512_fmadd_ps(w0, xv, acc[0][i]);
      if constexpr (NT > 1) acc[NT - 1][i] = _mm512_fmadd_ps(w1, xv, acc[NT - 1][i]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < T; ++i) {
#pragma GCC unroll 2
    for (int n = 0; n < NT; ++n) Store(job, t + n, tok0 + i, acc[n][i]);
  }
}

// FP4's order: a partial sum per 32-column block, scaled into the accumulator.
template <int NT, int T>
requires(NT == 1 || NT == 2) void TokensOverTilesBlocked(const TileJob& job, int64_t t,
                                                         const float* tile, const float* scale,
                                                         int64_t tok0) {
  const int64_t in = job.w->in, blocks = in / kFp4Block;
  __m512 acc[NT][T];
  const float* x[T];
#pragma GCC unroll 16
  for (int i = 0; i < T; ++i) {
#pragma GCC unroll 2
    for (int n = 0; n < NT; ++n) acc[n][i] = _mm512_setzero_ps();
    x[i] = job.x + (tok0 + i) * job.x_stride;
  }
  for (int64_t b = 0; b < blocks; ++b) {
    __m512 part[NT][T];
#pragma GCC unroll 16
    for (int i = 0; i < T; ++i) {
#pragma GCC unroll 2
      for (int n = 0; n < NT; ++n) part[n][i] = _mm512_setzero_ps();
    }
    for (int64_t k = b * kFp4Block; k < (b + 1) * kFp4Block; ++k) {
      // Two named vectors, not an array: GCC kept an array of two in memory here.
      const __m512 w0 = _mm512_load_ps(tile + k * kTileRows);
      const __m512 w1 = NT > 1 ? _mm512_load_ps(tile + (in + k) * kTileRows) : w0;
#pragma GCC unroll 16
      for (int i = 0; i < T; ++i) {
        const __m512 xv = _mm512_set1_ps(x[i][k]);
        part[0][i] = _mm512_fmadd_ps(w0, xv, part[0][i]);
        if constexpr (NT > 1) part[NT - 1][i] = _mm512_fmadd_ps(w1, xv, part[NT - 1][i]);
      }
    }
#pragma GCC unroll 2
    for (int n = 0; n < NT; ++n) {
      const __m512 s = _mm512_load_ps(scale + (n * blocks + b) * kTileRows);
#pragma GCC unroll 16
      for (int i = 0; i < T; ++i) acc[n][i] = _mm512_fmadd_ps(part[n][i], s, acc[n][i]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < T; ++i) {
#pragma GCC unroll 2
    for (int n = 0; n < NT; ++n) Store(job, t + n, tok0 + i, acc[n][i]);
  }
}

template <int NT, int T>
void TokenBlock(const TileJob& job, int64_t t, const float* tile, const float* scale,
                int64_t tok0) {
  if (job.w->format == WeightFormat::kFP4) {
    TokensOverTilesBlocked<NT, T>(job, t, tile, scale, tok0);
  } else {
    TokensOverTiles<NT, T>(job, t, tile, tok0);
  }
}

// The last `left` (< T) tokens, with a block of exactly that many.
template <int NT, int T>
void TokenRemainder(const TileJob& job, int64_t t, const float* tile, const float* scale,
                    int64_t tok0, int64_t left) {
  if (left == T) return TokenBlock<NT, T>(job, t, tile, scale, tok0);
  if constexpr (T > 1) TokenRemainder<NT, T - 1>(job, t, tile, scale, tok0, left);
}

// Tokens [0, job.tokens) over NT converted tiles, T at a time: as many accumulators as the
// 32 registers hold beside the weights (FP4 also keeps a partial sum per accumulator).
template <int NT, int T>
void TokenBlocks(const TileJob& job, int64_t t, const float* tile, const float* scale) {
  int64_t tok = 0;
  for (; tok + T <= job.tokens; tok += T) TokenBlock<NT, T>(job, t, tile, scale, tok);
  if (tok < job.tokens) {
    TokenRemainder<NT, T - 1>(job, t, tile, scale, tok, job.tokens - tok);
  }
}

void Gemm(const TileJob& job) {
  const int64_t in = job.w->in, scale_rows = in / kFp4Block + 1;
  // Two converted tiles, then their FP4 block scales.
  float* tile = ScratchFloats(static_cast<size_t>(2 * (in + scale_rows) * kTileRows));
  float* scale = tile + 2 * in * kTileRows;
  const bool fp4 = job.w->format == WeightFormat::kFP4;
  int64_t t = job.tile_begin;
  for (; t + 2 <= job.tile_end; t += 2) {
    ConvertTile(*job.w, t, tile, scale);
    ConvertTile(*job.w, t + 1, tile + in * kTileRows, scale + (in / kFp4Block) * kTileRows);
    if (fp4) {
      TokenBlocks<2, 5>(job, t, tile, scale);
    } else {
      TokenBlocks<2, 12>(job, t, tile, scale);
    }
  }
  if (t < job.tile_end) {
    ConvertTile(*job.w, t, tile, scale);
    TokenBlocks<1, 12>(job, t, tile, scale);
  }
}

}  // namespace

namespace {

void RunTiles(const TileJob& job, bool vbmi) {
  if (job.tokens == 1) {
    GemvTiles(job, vbmi);
  } else if (job.tokens <= kGemvMaxTokens) {
    GemvManyTiles(job);
  } else {
    Gemm(job);
  }
}

}  // namespace

void RunTilesAvx512(const TileJob& job) { RunTiles(job, false); }
void RunTilesAvx512Vbmi(const TileJob& job) { RunTiles(job, true); }

}  // namespace v4agent::engine::kernels

#if defined(__clang__)
#pragma clang attribute pop
#endif
