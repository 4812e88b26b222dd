// Sampling cost per token on V4-sized rows (129,280 logits), measured in this run against the
// baseline of ranking the whole vocabulary with a stable sort (engine/sampler/sampler_reference.h,
// which is what Sampler::Sample did before): greedy, temperature alone, `v4agent run`'s default
// (temperature 0.6, top-p 0.95) and top-k 40. The rows: a long tail with a peaked head, as a
// trained model gives, and a flat row, as a random-weight model gives (the nucleus is then most
// of the vocabulary).
// Usage: bench_sampler [repetitions]   (default 200)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "common/stopwatch.h"
#include "engine/sampler/sampler.h"
#include "engine/sampler/sampler_reference.h"

using namespace v4agent;
using namespace v4agent::engine;

namespace {

std::vector<float> Row(bool peaked, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> tail(peaked ? -4.0f : 0.0f, peaked ? 2.0f : 0.3f);
  std::vector<float> row(129280);
  for (float& v : row) v = tail(rng);
  if (peaked) {
    for (int i = 0; i < 20; ++i) row[rng() % row.size()] = 8.0f + static_cast<float>(i % 5);
  }
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::max(1, std::atoi(argv[1])) : 200;
  struct Case {
    const char* name;
    SamplerOptions o;
  };
  const Case cases[] = {{"greedy", {0.0f, 0, 1.0f, 1}},
                        {"temperature 1", {1.0f, 0, 1.0f, 1}},
                        {"T 0.6, top-p 0.95 (run)", {0.6f, 0, 0.95f, 1}},
                        {"T 0.8, top-k 40", {0.8f, 40, 1.0f, 1}}};
  std::printf("%-26s %-7s %14s %14s %8s\n", "options", "row", "Sampler us", "full sort us",
              "ratio");
  for (bool peaked : {true, false}) {
    const std::vector<float> row = Row(peaked, 3);
    for (const Case& c : cases) {
      Sampler s(c.o);
      int64_t sink = 0;
      Stopwatch sw;
      for (int r = 0; r < reps; ++r) sink += s.Sample(row);
      const double ours = sw.ElapsedSeconds() / reps * 1e6;
      double base = 0;
      if (c.o.temperature > 0) {
        std::mt19937_64 rng(1);
        std::uniform_real_distribution<double> u(0.0, 1.0);
        sw.Reset();
        for (int r = 0; r < reps; ++r) {
          const auto dist = ReferenceDistribution(row, c.o);
          double x = u(rng), cum = 0;
          for (const auto& [id, p] : dist) {
            cum += p;
            if (x < cum) {
              sink += id;
              break;
            }
          }
        }
        base = sw.ElapsedSeconds() / reps * 1e6;
      }
      if (base > 0) {
        std::printf("%-26s %-7s %14.1f %14.1f %7.1fx\n", c.name, peaked ? "peaked" : "flat", ours,
                    base, base / ours);
      } else {
        std::printf("%-26s %-7s %14.1f %14s %8s\n", c.name, peaked ? "peaked" : "flat", ours, "-",
                    "-");
      }
      if (sink == 42) std::printf(" ");
    }
  }
  return 0;
}
