// Token sampling from one row of logits: greedy, temperature, top-k, top-p, seeded RNG, and a
// logit-mask hook (constrained decoding sets disallowed logits to -inf before sampling).
// Deterministic for a given seed. Never touches the model or the cache.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <span>

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

  // Applies the mask hook (if any) to a copy of `logits` and samples a token id.
  // Returns -1 when every logit is masked out.
  int32_t Sample(std::span<const float> logits);

 private:
  SamplerOptions options_;
  MaskHook mask_;
  std::mt19937_64 rng_;
};

}  // namespace v4agent::engine
