// Token sampling from one row of logits: greedy, temperature, top-k, top-p, seeded RNG, and a
// logit-mask hook (constrained decoding sets disallowed logits to -inf before sampling).
// Deterministic for a given seed. Never touches the model or the cache.
//
// Cost: linear in the vocabulary (top-k is a selection, top-p a bucketed selection; nothing
// sorts more than a few ids). V4's vocabulary is 129,280 ids: sorting all of them for every
// token, as this did before, cost 13-37 ms (build/bench/bench_sampler), more than a decode
// step of the README's model.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <span>
#include <vector>

namespace v4agent::engine {

struct SamplerOptions {
  float temperature = 0.0f;  // 0: greedy (argmax, lowest id on ties)
  int64_t top_k = 0;         // 0: off
  float top_p = 1.0f;        // 1: off
  uint64_t seed = 0;
};

class Sampler {
 public:
  using MaskHook = std::function<void(std::span<float> logits)>;

  explicit Sampler(const SamplerOptions& options);
  void set_mask_hook(MaskHook hook) { mask_ = std::move(hook); }
  const SamplerOptions& options() const { return options_; }

  // Applies the mask hook (if any) to a copy of `logits` and samples a token id: ids ranked by
  // logit (lower id first on ties), cut to the top_k, then to the shortest ranked prefix that
  // holds top_p of the remaining probability, drawn with probability proportional to
  // exp((logit - max) / temperature). NaN and -inf logits are never drawn.
  // Returns -1 when every logit is masked out.
  int32_t Sample(std::span<const float> logits);

  // One candidate: its logit, id and unnormalized probability.
  struct Candidate {
    float logit;
    int32_t id;
    double weight;
  };

 private:
  SamplerOptions options_;
  MaskHook mask_;
  std::mt19937_64 rng_;
  // Reused across calls: a fresh vocabulary-sized buffer per token costs page faults.
  std::vector<float> logits_;
  std::vector<Candidate> candidates_;
};

}  // namespace v4agent::engine
