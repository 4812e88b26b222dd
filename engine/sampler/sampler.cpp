#include "engine/sampler/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

namespace v4agent::engine {

Sampler::Sampler(const SamplerOptions& options) : options_(options), rng_(options.seed) {}

int32_t Sampler::Sample(std::span<const float> logits_in) {
  std::vector<float> logits(logits_in.begin(), logits_in.end());
  if (mask_) mask_(logits);
  const int64_t n = static_cast<int64_t>(logits.size());
  int64_t best = -1;
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(logits[i]) || logits[i] == -std::numeric_limits<float>::infinity()) continue;
    if (best < 0 || logits[i] > logits[best]) best = i;
  }
  if (best < 0) return -1;
  if (options_.temperature <= 0.0f) return static_cast<int32_t>(best);

  std::vector<int32_t> ids;
  for (int64_t i = 0; i < n; ++i) {
    if (logits[i] > -std::numeric_limits<float>::infinity() && !std::isnan(logits[i])) {
      ids.push_back(static_cast<int32_t>(i));
    }
  }
  std::stable_sort(ids.begin(), ids.end(),
                   [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  if (options_.top_k > 0 && static_cast<int64_t>(ids.size()) > options_.top_k) {
    ids.resize(static_cast<size_t>(options_.top_k));
  }
  std::vector<double> p(ids.size());
  const double mx = logits[ids[0]];
  double sum = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    sum += (p[i] = std::exp((logits[ids[i]] - mx) / options_.temperature));
  }
  for (auto& v : p) v /= sum;
  if (options_.top_p < 1.0f) {
    double cum = 0;
    size_t keep = 0;
    while (keep < p.size()) {
      cum += p[keep++];
      if (cum >= options_.top_p) break;
    }
    ids.resize(keep);
    p.resize(keep);
    double s = std::accumulate(p.begin(), p.end(), 0.0);
    for (auto& v : p) v /= s;
  }
  std::uniform_real_distribution<double> u(0.0, 1.0);
  double r = u(rng_), cum = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    cum += p[i];
    if (r < cum) return ids[i];
  }
  return ids.back();
}

}  // namespace v4agent::engine
