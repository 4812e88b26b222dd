#include "engine/model_config.h"

#include <filesystem>

#include "common/strings.h"

namespace v4agent::engine {
namespace {

class Reader {
 public:
  Reader(const Json& j, const std::string& source) : j_(j), source_(source) {}

  Status Int(const char* key, int64_t* out, int64_t min_value) {
    auto v = JsonGetInt(j_, key, source_);
    if (!v.ok()) return v.status();
    if (*v < min_value) {
      return InvalidArgumentError(
          StrCat(source_, ": field '", key, "': ", *v, " is below the minimum ", min_value));
    }
    *out = *v;
    return Status::Ok();
  }
  Status Number(const char* key, double* out, bool positive) {
    auto v = JsonGetNumber(j_, key, source_);
    if (!v.ok()) return v.status();
    if (positive && !(*v > 0)) {
      return InvalidArgumentError(StrCat(source_, ": field '", key, "': must be > 0, got ", *v));
    }
    *out = *v;
    return Status::Ok();
  }

 private:
  const Json& j_;
  const std::string& source_;
};

// An optional string key that, when present, must equal `expect` (nullptr: any string): a
// different value would silently compute another model.
Status OptionalString(const Json& obj, const std::string& source, const char* key,
                      const char* expect, std::string* out) {
  if (!obj.contains(key)) return Status::Ok();
  V4_ASSIGN_OR_RETURN(*out, JsonGetString(obj, key, source));
  if (expect != nullptr && *out != expect) {
    return InvalidArgumentError(StrCat(source, ": field '", key, "': \"", *out,
                                       "\" is not supported (expected \"", expect, "\")"));
  }
  return Status::Ok();
}

}  // namespace

std::string AttentionKindName(AttentionKind kind) {
  switch (kind) {
    case AttentionKind::kSlidingWindow:
      return "SWA";
    case AttentionKind::kCsa:
      return "CSA";
    case AttentionKind::kHca:
      return "HCA";
  }
  return "?";
}

Result<ModelConfig> ModelConfig::FromJson(const Json& j, const std::string& source) {
  if (!j.is_object()) return InvalidArgumentError(source + ": config is not a JSON object");
  ModelConfig c;
  Reader r(j, source);
  V4_RETURN_IF_ERROR(r.Int("vocab_size", &c.vocab_size, 1));
  V4_RETURN_IF_ERROR(r.Int("hidden_size", &c.hidden_size, 1));
  V4_RETURN_IF_ERROR(r.Int("num_hidden_layers", &c.num_hidden_layers, 1));
  V4_RETURN_IF_ERROR(r.Int("num_nextn_predict_layers", &c.num_nextn_predict_layers, 0));
  V4_RETURN_IF_ERROR(r.Int("num_attention_heads", &c.num_attention_heads, 1));
  V4_RETURN_IF_ERROR(r.Int("num_key_value_heads", &c.num_key_value_heads, 1));
  V4_RETURN_IF_ERROR(r.Int("head_dim", &c.head_dim, 1));
  V4_RETURN_IF_ERROR(r.Int("qk_rope_head_dim", &c.qk_rope_head_dim, 2));
  V4_RETURN_IF_ERROR(r.Int("q_lora_rank", &c.q_lora_rank, 1));
  V4_RETURN_IF_ERROR(r.Int("o_groups", &c.o_groups, 1));
  V4_RETURN_IF_ERROR(r.Int("o_lora_rank", &c.o_lora_rank, 1));
  V4_RETURN_IF_ERROR(r.Int("index_n_heads", &c.index_n_heads, 1));
  V4_RETURN_IF_ERROR(r.Int("index_head_dim", &c.index_head_dim, 1));
  V4_RETURN_IF_ERROR(r.Int("index_topk", &c.index_topk, 1));
  V4_RETURN_IF_ERROR(r.Int("n_routed_experts", &c.n_routed_experts, 1));
  V4_RETURN_IF_ERROR(r.Int("n_shared_experts", &c.n_shared_experts, 0));
  V4_RETURN_IF_ERROR(r.Int("num_experts_per_tok", &c.num_experts_per_tok, 1));
  V4_RETURN_IF_ERROR(r.Int("moe_intermediate_size", &c.moe_intermediate_size, 1));
  V4_RETURN_IF_ERROR(r.Int("num_hash_layers", &c.num_hash_layers, 0));
  V4_RETURN_IF_ERROR(r.Int("hc_mult", &c.hc_mult, 1));
  V4_RETURN_IF_ERROR(r.Int("hc_sinkhorn_iters", &c.hc_sinkhorn_iters, 1));
  V4_RETURN_IF_ERROR(r.Number("hc_eps", &c.hc_eps, true));
  V4_RETURN_IF_ERROR(r.Number("rms_norm_eps", &c.rms_norm_eps, true));
  V4_RETURN_IF_ERROR(r.Number("routed_scaling_factor", &c.routed_scaling_factor, true));
  V4_RETURN_IF_ERROR(r.Number("swiglu_limit", &c.swiglu_limit, false));
  V4_ASSIGN_OR_RETURN(c.scoring_func, JsonGetString(j, "scoring_func", source));
  V4_ASSIGN_OR_RETURN(c.norm_topk_prob, JsonGetBool(j, "norm_topk_prob", source));
  V4_RETURN_IF_ERROR(r.Int("sliding_window", &c.sliding_window, 1));
  V4_RETURN_IF_ERROR(r.Int("max_position_embeddings", &c.max_position_embeddings, 1));
  V4_RETURN_IF_ERROR(r.Number("rope_theta", &c.rope_theta, true));
  V4_RETURN_IF_ERROR(r.Number("compress_rope_theta", &c.compress_rope_theta, true));
  V4_RETURN_IF_ERROR(r.Int("bos_token_id", &c.bos_token_id, 0));
  V4_RETURN_IF_ERROR(r.Int("eos_token_id", &c.eos_token_id, 0));
  if (j.contains("expert_dtype")) {
    V4_ASSIGN_OR_RETURN(c.expert_dtype, JsonGetString(j, "expert_dtype", source));
    if (c.expert_dtype != "fp4" && c.expert_dtype != "fp8") {
      return InvalidArgumentError(
          StrCat(source, ": field 'expert_dtype': expected \"fp4\" or \"fp8\", got \"",
                 c.expert_dtype, "\""));
    }
  }
  // Optional keys (absent in some revisions) must, when present, hold what the engine
  // implements: a different value would silently compute another model.
  V4_RETURN_IF_ERROR(OptionalString(j, source, "hidden_act", "silu", &c.hidden_act));
  V4_RETURN_IF_ERROR(OptionalString(j, source, "topk_method", "noaux_tc", &c.topk_method));
  V4_RETURN_IF_ERROR(OptionalString(j, source, "torch_dtype", nullptr, &c.torch_dtype));
  auto bool_key = [&](const char* key, bool* out, bool expect) -> Status {
    if (!j.contains(key)) return Status::Ok();
    V4_ASSIGN_OR_RETURN(*out, JsonGetBool(j, key, source));
    if (*out != expect) {
      return InvalidArgumentError(StrCat(source, ": field '", key, "': must be ",
                                         expect ? "true" : "false", " for DeepSeek-V4"));
    }
    return Status::Ok();
  };
  V4_RETURN_IF_ERROR(bool_key("attention_bias", &c.attention_bias, false));
  V4_RETURN_IF_ERROR(bool_key("tie_word_embeddings", &c.tie_word_embeddings, false));
  if (j.contains("initializer_range")) {
    V4_ASSIGN_OR_RETURN(c.initializer_range, JsonGetNumber(j, "initializer_range", source));
  }
  if (auto q = j.find("quantization_config"); q != j.end()) {
    if (!q->is_object())
      return InvalidArgumentError(source + ": field 'quantization_config' is not an object");
    const std::string qs = source + ": quantization_config";
    V4_RETURN_IF_ERROR(OptionalString(*q, qs, "quant_method", "fp8", &c.quant_method));
    V4_RETURN_IF_ERROR(OptionalString(*q, qs, "fmt", "e4m3", &c.quant_fmt));
    V4_RETURN_IF_ERROR(OptionalString(*q, qs, "scale_fmt", "ue8m0", &c.quant_scale_fmt));
    V4_RETURN_IF_ERROR(
        OptionalString(*q, qs, "activation_scheme", "dynamic", &c.activation_scheme));
    if (auto b = q->find("weight_block_size"); b != q->end()) {
      if (!b->is_array() || b->size() != 2 || !(*b)[0].is_number_integer() ||
          !(*b)[1].is_number_integer() || (*b)[0].get<int64_t>() != 128 ||
          (*b)[1].get<int64_t>() != 128) {
        return InvalidArgumentError(qs + ": field 'weight_block_size': expected [128, 128], got " +
                                    b->dump());
      }
    }
  }
  auto rs = j.find("rope_scaling");
  if (rs == j.end() || !rs->is_object()) {
    return InvalidArgumentError(source + ": field 'rope_scaling': missing or not an object");
  }
  {
    std::string rs_source = source + ": rope_scaling";
    Reader rr(*rs, rs_source);
    V4_RETURN_IF_ERROR(rr.Number("factor", &c.rope_factor, true));
    V4_RETURN_IF_ERROR(
        rr.Int("original_max_position_embeddings", &c.original_max_position_embeddings, 1));
    V4_RETURN_IF_ERROR(rr.Number("beta_fast", &c.beta_fast, true));
    V4_RETURN_IF_ERROR(rr.Number("beta_slow", &c.beta_slow, true));
  }
  auto cr = j.find("compress_ratios");
  if (cr == j.end() || !cr->is_array()) {
    return InvalidArgumentError(source + ": field 'compress_ratios': missing or not an array");
  }
  for (size_t i = 0; i < cr->size(); ++i) {
    const Json& v = (*cr)[i];
    if (!v.is_number_integer() || v.get<int64_t>() < 0) {
      return InvalidArgumentError(
          StrCat(source, ": field 'compress_ratios'[", i, "]: expected a non-negative integer"));
    }
    c.compress_ratios.push_back(v.get<int64_t>());
  }

  // Cross-field checks: each names the fields involved.
  auto bad = [&](const std::string& what) { return InvalidArgumentError(source + ": " + what); };
  if (static_cast<int64_t>(c.compress_ratios.size()) != c.num_layers_with_mtp()) {
    return bad(StrCat("field 'compress_ratios' has ", c.compress_ratios.size(),
                      " entries; expected num_hidden_layers + num_nextn_predict_layers = ",
                      c.num_layers_with_mtp()));
  }
  if (c.qk_rope_head_dim >= c.head_dim || c.qk_rope_head_dim % 2 != 0) {
    return bad("field 'qk_rope_head_dim' must be even and smaller than head_dim");
  }
  if (c.num_attention_heads % c.o_groups != 0) {
    return bad("field 'o_groups' must divide num_attention_heads");
  }
  if (c.num_key_value_heads != 1) {
    return bad(StrCat("field 'num_key_value_heads': V4 attention is single-KV-head, got ",
                      c.num_key_value_heads));
  }
  if (c.num_experts_per_tok > c.n_routed_experts) {
    return bad("field 'num_experts_per_tok' exceeds n_routed_experts");
  }
  if (c.scoring_func != "sqrtsoftplus" && c.scoring_func != "softmax" &&
      c.scoring_func != "sigmoid") {
    return bad("field 'scoring_func': unsupported \"" + c.scoring_func + "\"");
  }
  if (c.index_head_dim % 32 != 0 || (c.index_head_dim & (c.index_head_dim - 1)) != 0) {
    return bad("field 'index_head_dim' must be a power of two (Hadamard rotation)");
  }
  if (c.num_hash_layers > c.num_hidden_layers) {
    return bad("field 'num_hash_layers' exceeds num_hidden_layers");
  }
  for (size_t i = 0; i < c.compress_ratios.size(); ++i) {
    int64_t m = c.compress_ratios[i];
    c.layer_kinds.push_back(m == 0   ? AttentionKind::kSlidingWindow
                            : m == 4 ? AttentionKind::kCsa
                                     : AttentionKind::kHca);
    if (m == 1)
      return bad(StrCat("field 'compress_ratios'[", i, "]: ratio 1 is not a compression"));
  }
  c.nope_head_dim = c.head_dim - c.qk_rope_head_dim;
  c.hc_mix_width = (2 + c.hc_mult) * c.hc_mult;
  c.heads_per_group = c.num_attention_heads / c.o_groups;
  return c;
}

Result<ModelConfig> ModelConfig::Load(const std::string& path) {
  std::string file = path;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) file = path + "/config.json";
  V4_ASSIGN_OR_RETURN(Json j, ReadJsonFile(file));
  return FromJson(j, file);
}

