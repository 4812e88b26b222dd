// Decoding of packed KV-history rows (kv/history_rows.h's FP8-main and FP4-index formats)
// into fp32, many rows per call. Owns only the arithmetic on the bytes of one row layout;
// never knows about chunks, caches or which rows are read.
//
// The AVX-512 path gives the same bits as the plain loops (each value is the code's exact
// value times its block's UE8M0 scale, one rounding, as quant::E4M3ToFloat /
// quant::E2M1ToFloat times quant::Ue8m0ToFloat compute it; NaN codes decode to NaN), which
// the tests check on every byte value.
#pragma once

#include <cstdint>

namespace v4agent::engine::kernels {

// Row layout of FP8-main rows: `nope` e4m3 bytes, one UE8M0 scale per 64 of them, then
// width - nope fp32 values. Decodes `n` rows, `stride` bytes apart, into out [n][width].
void DecodeFp8MainRows(const uint8_t* rows, int64_t stride, int64_t n, int64_t width, int64_t nope,
                       float* out);
// Row layout of FP4-index rows: width / 2 bytes of e2m1 codes (low nibble = even element),
// then one UE8M0 scale per 32 elements. `width` is a multiple of 32.
void DecodeFp4IndexRows(const uint8_t* rows, int64_t stride, int64_t n, int64_t width, float* out);

// The plain loops: the oracle of the two above.
void DecodeFp8MainRowsScalar(const uint8_t* rows, int64_t stride, int64_t n, int64_t width,
                             int64_t nope, float* out);
void DecodeFp4IndexRowsScalar(const uint8_t* rows, int64_t stride, int64_t n, int64_t width,
                              float* out);

}  // namespace v4agent::engine::kernels
