// ModelFingerprint: what identifies a model's weights well enough that a saved session (its KV
// cache) is only ever restored onto the model that produced it: a hash of the canonical
// config.json and a digest of every tensor's name, dtype, shape, size and first and last 256
// bytes (reading whole tensors of a 158 GB checkpoint would take minutes; two different
// trainings or quantizations differ in those bytes). Never reads more than that.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "engine/checkpoint/safetensors.h"

namespace v4agent::engine {

struct ModelFingerprint {
  uint64_t config_hash = 0;
  uint64_t tensor_digest = 0;

  bool operator==(const ModelFingerprint&) const = default;
  // "config 0123456789abcdef tensors fedcba9876543210".
  std::string ToString() const;
};

// `config_path` is the checkpoint's config.json.
Result<ModelFingerprint> FingerprintOf(const std::string& config_path, const Checkpoint& ckpt);

std::string Hex64(uint64_t v);

}  // namespace v4agent::engine
