// The fast linear layers: y = W x over a PackedLinear, for one token (decode: a GEMV that
// streams the weights once) or many (prefill: each tile converted to fp32 once and reused by
// every token). Weights are converted in registers exactly (e4m3, e2m1 and bf16 are exact in
// fp32) and every product accumulates in fp32 with one fused multiply-add per k in increasing
// k, so results are bit-identical across token counts, thread counts and instruction sets
// (AVX-512 with VBMI and GFNI, AVX-512, AVX2, scalar; chosen at run time, forced by tests).
// Each output row is computed by exactly one thread.
#pragma once

#include <cstdint>

#include "common/thread_pool.h"
#include "engine/kernels/cpu/packed_linear.h"

namespace v4agent::engine::kernels {

// kAvx512Vbmi: AVX-512 plus VBMI and GFNI (Ice Lake and later, Zen 4), which convert FP8 in
// fewer instructions in the one-token GEMV; every other kernel is kAvx512's.
enum class Isa { kScalar, kAvx2, kAvx512, kAvx512Vbmi };
const char* IsaName(Isa isa);
// The best this CPU supports, and the one in use (the best unless forced).
Isa DetectIsa();
Isa ActiveIsa();
// Forces an instruction set (clamped to what the CPU supports): tests of the fallbacks.
void ForceIsa(Isa isa);
// Whether the AVX-512 one-token GEMV reads two whole groups side by side as two memory streams
// (the default) or one group at a time. The bits are the same either way; the switch exists so
// that `bench_kernels --streams 1` can measure what the second stream is worth.
void SetGemvTwoStreams(bool on);
bool GemvTwoStreams();

// y[t * y_stride + (o - row_begin)] = sum_k W[o][k] * x[t * x_stride + k], for rows
// o in [row_begin, row_end) and t < tokens. row_begin must be a multiple of 16 (a tile).
void PackedMatMul(const PackedLinear& w, int64_t row_begin, int64_t row_end, const float* x,
                  int64_t x_stride, int64_t tokens, float* y, int64_t y_stride, ThreadPool* pool);

// Several whole products y = W x (x: [tokens, W.in], y: [tokens, W.out]) in one parallel
// region: threads take groups of tiles from all of them, so a layer's small matrices (an
// MoE's experts in decode, the grouped output projection's groups) cost one wake-up and one
// wait instead of one per matrix. Each output is computed exactly as PackedMatMul computes it.
// By default a product is the whole matrix with x: [tokens, W.in] and y: [tokens, W.out];
// rows [row_begin, row_end) (row_begin a multiple of 16) with other strides are PackedMatMul's
// arguments of the same names.
struct PackedProduct {
  const PackedLinear* w;
  const float* x;
  int64_t tokens;
  float* y;
  int64_t row_begin = 0, row_end = -1;  // -1: W.out
  int64_t x_stride = 0, y_stride = 0;   // 0: W.in, and row_end - row_begin
};
void PackedMatMulBatch(const PackedProduct* products, int64_t count, ThreadPool* pool);

// Where a benchmark wants to know how fast each weight format streams inside a real forward
// pass (not only alone, as in the GEMV table): while a profile is set, every PackedMatMul and
// PackedMatMulBatch call adds its wall time and its products' weight bytes to the entry of the
// format holding most of its bytes. Two clock reads per call; off (nullptr) by default. The
// caller's thread only, and not while another thread runs products.
struct GemvProfile {
  double seconds[4] = {};  // indexed by WeightFormat
  uint64_t bytes[4] = {};
  uint64_t calls[4] = {};
};
void SetGemvProfile(GemvProfile* profile);

// How far ahead of a group's stream the one-token GEMVs prefetch. The hardware prefetchers
// alone do not stay far enough ahead (decode 16 -> 20 tok/s on the Flash-width slice when
// prefetching came in, at 1024). 8192 beat 1024, 2048, 3072, 4096 and 16384 in every format at
// 1 and 2 threads, by 7% (bf16) to 28% (FP8) at 2 threads, in an interleaved A/B of the AVX-512
// GEMV table (docs/benchmarks.md, 2026-12-02); the AVX2 GEMV uses the same distance, not
// separately tuned. Past the group's end it runs into the next group, which is read next; a
// prefetch never faults.
constexpr int64_t kGemvPrefetchBytes = 8192;

// One thread's share: tiles [tile_begin, tile_end) of the call above.
struct TileJob {
  const PackedLinear* w;
  int64_t tile_begin, tile_end;
  int64_t row_end;     // rows at or past this one are not written (padding, other groups)
  int64_t row_origin;  // y's column 0 is this row
  const float* x;
  int64_t x_stride, tokens;
  float* y;
  int64_t y_stride;
};
void RunTilesScalar(const TileJob& job);
void RunTilesAvx2(const TileJob& job);
void RunTilesAvx512(const TileJob& job);
void RunTilesAvx512Vbmi(const TileJob& job);

}  // namespace v4agent::engine::kernels
