// Twin tests of the fast linear kernels (kernels/cpu/packed_matmul.h) against the exact ones
// on the same random checkpoint-format matrices, at V4's real widths and at sizes that do not
// divide the tiles:
// - every instruction set this CPU has (forced in turn) gives bit for bit the scalar oracle's
//   result, which follows the summation order packed_linear.h fixes;
// - one token at a time and many tokens together give bit-identical rows (prefill == decode);
// - 1 and 2 threads give bit-identical results;
// - against the exact path (MatMulRows without a packed copy) every output is within
//   4 * sqrt(in) * 2^-24 * sum_k |w_k x_k|: both are correctly rounded products summed in two
//   orders, so they differ by rounding noise (a wrong weight read differs by about
//   sum |w x| / in, 16x to 4000x more at these widths);
// - the repacked rows dequantize to exactly the checkpoint's values;
// - malformed weights are errors naming the tensor.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "common/thread_pool.h"
#include "engine/kernels/cpu/ops.h"
#include "engine/kernels/cpu/packed_linear.h"
#include "engine/kernels/cpu/packed_matmul.h"
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

std::vector<float> Oracle(const kernels::PackedLinear& p, int64_t row_begin, int64_t row_end,
                          const std::vector<float>& x, int64_t tokens) {
  return testing::RunTiles(kernels::RunTilesScalar, p, row_begin, row_end, x, tokens);
}

std::vector<Isa> Isas() {
  std::vector<Isa> out = {Isa::kScalar};
  if (kernels::DetectIsa() >= Isa::kAvx2) out.push_back(Isa::kAvx2);
  if (kernels::DetectIsa() >= Isa::kAvx512) out.push_back(Isa::kAvx512);
  if (kernels::DetectIsa() >= Isa::kAvx512Vbmi) out.push_back(Isa::kAvx512Vbmi);
  return out;
}

class PackedKernelTest : public ::testing::TestWithParam<Shape> {};

TEST_P(PackedKernelTest, TwinOfTheExactKernelBitExactAcrossIsasTokensAndThreads) {
  const Shape& s = GetParam();
  auto w = RandomLinear(s.format, s.out, s.in, 11 + s.out * 7 + s.in);
  auto packed = kernels::PackLinear(w->linear);
  ASSERT_TRUE(packed.ok()) << packed.status().ToString();
  const kernels::PackedLinear& p = *packed;
  ThreadPool one(1), two(2);
  IsaGuard guard;
  // Whole matrix, and a range that starts on a later tile and stops inside one.
  std::vector<std::pair<int64_t, int64_t>> ranges = {{0, s.out}};
  if (s.out > 40) ranges.push_back({16, s.out - 3});
  const int64_t kTokens = s.out * s.in > (int64_t{1} << 26) ? 3 : 13;  // 12-token blocks + 1
  auto x = RandomX(kTokens, s.in, 5);
  for (auto [rb, re] : ranges) {
    const int64_t rows = re - rb;
    auto oracle = Oracle(p, rb, re, x, kTokens);
    for (Isa isa : Isas()) {
      kernels::ForceIsa(isa);
      SCOPED_TRACE(std::string(FormatName(s.format)) + " " + s.what + " isa " +
                   kernels::IsaName(isa) + " rows [" + std::to_string(rb) + ", " +
                   std::to_string(re) + ")");
      auto many = Packed(p, rb, re, x, kTokens, &two);
      ASSERT_EQ(0, std::memcmp(many.data(), oracle.data(), many.size() * 4))
          << "GEMM differs from the scalar oracle";
      auto many1 = Packed(p, rb, re, x, kTokens, &one);
      ASSERT_EQ(0, std::memcmp(many1.data(), many.data(), many.size() * 4))
          << "1 thread differs from 2";
      for (int64_t t = 0; t < kTokens; ++t) {
        std::vector<float> xt(x.begin() + t * s.in, x.begin() + (t + 1) * s.in);
        auto single = Packed(p, rb, re, xt, 1, t % 2 ? &one : &two);
        ASSERT_EQ(0, std::memcmp(single.data(), many.data() + t * rows, rows * 4))
            << "token " << t << " alone differs from its row in a batch of " << kTokens;
      }
      // A few tokens together (decode of several sequences): their own path, same bits.
      for (int64_t n : {2, 3, 4, 5, 8}) {
        if (n > kTokens) continue;
        std::vector<float> xn(x.begin(), x.begin() + n * s.in);
        auto few = Packed(p, rb, re, xn, n, n % 2 ? &one : &two);
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
      const double tol = 4 * std::sqrt(double(s.in)) * std::ldexp(1.0, -24) * mag + 1e-30;
      const double err = std::fabs(double(fast[t * s.out + o]) - exact[t * s.out + o]);
      worst = std::max(worst, err / tol);
      ASSERT_LE(err, tol) << "row " << o << " token " << t << ": fast " << fast[t * s.out + o]
                          << " exact " << exact[t * s.out + o];
    }
  }
  RecordProperty("worst_error_over_tolerance", std::to_string(worst));
}

TEST_P(PackedKernelTest, RepackedRowsAreTheCheckpointValues) {
  const Shape& s = GetParam();
  if (s.out * s.in > (int64_t{1} << 24)) GTEST_SKIP() << "covered by the smaller shapes";
  auto w = RandomLinear(s.format, s.out, s.in, 3);
  auto p = kernels::PackLinear(w->linear);
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
      // V4-Flash widths: D = 4096, q LoRA 1024, 64 heads x 512 = 32768, o groups 8 x 1024,
      // expert width 2048, indexer 64 heads x 128, the vocabulary 129,280.
      {F::kFP8, 1024, 4096, "wq_a"},
      {F::kFP8, 32768, 1024, "wq_b"},
      {F::kFP8, 512, 4096, "wkv (head dim 512)"},
      {F::kFP8, 4096, 8192, "wo_b"},
      {F::kFP8, 8192, 1024, "indexer wq_b (64 x 128)"},
      {F::kFP4, 2048, 4096, "expert w1"},
      {F::kFP4, 4096, 2048, "expert w2"},
      {F::kBF16, 64, 4096, "indexer weights_proj"},
      {F::kBF16, 129280, 256, "vocabulary rows"},
      {F::kBF16, 256, 4096, "head slice"},
      {F::kF32, 48, 4096, "f32"},
      // Sizes that do not divide the tiles, the 8-tile groups, the 128-column FP8 blocks or
      // the bf16 column pairs.
      {F::kFP8, 1, 1, "1x1"},
      {F::kFP8, 17, 3, "17x3"},
      {F::kFP8, 129, 130, "129x130"},
      {F::kFP8, 200, 257, "200x257"},
      {F::kFP4, 15, 32, "15x32"},
      {F::kFP4, 145, 160, "145x160"},
      {F::kBF16, 33, 1, "33x1"},
      {F::kBF16, 129, 127, "129x127"},
      {F::kBF16, 250, 130, "250x130"},
      {F::kF32, 31, 17, "31x17"},
      {F::kFP8, 33, 1154, "33x1154"},
      {F::kFP4, 17, 1088, "17x1088"},
      {F::kBF16, 40, 2049, "40x2049"},
  };
}

