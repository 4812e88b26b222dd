// The tensor layout of a V4 release checkpoint for a given config: every tensor's name, dtype
// and shape exactly as DeepSeek ships them (spec §7), and which shard the release puts it in.
// Used to write checkpoints (random-weight test models, header-only Flash/Pro layouts) and to
// count parameters. Never reads or writes tensor data.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/checkpoint/dtype.h"
#include "engine/model_config.h"

namespace v4agent::engine {

enum class TensorRole {
  kEmbed,
  kHead,
  kRoutedExpert,  // a routed expert's weight (counted partially as active)
  kScale,         // F8_E8M0 block scales: storage, not parameters
  kTable,         // tid2eid: an integer table, not parameters
  kOther,
};

struct TensorSpec {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  TensorRole role = TensorRole::kOther;
  int shard = 0;  // 0: embed, 1: first half of the layers, 2: second half, 3: head + MTP
  bool mtp = false;
  int64_t fan_in = 0;  // last logical dim (for weight initialisation)
};

// `fp4_experts`: routed experts as packed FP4 (I8) with per-32 scales; else FP8 blocks.
std::vector<TensorSpec> V4TensorLayout(const ModelConfig& config, bool fp4_experts);

struct ParamCounts {
  double total = 0;  // main model (no MTP), as the model card counts
  double total_with_mtp = 0;
  double active = 0;  // per token: no embedding lookup, k of E routed experts
};
ParamCounts CountParams(const ModelConfig& config, const std::vector<TensorSpec>& layout);

// Parameters stored in one tensor: packed FP4 holds two per byte; scales and tables none.
double ParamsIn(const TensorSpec& t);

}  // namespace v4agent::engine

namespace v4agent::engine {
// Classifies a tensor found in a checkpoint by its release name (for parameter counts).
TensorSpec SpecFromTensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape);
}  // namespace v4agent::engine
