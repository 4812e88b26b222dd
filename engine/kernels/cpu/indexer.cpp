#include "engine/kernels/cpu/indexer.h"

#include <immintrin.h>

#include <algorithm>

#include "engine/kernels/cpu/ops.h"
#include "engine/kernels/cpu/simd_sum.h"

namespace v4agent::engine::kernels {

namespace {

// One head's term, exactly as the scalar loop adds it (std::max keeps -0 and NaN as they
// are; the product and the sum round separately: the engine builds with -ffp-contract=off).
inline float Term(float w, float d) { return w * std::max(d, 0.0f); }

#if defined(__AVX512F__)

// Adds heads [h0, h0 + NH) of keys [i0, i0 + NR) into s (in head order).
template <int NH, int NR>
inline void ScoreBlock(const IndexQuery& qy, int64_t h0, const float* const* keys, int64_t i0,
                       float* s) {
  const int64_t dim = qy.dim;
  __m512 acc[NH][NR];
  for (int x = 0; x < NH; ++x)
    for (int r = 0; r < NR; ++r) acc[x][r] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= dim; k += 16) {
    __m512 kv[NR];
    for (int r = 0; r < NR; ++r) kv[r] = _mm512_loadu_ps(keys[i0 + r] + k);
    for (int x = 0; x < NH; ++x) {
      const __m512 qv = _mm512_loadu_ps(qy.q + (h0 + x) * dim + k);
      for (int r = 0; r < NR; ++r) acc[x][r] = _mm512_fmadd_ps(qv, kv[r], acc[x][r]);
    }
  }
  if (k < dim) {
    const __mmask16 m = static_cast<__mmask16>((1u << (dim - k)) - 1);
    for (int x = 0; x < NH; ++x) {
      const __m512 qv = _mm512_maskz_loadu_ps(m, qy.q + (h0 + x) * dim + k);
      for (int r = 0; r < NR; ++r) {
        acc[x][r] =
            _mm512_mask3_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, keys[i0 + r] + k), acc[x][r], m);
      }
    }
  }
  for (int x = 0; x < NH; ++x)
    for (int r = 0; r < NR; ++r) s[i0 + r] += Term(qy.w[h0 + x], FoldLanes(acc[x][r]));
}

template <int NR>
inline void KeyBlock(const IndexQuery& qy, const float* const* keys, int64_t i0, float* s) {
  for (int r = 0; r < NR; ++r) s[i0 + r] = 0.0f;
  int64_t h = 0;
  for (; h + 4 <= qy.heads; h += 4) ScoreBlock<4, NR>(qy, h, keys, i0, s);
  for (; h < qy.heads; ++h) ScoreBlock<1, NR>(qy, h, keys, i0, s);
}

#endif  // __AVX512F__

}  // namespace

void IndexScoresScalar(const IndexQuery& qy, const float* const* keys, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    float s = 0;
    for (int64_t h = 0; h < qy.heads; ++h) {
      s += Term(qy.w[h], DotScalar(qy.q + h * qy.dim, keys[i], qy.dim));
    }
    out[i] = s;
  }
}

void IndexScores(const IndexQuery& qy, const float* const* keys, int64_t n, float* out) {
#if defined(__AVX512F__)
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) KeyBlock<4>(qy, keys, i, out);
  for (; i < n; ++i) KeyBlock<1>(qy, keys, i, out);
#else
  IndexScoresScalar(qy, keys, n, out);
#endif
}

}  // namespace v4agent::engine::kernels
