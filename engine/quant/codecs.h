// Exact scalar codecs of the V4 checkpoint and of the model's in-attention quantization
// simulations: e4m3fn (FP8), e2m1 (FP4), UE8M0 (power-of-two scales), FP8 128x128 block and
// FP4 per-32 dequantization, and the FP8 KV (blocks of 64) / FP4 indexer (blocks of 32)
// round trips of spec §4.8. Pure functions, bit-exact with the reference; no allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace v4agent::engine::quant {

// Table lookups (0x7F / 0xFF decode to NaN).
float E4M3ToFloat(uint8_t byte);
// Codes 0..15; bit 3 is the sign.
float E2M1ToFloat(uint8_t code);
// Every e2m1 code's value (bit 3 the sign): E2M1ToFloat's table, and the one the SIMD
// kernels permute, 64-byte aligned for a vector load.
alignas(64) inline constexpr float kE2m1Table[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,
                                                     4.0f,  6.0f,  -0.0f, -0.5f, -1.0f, -1.5f,
                                                     -2.0f, -3.0f, -4.0f, -6.0f};
// 2^(byte - 127); 0xFF is NaN.
float Ue8m0ToFloat(uint8_t byte);

// Round-to-nearest-even into e4m3fn. |x| must already be clamped to <= 448 (the simulation
// clamps first); larger finite values saturate to ±448, NaN maps to 0x7F.
uint8_t FloatToE4M3(float x);
// Round-to-nearest-even into e2m1 (|x| <= 6 expected; larger saturates to ±6).
uint8_t FloatToE2M1(float x);

// ceil(log2(x)) read from the fp32 bits: exponent - 127, plus 1 if any mantissa bit is set.
// x must be a positive normal number.
int CeilLog2Bits(float x);

// The model's FP8 KV simulation, in place, over consecutive blocks of `block` (64) values:
// amax = max(max|x|, 1e-4); s = 2^ceil(log2(amax * fl32(1/448))); x = e4m3(clamp(x/s)) * s.
// Optionally reports the per-block scale exponents (s = 2^exp) and the e4m3 codes.
void Fp8Simulate(std::span<float> x, size_t block, int* scale_exps = nullptr,
                 uint8_t* codes = nullptr);
// The FP4 indexer simulation, in place, over blocks of `block` (32) values:
// amax = max(max|x|, 6 * 2^-126); s = 2^ceil(log2(amax * fl32(1/6))); x = e2m1(clamp(x/s)) * s.
void Fp4Simulate(std::span<float> x, size_t block, int* scale_exps = nullptr,
                 uint8_t* codes = nullptr);

// Dequantizes row `row` of an FP8 e4m3 matrix [rows, cols] with UE8M0 block scales
// [ceil(rows/128), ceil(cols/128)] into out[cols].
void DequantFp8Row(const uint8_t* weight, const uint8_t* scale, int64_t rows, int64_t cols,
                   int64_t row, float* out);
// Dequantizes row `row` of a packed FP4 matrix (bytes [rows, cols/2], low nibble = even
// element) with UE8M0 scales [rows, cols/32] into out[cols].
void DequantFp4Row(const uint8_t* packed, const uint8_t* scale, int64_t rows, int64_t cols,
                   int64_t row, float* out);
// Quantizes a [rows, cols] fp32 matrix as the release checkpoints store FP8 weights: per
// 128x128 block, scale 2^e with e = ceil(log2(amax / 448)) (UE8M0 byte e + 127) and e4m3 codes
// of clamp(x / 2^e). bytes [rows * cols], scales [ceil(rows/128) * ceil(cols/128)].
void QuantizeFp8Blocks(const float* m, int64_t rows, int64_t cols, uint8_t* bytes, uint8_t* scales);
// The FP4 expert format: per row and 32 columns, scale 2^ceil(log2(amax / 6)) and e2m1 codes,
// two per byte (low nibble = even column). cols % 32 == 0; packed [rows * cols / 2] (zeroed
// here), scales [rows * cols / 32].
void QuantizeFp4Rows(const float* m, int64_t rows, int64_t cols, uint8_t* packed, uint8_t* scales);
// bf16 -> fp32 (the upper 16 bits of an fp32).
inline float Bf16ToFloat(uint16_t v) {
  uint32_t bits = static_cast<uint32_t>(v) << 16;
  float f;
  __builtin_memcpy(&f, &bits, 4);
  return f;
}
// fp32 -> bf16 with round-to-nearest-even (NaN stays NaN).
uint16_t FloatToBf16(float x);
// fp16 -> fp32.
float F16ToFloat(uint16_t v);

}  // namespace v4agent::engine::quant
