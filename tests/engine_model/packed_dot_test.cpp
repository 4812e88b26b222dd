// Twin tests of the fast-bf16 kernels (kernels/cpu/packed_matmul_dot.h) on random
// checkpoint-format matrices at V4's real widths and at sizes that do not divide the tiles:
// - the AVX-512 BF16 kernel (where the CPU has it) gives the scalar emulation's values exactly
//   (the emulation follows the header's definition; -0 and +0 count as equal);
// - one token alone, a few together and many together give bit-identical rows, on 1 and 2
//   threads (prefill == decode);
// - against the exact fp32 product every output is within 2^-7 * sum_k |w_k x_k|: bf16
//   activations are relatively 2^-9 off, and the flushed subnormal weights weigh less (a
//   wrong weight read differs by about sum |w x| / sqrt(in) or more);
// - the dot layout dequantizes to the checkpoint's values.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "common/thread_pool.h"
#include "engine/kernels/cpu/ops.h"
#include "engine/kernels/cpu/packed_linear.h"
#include "engine/kernels/cpu/packed_matmul.h"
#include "engine/kernels/cpu/packed_matmul_dot.h"
#include "engine/weights/random_linear.h"
#include "tests/engine_model/packed_test_util.h"

namespace v4agent::engine {
namespace {

using kernels::Isa;

using testing::FormatName;
using testing::IsaGuard;
using testing::Packed;
using testing::RandomX;
using testing::Shape;

std::vector<float> Emulated(const kernels::PackedLinear& p, int64_t row_begin, int64_t row_end,
                            const std::vector<float>& x, int64_t tokens) {
  return testing::RunTiles(kernels::RunTilesDotScalar, p, row_begin, row_end, x, tokens);
}

// Values equal (-0 == +0; NaN equals NaN): the index of the first difference, or -1.
int64_t FirstValueDifference(const std::vector<float>& a, const std::vector<float>& b) {
  for (size_t i = 0; i < a.size(); ++i) {
    if (!(a[i] == b[i]) && !(std::isnan(a[i]) && std::isnan(b[i]))) return static_cast<int64_t>(i);
  }
  return -1;
}

class PackedDotTest : public ::testing::TestWithParam<Shape> {};

TEST_P(PackedDotTest, VectorKernelIsTheEmulationAndEveryBatchingGivesTheSameBits) {
  const Shape& s = GetParam();
  auto w = RandomLinear(s.format, s.out, s.in, 11 + s.out * 7 + s.in);
  auto packed = kernels::PackLinear(w->linear, nullptr, /*bf16_dot=*/true);
  ASSERT_TRUE(packed.ok()) << packed.status().ToString();
  const kernels::PackedLinear& p = *packed;
  ASSERT_TRUE(p.bf16_dot);
  ThreadPool one(1), two(2);
  IsaGuard guard;
  const int64_t kTokens = s.out * s.in > (int64_t{1} << 24) ? 3 : 13;
  auto x = RandomX(kTokens, s.in, 5);
  std::vector<std::pair<int64_t, int64_t>> ranges = {{0, s.out}};
  if (s.out > 40) ranges.push_back({16, s.out - 3});
  for (auto [rb, re] : ranges) {
    SCOPED_TRACE(std::string(s.what) + " rows [" + std::to_string(rb) + ", " + std::to_string(re) +
                 ")");
    const int64_t rows = re - rb;
    auto emulated = Emulated(p, rb, re, x, kTokens);
    for (Isa isa : {Isa::kScalar, kernels::DetectIsa()}) {
      kernels::ForceIsa(isa);
      SCOPED_TRACE(std::string("isa ") + kernels::IsaName(kernels::ActiveIsa()) +
                   (kernels::HasAvx512Bf16() ? " (cpu has avx512bf16)" : ""));
      auto many = Packed(p, rb, re, x, kTokens, &two);
      const int64_t d = FirstValueDifference(many, emulated);
      ASSERT_EQ(d, -1) << "output " << d << ": kernel " << many[d] << ", emulation " << emulated[d];
      auto many1 = Packed(p, rb, re, x, kTokens, &one);
      ASSERT_EQ(0, std::memcmp(many1.data(), many.data(), many.size() * 4))
          << "1 thread differs from 2";
      for (int64_t t = 0; t < kTokens; ++t) {
        std::vector<float> xt(x.begin() + t * s.in, x.begin() + (t + 1) * s.in);
        auto single = Packed(p, rb, re, xt, 1, t % 2 ? &one : &two);
        ASSERT_EQ(0, std::memcmp(single.data(), many.data() + t * rows, rows * 4))
            << "token " << t << " alone differs from its row in a batch of " << kTokens;
      }
      for (int64_t n : {2, 3, 4, 5}) {
        if (n > kTokens) continue;
        std::vector<float> xn(x.begin(), x.begin() + n * s.in);
        auto few = Packed(p, rb, re, xn, n, &two);
        ASSERT_EQ(0, std::memcmp(few.data(), many.data(), few.size() * 4))
            << n << " tokens together differ from their rows in a batch of " << kTokens;
      }
    }
  }
  // Against the exact path.
  std::vector<float> exact(static_cast<size_t>(kTokens * s.out));
  kernels::MatMulRows(w->linear, 0, s.out, x.data(), s.in, kTokens, exact.data(), s.out, &two);
  auto fast = Packed(p, 0, s.out, x, kTokens, &two);
  std::vector<float> row(static_cast<size_t>(s.in));
  double worst = 0;
  for (int64_t o = 0; o < s.out; ++o) {
    w->linear.DequantRow(o, row.data());
    for (int64_t t = 0; t < kTokens; ++t) {
      double mag = 0;
      for (int64_t k = 0; k < s.in; ++k) mag += std::fabs(double(row[k]) * x[t * s.in + k]);
      const double tol = std::ldexp(mag, -7) + 1e-30;
      const double err = std::fabs(double(fast[t * s.out + o]) - exact[t * s.out + o]);
      worst = std::max(worst, err / tol);
      ASSERT_LE(err, tol) << "row " << o << " token " << t << ": fast-bf16 " << fast[t * s.out + o]
                          << " exact " << exact[t * s.out + o];
    }
  }
  RecordProperty("worst_error_over_tolerance", std::to_string(worst));
}

TEST_P(PackedDotTest, DotLayoutHoldsTheCheckpointValues) {
  const Shape& s = GetParam();
  if (s.out * s.in > (int64_t{1} << 22)) GTEST_SKIP() << "covered by the smaller shapes";
  auto w = RandomLinear(s.format, s.out, s.in, 3);
  auto p = kernels::PackLinear(w->linear, nullptr, true);
  ASSERT_TRUE(p.ok());
  std::vector<float> a(static_cast<size_t>(s.in)), b(static_cast<size_t>(s.in));
  for (int64_t r = 0; r < s.out; ++r) {
    w->linear.DequantRow(r, a.data());
    p->DequantRow(r, b.data());
    ASSERT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4)) << "row " << r;
  }
}

