// ModelConfig: the DeepSeek-V4 hyperparameters of a release's config.json (Flash, Pro and the
// small test configs), typed and validated, with the derived values the engine uses
// (layer kinds from compress_ratios, head dims, YaRN ramp). Never reads tensors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace v4agent::engine {

enum class AttentionKind {
  kSlidingWindow,  // compress ratio 0
  kCsa,            // ratio 4: overlapping compressor + lightning indexer
  kHca,            // any other ratio: non-overlapping compressor, all complete blocks
};

struct ModelConfig {
  // Keys of config.json (spec §1.1).
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;        // D
  int64_t num_hidden_layers = 0;  // L (main layers)
  int64_t num_nextn_predict_layers = 0;
  int64_t num_attention_heads = 0;  // H
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;          // 512 in the releases
  int64_t qk_rope_head_dim = 0;  // 64
  int64_t q_lora_rank = 0;       // R_q
  int64_t o_groups = 0;          // G
  int64_t o_lora_rank = 0;       // R_o
  int64_t index_n_heads = 0;
  int64_t index_head_dim = 0;
  int64_t index_topk = 0;
  int64_t n_routed_experts = 0;
  int64_t n_shared_experts = 0;
  int64_t num_experts_per_tok = 0;
  int64_t moe_intermediate_size = 0;
  int64_t num_hash_layers = 0;
  int64_t hc_mult = 0;
  int64_t hc_sinkhorn_iters = 0;
  double hc_eps = 0;
  double rms_norm_eps = 0;
  double routed_scaling_factor = 0;
  double swiglu_limit = 0;
  std::string scoring_func;
  bool norm_topk_prob = true;
  int64_t sliding_window = 0;
  int64_t max_position_embeddings = 0;
  double rope_theta = 0;
  double compress_rope_theta = 0;
  // rope_scaling (YaRN)
  double rope_factor = 1;
  int64_t original_max_position_embeddings = 0;
  double beta_fast = 0;
  double beta_slow = 0;
  std::vector<int64_t> compress_ratios;  // n_layers + n_mtp entries; the last ones are MTP
  int64_t bos_token_id = 0;
  int64_t eos_token_id = 1;
  std::string expert_dtype;  // "fp4", "fp8" or empty (then detected from tensor dtypes)
  // Keys that must hold the release's values for this engine to be correct; validated.
  std::string hidden_act = "silu";
  std::string topk_method = "noaux_tc";
  std::string torch_dtype = "bfloat16";
  bool attention_bias = false;
  bool tie_word_embeddings = false;
  double initializer_range = 0.02;
  // quantization_config
  std::string quant_method = "fp8";
  std::string quant_fmt = "e4m3";
  std::string quant_scale_fmt = "ue8m0";
  std::string activation_scheme = "dynamic";
  int64_t weight_block_rows = 128, weight_block_cols = 128;

  // Derived once by Validate().
  std::vector<AttentionKind> layer_kinds;  // one per compress_ratios entry
  int64_t nope_head_dim = 0;               // head_dim - qk_rope_head_dim
  int64_t hc_mix_width = 0;                // (2 + hc_mult) * hc_mult
  int64_t heads_per_group = 0;             // H / G

  int64_t num_layers_with_mtp() const { return num_hidden_layers + num_nextn_predict_layers; }
  int64_t ratio(int64_t layer) const { return compress_ratios[layer]; }
  AttentionKind kind(int64_t layer) const { return layer_kinds[layer]; }
  bool hash_routed(int64_t layer) const { return layer < num_hash_layers; }

  // Parses a top-level config.json object. `source` names the file in errors.
  static Result<ModelConfig> FromJson(const Json& j, const std::string& source);
  // Reads DIR/config.json (or the file itself when given a file).
  static Result<ModelConfig> Load(const std::string& path);

  Json ToJson() const;  // the config.json keys, for writing checkpoints
};

std::string AttentionKindName(AttentionKind kind);

}  // namespace v4agent::engine
