#include "engine/quant/codecs.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>

namespace v4agent::engine::quant {
namespace {

uint32_t Bits(float x) {
  uint32_t b;
  std::memcpy(&b, &x, 4);
  return b;
}

std::array<float, 256> MakeE4M3Table() {
  std::array<float, 256> t{};
  for (int b = 0; b < 256; ++b) {
    int sign = b >> 7, exp = (b >> 3) & 0xF, man = b & 7;
    float v;
    if (exp == 0xF && man == 7) {
      v = std::numeric_limits<float>::quiet_NaN();
    } else if (exp == 0) {
      v = std::ldexp(static_cast<float>(man) / 8.0f, -6);
    } else {
      v = std::ldexp(1.0f + static_cast<float>(man) / 8.0f, exp - 7);
    }
    t[b] = sign ? -v : v;
  }
  return t;
}

}  // namespace

// Built once at start-up (no guard on the hot path).
const std::array<float, 256> kE4M3Table = MakeE4M3Table();

float E4M3ToFloat(uint8_t byte) { return kE4M3Table[byte]; }

float E2M1ToFloat(uint8_t code) { return kE2m1Table[code & 0xF]; }

float Ue8m0ToFloat(uint8_t byte) {
  if (byte == 0xFF) return std::numeric_limits<float>::quiet_NaN();
  // 2^(byte-127) straight from the bits: the exponent field for normals, 2^-127 (a
  // subnormal) for byte 0.
  uint32_t bits = byte == 0 ? 0x00400000u : static_cast<uint32_t>(byte) << 23;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint8_t FloatToE4M3(float x) {
  if (std::isnan(x)) return 0x7F;
  uint8_t sign = std::signbit(x) ? 0x80 : 0;
  float a = std::fabs(x);
  if (a >= 448.0f) return sign | 0x7E;
  if (a == 0.0f) return sign;
  int e;
  std::frexp(a, &e);  // a = f * 2^e, f in [0.5, 1): the binade is [2^(e-1), 2^e)
  int exp = std::max(e - 1, -6);
  // Quantum of the binade: 3 mantissa bits. a / quantum is exact (power-of-two scaling).
  float q = std::ldexp(1.0f, exp - 3);
  float m = std::nearbyint(a / q);  // default rounding mode: nearest, ties to even
  float r = m * q;
  if (r >= 448.0f) return sign | 0x7E;
  // Encode r.
  if (r < std::ldexp(1.0f, -6)) {
    int man = static_cast<int>(r / std::ldexp(1.0f, -9));
    return sign | static_cast<uint8_t>(man);
  }
  int re;
  float f = std::frexp(r, &re);
  int biased = re - 1 + 7;
  int man = static_cast<int>((f * 2.0f - 1.0f) * 8.0f);
  return sign | static_cast<uint8_t>((biased << 3) | man);
}

uint8_t FloatToE2M1(float x) {
  const uint8_t sign = std::signbit(x) ? 8 : 0;
  const float a = std::fabs(x);
  if (std::isnan(a)) return sign | 7;
  // Nearest of 0, 0.5, 1, 1.5, 2, 3, 4, 6: the code is the number of midpoints below a. At a
  // midpoint (a tie) the even code wins, so a midpoint whose upper neighbour has an even code
  // counts when reached (>=), the others only when passed (>). Seven compares instead of a
  // search of the table: the indexer's FP4 simulation rounds 8192 values per layer and token.
  return sign | static_cast<uint8_t>((a > 0.25f) + (a >= 0.75f) + (a > 1.25f) + (a >= 1.75f) +
                                     (a > 2.5f) + (a >= 3.5f) + (a > 5.0f));
}

int CeilLog2Bits(float x) {
  uint32_t b = Bits(x);
  int exp = static_cast<int>((b >> 23) & 0xFF) - 127;
  return exp + ((b & 0x7FFFFF) != 0 ? 1 : 0);
}

namespace {

template <typename Encode, typename Decode>
void SimulateBlocks(std::span<float> x, size_t block, float amax_floor, float inv_max,
                    float max_value, uint8_t sign_bit, Encode encode, Decode decode,
                    int* scale_exps, uint8_t* codes) {
  for (size_t start = 0, b = 0; start < x.size(); start += block, ++b) {
    size_t end = std::min(x.size(), start + block);
    float amax = 0.0f;
    for (size_t i = start; i < end; ++i) amax = std::max(amax, std::fabs(x[i]));
    amax = std::max(amax, amax_floor);
    int exp = CeilLog2Bits(amax * inv_max);
    if (scale_exps) scale_exps[b] = exp;
    float s = std::ldexp(1.0f, exp);
    for (size_t i = start; i < end; ++i) {
      // Rounded on the magnitude, the sign applied after: the reference gives -0 for a
      // negative value that rounds to zero, +0 for an input of -0, and a zero code as +0.
      const bool negative = x[i] < 0.0f;
      float mag = std::min(std::fabs(x[i]) / s, max_value);
      uint8_t code = encode(mag);
      float value = decode(code) * s;
      if (codes) codes[i] = (negative && code != 0) ? static_cast<uint8_t>(code | sign_bit) : code;
      x[i] = negative ? -value : value;
    }
  }
}

}  // namespace

void Fp8Simulate(std::span<float> x, size_t block, int* scale_exps, uint8_t* codes) {
  SimulateBlocks(x, block, 1e-4f, 1.0f / 448.0f, 448.0f, 0x80, FloatToE4M3, E4M3ToFloat, scale_exps,
                 codes);
}

void Fp4Simulate(std::span<float> x, size_t block, int* scale_exps, uint8_t* codes) {
  SimulateBlocks(x, block, 6.0f * std::ldexp(1.0f, -126), 1.0f / 6.0f, 6.0f, 0x8, FloatToE2M1,
                 E2M1ToFloat, scale_exps, codes);
}

void DequantFp8Row(const uint8_t* weight, const uint8_t* scale, int64_t rows, int64_t cols,
                   int64_t row, float* out) {
  const int64_t scale_cols = (cols + 127) / 128;
  const uint8_t* w = weight + row * cols;
  const uint8_t* s = scale + (row / 128) * scale_cols;
  for (int64_t kb = 0; kb < scale_cols; ++kb) {
    float sv = Ue8m0ToFloat(s[kb]);
    int64_t end = std::min(cols, (kb + 1) * 128);
    for (int64_t i = kb * 128; i < end; ++i) out[i] = E4M3ToFloat(w[i]) * sv;
  }
  (void)rows;
}

void DequantFp4Row(const uint8_t* packed, const uint8_t* scale, int64_t rows, int64_t cols,
                   int64_t row, float* out) {
  const uint8_t* p = packed + row * (cols / 2);
  const uint8_t* s = scale + row * (cols / 32);
  for (int64_t i = 0; i < cols; i += 2) {
    float sv = Ue8m0ToFloat(s[i / 32]);
    uint8_t byte = p[i / 2];
    out[i] = E2M1ToFloat(byte & 0xF) * sv;
    out[i + 1] = E2M1ToFloat(byte >> 4) * sv;
  }
  (void)rows;
}

uint16_t FloatToBf16(float x) {
  uint32_t b = Bits(x);
  if (std::isnan(x)) return static_cast<uint16_t>((b >> 16) | 0x40);
  uint32_t rounding = 0x7FFF + ((b >> 16) & 1);
  return static_cast<uint16_t>((b + rounding) >> 16);
}

float F16ToFloat(uint16_t v) {
  int sign = v >> 15, exp = (v >> 10) & 0x1F, man = v & 0x3FF;
  float r;
  if (exp == 0) {
    r = std::ldexp(static_cast<float>(man), -24);
  } else if (exp == 31) {
    r = man ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  } else {
    r = std::ldexp(1.0f + static_cast<float>(man) / 1024.0f, exp - 15);
  }
  return sign ? -r : r;
}

void QuantizeFp8Blocks(const float* m, int64_t rows, int64_t cols, uint8_t* bytes,
                       uint8_t* scales) {
  const int64_t so = (rows + 127) / 128, si = (cols + 127) / 128;
  for (int64_t bo = 0; bo < so; ++bo) {
    const int64_t r_end = std::min(rows, bo * 128 + 128);
    for (int64_t bi = 0; bi < si; ++bi) {
      const int64_t c_end = std::min(cols, bi * 128 + 128);
      float amax = 1e-30f;
      for (int64_t r = bo * 128; r < r_end; ++r) {
        for (int64_t c = bi * 128; c < c_end; ++c)
          amax = std::max(amax, std::fabs(m[r * cols + c]));
      }
      const int e = CeilLog2Bits(amax / 448.0f);
      scales[bo * si + bi] = static_cast<uint8_t>(e + 127);
      const float s = std::ldexp(1.0f, e);
      for (int64_t r = bo * 128; r < r_end; ++r) {
        for (int64_t c = bi * 128; c < c_end; ++c) {
          bytes[r * cols + c] = FloatToE4M3(std::clamp(m[r * cols + c] / s, -448.0f, 448.0f));
        }
      }
    }
  }
}

void QuantizeFp4Rows(const float* m, int64_t rows, int64_t cols, uint8_t* packed, uint8_t* scales) {
  std::fill(packed, packed + rows * cols / 2, uint8_t{0});
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < cols / 32; ++b) {
      const float* blk = m + r * cols + b * 32;
      float amax = 1e-30f;
      for (int64_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(blk[j]));
      const int e = CeilLog2Bits(amax / 6.0f);
      scales[r * (cols / 32) + b] = static_cast<uint8_t>(e + 127);
      const float s = std::ldexp(1.0f, e);
      for (int64_t j = 0; j < 32; ++j) {
        const uint8_t code = FloatToE2M1(std::clamp(blk[j] / s, -6.0f, 6.0f));
        const int64_t idx = r * cols + b * 32 + j;
        packed[idx / 2] |= (idx % 2 == 0) ? code : static_cast<uint8_t>(code << 4);
      }
    }
  }
}

}  // namespace v4agent::engine::quant
