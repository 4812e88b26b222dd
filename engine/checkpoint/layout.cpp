#include "engine/checkpoint/layout.h"

#include "common/strings.h"

namespace v4agent::engine {
namespace {

class LayoutBuilder {
 public:
  LayoutBuilder(const ModelConfig& c, bool fp4) : c_(c), fp4_(fp4) {}

  void Add(const std::string& name, DType dt, std::vector<int64_t> shape,
           TensorRole role = TensorRole::kOther) {
    TensorSpec t{name, dt, shape, role, shard_, mtp_, shape.empty() ? 0 : shape.back()};
    out.push_back(std::move(t));
  }
  void Fp8(const std::string& prefix, int64_t o, int64_t i) {
    Add(prefix + ".weight", DType::kF8E4M3, {o, i});
    Add(prefix + ".scale", DType::kF8E8M0, {(o + 127) / 128, (i + 127) / 128}, TensorRole::kScale);
  }
  void Expert(const std::string& prefix, int64_t o, int64_t i) {
    if (fp4_) {
      Add(prefix + ".weight", DType::kI8, {o, i / 2}, TensorRole::kRoutedExpert);
      out.back().fan_in = i;
      Add(prefix + ".scale", DType::kF8E8M0, {o, i / 32}, TensorRole::kScale);
    } else {
      Fp8(prefix, o, i);
      out[out.size() - 2].role = TensorRole::kRoutedExpert;
    }
  }
  void Compressor(const std::string& p, int64_t ratio, int64_t width, bool overlap) {
    const int64_t rows = (overlap ? 2 : 1) * width;
    Add(p + ".wkv.weight", DType::kBF16, {rows, c_.hidden_size});
    Add(p + ".wgate.weight", DType::kBF16, {rows, c_.hidden_size});
    Add(p + ".ape", DType::kF32, {ratio, rows});
    Add(p + ".norm.weight", DType::kBF16, {width});
  }
  void Block(const std::string& p, int64_t layer) {
    const ModelConfig& c = c_;
    const int64_t D = c.hidden_size, hcw = c.hc_mult * D;
    for (const char* s : {"attn", "ffn"}) {
      Add(StrCat(p, ".hc_", s, "_fn"), DType::kF32, {c.hc_mix_width, hcw});
      Add(StrCat(p, ".hc_", s, "_base"), DType::kF32, {c.hc_mix_width});
      Add(StrCat(p, ".hc_", s, "_scale"), DType::kF32, {3});
    }
    Add(p + ".attn_norm.weight", DType::kBF16, {D});
    Add(p + ".ffn_norm.weight", DType::kBF16, {D});
    const std::string a = p + ".attn";
    Add(a + ".attn_sink", DType::kF32, {c.num_attention_heads});
    Fp8(a + ".wq_a", c.q_lora_rank, D);
    Add(a + ".q_norm.weight", DType::kBF16, {c.q_lora_rank});
    Fp8(a + ".wq_b", c.num_attention_heads * c.head_dim, c.q_lora_rank);
    Fp8(a + ".wkv", c.head_dim, D);
    Add(a + ".kv_norm.weight", DType::kBF16, {c.head_dim});
    Fp8(a + ".wo_a", c.o_groups * c.o_lora_rank, c.heads_per_group * c.head_dim);
    Fp8(a + ".wo_b", D, c.o_groups * c.o_lora_rank);
    const int64_t ratio = c.ratio(layer);
    if (ratio != 0) {
      const bool csa = c.kind(layer) == AttentionKind::kCsa;
      Compressor(a + ".compressor", ratio, c.head_dim, csa);
      if (csa) {
        Fp8(a + ".indexer.wq_b", c.index_n_heads * c.index_head_dim, c.q_lora_rank);
        Add(a + ".indexer.weights_proj.weight", DType::kBF16, {c.index_n_heads, D});
        Compressor(a + ".indexer.compressor", ratio, c.index_head_dim, true);
      }
    }
    const std::string f = p + ".ffn";
    Add(f + ".gate.weight", DType::kBF16, {c.n_routed_experts, D});
    if (c.hash_routed(layer)) {
      Add(f + ".gate.tid2eid", DType::kI32, {c.vocab_size, c.num_experts_per_tok},
          TensorRole::kTable);
    } else {
      Add(f + ".gate.bias", DType::kF32, {c.n_routed_experts});
    }
    for (int64_t e = 0; e < c.n_routed_experts; ++e) {
      const std::string ep = StrCat(f, ".experts.", e);
      Expert(ep + ".w1", c.moe_intermediate_size, D);
      Expert(ep + ".w2", D, c.moe_intermediate_size);
      Expert(ep + ".w3", c.moe_intermediate_size, D);
    }
    if (c.n_shared_experts > 0) {
      const int64_t I = c.moe_intermediate_size * c.n_shared_experts;
      Fp8(f + ".shared_experts.w1", I, D);
      Fp8(f + ".shared_experts.w2", D, I);
      Fp8(f + ".shared_experts.w3", I, D);
    }
  }

