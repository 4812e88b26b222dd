// The one horizontal fold every fp32 reduction of the CPU kernels ends with (lanes fold
// pairwise 8, 4, 2, 1, as DotScalar does), shared so that blocked kernels can reproduce
// Dot's bits. Only for translation units compiled with AVX-512.
#pragma once

#include <immintrin.h>

// Every translation unit that includes this header uses AVX-512 intrinsics, and GCC 12 warns
// inside its own AVX-512 headers (_mm512_undefined_*): not our code.
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace v4agent::engine::kernels {

#if defined(__AVX512F__)
inline float FoldLanes(__m512 acc) {
  __m256 h = _mm256_add_ps(_mm512_castps512_ps256(acc),
                           _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1)));
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  __m128 d = _mm_add_ps(q, _mm_movehl_ps(q, q));
  __m128 r = _mm_add_ss(d, _mm_shuffle_ps(d, d, 1));
  return _mm_cvtss_f32(r);
}
#endif

}  // namespace v4agent::engine::kernels
