#include "engine/kernels/cpu/attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "engine/kernels/cpu/ops.h"
#include "engine/kernels/cpu/scratch.h"
#include "engine/kernels/cpu/simd_sum.h"

namespace v4agent::engine::kernels {

namespace {

// Logits of heads [h_begin, h_end) in `logit` (row stride n) become probabilities in place.
void SoftmaxWithSink(const SharedRowsAttention& a, int64_t h_begin, int64_t h_end, float* logit) {
  for (int64_t h = h_begin; h < h_end; ++h) {
    float* l = logit + (h - h_begin) * a.n;
    float mx = a.sink[h];
    for (int64_t i = 0; i < a.n; ++i) mx = std::max(mx, l[i]);
    float sum = std::exp(a.sink[h] - mx);
    for (int64_t i = 0; i < a.n; ++i) sum += (l[i] = std::exp(l[i] - mx));
    for (int64_t i = 0; i < a.n; ++i) l[i] = l[i] / sum;
  }
}

#if defined(__AVX512F__)

// logit[h][i] for NH heads x NR rows: 16 lanes per pair, each in Dot's order.
template <int NH, int NR>
inline void ScoreBlock(const SharedRowsAttention& a, int64_t h0, int64_t i0, float* logit) {
  const int64_t hd = a.head_dim;
  __m512 acc[NH][NR];
  for (int x = 0; x < NH; ++x)
    for (int r = 0; r < NR; ++r) acc[x][r] = _mm512_setzero_ps();
  const float* q[NH];
  for (int x = 0; x < NH; ++x) q[x] = a.q + (h0 + x) * hd;
  const float* rows[NR];
  for (int r = 0; r < NR; ++r) rows[r] = a.rows[i0 + r];
  int64_t k = 0;
  for (; k + 16 <= hd; k += 16) {
    __m512 rv[NR];
    for (int r = 0; r < NR; ++r) rv[r] = _mm512_loadu_ps(rows[r] + k);
    for (int x = 0; x < NH; ++x) {
      const __m512 qv = _mm512_loadu_ps(q[x] + k);
      for (int r = 0; r < NR; ++r) acc[x][r] = _mm512_fmadd_ps(qv, rv[r], acc[x][r]);
    }
  }
  if (k < hd) {
    const __mmask16 m = static_cast<__mmask16>((1u << (hd - k)) - 1);
    for (int x = 0; x < NH; ++x) {
      const __m512 qv = _mm512_maskz_loadu_ps(m, q[x] + k);
      for (int r = 0; r < NR; ++r) {
        acc[x][r] = _mm512_mask3_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, rows[r] + k), acc[x][r], m);
      }
    }
  }
  for (int x = 0; x < NH; ++x)
    for (int r = 0; r < NR; ++r) logit[x * a.n + i0 + r] = FoldLanes(acc[x][r]) * a.scale;
}

// o[h][d0 .. d0 + 16*NV) for NH heads: a product and a sum per row in row order,
// accumulators in registers. `tail` masks the last vector when head_dim is not a multiple of 16.
template <int NH, int NV>
inline void WeightedSumBlock(const SharedRowsAttention& a, int64_t h0, const float* p, int64_t d0,
                             __mmask16 tail) {
  __m512 acc[NH][NV];
  for (int x = 0; x < NH; ++x)
    for (int v = 0; v < NV; ++v) acc[x][v] = _mm512_setzero_ps();
  for (int64_t i = 0; i < a.n; ++i) {
    const float* r = a.rows[i] + d0;
    __m512 rv[NV];
    for (int v = 0; v < NV; ++v) {
      rv[v] = v == NV - 1 ? _mm512_maskz_loadu_ps(tail, r + 16 * v) : _mm512_loadu_ps(r + 16 * v);
    }
    for (int x = 0; x < NH; ++x) {
      const __m512 pv = _mm512_set1_ps(p[x * a.n + i]);
      for (int v = 0; v < NV; ++v) acc[x][v] = _mm512_add_ps(acc[x][v], _mm512_mul_ps(pv, rv[v]));
    }
  }
  for (int x = 0; x < NH; ++x) {
    float* o = a.o + (h0 + x) * a.head_dim + d0;
    for (int v = 0; v < NV - 1; ++v) _mm512_storeu_ps(o + 16 * v, acc[x][v]);
    _mm512_mask_storeu_ps(o + 16 * (NV - 1), tail, acc[x][NV - 1]);
  }
}

template <int NH>
void WeightedSum(const SharedRowsAttention& a, int64_t h0, const float* p) {
  const int64_t hd = a.head_dim;
  int64_t d = 0;
  for (; d + 64 <= hd; d += 64) WeightedSumBlock<NH, 4>(a, h0, p, d, 0xFFFF);
  for (; d < hd; d += 16) {
    const int64_t left = std::min<int64_t>(16, hd - d);
    WeightedSumBlock<NH, 1>(a, h0, p, d, static_cast<__mmask16>((1u << left) - 1));
  }
}

template <int NH>
void HeadBlock(const SharedRowsAttention& a, int64_t h0, float* logit) {
  int64_t i = 0;
  for (; i + 4 <= a.n; i += 4) ScoreBlock<NH, 4>(a, h0, i, logit);
  for (; i < a.n; ++i) ScoreBlock<NH, 1>(a, h0, i, logit);
  SoftmaxWithSink(a, h0, h0 + NH, logit);
  WeightedSum<NH>(a, h0, logit);
}

#endif  // __AVX512F__

}  // namespace

void AttendSharedRowsScalar(const SharedRowsAttention& a, int64_t h_begin, int64_t h_end) {
  float* logit = ScratchFloats(static_cast<size_t>(std::max<int64_t>(1, (h_end - h_begin) * a.n)));
  for (int64_t h = h_begin; h < h_end; ++h) {
    float* l = logit + (h - h_begin) * a.n;
    for (int64_t i = 0; i < a.n; ++i) {
      l[i] = DotScalar(a.q + h * a.head_dim, a.rows[i], a.head_dim) * a.scale;
    }
  }
  SoftmaxWithSink(a, h_begin, h_end, logit);
  for (int64_t h = h_begin; h < h_end; ++h) {
    const float* p = logit + (h - h_begin) * a.n;
    float* o = a.o + h * a.head_dim;
    std::fill(o, o + a.head_dim, 0.0f);
    for (int64_t i = 0; i < a.n; ++i) {
      for (int64_t d = 0; d < a.head_dim; ++d) o[d] += p[i] * a.rows[i][d];
    }
  }
}

void AttendSharedRows(const SharedRowsAttention& a, int64_t h_begin, int64_t h_end) {
#if defined(__AVX512F__)
  // Four heads at a time: each row vector loaded once serves four heads.
  float* logit = ScratchFloats(static_cast<size_t>(std::max<int64_t>(1, 4 * a.n)));
  int64_t h = h_begin;
  for (; h + 4 <= h_end; h += 4) HeadBlock<4>(a, h, logit);
  for (; h < h_end; ++h) HeadBlock<1>(a, h, logit);
#else
  AttendSharedRowsScalar(a, h_begin, h_end);
#endif
}

}  // namespace v4agent::engine::kernels
