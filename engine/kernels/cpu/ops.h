// CPU kernels of the V4 forward pass in fp32 ("exact" mode): dot products, batched linear
// layers over checkpoint-format weights (dequantized row by row, never whole), RMSNorm,
// RoPE/YaRN tables, the Hadamard rotation, mHC Sinkhorn, softmax with sink, stable top-k.
// Every reduction has one fixed order, so results never depend on the thread count or on how
// tokens are batched. Shapes are given as [rows, cols] row-major in comments.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/thread_pool.h"
#include "engine/weights/weights.h"

namespace v4agent::engine::kernels {

// Sum of a[i] * b[i] with 16 interleaved partial sums, then a fixed pairwise reduction.
// Dot uses AVX-512 when compiled for it; DotScalar is the plain-loop oracle with the same
// order of operations (the two agree bit for bit).
float Dot(const float* a, const float* b, int64_t n);
float DotScalar(const float* a, const float* b, int64_t n);

// y[t, o] = sum_i x[t, i] * W[o, i] for t < tokens. x: [tokens, W.in], y: [tokens, W.out].
// Exact: rows of W are dequantized once per call and reused for every token. When W has a
// packed copy (numerics fast) the fast kernels of packed_matmul.h run instead. `pool` may be
// null.
void MatMul(const Linear& w, const float* x, int64_t tokens, float* y, ThreadPool* pool);
// Several whole products at once, each exactly as MatMul computes it: y = W x with
// x [tokens, W.in] and y [tokens, W.out]. When every W has a packed copy they share one
// parallel region (decode's MoE: one wait for all experts' gate and up projections).
struct MatMulJob {
  const Linear* w;
  const float* x;
  int64_t tokens;
  float* y;
  // As in MatMulRows; by default the whole matrix, x: [tokens, W.in], y: [tokens, W.out].
  int64_t row_begin = 0, row_end = -1;  // -1: W.out
  int64_t x_stride = 0, y_stride = 0;   // 0: W.in, and row_end - row_begin
};
void MatMulBatch(std::span<const MatMulJob> jobs, ThreadPool* pool);
// Rows [row_begin, row_end) of W only, into y[t, 0 .. row_end-row_begin) with row stride
// `y_stride` (used by grouped projections).
void MatMulRows(const Linear& w, int64_t row_begin, int64_t row_end, const float* x,
                int64_t x_stride, int64_t tokens, float* y, int64_t y_stride, ThreadPool* pool);

// y = x / sqrt(mean(x^2) + eps) * w (w may be null: weightless).
void RmsNorm(const float* x, const float* w, int64_t n, float eps, float* y);

// Per-pair rotation frequencies for `rope_dims` dims (pairs i = 0 .. rope_dims/2-1).
struct RopeParams {
  double base = 10000;
  bool yarn = false;
  double factor = 1;
  int64_t original_seq_len = 0;
  double beta_fast = 32;
  double beta_slow = 1;
};
std::vector<float> RopeFrequencies(int64_t rope_dims, const RopeParams& p);
// Rotates interleaved pairs (x[2i], x[2i+1]) of x[0 .. 2*freqs.size()) by angle pos * f_i
// (fp32 product); `inverse` rotates by the negated angle.
void ApplyRope(float* x, const std::vector<float>& freqs, int64_t pos, bool inverse);

// The cosines and sines of one position's angles, for rotating many heads at that position
// without recomputing them (a decode step rotates about 200 heads per layer at one position).
// Same bits as ApplyRope.
struct RopeAngles {
  std::vector<float> cos, sin;
};
void ComputeRopeAngles(const std::vector<float>& freqs, int64_t pos, RopeAngles* out);
void ApplyRope(float* x, const RopeAngles& angles, bool inverse);

// In place: Sylvester-ordered Walsh-Hadamard transform of x[n] (n a power of two) times
// n^-1/2.
void HadamardRotate(float* x, int64_t n);

// mHC: 4x4 (hc x hc) combination matrix made doubly stochastic in place: row softmax + eps,
// column normalisation, then (iters - 1) x (row, column) normalisations, each + eps.
void SinkhornInPlace(float* c, int64_t hc, int64_t iters, float eps);

inline float Sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
inline float Silu(float x) { return x / (1.0f + std::exp(-x)); }
// log(1 + e^x), linear above 20 (torch's threshold).
float Softplus(float x);

// Indices of the k largest scores, descending; equal scores (compared as IEEE values, so
// -0 == +0) keep the lower index first.
std::vector<int32_t> TopKStable(const float* scores, int64_t n, int64_t k);

}  // namespace v4agent::engine::kernels
