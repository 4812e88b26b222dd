// Writes a random-weight V4 checkpoint in the exact release layout (config.json,
// inference/config.json, generation_config.json, model.safetensors.index.json and four
// shards; FP8 128x128 blocks, packed FP4 experts with per-32 scales), drawn from the
// goldens' weight recipe so activations have realistic scales. For tests, demos and the
// README's main job; never used for a real model.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "engine/model_config.h"

namespace v4agent::engine {

Status WriteRandomCheckpoint(const ModelConfig& config, uint64_t seed, bool fp4_experts,
                             const std::string& out_dir);

// Writes a checkpoint whose shards hold only headers and are sparse files of the full size:
// the real Flash/Pro layouts open and bind without the data (tests, `model inspect`).
Status WriteHeaderOnlyCheckpoint(const ModelConfig& config, bool fp4_experts,
                                 const std::string& out_dir);

}  // namespace v4agent::engine