  std::vector<TensorSpec> out;
  int shard_ = 0;
  bool mtp_ = false;

 private:
  const ModelConfig& c_;
  bool fp4_;
};

}  // namespace

std::vector<TensorSpec> V4TensorLayout(const ModelConfig& c, bool fp4_experts) {
  LayoutBuilder b(c, fp4_experts);
  const int64_t D = c.hidden_size;
  b.shard_ = 0;
  b.Add("embed.weight", DType::kBF16, {c.vocab_size, D}, TensorRole::kEmbed);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    b.shard_ = i < (c.num_hidden_layers + 1) / 2 ? 1 : 2;
    b.Block(StrCat("layers.", i), i);
  }
  b.shard_ = 3;
  b.Add("norm.weight", DType::kBF16, {D});
  b.Add("head.weight", DType::kBF16, {c.vocab_size, D}, TensorRole::kHead);
  b.Add("hc_head_fn", DType::kF32, {c.hc_mult, c.hc_mult * D});
  b.Add("hc_head_base", DType::kF32, {c.hc_mult});
  b.Add("hc_head_scale", DType::kF32, {1});
  b.mtp_ = true;
  for (int64_t i = 0; i < c.num_nextn_predict_layers; ++i) {
    const std::string p = StrCat("mtp.", i);
    b.Fp8(p + ".e_proj", D, D);
    b.Fp8(p + ".h_proj", D, D);
    b.Add(p + ".enorm.weight", DType::kBF16, {D});
    b.Add(p + ".hnorm.weight", DType::kBF16, {D});
    b.Add(p + ".norm.weight", DType::kBF16, {D});
    b.Add(p + ".hc_head_fn", DType::kF32, {c.hc_mult, c.hc_mult * D});
    b.Add(p + ".hc_head_base", DType::kF32, {c.hc_mult});
    b.Add(p + ".hc_head_scale", DType::kF32, {1});
    b.Block(p, c.num_hidden_layers + i);
  }
  return b.out;
}

double ParamsIn(const TensorSpec& t) {
  if (t.role == TensorRole::kScale || t.role == TensorRole::kTable) return 0;
  double n = 1;
  for (int64_t d : t.shape) n *= static_cast<double>(d);
  if (t.dtype == DType::kI8) n *= 2;  // packed FP4
  return n;
}

ParamCounts CountParams(const ModelConfig& c, const std::vector<TensorSpec>& layout) {
  ParamCounts p;
  const double k_over_e =
      static_cast<double>(c.num_experts_per_tok) / static_cast<double>(c.n_routed_experts);
  for (const auto& t : layout) {
    const double n = ParamsIn(t);
    p.total_with_mtp += n;
    if (t.mtp) continue;
    p.total += n;
    if (t.role == TensorRole::kEmbed) continue;
    p.active += t.role == TensorRole::kRoutedExpert ? n * k_over_e : n;
  }
  return p;
}

}  // namespace v4agent::engine

namespace v4agent::engine {

TensorSpec SpecFromTensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape) {
  TensorSpec t{name,
               dtype,
               shape,
               TensorRole::kOther,
               0,
               name.rfind("mtp.", 0) == 0,
               shape.empty() ? 0 : shape.back()};
  auto ends_with = [&](const char* s) {
    std::string suf(s);
    return name.size() >= suf.size() &&
           name.compare(name.size() - suf.size(), suf.size(), suf) == 0;
  };
  if (dtype == DType::kF8E8M0 && ends_with(".scale")) {
    t.role = TensorRole::kScale;
  } else if (ends_with(".tid2eid")) {
    t.role = TensorRole::kTable;
  } else if (name == "embed.weight") {
    t.role = TensorRole::kEmbed;
  } else if (name == "head.weight") {
    t.role = TensorRole::kHead;
  } else if (name.find(".experts.") != std::string::npos && ends_with(".weight")) {
    t.role = TensorRole::kRoutedExpert;
  }
  return t;
}

}  // namespace v4agent::engine
