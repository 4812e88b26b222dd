// The typed weight tree of a V4 checkpoint: every tensor the forward pass needs, bound by its
// release name with its shape and dtype checked against the config. Large matrices stay in
// their checkpoint format (views into the mmap; FP8/FP4 dequantized row by row in kernels);
// only small vectors (norms, mHC params, sinks, ape, gate bias, hash tables) are widened to
// fp32 here. Never copies a whole matrix; every binding error names the tensor.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/checkpoint/safetensors.h"
#include "engine/model_config.h"

namespace v4agent::engine {

namespace kernels {
struct PackedLinear;
}

enum class WeightFormat { kBF16, kF32, kFP8, kFP4 };

// A [out, in] matrix in its storage format.
struct Linear {
  std::string name;
  WeightFormat format = WeightFormat::kBF16;
  int64_t out = 0;
  int64_t in = 0;
  const uint8_t* data = nullptr;
  const uint8_t* scale = nullptr;  // FP8: [ceil(out/128), ceil(in/128)]; FP4: [out, in/32]
  // The same matrix repacked for the fast kernels (set by Model::Load with numerics fast).
  const kernels::PackedLinear* packed = nullptr;

  // Row r of the dequantized matrix into dst[in].
  void DequantRow(int64_t r, float* dst) const;
  // Bytes of weight + scale storage.
  uint64_t StorageBytes() const;
};

struct HcParams {
  std::vector<float> fn;     // [mix, hc * D]
  std::vector<float> base;   // [mix]
  std::vector<float> scale;  // [3] (sublayers) or [1] (head)
};

struct CompressorWeights {
  int64_t ratio = 0;
  int64_t width = 0;  // output dims per half (head_dim or index_head_dim)
  bool overlap = false;
  Linear wkv, wgate;        // [(overlap ? 2 : 1) * width, D]
  std::vector<float> ape;   // [ratio, (overlap ? 2 : 1) * width]
  std::vector<float> norm;  // [width]
};

struct IndexerWeights {
  Linear wq_b;          // [index_heads * index_dim, q_lora_rank]
  Linear weights_proj;  // [index_heads, D]
  CompressorWeights compressor;
};

struct AttentionWeights {
  Linear wq_a, wq_b, wkv, wo_a, wo_b;
  std::vector<float> q_norm, kv_norm, sink;
  bool has_compressor = false;
  bool has_indexer = false;
  CompressorWeights compressor;
  IndexerWeights indexer;
};

struct ExpertWeights {
  Linear w1, w2, w3;
};

struct MoeWeights {
  Linear gate;                   // [E, D] bf16
  std::vector<float> bias;       // [E] (score-routed layers)
  std::vector<int32_t> tid2eid;  // [vocab, k] (hash-routed layers)
  std::vector<ExpertWeights> experts;
  bool has_shared = false;
  ExpertWeights shared;
};

struct BlockWeights {
  int64_t layer = 0;  // index into compress_ratios (MTP blocks come after the main layers)
  HcParams hc_attn, hc_ffn;
  std::vector<float> attn_norm, ffn_norm;
  AttentionWeights attn;
  MoeWeights ffn;
};

struct MtpWeights {
  Linear e_proj, h_proj;
  std::vector<float> enorm, hnorm, norm;
  HcParams hc_head;
  BlockWeights block;
};

struct ModelWeights {
  Linear embed;  // [vocab, D] bf16
  Linear head;   // [vocab, D] bf16
  std::vector<float> norm;
  HcParams hc_head;
  std::vector<BlockWeights> layers;
  std::vector<MtpWeights> mtp;

  // Binds every tensor the forward pass needs; `ckpt` must outlive the result.
  // `verify_scales` scans every UE8M0 scale for the NaN byte 0xFF (reads all scale bytes;
  // `model inspect` turns it off to stay instant on header-only checkpoints).
  // Every matrix the forward pass multiplies by (not the embedding, which is read by row).
  std::vector<Linear*> Matrices();

  static Result<std::unique_ptr<ModelWeights>> Bind(const Checkpoint& ckpt,
                                                    const ModelConfig& config,
                                                    bool verify_scales = true);
};

}  // namespace v4agent::engine
