// Optimised CPU kernels against the plain-loop references on seeded inputs over a grid of
// sizes, plus the reference kernels against DeepSeek's vectors (Hadamard, Sinkhorn, RoPE).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "engine/kernels/cpu/attention.h"
#include "engine/kernels/cpu/indexer.h"
#include "engine/kernels/cpu/ops.h"
#include "tests/engine_model/golden_util.h"

namespace v4agent::engine {
namespace {

using testing::OpenCase;
using testing::Read;

TEST(KernelsTest, DotMatchesScalarReferenceBitForBit) {
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  for (int64_t n : {0, 1, 7, 15, 16, 17, 31, 64, 100, 128, 129, 512, 1000, 4096}) {
    std::vector<float> a(n), b(n);
    for (auto& v : a) v = nd(rng);
    for (auto& v : b) v = nd(rng) * 10;
    float x = kernels::Dot(a.data(), b.data(), n), y = kernels::DotScalar(a.data(), b.data(), n);
    EXPECT_EQ(0, std::memcmp(&x, &y, 4)) << "n=" << n << ": " << x << " vs " << y;
  }
}

// V4's widths (64 heads x 512, up to a 128-row window plus chosen entries) and odd shapes
// that leave partial head, row and lane blocks; rows are scattered like the window's.
TEST(KernelsTest, SharedRowsAttentionMatchesScalarLoopsBitForBit) {
  struct Shape {
    int64_t heads, head_dim, n;
  };
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  for (Shape sh : {Shape{64, 512, 1}, Shape{64, 512, 5}, Shape{64, 512, 131}, Shape{64, 512, 256},
                   Shape{7, 72, 9}, Shape{3, 8, 4}, Shape{5, 100, 2}}) {
    std::vector<float> q(sh.heads * sh.head_dim), sink(sh.heads);
    for (auto& v : q) v = nd(rng);
    for (auto& v : sink) v = nd(rng);
    std::vector<std::vector<float>> store(sh.n, std::vector<float>(sh.head_dim));
    std::vector<const float*> rows;
    for (int64_t i = sh.n - 1; i >= 0; --i) {
      for (auto& v : store[i]) v = nd(rng);
      rows.push_back(store[i].data());
    }
    kernels::SharedRowsAttention a;
    a.q = q.data();
    a.rows = rows.data();
    a.n = sh.n;
    a.head_dim = sh.head_dim;
    a.sink = sink.data();
    a.scale = 1.0f / std::sqrt(static_cast<float>(sh.head_dim));
    std::vector<float> want(q.size(), -1.0f), got(q.size(), -2.0f), split(q.size(), -3.0f);
    a.o = want.data();
    kernels::AttendSharedRowsScalar(a, 0, sh.heads);
    a.o = got.data();
    kernels::AttendSharedRows(a, 0, sh.heads);
    // Any split of the heads (as threads take them) gives the same bits.
    a.o = split.data();
    const int64_t cut = sh.heads / 2 + 1;
    kernels::AttendSharedRows(a, cut, sh.heads);
    kernels::AttendSharedRows(a, 0, cut);
    EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * 4))
        << sh.heads << "x" << sh.head_dim << " over " << sh.n << " rows";
    EXPECT_EQ(0, std::memcmp(want.data(), split.data(), want.size() * 4));
    // The probabilities sum to at most 1 (the sink takes the rest): outputs stay in the rows'
    // range.
    float lim = 0;
    for (const auto& r : store)
      for (float v : r) lim = std::max(lim, std::fabs(v));
    for (float v : got) ASSERT_LE(std::fabs(v), lim * 1.0001f);
  }
}

// V4's indexer (64 heads x 128) and odd shapes; negative dots exercise the ReLU, and some
// keys are exact zeros (index scores of 0 are common, and ties matter to the top-k).
TEST(KernelsTest, IndexScoresMatchScalarLoopsBitForBit) {
  struct Shape {
    int64_t heads, dim, n;
  };
  std::mt19937 rng(5);
  std::normal_distribution<float> nd;
  for (Shape sh : {Shape{64, 128, 1}, Shape{64, 128, 7}, Shape{64, 128, 300}, Shape{3, 40, 9},
                   Shape{1, 16, 4}, Shape{6, 130, 5}}) {
    std::vector<float> q(sh.heads * sh.dim), w(sh.heads);
    for (auto& v : q) v = nd(rng);
    for (auto& v : w) v = std::fabs(nd(rng));
    std::vector<std::vector<float>> store(sh.n, std::vector<float>(sh.dim));
    std::vector<const float*> keys;
    for (int64_t i = 0; i < sh.n; ++i) {
      if (i % 5 != 4) {
        for (auto& v : store[i]) v = nd(rng);
      }
      keys.push_back(store[i].data());
    }
    const kernels::IndexQuery qy{q.data(), w.data(), sh.heads, sh.dim};
    std::vector<float> want(sh.n, -1.0f), got(sh.n, -2.0f), parts(sh.n, -3.0f);
    kernels::IndexScoresScalar(qy, keys.data(), sh.n, want.data());
    kernels::IndexScores(qy, keys.data(), sh.n, got.data());
    // Keys split into two calls, as threads and tiles split them.
    const int64_t cut = sh.n / 3;
    kernels::IndexScores(qy, keys.data(), cut, parts.data());
    kernels::IndexScores(qy, keys.data() + cut, sh.n - cut, parts.data() + cut);
    EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * 4))
        << sh.heads << "x" << sh.dim << " over " << sh.n << " keys";
    EXPECT_EQ(0, std::memcmp(want.data(), parts.data(), want.size() * 4));
    if (sh.n > 4) {
      EXPECT_EQ(got[4], 0.0f);  // a zero key scores 0 under ReLU
    }
  }
}

