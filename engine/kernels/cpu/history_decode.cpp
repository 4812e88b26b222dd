#include "engine/kernels/cpu/history_decode.h"

#if !defined(__clang__)
// GCC 12 warns inside its own AVX-512 headers (_mm512_undefined_*): not our code.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "engine/quant/codecs.h"

namespace v4agent::engine::kernels {

namespace {

void Fp8MainRowScalar(const uint8_t* p, int64_t width, int64_t nope, float* out) {
  const uint8_t* scales = p + nope;
  for (int64_t d = 0; d < nope; ++d) {
    out[d] = quant::E4M3ToFloat(p[d]) * quant::Ue8m0ToFloat(scales[d / 64]);
  }
  std::memcpy(out + nope, scales + (nope + 63) / 64, static_cast<size_t>(width - nope) * 4);
}

void Fp4IndexRowScalar(const uint8_t* p, int64_t width, float* out) {
  const uint8_t* scales = p + width / 2;
  for (int64_t d = 0; d < width; d += 2) {
    const float s = quant::Ue8m0ToFloat(scales[d / 32]);
    out[d] = quant::E2M1ToFloat(p[d / 2] & 0xF) * s;
    out[d + 1] = quant::E2M1ToFloat(p[d / 2] >> 4) * s;
  }
}

#if defined(__AVX512F__)

// 16 e4m3 bytes as their exact values times `s` (NaN for the two NaN codes). The bits
// shifted into place are 2^-120 times the value, subnormal codes included; restoring 2^120
// first keeps the product with the scale the one rounding the scalar decoder does.
inline __m512 Fp8Times(const uint8_t* p, __m512 s) {
  const __m512i sx = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  const __m512 raw = _mm512_castsi512_ps(_mm512_and_si512(
      _mm512_slli_epi32(sx, 20), _mm512_set1_epi32(static_cast<int>(0x87F00000u))));
  const __m512 v = _mm512_mul_ps(_mm512_mul_ps(raw, _mm512_set1_ps(0x1p120f)), s);
  const __mmask16 nan = _mm512_cmpeq_epi32_mask(_mm512_and_si512(sx, _mm512_set1_epi32(0x7F)),
                                                _mm512_set1_epi32(0x7F));
  return _mm512_mask_mov_ps(v, nan, _mm512_set1_ps(__builtin_nanf("")));
}

void Fp8MainRow(const uint8_t* p, int64_t width, int64_t nope, float* out) {
  const uint8_t* scales = p + nope;
  for (int64_t b = 0; b * 64 < nope; ++b) {
    const float s = quant::Ue8m0ToFloat(scales[b]);
    const __m512 sv = _mm512_set1_ps(s);
    const int64_t end = std::min<int64_t>(nope, (b + 1) * 64);
    int64_t d = b * 64;
    for (; d + 16 <= end; d += 16) _mm512_storeu_ps(out + d, Fp8Times(p + d, sv));
    for (; d < end; ++d) out[d] = quant::E4M3ToFloat(p[d]) * s;
  }
  std::memcpy(out + nope, scales + (nope + 63) / 64, static_cast<size_t>(width - nope) * 4);
}

void Fp4IndexRow(const uint8_t* p, int64_t width, float* out) {
  const uint8_t* scales = p + width / 2;
  const __m512 table = _mm512_load_ps(quant::kE2m1Table);
  // Element 2i is byte i's low nibble, 2i + 1 its high nibble.
  const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i second =
      _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  for (int64_t b = 0; b < width / 32; ++b) {
    const __m512 s = _mm512_set1_ps(quant::Ue8m0ToFloat(scales[b]));
    const __m512i codes =
        _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + b * 16)));
    const __m512 lo = _mm512_permutexvar_ps(codes, table);  // uses the low 4 bits only
    const __m512 hi = _mm512_permutexvar_ps(_mm512_srli_epi32(codes, 4), table);
    _mm512_storeu_ps(out + b * 32, _mm512_mul_ps(_mm512_permutex2var_ps(lo, first, hi), s));
    _mm512_storeu_ps(out + b * 32 + 16, _mm512_mul_ps(_mm512_permutex2var_ps(lo, second, hi), s));
  }
}

#endif  // __AVX512F__

}  // namespace

void DecodeFp8MainRowsScalar(const uint8_t* rows, int64_t stride, int64_t n, int64_t width,
                             int64_t nope, float* out) {
  for (int64_t i = 0; i < n; ++i) Fp8MainRowScalar(rows + i * stride, width, nope, out + i * width);
}

void DecodeFp4IndexRowsScalar(const uint8_t* rows, int64_t stride, int64_t n, int64_t width,
                              float* out) {
  for (int64_t i = 0; i < n; ++i) Fp4IndexRowScalar(rows + i * stride, width, out + i * width);
}

void DecodeFp8MainRows(const uint8_t* rows, int64_t stride, int64_t n, int64_t width, int64_t nope,
                       float* out) {
#if defined(__AVX512F__)
  for (int64_t i = 0; i < n; ++i) Fp8MainRow(rows + i * stride, width, nope, out + i * width);
#else
  DecodeFp8MainRowsScalar(rows, stride, n, width, nope, out);
#endif
}

void DecodeFp4IndexRows(const uint8_t* rows, int64_t stride, int64_t n, int64_t width, float* out) {
#if defined(__AVX512F__)
  for (int64_t i = 0; i < n; ++i) Fp4IndexRow(rows + i * stride, width, out + i * width);
#else
  DecodeFp4IndexRowsScalar(rows, stride, n, width, out);
#endif
}

}  // namespace v4agent::engine::kernels
