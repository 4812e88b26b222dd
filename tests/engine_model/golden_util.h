// Test helpers: open golden case files and compare float rows with stated tolerances.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "engine/checkpoint/safetensors.h"
#include "engine/model/model.h"

namespace v4agent::engine::testing {

inline std::string GoldenDir() { return std::string(V4_SOURCE_DIR) + "/tests/goldens"; }

inline std::unique_ptr<Checkpoint> OpenCase(const std::string& rel) {
  auto c = Checkpoint::Open(GoldenDir() + "/" + rel);
  V4_CHECK(c.ok()) << c.status().ToString();
  return std::move(c).value();
}

template <typename T>
std::vector<T> Read(const Checkpoint& c, const std::string& name) {
  auto t = c.Get(name);
  V4_CHECK(t.ok()) << t.status().ToString();
  return (*t)->template Copy<T>();
}

struct Diff {
  float max_abs = 0;
  int64_t worst = -1;
};

inline Diff Compare(const float* a, const float* b, int64_t n) {
  Diff d;
  for (int64_t i = 0; i < n; ++i) {
    float e = std::fabs(a[i] - b[i]);
    if (!(e <= d.max_abs)) {
      d.max_abs = e;
      d.worst = i;
    }
  }
  return d;
}

// A golden checkpoint loaded with the given simulations setting and thread count.
inline std::unique_ptr<Model> LoadGoldenModel(const std::string& config, bool sim,
                                              int threads = 2) {
  ModelOptions o;
  o.qat_sim = sim;
  o.num_threads = threads;
  auto m = Model::Load(GoldenDir() + "/" + config + "/checkpoint", o);
  V4_CHECK(m.ok()) << m.status().ToString();
  return std::move(m).value();
}

inline int64_t ArgMax(const float* x, int64_t n) { return std::max_element(x, x + n) - x; }

}  // namespace v4agent::engine::testing