std::vector<Shape> Shapes() {
  using F = WeightFormat;
  return {
      {F::kFP8, 1024, 4096, "wq_a"},
      {F::kFP8, 4096, 1024, "wq_b slice"},
      {F::kFP8, 512, 4096, "wkv (head dim 512)"},
      {F::kFP4, 2048, 4096, "expert w1"},
      {F::kFP4, 4096, 2048, "expert w2"},
      {F::kBF16, 64, 4096, "indexer weights_proj"},
      {F::kBF16, 256, 4096, "head slice"},
      {F::kFP8, 1, 1, "1x1"},
      {F::kFP8, 17, 3, "17x3"},
      {F::kFP8, 129, 130, "129x130"},
      {F::kFP8, 200, 257, "200x257"},
      {F::kFP4, 15, 32, "15x32"},
      {F::kFP4, 145, 160, "145x160"},
      {F::kBF16, 33, 1, "33x1"},
      {F::kBF16, 129, 127, "129x127"},
      {F::kFP8, 33, 1154, "33x1154"},
      {F::kFP4, 17, 1088, "17x1088"},
      {F::kBF16, 40, 2049, "40x2049"},
  };
}

INSTANTIATE_TEST_SUITE_P(Widths, PackedDotTest, ::testing::ValuesIn(Shapes()),
                         [](const auto& info) {
                           return std::string(FormatName(info.param.format)) + "_" +
                                  std::to_string(info.param.out) + "x" +
                                  std::to_string(info.param.in);
                         });

// Activations at the ends of the range: all zero, tiny, huge, with NaN or infinity. The
// kernel still gives the emulation's values, and a zero row gives zeros.
TEST(PackedDotEdgeTest, ExtremeActivationsFollowTheDefinition) {
  IsaGuard guard;
  for (WeightFormat f : {WeightFormat::kFP8, WeightFormat::kFP4, WeightFormat::kBF16}) {
    auto w = RandomLinear(f, 48, 256, 9);
    auto p = kernels::PackLinear(w->linear, nullptr, true);
    ASSERT_TRUE(p.ok());
    for (float v :
         {0.0f, 1e-40f, 3e-38f, 1e30f, std::numeric_limits<float>::infinity(), std::nanf("")}) {
      auto x = RandomX(2, 256, 2);
      if (v == 0) {
        std::fill(x.begin(), x.begin() + 256, 0.0f);
      } else {
        for (int k = 0; k < 256; k += 7) x[k] *= v;
      }
      auto emulated = Emulated(*p, 0, 48, x, 2);
      kernels::ForceIsa(kernels::DetectIsa());
      auto y = Packed(*p, 0, 48, x, 2, nullptr);
      const int64_t d = FirstValueDifference(y, emulated);
      ASSERT_EQ(d, -1) << FormatName(f) << " x scaled by " << v << ": output " << d << " kernel "
                       << y[d] << " emulation " << emulated[d];
      if (v == 0) {
        for (int o = 0; o < 48; ++o) ASSERT_EQ(y[o], 0.0f);
      }
    }
  }
}

TEST(PackedDotEdgeTest, ShiftAndRoundingDefinition) {
  EXPECT_EQ(kernels::DotShift(1.0f, WeightFormat::kFP4), 0);
  EXPECT_EQ(kernels::DotShift(3.0f, WeightFormat::kFP4), -1);
  EXPECT_EQ(kernels::DotShift(3.0f, WeightFormat::kFP8), 99);
  EXPECT_EQ(kernels::DotShift(0.0f, WeightFormat::kFP8), 0);
  EXPECT_EQ(kernels::DotShift(std::numeric_limits<float>::infinity(), WeightFormat::kFP8), 0);
  EXPECT_EQ(kernels::DotShift(1e-45f, WeightFormat::kFP8), 126);
  EXPECT_EQ(kernels::Bf16Rne(1.0f), 0x3F80);
  EXPECT_EQ(kernels::Bf16Rne(1.0f + std::ldexp(1.0f, -8)), 0x3F80);      // tie to even
  EXPECT_EQ(kernels::Bf16Rne(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3F82);  // tie to even, up
  EXPECT_EQ(kernels::Bf16Rne(-2.0f), 0xC000);
}

}  // namespace
}  // namespace v4agent::engine