INSTANTIATE_TEST_SUITE_P(Widths, PackedKernelTest, ::testing::ValuesIn(Shapes()),
                         [](const auto& info) {
                           std::string n = std::string(FormatName(info.param.format)) + "_" +
                                           std::to_string(info.param.out) + "x" +
                                           std::to_string(info.param.in);
                           return n;
                         });

// x values whose products with an FP8 block multiplier are not exact in fp32 (overflow, or
// below the normal range): the GEMV must take its multiply-per-weight path and still agree
// with the oracle bit for bit.
TEST(PackedKernelEdgeTest, Fp8ExtremeActivationsKeepTheOrder) {
  auto w = RandomLinear(WeightFormat::kFP8, 256, 384, 9);
  auto p = kernels::PackLinear(w->linear);
  ASSERT_TRUE(p.ok());
  IsaGuard guard;
  for (float extreme : {1e36f, 3e-38f, 1e-44f, std::numeric_limits<float>::infinity()}) {
    auto x = RandomX(1, 384, 2);
    x[5] = extreme;     // block 0
    x[200] = -extreme;  // block 1
    auto oracle = Oracle(*p, 0, 256, x, 1);
    for (Isa isa : Isas()) {
      kernels::ForceIsa(isa);
      auto y = Packed(*p, 0, 256, x, 1, nullptr);
      ASSERT_EQ(0, std::memcmp(y.data(), oracle.data(), y.size() * 4))
          << "x contains " << extreme << ", isa " << kernels::IsaName(isa);
    }
    // Three tokens together, only the middle one extreme: every row still agrees bit for bit.
    auto x3 = RandomX(3, 384, 4);
    x3[384 + 5] = extreme;
    x3[384 + 200] = -extreme;
    auto oracle3 = Oracle(*p, 0, 256, x3, 3);
    for (Isa isa : Isas()) {
      kernels::ForceIsa(isa);
      auto y = Packed(*p, 0, 256, x3, 3, nullptr);
      ASSERT_EQ(0, std::memcmp(y.data(), oracle3.data(), y.size() * 4))
          << "3 tokens, the middle one contains " << extreme << ", isa " << kernels::IsaName(isa);
    }
  }
}

