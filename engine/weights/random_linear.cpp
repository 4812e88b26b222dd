#include "engine/weights/random_linear.h"

#include <cmath>
#include <cstring>
#include <random>

#include "common/check.h"
#include "engine/quant/codecs.h"

namespace v4agent::engine {

std::unique_ptr<OwnedLinear> RandomLinear(WeightFormat format, int64_t out, int64_t in,
                                          uint64_t seed) {
  V4_CHECK(format != WeightFormat::kFP4 || in % 32 == 0) << "FP4 needs in % 32 == 0";
  auto w = std::make_unique<OwnedLinear>();
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f / std::sqrt(static_cast<float>(in)));
  std::vector<float> m(static_cast<size_t>(out * in));
  for (float& v : m) v = normal(rng);
  switch (format) {
    case WeightFormat::kFP8:
      w->data.resize(m.size());
      w->scale.resize(static_cast<size_t>(((out + 127) / 128) * ((in + 127) / 128)));
      quant::QuantizeFp8Blocks(m.data(), out, in, w->data.data(), w->scale.data());
      break;
    case WeightFormat::kFP4:
      w->data.resize(m.size() / 2);
      w->scale.resize(m.size() / 32);
      quant::QuantizeFp4Rows(m.data(), out, in, w->data.data(), w->scale.data());
      break;
    case WeightFormat::kBF16:
      w->data.resize(m.size() * 2);
      for (size_t i = 0; i < m.size(); ++i) {
        const uint16_t b = quant::FloatToBf16(m[i]);
        std::memcpy(w->data.data() + 2 * i, &b, 2);
      }
      break;
    case WeightFormat::kF32:
      w->data.resize(m.size() * 4);
      std::memcpy(w->data.data(), m.data(), w->data.size());
      break;
  }
  w->linear.name = "random";
  w->linear.format = format;
  w->linear.out = out;
  w->linear.in = in;
  w->linear.data = w->data.data();
  w->linear.scale = w->scale.empty() ? nullptr : w->scale.data();
  return w;
}

}  // namespace v4agent::engine
