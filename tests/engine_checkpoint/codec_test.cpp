// Codecs bit-for-bit against DeepSeek's reference vectors (tests/goldens/codec).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/json.h"
#include "engine/checkpoint/safetensors.h"
#include "engine/quant/codecs.h"

namespace v4agent::engine {
namespace {

const std::string kCodecDir = std::string(V4_SOURCE_DIR) + "/tests/goldens/codec";

std::unique_ptr<Checkpoint> Vectors() {
  auto c = Checkpoint::Open(kCodecDir + "/codec_vectors.safetensors");
  V4_CHECK(c.ok()) << c.status().ToString();
  return std::move(c).value();
}

uint32_t Bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

TEST(CodecTest, TablesMatchJsonAndVectors) {
  auto j = ReadJsonFile(kCodecDir + "/codec_tables.json");
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  auto v = Vectors();
  auto e4m3 = (*v->Get("e4m3_byte_values"))->Copy<float>();
  ASSERT_EQ(e4m3.size(), 256u);
  for (int b = 0; b < 256; ++b) {
    float ours = quant::E4M3ToFloat(static_cast<uint8_t>(b));
    if (std::isnan(e4m3[b])) {
      EXPECT_TRUE(std::isnan(ours)) << b;
    } else {
      EXPECT_EQ(Bits(ours), Bits(e4m3[b])) << "byte " << b;
      // Encoding every finite value gives its byte back (−0 keeps its sign bit).
      EXPECT_EQ(quant::FloatToE4M3(e4m3[b]), b) << "byte " << b;
    }
  }
  auto e2m1 = (*v->Get("e2m1_code_values"))->Copy<float>();
  for (int c = 0; c < 16; ++c) {
    EXPECT_EQ(Bits(quant::E2M1ToFloat(static_cast<uint8_t>(c))), Bits(e2m1[c])) << c;
    EXPECT_EQ(quant::FloatToE2M1(e2m1[c]), c);
  }
  auto bytes = (*v->Get("ue8m0_sample_bytes"))->Copy<uint8_t>();
  auto values = (*v->Get("ue8m0_sample_values"))->Copy<float>();
  ASSERT_EQ(bytes.size(), values.size());
  for (size_t i = 0; i < bytes.size(); ++i) {
    float ours = quant::Ue8m0ToFloat(bytes[i]);
    if (std::isnan(values[i])) {
      EXPECT_TRUE(std::isnan(ours));
    } else {
      EXPECT_EQ(Bits(ours), Bits(values[i])) << "byte " << int(bytes[i]);
    }
  }
}

TEST(CodecTest, Fp8KvSimulationBitExact) {
  auto v = Vectors();
  auto in = (*v->Get("fp8sim_block64_input"))->Copy<float>();
  auto out = (*v->Get("fp8sim_block64_output"))->Copy<float>();
  auto scale = (*v->Get("fp8sim_block64_scale"))->Copy<float>();
  auto scale_bytes = (*v->Get("fp8sim_block64_scale_ue8m0"))->Copy<uint8_t>();
  auto codes = (*v->Get("fp8sim_block64_codes"))->Copy<uint8_t>();
  std::vector<float> x(in.begin(), in.end());
  std::vector<int> exps(x.size() / 64);
  std::vector<uint8_t> our_codes(x.size());
  quant::Fp8Simulate(x, 64, exps.data(), our_codes.data());
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_EQ(Bits(x[i]), Bits(out[i])) << "element " << i << " in " << in[i];
    ASSERT_EQ(our_codes[i], codes[i]) << "element " << i;
  }
  for (size_t b = 0; b < exps.size(); ++b) {
    EXPECT_EQ(Bits(std::ldexp(1.0f, exps[b])), Bits(scale[b])) << "block " << b;
    EXPECT_EQ(exps[b] + 127, scale_bytes[b]) << "block " << b;
  }
}

TEST(CodecTest, Fp4IndexerSimulationBitExact) {
  auto v = Vectors();
  auto in = (*v->Get("fp4sim_block32_input"))->Copy<float>();
  auto out = (*v->Get("fp4sim_block32_output"))->Copy<float>();
  auto scale = (*v->Get("fp4sim_block32_scale"))->Copy<float>();
  auto scale_bytes = (*v->Get("fp4sim_block32_scale_ue8m0"))->Copy<uint8_t>();
  auto packed = (*v->Get("fp4sim_block32_codes_packed"))->Copy<uint8_t>();
  std::vector<float> x(in.begin(), in.end());
  std::vector<int> exps(x.size() / 32);
  std::vector<uint8_t> our_codes(x.size());
  quant::Fp4Simulate(x, 32, exps.data(), our_codes.data());
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_EQ(Bits(x[i]), Bits(out[i])) << "element " << i << " in " << in[i];
    uint8_t code = (i % 2 == 0) ? (packed[i / 2] & 0xF) : (packed[i / 2] >> 4);
    ASSERT_EQ(our_codes[i], code) << "element " << i;
  }
  for (size_t b = 0; b < exps.size(); ++b) {
    EXPECT_EQ(Bits(std::ldexp(1.0f, exps[b])), Bits(scale[b])) << "block " << b;
    EXPECT_EQ(exps[b] + 127, scale_bytes[b]) << "block " << b;
  }
}