Json ModelConfig::ToJson() const {
  Json j;
  j["architectures"] = {"DeepseekV4ForCausalLM"};
  j["model_type"] = "deepseek_v4";
  j["attention_bias"] = attention_bias;
  j["attention_dropout"] = 0.0;
  j["bos_token_id"] = bos_token_id;
  j["eos_token_id"] = eos_token_id;
  j["hc_eps"] = hc_eps;
  j["hc_mult"] = hc_mult;
  j["hc_sinkhorn_iters"] = hc_sinkhorn_iters;
  j["head_dim"] = head_dim;
  j["hidden_act"] = hidden_act;
  j["hidden_size"] = hidden_size;
  j["index_head_dim"] = index_head_dim;
  j["index_n_heads"] = index_n_heads;
  j["index_topk"] = index_topk;
  j["initializer_range"] = initializer_range;
  j["max_position_embeddings"] = max_position_embeddings;
  j["moe_intermediate_size"] = moe_intermediate_size;
  j["n_routed_experts"] = n_routed_experts;
  j["n_shared_experts"] = n_shared_experts;
  j["norm_topk_prob"] = norm_topk_prob;
  j["num_attention_heads"] = num_attention_heads;
  j["num_experts_per_tok"] = num_experts_per_tok;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_hash_layers"] = num_hash_layers;
  j["num_key_value_heads"] = num_key_value_heads;
  j["num_nextn_predict_layers"] = num_nextn_predict_layers;
  j["o_groups"] = o_groups;
  j["o_lora_rank"] = o_lora_rank;
  j["q_lora_rank"] = q_lora_rank;
  j["qk_rope_head_dim"] = qk_rope_head_dim;
  j["quantization_config"] = {{"activation_scheme", activation_scheme},
                              {"fmt", quant_fmt},
                              {"quant_method", quant_method},
                              {"scale_fmt", quant_scale_fmt},
                              {"weight_block_size", {weight_block_rows, weight_block_cols}}};
  j["rms_norm_eps"] = rms_norm_eps;
  j["rope_scaling"] = {{"beta_fast", beta_fast},
                       {"beta_slow", beta_slow},
                       {"factor", rope_factor},
                       {"original_max_position_embeddings", original_max_position_embeddings},
                       {"type", "yarn"}};
  j["rope_theta"] = rope_theta;
  j["routed_scaling_factor"] = routed_scaling_factor;
  j["scoring_func"] = scoring_func;
  j["sliding_window"] = sliding_window;
  j["swiglu_limit"] = swiglu_limit;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["topk_method"] = topk_method;
  j["torch_dtype"] = torch_dtype;
  j["use_cache"] = true;
  j["vocab_size"] = vocab_size;
  j["compress_rope_theta"] = compress_rope_theta;
  j["compress_ratios"] = compress_ratios;
  if (!expert_dtype.empty()) j["expert_dtype"] = expert_dtype;
  return j;
}

}  // namespace v4agent::engine
