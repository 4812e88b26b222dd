#include "engine/checkpoint/random_checkpoint.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <numeric>
#include <random>

#include "common/file_util.h"
#include "common/json.h"
#include "common/strings.h"
#include "engine/checkpoint/layout.h"
#include "engine/checkpoint/safetensors_writer.h"
#include "engine/quant/codecs.h"

namespace v4agent::engine {
namespace {

std::string ShardName(int shard) {
  return StrCat("model-0000", shard + 1, "-of-00004.safetensors");
}

bool EndsWith(const std::string& s, const char* suf) {
  std::string x(suf);
  return s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
}

// Standard deviation of the fp32 master of a matrix (goldens README §4 recipe).
float MatrixStd(const std::string& name, int64_t fan_in, int64_t D) {
  const float f = static_cast<float>(fan_in);
  if (name == "embed.weight") return 1.0f;
  if (name == "head.weight") return 2.0f / std::sqrt(static_cast<float>(D));
  if (EndsWith(name, "wo_b.weight")) return 3.0f / std::sqrt(f);
  if (name.find("experts") != std::string::npos) {
    if (EndsWith(name, "w2.weight")) return 0.15f / std::sqrt(f);
    return 3.5f / std::sqrt(f);
  }
  return 1.0f / std::sqrt(f);
}

Status WriteConfigs(const ModelConfig& config, bool fp4_experts, const std::string& out_dir,
                    uint64_t total_size, const std::map<std::string, std::string>& weight_map) {
  std::filesystem::create_directories(out_dir + "/inference");
  V4_RETURN_IF_ERROR(WriteFile(out_dir + "/config.json", DumpJson(config.ToJson(), 2)));
  Json inf = {{"vocab_size", config.vocab_size},
              {"dim", config.hidden_size},
              {"moe_inter_dim", config.moe_intermediate_size},
              {"n_layers", config.num_hidden_layers},
              {"n_hash_layers", config.num_hash_layers},
              {"n_heads", config.num_attention_heads},
              {"n_routed_experts", config.n_routed_experts},
              {"n_shared_experts", config.n_shared_experts},
              {"n_activated_experts", config.num_experts_per_tok},
              {"score_func", config.scoring_func},
              {"route_scale", config.routed_scaling_factor},
              {"swiglu_limit", config.swiglu_limit},
              {"q_lora_rank", config.q_lora_rank},
              {"head_dim", config.head_dim},
              {"rope_head_dim", config.qk_rope_head_dim},
              {"o_groups", config.o_groups},
              {"o_lora_rank", config.o_lora_rank},
              {"window_size", config.sliding_window},
              {"original_seq_len", config.original_max_position_embeddings},
              {"rope_theta", config.rope_theta},
              {"rope_factor", config.rope_factor},
              {"beta_fast", config.beta_fast},
              {"beta_slow", config.beta_slow},
              {"index_n_heads", config.index_n_heads},
              {"index_head_dim", config.index_head_dim},
              {"index_topk", config.index_topk},
              {"hc_mult", config.hc_mult},
              {"hc_sinkhorn_iters", config.hc_sinkhorn_iters},
              {"dtype", "fp8"},
              {"scale_fmt", "ue8m0"},
              {"expert_dtype", fp4_experts ? "fp4" : "fp8"},
              {"compress_rope_theta", config.compress_rope_theta},
              {"compress_ratios", config.compress_ratios}};
  V4_RETURN_IF_ERROR(WriteFile(out_dir + "/inference/config.json", DumpJson(inf, 2)));
  Json gen = {{"bos_token_id", config.bos_token_id},
              {"eos_token_id", config.eos_token_id},
              {"do_sample", true},
              {"temperature", 1.0},
              {"top_p", 1.0}};
  V4_RETURN_IF_ERROR(WriteFile(out_dir + "/generation_config.json", DumpJson(gen, 2)));
  // A sorted map, as the releases' index files are (an ordered JSON object would be
  // quadratic in the tensor count).
  Json index;
  index["metadata"] = {{"total_size", total_size}};
  Json wm = Json::object();
  for (const auto& [k, v] : weight_map) wm[k] = v;
  index["weight_map"] = wm;
  return WriteFile(out_dir + "/model.safetensors.index.json", DumpJson(index, 2));
}

}  // namespace

Status WriteRandomCheckpoint(const ModelConfig& config, uint64_t seed, bool fp4_experts,
                             const std::string& out_dir) {
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) return IoError("cannot create " + out_dir + ": " + ec.message());
  const auto layout = V4TensorLayout(config, fp4_experts);
  std::vector<SafetensorsWriter> shards(4);
  std::map<std::string, std::string> weight_map;
  const int64_t D = config.hidden_size;
  std::vector<uint8_t> pending_scale;  // the scale of the weight written just before
  for (const auto& t : layout) {
    std::mt19937_64 rng(seed ^ std::hash<std::string>()(t.name));
    std::normal_distribution<float> normal(0.0f, 1.0f);
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    std::vector<uint8_t> bytes;
    const bool is_norm = EndsWith(t.name, "norm.weight");
    if (t.role == TensorRole::kScale) {
      bytes = std::move(pending_scale);
    } else if (t.dtype == DType::kF8E4M3) {
      const int64_t o = t.shape[0], in = t.shape[1];
      const float sd = MatrixStd(t.name, in, D);
      std::vector<float> m(static_cast<size_t>(n));
      for (auto& v : m) v = normal(rng) * sd;
      pending_scale.assign(static_cast<size_t>(((o + 127) / 128) * ((in + 127) / 128)), 0);
      bytes.resize(static_cast<size_t>(n));
      quant::QuantizeFp8Blocks(m.data(), o, in, bytes.data(), pending_scale.data());
    } else if (t.dtype == DType::kI8) {
      const int64_t o = t.shape[0], in = t.shape[1] * 2;
      const float sd = MatrixStd(t.name, in, D);
      // Drawn row by row, 32 at a time: the same order as a row-major matrix.
      std::vector<float> m(static_cast<size_t>(o * in));
      for (auto& v : m) v = normal(rng) * sd;
      pending_scale.assign(static_cast<size_t>(o * in / 32), 0);
      bytes.assign(static_cast<size_t>(o * in / 2), 0);
      quant::QuantizeFp4Rows(m.data(), o, in, bytes.data(), pending_scale.data());
    } else if (t.dtype == DType::kI32) {  // tid2eid: k distinct experts per token
      const int64_t rows = t.shape[0], k = t.shape[1];
      std::vector<int32_t> ids(static_cast<size_t>(n));
      std::vector<int32_t> perm(static_cast<size_t>(config.n_routed_experts));
      for (int64_t r = 0; r < rows; ++r) {
        std::iota(perm.begin(), perm.end(), 0);
        for (int64_t i = 0; i < k; ++i) {
          std::uniform_int_distribution<int64_t> pick(i, static_cast<int64_t>(perm.size()) - 1);
          std::swap(perm[i], perm[pick(rng)]);
          ids[r * k + i] = perm[i];
        }
      }
      bytes.resize(ids.size() * 4);
      std::memcpy(bytes.data(), ids.data(), bytes.size());
    } else {  // BF16 / F32 vectors and matrices
      std::vector<float> v(static_cast<size_t>(n));
      const std::string& nm = t.name;
      if (is_norm) {
        for (auto& x : v) x = 1.0f + 0.1f * normal(rng);
      } else if (EndsWith(nm, "_fn")) {
        for (auto& x : v) x = normal(rng) / std::sqrt(4.0f * D);
      } else if (EndsWith(nm, "_base") || EndsWith(nm, "attn_sink") || EndsWith(nm, ".ape")) {
        for (auto& x : v) x = 0.5f * normal(rng);
      } else if (EndsWith(nm, "_scale")) {
        std::uniform_real_distribution<float> u(0.5f, 1.5f);
        for (auto& x : v) x = u(rng);
      } else if (EndsWith(nm, "gate.bias")) {
        for (auto& x : v) x = 0.2f * normal(rng);
      } else {
        const float sd = MatrixStd(nm, t.shape.back(), D);
        for (auto& x : v) x = normal(rng) * sd;
      }
      if (t.dtype == DType::kBF16) {
        bytes.resize(v.size() * 2);
        auto* p = reinterpret_cast<uint16_t*>(bytes.data());
        for (size_t i = 0; i < v.size(); ++i) p[i] = quant::FloatToBf16(v[i]);
      } else {
        bytes.resize(v.size() * 4);
        std::memcpy(bytes.data(), v.data(), bytes.size());
      }
    }
    shards[t.shard].Add(t.name, t.dtype, t.shape, bytes);
    weight_map[t.name] = ShardName(t.shard);
  }
  uint64_t total = 0;
  for (int s = 0; s < 4; ++s) {
    total += shards[s].data_bytes();
    V4_RETURN_IF_ERROR(shards[s].Write(out_dir + "/" + ShardName(s)));
  }
  return WriteConfigs(config, fp4_experts, out_dir, total, weight_map);
}

Status WriteHeaderOnlyCheckpoint(const ModelConfig& config, bool fp4_experts,
                                 const std::string& out_dir) {
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) return IoError("cannot create " + out_dir + ": " + ec.message());
  const auto layout = V4TensorLayout(config, fp4_experts);
  std::vector<std::vector<SafetensorsWriter::Entry>> shards(4);
  std::map<std::string, std::string> weight_map;
  uint64_t total = 0;
  for (const auto& t : layout) {
    shards[t.shard].push_back({t.name, t.dtype, t.shape});
    weight_map[t.name] = ShardName(t.shard);
    uint64_t n = DTypeSize(t.dtype);
    for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
    total += n;
  }
  for (int s = 0; s < 4; ++s) {
    V4_RETURN_IF_ERROR(SafetensorsWriter::WriteHeaderOnly(out_dir + "/" + ShardName(s), shards[s]));
  }
  return WriteConfigs(config, fp4_experts, out_dir, total, weight_map);
}

}  // namespace v4agent::engine