TEST(CodecTest, BlockDequantization) {
  // FP8: a 130x200 matrix spans 2x2 scale blocks; each element is e4m3 * 2^(s-127).
  const int64_t rows = 130, cols = 200;
  std::vector<uint8_t> w(rows * cols);
  for (size_t i = 0; i < w.size(); ++i)
    w[i] = static_cast<uint8_t>((i * 37) % 256 == 0x7F   ? 1
                                : (i * 37) % 256 == 0xFF ? 2
                                                         : (i * 37) % 256);
  std::vector<uint8_t> s = {120, 127, 130, 100};
  std::vector<float> row(cols);
  for (int64_t r : {0L, 127L, 128L, 129L}) {
    quant::DequantFp8Row(w.data(), s.data(), rows, cols, r, row.data());
    for (int64_t c = 0; c < cols; ++c) {
      float expect =
          quant::E4M3ToFloat(w[r * cols + c]) * std::ldexp(1.0f, s[(r / 128) * 2 + c / 128] - 127);
      ASSERT_EQ(Bits(row[c]), Bits(expect)) << r << "," << c;
    }
  }
  // FP4: low nibble is the even element; one scale per 32 elements.
  const int64_t fcols = 64;
  std::vector<uint8_t> packed = std::vector<uint8_t>(2 * fcols / 2);
  for (size_t i = 0; i < packed.size(); ++i) packed[i] = static_cast<uint8_t>(i * 29 + 3);
  std::vector<uint8_t> fs = {127, 126, 129, 120};
  std::vector<float> frow(fcols);
  quant::DequantFp4Row(packed.data(), fs.data(), 2, fcols, 1, frow.data());
  for (int64_t c = 0; c < fcols; ++c) {
    uint8_t byte = packed[32 + c / 2];
    uint8_t code = c % 2 == 0 ? byte & 0xF : byte >> 4;
    EXPECT_EQ(frow[c], quant::E2M1ToFloat(code) * std::ldexp(1.0f, fs[2 + c / 32] - 127));
  }
}

// FloatToE2M1 by its definition: the nearest e2m1 value, the even code on a tie.
uint8_t NearestE2m1(float x) {
  const uint8_t sign = std::signbit(x) ? 8 : 0;
  const float a = std::fabs(x);
  if (std::isnan(a) || a >= 6.0f) return sign | 7;
  int best = 0;
  for (int c = 1; c < 8; ++c) {
    const float d = std::fabs(a - quant::E2M1ToFloat(static_cast<uint8_t>(c)));
    const float bd = std::fabs(a - quant::E2M1ToFloat(static_cast<uint8_t>(best)));
    if (d < bd || (d == bd && c % 2 == 0)) best = c;
  }
  return sign | static_cast<uint8_t>(best);
}

TEST(CodecTest, E2m1RoundsToNearestEvenOnTies) {
  // Every midpoint, the floats a few ulps either side of it, and a stride through all floats
  // up to 8, both signs; then infinities and NaN.
  std::vector<float> probes;
  for (float m : {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f, 6.0f}) {
    float lo = m, hi = m;
    for (int i = 0; i < 4; ++i) {
      lo = std::nextafter(lo, 0.0f);
      hi = std::nextafter(hi, 8.0f);
      probes.insert(probes.end(), {lo, hi});
    }
    probes.push_back(m);
  }
  for (uint32_t b = 0; b <= Bits(8.0f); b += 997) probes.push_back(std::bit_cast<float>(b));
  for (float p : probes) {
    for (float v : {p, -p}) {
      ASSERT_EQ(quant::FloatToE2M1(v), NearestE2m1(v)) << v;
    }
  }
  EXPECT_EQ(quant::FloatToE2M1(0.25f), 0);
  EXPECT_EQ(quant::FloatToE2M1(0.75f), 2);
  EXPECT_EQ(quant::FloatToE2M1(-5.0f), 8 | 6);
  EXPECT_EQ(quant::FloatToE2M1(INFINITY), 7);
  EXPECT_EQ(quant::FloatToE2M1(-INFINITY), 15);
  EXPECT_EQ(quant::FloatToE2M1(NAN), 7);
}

TEST(CodecTest, Bf16RoundTrip) {
  EXPECT_EQ(quant::FloatToBf16(1.0f), 0x3F80);
  EXPECT_EQ(quant::Bf16ToFloat(0x3F80), 1.0f);
  // 1 + 2^-8 is a tie between 1 and 1 + 2^-7: ties to even gives 1.
  EXPECT_EQ(quant::FloatToBf16(1.0f + std::ldexp(1.0f, -8)), 0x3F80);
  EXPECT_EQ(quant::FloatToBf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3F82);
  EXPECT_TRUE(std::isnan(quant::Bf16ToFloat(quant::FloatToBf16(NAN))));
  EXPECT_EQ(quant::F16ToFloat(0x3C00), 1.0f);
  EXPECT_EQ(quant::F16ToFloat(0xC000), -2.0f);
}

}  // namespace
}  // namespace v4agent::engine
