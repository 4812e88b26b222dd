// The attention core of V4's shared-KV layout: every query head of a token attends over the
// same candidate rows (the sliding window, then the chosen compressed entries), so the scores
// of a token are one [heads x rows] product and its outputs one [heads x head_dim] product.
// Owns the scores, the softmax with the per-head sink and the weighted sum; never touches a
// cache, RoPE or the projections around it.
//
// One order of operations, whatever the blocking or the thread split: head h's logit for row
// i is Dot(q_h, rows[i]) * scale (Dot's order, ops.h); the softmax subtracts the max over the
// sink and the logits, sums exp(sink - max) then each exp in row order, and divides; o_h[d]
// adds the rounded product p_i * rows[i][d] per row, in row order, from zero (not fused: the
// engine builds with -ffp-contract=off, and the exact path's goldens were met that way).
// The blocked AVX-512 kernel and the plain loops of AttendSharedRowsScalar agree bit for bit
// (tested), so exact and fast numerics share it and every result is batch-invariant.
#pragma once

#include <cstdint>

namespace v4agent::engine::kernels {

struct SharedRowsAttention {
  const float* q = nullptr;            // [heads, head_dim]
  const float* const* rows = nullptr;  // n pointers to head_dim values each
  int64_t n = 0;
  int64_t head_dim = 0;
  const float* sink = nullptr;  // [heads]
  float scale = 1.0f;
  float* o = nullptr;  // [heads, head_dim], overwritten
};

// Heads [h_begin, h_end) of `a`; disjoint ranges may run on different threads at once.
void AttendSharedRows(const SharedRowsAttention& a, int64_t h_begin, int64_t h_end);
// The plain per-head loops: the oracle the blocked kernel is tested against.
void AttendSharedRowsScalar(const SharedRowsAttention& a, int64_t h_begin, int64_t h_end);

}  // namespace v4agent::engine::kernels
