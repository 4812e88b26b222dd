// The sampling distribution of sampler.h written the plain way: every drawable id ranked by a
// full stable sort, cut to top-k and to the top-p nucleus, normalized. The oracle the sampler's
// tests compare it with and the baseline its benchmark times it against (it is what Sample did
// before it stopped sorting the whole vocabulary). Not for use on the decode path.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "engine/sampler/sampler.h"

namespace v4agent::engine {

// (id, probability) in rank order; ids of probability 0 (underflow) are left out. Empty when no
// logit is drawable. `options.temperature` must be > 0.
std::vector<std::pair<int32_t, double>> ReferenceDistribution(std::span<const float> logits,
                                                              const SamplerOptions& options);

}  // namespace v4agent::engine
