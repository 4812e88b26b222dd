#include "engine/sampler/sampler_reference.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace v4agent::engine {

std::vector<std::pair<int32_t, double>> ReferenceDistribution(std::span<const float> logits,
                                                              const SamplerOptions& o) {
  std::vector<int32_t> ids;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (!std::isnan(logits[i]) && logits[i] != -std::numeric_limits<float>::infinity()) {
      ids.push_back(static_cast<int32_t>(i));
    }
  }
  if (ids.empty()) return {};
  std::stable_sort(ids.begin(), ids.end(),
                   [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  if (o.top_k > 0 && static_cast<int64_t>(ids.size()) > o.top_k) {
    ids.resize(static_cast<size_t>(o.top_k));
  }
  std::vector<double> p(ids.size());
  const double mx = logits[ids[0]];
  for (size_t i = 0; i < ids.size(); ++i) {
    p[i] = std::isinf(mx) ? (std::isinf(logits[ids[i]]) ? 1.0 : 0.0)
                          : std::exp((logits[ids[i]] - mx) / o.temperature);
  }
  double total = std::accumulate(p.begin(), p.end(), 0.0);
  if (o.top_p < 1.0f) {
    double cum = 0;
    size_t keep = 0;
    while (keep < p.size()) {
      cum += p[keep++];
      if (cum >= o.top_p * total) break;
    }
    p.resize(keep);
    total = cum;
  }
  std::vector<std::pair<int32_t, double>> out;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] > 0) out.emplace_back(ids[i], p[i] / total);
  }
  return out;
}

}  // namespace v4agent::engine
