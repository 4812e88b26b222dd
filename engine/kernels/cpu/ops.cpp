#include "engine/kernels/cpu/ops.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/kernels/cpu/packed_matmul.h"
#include "engine/kernels/cpu/simd_sum.h"

namespace v4agent::engine::kernels {

// The reference order: lane j of 16 accumulates a[i]*b[i] for i = j (mod 16) in increasing i
// with one fused multiply-add each, then the lanes fold pairwise 8, 4, 2, 1.
float DotScalar(const float* a, const float* b, int64_t n) {
  float acc[16] = {0};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int j = 0; j < 16; ++j) acc[j] = std::fma(a[i + j], b[i + j], acc[j]);
  }
  for (int j = 0; i < n; ++i, ++j) acc[j] = std::fma(a[i], b[i], acc[j]);
  for (int w = 8; w >= 1; w /= 2) {
    for (int j = 0; j < w; ++j) acc[j] += acc[j + w];
  }
  return acc[0];
}

float Dot(const float* a, const float* b, int64_t n) {
#if defined(__AVX512F__)
  // Same order as DotScalar, so the two agree bit for bit (tested).
  __m512 acc = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc);
  }
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    acc = _mm512_mask3_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i),
                                acc, m);
  }
  return FoldLanes(acc);
#else
  return DotScalar(a, b, n);
#endif
}

void MatMulRows(const Linear& w, int64_t row_begin, int64_t row_end, const float* x,
                int64_t x_stride, int64_t tokens, float* y, int64_t y_stride, ThreadPool* pool) {
  if (w.packed != nullptr) {
    PackedMatMul(*w.packed, row_begin, row_end, x, x_stride, tokens, y, y_stride, pool);
    return;
  }
  const int64_t rows = row_end - row_begin;
  auto work = [&](size_t begin, size_t end) {
    std::vector<float> row(static_cast<size_t>(w.in));
    for (size_t r = begin; r < end; ++r) {
      const int64_t o = row_begin + static_cast<int64_t>(r);
      w.DequantRow(o, row.data());
      for (int64_t t = 0; t < tokens; ++t) {
        y[t * y_stride + static_cast<int64_t>(r)] = Dot(x + t * x_stride, row.data(), w.in);
      }
    }
  };
  // Waking a worker costs tens of microseconds: split only work that dwarfs that.
  const int64_t macs = rows * w.in * tokens;
  if (pool == nullptr || rows < 64 || macs < (1 << 18)) {
    work(0, static_cast<size_t>(rows));
  } else {
    pool->ParallelFor(static_cast<size_t>(rows), 16, work);
  }
}

void MatMulBatch(std::span<const MatMulJob> jobs, ThreadPool* pool) {
  std::vector<PackedProduct> packed;
  for (const MatMulJob& j : jobs) {
    if (j.w->packed == nullptr) {
      for (const MatMulJob& k : jobs) {
        const int64_t row_end = k.row_end < 0 ? k.w->out : k.row_end;
        MatMulRows(*k.w, k.row_begin, row_end, k.x, k.x_stride > 0 ? k.x_stride : k.w->in, k.tokens,
                   k.y, k.y_stride > 0 ? k.y_stride : row_end - k.row_begin, pool);
      }
      return;
    }
    packed.push_back(PackedProduct{j.w->packed, j.x, j.tokens, j.y, j.row_begin, j.row_end,
                                   j.x_stride, j.y_stride});
  }
  PackedMatMulBatch(packed.data(), static_cast<int64_t>(packed.size()), pool);
}

void MatMul(const Linear& w, const float* x, int64_t tokens, float* y, ThreadPool* pool) {
  MatMulRows(w, 0, w.out, x, w.in, tokens, y, w.out, pool);
}

void RmsNorm(const float* x, const float* w, int64_t n, float eps, float* y) {
  float ss = Dot(x, x, n);
  float r = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = w ? x[i] * r * w[i] : x[i] * r;
}

std::vector<float> RopeFrequencies(int64_t rope_dims, const RopeParams& p) {
  const int64_t pairs = rope_dims / 2;
  std::vector<float> f(static_cast<size_t>(pairs));
  for (int64_t i = 0; i < pairs; ++i) {
    // As the reference: base ** (arange(0, dim, 2) / dim) in fp32, then its reciprocal.
    float expo = static_cast<float>(2 * i) / static_cast<float>(rope_dims);
    f[i] = 1.0f / std::pow(static_cast<float>(p.base), expo);
  }
  if (p.yarn && p.original_seq_len > 0) {
    auto corr = [&](double n) {
      return rope_dims * std::log(p.original_seq_len / (n * 2 * M_PI)) / (2 * std::log(p.base));
    };
    double low = std::max(std::floor(corr(p.beta_fast)), 0.0);
    double high = std::min(std::ceil(corr(p.beta_slow)), static_cast<double>(rope_dims - 1));
    if (low == high) high += 0.001;
    for (int64_t i = 0; i < pairs; ++i) {
      float ramp = static_cast<float>(std::clamp((i - low) / (high - low), 0.0, 1.0));
      float smooth = 1.0f - ramp;
      f[i] = f[i] / static_cast<float>(p.factor) * (1.0f - smooth) + f[i] * smooth;
    }
  }
  return f;
}

