// A random [out, in] matrix in one of the checkpoint formats (FP8 128x128 blocks, packed FP4
// with per-32 scales, bf16, f32), owning its bytes: the inputs of the kernel twin tests and
// of bench_kernels at V4's real widths without a checkpoint on disk. Never used for a model.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/weights/weights.h"

namespace v4agent::engine {

struct OwnedLinear {
  Linear linear;  // points into the vectors below (do not copy an OwnedLinear)
  std::vector<uint8_t> data, scale;

  OwnedLinear() = default;
  OwnedLinear(const OwnedLinear&) = delete;
  OwnedLinear& operator=(const OwnedLinear&) = delete;
};

// Values drawn from N(0, 1/in) and quantized as the release checkpoints quantize them. FP4
// needs in % 32 == 0.
std::unique_ptr<OwnedLinear> RandomLinear(WeightFormat format, int64_t out, int64_t in,
                                          uint64_t seed);

}  // namespace v4agent::engine
