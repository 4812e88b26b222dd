// The "fast-bf16" products: y = W x over a PackedLinear in the bf16 dot layout, with the
// activations rounded to bf16 so that `vdpbf16ps` multiplies 32 weights per instruction (twice
// what an fp32 FMA takes, and the weights convert to bf16 with fewer operations than to fp32).
// This rounds further than the "fast" numerics (goldens README 6, last paragraph): it is an
// opt-in third mode whose deviation from the goldens is measured and reported, never a default.
//
// What one output o of token t is, whatever the number of tokens computed together, the
// thread count or the instruction set (AVX-512 BF16, or the scalar emulation on any other
// CPU), so decode, any chunking of a prefill and rewind-then-continue stay bit-identical:
// 1. s = Target - floor(log2(max_k |x[k]|)) (Target 100 for FP8, whose converted weights are
//    2^-120 times their values, else 0), clamped to [-126, 126]; s = 0 when that maximum is 0
//    or not finite (NaN is skipped by the maximum). a[k] = bf16_rne(x[k] * 2^s).
// 2. v[k]: the weight as bf16 (FP8: 2^-120 times the e4m3 value; FP4: the e2m1 code's value;
//    BF16: itself). Subnormal e4m3 weights (below 2^-6 of their block unit) and bf16 denormals
//    count as 0, as `vdpbf16ps` reads them.
// 3. dot(c, i) = ftz(ftz(c + v[2i+1] a[2i+1]) + v[2i] a[2i]) for the pair of columns
//    (2i, 2i+1): the instruction's order, each product exact, each sum rounded once, results
//    below the normal range flushed to zero (columns past `in` are 0).
// 4. FP8: per 128-column block b, p = dot(...dot(0, first pair)..., last pair), then
//    acc = fma(p, multiplier[b], acc); FP4 the same per 32-column block with 2^scale; BF16 one
//    chain over every pair. y = acc * 2^-s.
#pragma once

#include <cstdint>

#include "engine/kernels/cpu/packed_matmul.h"

namespace v4agent::engine::kernels {

// Whether this CPU has AVX-512 BF16 (else the scalar emulation runs), and the kernel in use
// for reports ("avx512-bf16", or the emulation with a warning that it is slow).
bool HasAvx512Bf16();
const char* DotKernelName();

// The activations of a job, prepared once per job by PrepareDotActivations: for each token
// `pairs` 32-bit words (a[2i] low, a[2i+1] high), zero past `in`, and 2^-s.
struct DotActivations {
  const uint32_t* pairs;
  int64_t stride;  // words per token
  const float* unscale;
};
// In this thread's kernel scratch (valid until its next use). The AVX-512 kernel has its own
// vector copy of this definition.
DotActivations PrepareDotActivations(const TileJob& job);
// Words per token in DotActivations (the padded pairs, a multiple of 16).
int64_t DotPairsStride(const PackedLinear& w);

void RunTilesDotScalar(const TileJob& job);
void RunTilesDotAvx512(const TileJob& job);

// Step 1's shift and conversion, the definition both kernels use.
int DotShift(float amax, WeightFormat format);
uint16_t Bf16Rne(float x);

}  // namespace v4agent::engine::kernels