namespace {

// The one rotation every ApplyRope runs, so that cached and fresh angles give the same bits.
inline void Rotate(float* x, const float* cos, const float* sin, size_t n, bool inverse) {
  for (size_t i = 0; i < n; ++i) {
    const float c = cos[i], s = inverse ? -sin[i] : sin[i];
    const float a = x[2 * i], b = x[2 * i + 1];
    x[2 * i] = a * c - b * s;
    x[2 * i + 1] = a * s + b * c;
  }
}

}  // namespace

void ComputeRopeAngles(const std::vector<float>& freqs, int64_t pos, RopeAngles* out) {
  const float t = static_cast<float>(pos);
  out->cos.resize(freqs.size());
  out->sin.resize(freqs.size());
  for (size_t i = 0; i < freqs.size(); ++i) {
    const float angle = t * freqs[i];
    out->cos[i] = std::cos(angle);
    out->sin[i] = std::sin(angle);
  }
}

void ApplyRope(float* x, const RopeAngles& angles, bool inverse) {
  Rotate(x, angles.cos.data(), angles.sin.data(), angles.cos.size(), inverse);
}

void ApplyRope(float* x, const std::vector<float>& freqs, int64_t pos, bool inverse) {
  RopeAngles angles;
  ComputeRopeAngles(freqs, pos, &angles);
  ApplyRope(x, angles, inverse);
}

void HadamardRotate(float* x, int64_t n) {
  for (int64_t h = 1; h < n; h *= 2) {
    for (int64_t i = 0; i < n; i += 2 * h) {
      for (int64_t j = i; j < i + h; ++j) {
        float a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
    }
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(n));
  for (int64_t i = 0; i < n; ++i) x[i] *= scale;
}

void SinkhornInPlace(float* c, int64_t hc, int64_t iters, float eps) {
  for (int64_t j = 0; j < hc; ++j) {
    float* row = c + j * hc;
    float m = *std::max_element(row, row + hc);
    float sum = 0;
    for (int64_t k = 0; k < hc; ++k) sum += (row[k] = std::exp(row[k] - m));
    for (int64_t k = 0; k < hc; ++k) row[k] = row[k] / sum + eps;
  }
  auto col_norm = [&] {
    for (int64_t k = 0; k < hc; ++k) {
      float s = 0;
      for (int64_t j = 0; j < hc; ++j) s += c[j * hc + k];
      for (int64_t j = 0; j < hc; ++j) c[j * hc + k] /= (s + eps);
    }
  };
  auto row_norm = [&] {
    for (int64_t j = 0; j < hc; ++j) {
      float s = 0;
      for (int64_t k = 0; k < hc; ++k) s += c[j * hc + k];
      for (int64_t k = 0; k < hc; ++k) c[j * hc + k] /= (s + eps);
    }
  };
  col_norm();
  for (int64_t it = 1; it < iters; ++it) {
    row_norm();
    col_norm();
  }
}

float Softplus(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }

std::vector<int32_t> TopKStable(const float* scores, int64_t n, int64_t k) {
  k = std::min(k, n);
  if (k <= 0) return {};
  // "a ranks before b": higher score first, then lower index. A bounded heap with the worst
  // kept element on top rejects most candidates with one comparison (indexer scans of 262K
  // keys per token at 1M context), and gives the same k indices in the same order as a
  // partial sort by this total order.
  auto before = [&](int32_t a, int32_t b) {
    if (scores[a] != scores[b]) return scores[a] > scores[b];
    return a < b;
  };
  std::vector<int32_t> heap;
  heap.reserve(static_cast<size_t>(k));
  for (int32_t i = 0; i < static_cast<int32_t>(n); ++i) {
    if (static_cast<int64_t>(heap.size()) < k) {
      heap.push_back(i);
      std::push_heap(heap.begin(), heap.end(), before);
    } else if (before(i, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), before);
      heap.back() = i;
      std::push_heap(heap.begin(), heap.end(), before);
    }
  }
  std::sort_heap(heap.begin(), heap.end(), before);
  return heap;
}

}  // namespace v4agent::engine::kernels