// Several products in one region (PackedMatMulBatch), as the grouped output projection runs
// them: row ranges of one matrix that do not start on a group (160 rows each), each reading
// its own slice of a wider input, writing into a wider output, beside a whole matrix. Every
// output must be PackedMatMul's bits for that range alone, at 1 and 2 threads.
TEST(PackedKernelEdgeTest, BatchOfRowRangesIsEachRangeAlone) {
  constexpr int64_t kGroups = 4, kRows = 160, kIn = 256;
  for (WeightFormat f : {WeightFormat::kFP8, WeightFormat::kFP4, WeightFormat::kBF16}) {
    auto wo = RandomLinear(f, kGroups * kRows, kIn, 21);
    auto whole = RandomLinear(f, 300, kIn, 22);
    auto pw = kernels::PackLinear(wo->linear);
    auto ph = kernels::PackLinear(whole->linear);
    ASSERT_TRUE(pw.ok() && ph.ok());
    for (int64_t tokens : {1, 3}) {
      const auto x = RandomX(tokens, kGroups * kIn, 23);  // group g reads columns g * kIn...
      const auto xh = RandomX(tokens, kIn, 24);
      std::vector<float> want(static_cast<size_t>(tokens * kGroups * kRows));
      for (int64_t g = 0; g < kGroups; ++g) {
        kernels::PackedMatMul(*pw, g * kRows, (g + 1) * kRows, x.data() + g * kIn, kGroups * kIn,
                              tokens, want.data() + g * kRows, kGroups * kRows, nullptr);
      }
      std::vector<float> want_h(static_cast<size_t>(tokens * 300));
      kernels::PackedMatMul(*ph, 0, 300, xh.data(), kIn, tokens, want_h.data(), 300, nullptr);
      for (int threads : {1, 2}) {
        ThreadPool pool(threads);
        std::vector<float> got(want.size(), -1.0f), got_h(want_h.size(), -1.0f);
        std::vector<kernels::PackedProduct> products;
        for (int64_t g = 0; g < kGroups; ++g) {
          products.push_back({&*pw, x.data() + g * kIn, tokens, got.data() + g * kRows, g * kRows,
                              (g + 1) * kRows, kGroups * kIn, kGroups * kRows});
        }
        products.push_back({&*ph, xh.data(), tokens, got_h.data()});
        kernels::PackedMatMulBatch(products.data(), static_cast<int64_t>(products.size()), &pool);
        EXPECT_EQ(0, std::memcmp(got.data(), want.data(), want.size() * 4))
            << FormatName(f) << ", " << tokens << " tokens, " << threads << " threads";
        EXPECT_EQ(0, std::memcmp(got_h.data(), want_h.data(), want_h.size() * 4))
            << FormatName(f) << ", " << tokens << " tokens, " << threads << " threads";
      }
    }
  }
}

TEST(PackedKernelEdgeTest, MalformedWeightsAreErrorsNamingTheTensor) {
  {
    auto w = RandomLinear(WeightFormat::kFP8, 130, 140, 1);
    w->linear.name = "layers.0.attn.wq_a.weight";
    w->data[129 * 140 + 77] = 0xFF;  // e4m3 NaN
    auto p = kernels::PackLinear(w->linear);
    ASSERT_FALSE(p.ok());
    EXPECT_NE(p.status().message().find("layers.0.attn.wq_a.weight"), std::string::npos);
    EXPECT_NE(p.status().message().find("row 129, column 77"), std::string::npos)
        << p.status().message();
    // The same with the tiles split over threads: the first bad row is still the one named.
    ThreadPool two(2);
    auto big = RandomLinear(WeightFormat::kFP8, 4096, 64, 1);
    big->linear.name = "wo_b";
    big->data[4000 * 64 + 3] = 0x7F;
    big->data[3000 * 64 + 9] = 0x7F;
    auto q = kernels::PackLinear(big->linear, &two);
    ASSERT_FALSE(q.ok());
    EXPECT_NE(q.status().message().find("row 3000, column 9"), std::string::npos)
        << q.status().message();
  }
  {
    auto w = RandomLinear(WeightFormat::kFP8, 16, 16, 1);
    w->linear.name = "wkv";
    w->scale[0] = 127 + 8;  // 2^8: beyond the fp32 multiplier's range
    auto p = kernels::PackLinear(w->linear);
    ASSERT_FALSE(p.ok());
    EXPECT_NE(p.status().message().find("wkv"), std::string::npos);
  }
  {
    auto w = RandomLinear(WeightFormat::kFP4, 16, 64, 1);
    w->linear.name = "experts.3.w2";
    w->linear.in = 48;  // not a multiple of 32
    auto p = kernels::PackLinear(w->linear);
    ASSERT_FALSE(p.ok());
    EXPECT_NE(p.status().message().find("experts.3.w2"), std::string::npos);
    EXPECT_NE(p.status().message().find("multiple of 32"), std::string::npos);
  }
}

}  // namespace
}  // namespace v4agent::engine
