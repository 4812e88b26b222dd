// Every CUDA kernel against the CPU reference on the same seeded inputs over a grid of shapes.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "engine/kernels/cpu/ops.h"
#include "engine/kernels/cuda/dequant_cuda.h"
#include "engine/quant/codecs.h"

namespace v4agent::engine {
namespace {

class CudaKernelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda::DeviceCount() == 0) GTEST_SKIP() << "no CUDA device";
  }
  std::vector<uint8_t> Random(size_t n, uint64_t seed, bool scales) {
    std::mt19937_64 rng(seed);
    std::vector<uint8_t> v(n);
    for (auto& b : v) {
      b = static_cast<uint8_t>(rng());
      if (scales)
        b = static_cast<uint8_t>(110 + b % 30);
      else if ((b & 0x7F) == 0x7F)
        b ^= 1;  // no NaN codes
    }
    return v;
  }
};

TEST_F(CudaKernelsTest, DequantMatchesCpu) {
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 32}, {130, 256}, {257, 96}}) {
    auto w = Random(rows * cols, rows, false);
    auto s = Random(((rows + 127) / 128) * ((cols + 127) / 128), cols, true);
    auto gpu = cuda::DequantFp8(w.data(), s.data(), rows, cols);
    ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
    std::vector<float> row(cols);
    for (int64_t r = 0; r < rows; ++r) {
      quant::DequantFp8Row(w.data(), s.data(), rows, cols, r, row.data());
      for (int64_t c = 0; c < cols; ++c) ASSERT_EQ((*gpu)[r * cols + c], row[c]);
    }
    auto p = Random(rows * cols / 2, 7, false);
    auto s4 = Random(rows * cols / 32, 9, true);
    auto gpu4 = cuda::DequantFp4(p.data(), s4.data(), rows, cols);
    ASSERT_TRUE(gpu4.ok());
    for (int64_t r = 0; r < rows; ++r) {
      quant::DequantFp4Row(p.data(), s4.data(), rows, cols, r, row.data());
      for (int64_t c = 0; c < cols; ++c) ASSERT_EQ((*gpu4)[r * cols + c], row[c]);
    }
  }
}

TEST_F(CudaKernelsTest, MatVecMatchesCpuWithinFp32Reordering) {
  const int64_t rows = 300, cols = 512;
  auto w = Random(rows * cols, 3, false);
  auto s = Random(((rows + 127) / 128) * ((cols + 127) / 128), 4, true);
  std::vector<float> x(cols);
  std::mt19937 rng(5);
  std::normal_distribution<float> nd;
  for (auto& v : x) v = nd(rng);
  auto gpu = cuda::MatVecFp8(w.data(), s.data(), rows, cols, x);
  ASSERT_TRUE(gpu.ok());
  std::vector<float> row(cols);
  for (int64_t r = 0; r < rows; ++r) {
    quant::DequantFp8Row(w.data(), s.data(), rows, cols, r, row.data());
    float cpu = kernels::Dot(x.data(), row.data(), cols);
    EXPECT_NEAR((*gpu)[r], cpu, 1e-4f * (1 + std::fabs(cpu))) << r;
  }
}

}  // namespace
}  // namespace v4agent::engine