TEST(KernelsTest, HadamardMatchesReference) {
  auto v = OpenCase("codec/codec_vectors.safetensors");
  auto in = Read<float>(*v, "hadamard128_input");
  auto out = Read<float>(*v, "hadamard128_output");
  for (size_t r = 0; r < in.size() / 128; ++r) {
    std::vector<float> x(in.begin() + r * 128, in.begin() + (r + 1) * 128);
    kernels::HadamardRotate(x.data(), 128);
    for (int i = 0; i < 128; ++i) EXPECT_NEAR(x[i], out[r * 128 + i], 2e-6f) << r << "," << i;
  }
}

TEST(KernelsTest, SinkhornMatchesReference) {
  auto v = OpenCase("codec/codec_vectors.safetensors");
  auto mixes = Read<float>(*v, "sinkhorn_mixes");
  auto scale = Read<float>(*v, "sinkhorn_hc_scale");
  auto base = Read<float>(*v, "sinkhorn_hc_base");
  auto comb = Read<float>(*v, "sinkhorn_comb");
  const int hc = 4;
  for (size_t r = 0; r < mixes.size() / 24; ++r) {
    float c[16];
    for (int i = 0; i < 16; ++i) c[i] = mixes[r * 24 + 8 + i] * scale[2] + base[8 + i];
    kernels::SinkhornInPlace(c, hc, 20, 1e-6f);
    for (int i = 0; i < 16; ++i) EXPECT_NEAR(c[i], comb[r * 16 + i], 1e-6f) << r << "," << i;
  }
}

TEST(KernelsTest, RopeTablesMatchReference) {
  auto v = OpenCase("codec/codec_vectors.safetensors");
  auto pos = Read<int32_t>(*v, "rope_positions");
  struct Case {
    const char* name;
    double base;
    bool yarn;
    int64_t orig;
  } cases[] = {{"rope_tiny-fast_swa", 10000, false, 32},
               {"rope_tiny-fast_compressed", 160000, true, 32},
               {"rope_mini-flash_swa", 10000, false, 256},
               {"rope_mini-flash_compressed", 160000, true, 256}};
  for (const auto& c : cases) {
    if (v->Find(std::string(c.name) + "_cos") == nullptr) continue;
    kernels::RopeParams p;
    p.base = c.base;
    p.yarn = c.yarn;
    p.factor = 16;
    p.original_seq_len = c.orig;
    auto freqs = kernels::RopeFrequencies(64, p);
    auto cos = Read<float>(*v, std::string(c.name) + "_cos");
    auto sin = Read<float>(*v, std::string(c.name) + "_sin");
    for (size_t r = 0; r < pos.size(); ++r) {
      for (int i = 0; i < 32; ++i) {
        // Rotating (1, 0) by the angle gives (cos, sin).
        float x[2] = {1.0f, 0.0f};
        std::vector<float> f1 = {freqs[i]};
        kernels::ApplyRope(x, f1, pos[r], false);
        EXPECT_NEAR(x[0], cos[r * 32 + i], 2e-6f) << c.name << " pos " << pos[r] << " pair " << i;
        EXPECT_NEAR(x[1], sin[r * 32 + i], 2e-6f) << c.name << " pos " << pos[r] << " pair " << i;
      }
    }
  }
}

TEST(KernelsTest, TopKBreaksTiesTowardTheLowerIndex) {
  std::vector<float> s = {0.0f, 1.0f, -0.0f, 1.0f, 0.5f, 0.0f};
  EXPECT_EQ(kernels::TopKStable(s.data(), 6, 4), (std::vector<int32_t>{1, 3, 4, 0}));
  EXPECT_EQ(kernels::TopKStable(s.data(), 6, 6), (std::vector<int32_t>{1, 3, 4, 0, 2, 5}));
  EXPECT_TRUE(kernels::TopKStable(s.data(), 6, 0).empty());
  EXPECT_EQ(kernels::TopKStable(s.data(), 2, 5), (std::vector<int32_t>{1, 0}));
}

TEST(KernelsTest, TopKEqualsAFullStableSortOnRandomScoresWithTies) {
  std::mt19937 rng(12);
  for (int trial = 0; trial < 200; ++trial) {
    const int64_t n = 1 + rng() % 300, k = 1 + rng() % 40;
    std::vector<float> s(static_cast<size_t>(n));
    for (auto& v : s) v = static_cast<float>(static_cast<int>(rng() % 7) - 3);  // many ties
    std::vector<int32_t> want(static_cast<size_t>(n));
    std::iota(want.begin(), want.end(), 0);
    std::stable_sort(want.begin(), want.end(), [&](int32_t a, int32_t b) { return s[a] > s[b]; });
    want.resize(static_cast<size_t>(std::min(n, k)));
    ASSERT_EQ(kernels::TopKStable(s.data(), n, k), want) << "n=" << n << " k=" << k;
  }
}

}  // namespace
}  // namespace v4agent::engine
