#include "engine/sampler/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace v4agent::engine {
namespace {

// The sampler's ranking: higher logit first, lower id on ties. A strict total order, so a
// selection or partial sort under it puts exactly the same ids first as a full sort would.
bool RanksBefore(const Sampler::Candidate& a, const Sampler::Candidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

bool Drawable(float v) { return !std::isnan(v) && v != -std::numeric_limits<float>::infinity(); }

}  // namespace

Sampler::Sampler(const SamplerOptions& options) : options_(options), rng_(options.seed) {}

int32_t Sampler::Sample(std::span<const float> logits_in) {
  logits_.assign(logits_in.begin(), logits_in.end());
  if (mask_) mask_(logits_);
  const int64_t n = static_cast<int64_t>(logits_.size());
  int64_t best = -1;
  for (int64_t i = 0; i < n; ++i) {
    if (!Drawable(logits_[i])) continue;
    if (best < 0 || logits_[i] > logits_[best]) best = i;
  }
  if (best < 0) return -1;
  if (options_.temperature <= 0.0f) return static_cast<int32_t>(best);

  // +inf logits: the distribution is uniform over them (exp(inf - inf) would be NaN).
  const double mx = logits_[best];
  const bool inf_max = std::isinf(mx);
  std::vector<Candidate>& c = candidates_;
  c.clear();
  for (int64_t i = 0; i < n; ++i) {
    if (Drawable(logits_[i])) c.push_back({logits_[i], static_cast<int32_t>(i), 0.0});
  }
  size_t k = c.size();
  if (options_.top_k > 0 && static_cast<size_t>(options_.top_k) < k) {
    k = static_cast<size_t>(options_.top_k);
    std::nth_element(c.begin(), c.begin() + static_cast<ptrdiff_t>(k - 1), c.end(), RanksBefore);
    c.resize(k);
  }
  double total = 0;
  for (Candidate& x : c) {
    x.weight = inf_max ? (std::isinf(x.logit) ? 1.0 : 0.0)
                       : std::exp((x.logit - mx) / options_.temperature);
    total += x.weight;
  }
  size_t keep = k;
  if (options_.top_p < 1.0f) {
    // The nucleus: the shortest rank-ordered prefix holding top_p of the mass. First a coarse
    // pass: buckets of half a nat below the maximum (weight ratios of e^-0.5), whose order is
    // the rank order; the buckets above the one where the mass crosses the target are kept
    // whole, those below dropped. Inside the crossing bucket, halving: select the better-ranked
    // half of what is undecided, keep it whole if it holds less mass than is still needed,
    // else look inside it. Linear in the candidates, where sorting a flat row's nucleus (most
    // of the vocabulary) would not be; only the last few undecided candidates are sorted. The
    // draw below needs the set, not its order.
    constexpr int kBuckets = 96;  // the last also holds everything beyond 47.5 nats
    const double inv_t2 = 2.0 / options_.temperature;
    auto bucket_of = [&](const Candidate& x) {
      if (inf_max) return std::isinf(x.logit) ? 0 : kBuckets - 1;
      const double d = (mx - x.logit) * inv_t2;
      return d >= kBuckets - 1 ? kBuckets - 1 : static_cast<int>(d);
    };
    double mass[kBuckets] = {};
    for (const Candidate& x : c) mass[bucket_of(x)] += x.weight;
    double need = options_.top_p * total;
    int cut = 0;
    while (cut < kBuckets - 1 && mass[cut] < need) need -= mass[cut++];
    const auto above =
        std::partition(c.begin(), c.end(), [&](const Candidate& x) { return bucket_of(x) < cut; });
    const auto crossing =
        std::partition(above, c.end(), [&](const Candidate& x) { return bucket_of(x) == cut; });
    size_t lo = static_cast<size_t>(above - c.begin());
    size_t hi = static_cast<size_t>(crossing - c.begin());
    while (hi - lo > 16) {
      const auto mid = c.begin() + static_cast<ptrdiff_t>(lo + (hi - lo) / 2);
      std::nth_element(c.begin() + static_cast<ptrdiff_t>(lo), mid,
                       c.begin() + static_cast<ptrdiff_t>(hi), RanksBefore);
      double upper = 0;
      for (auto it = c.begin() + static_cast<ptrdiff_t>(lo); it != mid; ++it) upper += it->weight;
      if (upper >= need) {
        hi = static_cast<size_t>(mid - c.begin());
      } else {
        need -= upper;
        lo = static_cast<size_t>(mid - c.begin());
      }
    }
    std::sort(c.begin() + static_cast<ptrdiff_t>(lo), c.begin() + static_cast<ptrdiff_t>(hi),
              RanksBefore);
    keep = hi;  // rounding can leave the sum just short of the target: keep all then
    double cum = 0;
    for (size_t i = lo; i < hi; ++i) {
      cum += c[i].weight;
      if (cum >= need) {
        keep = i + 1;
        break;
      }
    }
    total = 0;
    for (size_t i = 0; i < keep; ++i) total += c[i].weight;
  }
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const double r = u(rng_) * total;
  double cum = 0;
  for (size_t i = 0; i < keep; ++i) {
    cum += c[i].weight;
    if (r < cum) return c[i].id;
  }
  // r landed in the rounding gap at the top: the last candidate with any weight.
  for (size_t i = keep; i-- > 0;) {
    if (c[i].weight > 0) return c[i].id;
  }
  return c[0].id;
}

}  // namespace v4agent::engine
