// The sampler against a reference written the plain way (rank every id with a full stable
// sort, cut to top-k and the top-p nucleus, normalize): the same support, and frequencies
// within 5 sigma of the reference's probabilities, on small rows and on V4-sized rows whose
// nucleus takes several growth rounds.
#include "engine/sampler/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <vector>

#include "engine/sampler/sampler_reference.h"

namespace v4agent::engine {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Draws `n` ids; every one must be in the reference's support, and each id's count (or, for
// ids below `min_p`, the count of all of them together) within 5 sigma of n p.
void ExpectMatchesReference(const std::vector<float>& logits, const SamplerOptions& o, int n,
                            double min_p = 0.0) {
  std::map<int32_t, double> ref;
  for (const auto& [id, p] : ReferenceDistribution(logits, o)) ref[id] = p;
  Sampler s(o);
  std::map<int32_t, int> counts;
  for (int i = 0; i < n; ++i) {
    const int32_t id = s.Sample(logits);
    ASSERT_TRUE(ref.count(id)) << "drew id " << id << ", outside the reference's support";
    counts[id]++;
  }
  double small_p = 0;
  int small_count = 0;
  auto check = [&](double p, int c, const std::string& what) {
    const double sigma = std::sqrt(n * p * std::max(0.0, 1 - p));
    EXPECT_LE(std::abs(c - n * p), 5 * sigma + 1) << what << ": p " << p << ", drawn " << c;
  };
  for (const auto& [id, p] : ref) {
    const int c = counts.count(id) ? counts[id] : 0;
    if (p < min_p) {
      small_p += p;
      small_count += c;
    } else {
      check(p, c, "id " + std::to_string(id));
    }
  }
  if (small_p > 0) check(small_p, small_count, "ids below min_p together");
}

TEST(SamplerTest, GreedyTakesTheLowestIdOfTheMaximumAndSkipsMaskedNanAndMinusInf) {
  Sampler greedy(SamplerOptions{});
  EXPECT_EQ(greedy.Sample(std::vector<float>{0.1f, 2.0f, 1.9f, 2.0f}), 1);
  EXPECT_EQ(greedy.Sample(std::vector<float>{NAN, -kInf, -5.0f}), 2);
  greedy.set_mask_hook([](std::span<float> l) { l[1] = -kInf; });
  EXPECT_EQ(greedy.Sample(std::vector<float>{0.1f, 2.0f, 1.9f, -1.0f}), 2);
  greedy.set_mask_hook([](std::span<float> l) { std::fill(l.begin(), l.end(), -kInf); });
  EXPECT_EQ(greedy.Sample(std::vector<float>{0.1f, 2.0f}), -1);
  Sampler hot(SamplerOptions{1.0f, 0, 1.0f, 3});
  hot.set_mask_hook([](std::span<float> l) { std::fill(l.begin(), l.end(), NAN); });
  EXPECT_EQ(hot.Sample(std::vector<float>{0.1f, 2.0f}), -1);
}

TEST(SamplerTest, SmallRowsFollowTheReferenceDistribution) {
  const std::vector<float> row = {0.1f, 2.0f, 1.9f, -1.0f, 2.0f, NAN, -kInf, 0.7f, 1.2f};
  for (float t : {0.3f, 1.0f, 2.5f}) {
    for (int64_t k : {0, 1, 2, 3, 20}) {
      for (float p : {1.0f, 0.9f, 0.5f, 0.05f}) {
        SCOPED_TRACE(testing::Message() << "T " << t << " top_k " << k << " top_p " << p);
        ExpectMatchesReference(row, SamplerOptions{t, k, p, 7}, 4000);
      }
    }
  }
}

TEST(SamplerTest, TopKTiesAreBrokenByTheLowerId) {
  // Four ids share the top logit; top_k 2 keeps ids 2 and 5, never 6 or 9.
  const std::vector<float> row = {0, 0, 3, 0, 0, 3, 3, 0, 0, 3};
  std::map<int32_t, int> counts;
  Sampler s(SamplerOptions{1.0f, 2, 1.0f, 11});
  for (int i = 0; i < 2000; ++i) counts[s.Sample(row)]++;
  EXPECT_EQ(counts.size(), 2u);
  EXPECT_GT(counts[2], 850);
  EXPECT_GT(counts[5], 850);
}

TEST(SamplerTest, PlusInfinityLogitsShareTheMassEvenly) {
  const std::vector<float> row = {1.0f, kInf, 5.0f, kInf};
  ExpectMatchesReference(row, SamplerOptions{0.8f, 0, 1.0f, 5}, 4000);
  ExpectMatchesReference(row, SamplerOptions{0.8f, 0, 0.3f, 5}, 4000);
}

TEST(SamplerTest, V4SizedRowsWithLargeNucleiFollowTheReference) {
  // 129,280 ids: a few hundred scattered ids hold most of the mass with many ties, the rest
  // a long tail; top-p nuclei of about 70, 600 and 5000 ids take one, two and three rounds of
  // the growing sort.
  std::mt19937 rng(9);
  std::vector<float> row(129280);
  std::normal_distribution<float> tail(-6.0f, 1.5f);
  for (float& v : row) v = tail(rng);
  std::uniform_int_distribution<int32_t> any(0, 129279);
  for (int i = 0; i < 700; ++i) row[any(rng)] = static_cast<float>(4 + (i % 3));
  for (int i = 0; i < 300; ++i) row[any(rng)] = -kInf;
  const std::pair<float, int64_t> cases[] = {{0.1f, 0}, {0.6f, 0},    {0.97f, 0},
                                             {1.0f, 0}, {0.6f, 4000}, {0.97f, 50}};
  for (const auto& [p, k] : cases) {
    SCOPED_TRACE(testing::Message() << "top_p " << p << " top_k " << k);
    ExpectMatchesReference(row, SamplerOptions{1.0f, k, p, 13}, 400, 5e-3);
  }
}

TEST(SamplerTest, TheSameSeedGivesTheSameStreamAndMaskedIdsAreNeverDrawn) {
  std::vector<float> row(5000);
  for (size_t i = 0; i < row.size(); ++i) row[i] = static_cast<float>((i * 7919) % 13) * 0.3f;
  SamplerOptions o{0.9f, 0, 0.95f, 42};
  Sampler a(o), b(o);
  auto even_only = [](std::span<float> l) {
    for (size_t i = 1; i < l.size(); i += 2) l[i] = -kInf;
  };
  a.set_mask_hook(even_only);
  b.set_mask_hook(even_only);
  for (int i = 0; i < 300; ++i) {
    const int32_t x = a.Sample(row);
    EXPECT_EQ(x, b.Sample(row));
    EXPECT_EQ(x % 2, 0);
  }
}

}  // namespace
}  // namespace v4agent::engine
