#include "engine/weights/weights.h"

#include <cstring>

#include "common/strings.h"
#include "engine/quant/codecs.h"

namespace v4agent::engine {
namespace {

std::string ShapeStr(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

class Binder {
 public:
  Binder(const Checkpoint& ckpt, const ModelConfig& c) : ckpt_(ckpt), c_(c) {}

  Result<const TensorView*> Tensor(const std::string& name, std::vector<int64_t> shape) {
    V4_ASSIGN_OR_RETURN(const TensorView* t, ckpt_.Get(name));
    if (t->shape != shape) {
      return InvalidArgumentError(StrCat("tensor '", name, "' in ", *t->file, ": shape ",
                                         ShapeStr(t->shape), ", expected ", ShapeStr(shape)));
    }
    return t;
  }

  Status WrongDtype(const TensorView* t, const std::string& expected) {
    return InvalidArgumentError(StrCat("tensor '", t->name, "' in ", *t->file, ": dtype ",
                                       DTypeName(t->dtype), ", expected ", expected));
  }

  // A dense matrix: FP8 (+scale) or BF16 (or F32).
  Result<Linear> Dense(const std::string& prefix, int64_t out, int64_t in) {
    V4_ASSIGN_OR_RETURN(const TensorView* w, Tensor(prefix + ".weight", {out, in}));
    Linear l{prefix + ".weight", WeightFormat::kBF16, out, in, w->data, nullptr};
    if (w->dtype == DType::kF8E4M3) {
      l.format = WeightFormat::kFP8;
      V4_ASSIGN_OR_RETURN(const TensorView* s,
                          Tensor(prefix + ".scale", {(out + 127) / 128, (in + 127) / 128}));
      V4_RETURN_IF_ERROR(CheckScale(s));
      l.scale = s->data;
    } else if (w->dtype == DType::kBF16) {
      l.format = WeightFormat::kBF16;
    } else if (w->dtype == DType::kF32) {
      l.format = WeightFormat::kF32;
    } else {
      return WrongDtype(w, "F8_E4M3, BF16 or F32");
    }
    return l;
  }

  // A routed expert matrix: packed FP4 (I8 [out, in/2] + scale [out, in/32]) or FP8.
  Result<Linear> Expert(const std::string& prefix, int64_t out, int64_t in) {
    V4_ASSIGN_OR_RETURN(const TensorView* w, ckpt_.Get(prefix + ".weight"));
    if (w->dtype == DType::kI8 || w->dtype == DType::kU8) {
      V4_ASSIGN_OR_RETURN(w, Tensor(prefix + ".weight", {out, in / 2}));
      V4_ASSIGN_OR_RETURN(const TensorView* s, Tensor(prefix + ".scale", {out, in / 32}));
      V4_RETURN_IF_ERROR(CheckScale(s));
      return Linear{prefix + ".weight", WeightFormat::kFP4, out, in, w->data, s->data};
    }
    if (w->dtype == DType::kF8E4M3) return Dense(prefix, out, in);
    return WrongDtype(w, "I8 (packed FP4) or F8_E4M3");
  }

  Status CheckScale(const TensorView* s) {
    if (s->dtype != DType::kF8E8M0) return WrongDtype(s, "F8_E8M0");
    if (scan_scales_) {
      const uint8_t* p = s->data;
      for (size_t i = 0; i < s->nbytes; ++i) {
        if (p[i] == 0xFF) {
          return InvalidArgumentError(StrCat("tensor '", s->name, "' in ", *s->file,
                                             ": scale byte 0xFF (NaN) at element ", i));
        }
      }
    }
    return Status::Ok();
  }

  Result<std::vector<float>> Floats(const std::string& name, std::vector<int64_t> shape) {
    V4_ASSIGN_OR_RETURN(const TensorView* t, Tensor(name, shape));
    std::vector<float> out(static_cast<size_t>(t->numel()));
    switch (t->dtype) {
      case DType::kF32:
        std::memcpy(out.data(), t->data, t->nbytes);
        break;
      case DType::kBF16: {
        auto v = t->Copy<uint16_t>();
        for (size_t i = 0; i < out.size(); ++i) out[i] = quant::Bf16ToFloat(v[i]);
        break;
      }
      case DType::kF16: {
        auto v = t->Copy<uint16_t>();
        for (size_t i = 0; i < out.size(); ++i) out[i] = quant::F16ToFloat(v[i]);
        break;
      }
      default:
        return WrongDtype(t, "F32, BF16 or F16");
    }
    return out;
  }

  Result<HcParams> Hc(const std::string& prefix, int64_t mix, int64_t scales) {
    HcParams p;
    const int64_t width = c_.hc_mult * c_.hidden_size;
    V4_ASSIGN_OR_RETURN(p.fn, Floats(prefix + "_fn", {mix, width}));
    V4_ASSIGN_OR_RETURN(p.base, Floats(prefix + "_base", {mix}));
    V4_ASSIGN_OR_RETURN(p.scale, Floats(prefix + "_scale", {scales}));
    return p;
  }

  Result<CompressorWeights> Compressor(const std::string& prefix, int64_t ratio, int64_t width) {
    CompressorWeights cw;
    cw.ratio = ratio;
    cw.width = width;
    cw.overlap = ratio == 4;
    const int64_t rows = (cw.overlap ? 2 : 1) * width;
    V4_ASSIGN_OR_RETURN(cw.wkv, Dense(prefix + ".wkv", rows, c_.hidden_size));
    V4_ASSIGN_OR_RETURN(cw.wgate, Dense(prefix + ".wgate", rows, c_.hidden_size));
    V4_ASSIGN_OR_RETURN(cw.ape, Floats(prefix + ".ape", {ratio, rows}));
    V4_ASSIGN_OR_RETURN(cw.norm, Floats(prefix + ".norm.weight", {width}));
    return cw;
  }

  Result<BlockWeights> Block(const std::string& p, int64_t layer) {
    const ModelConfig& c = c_;
    const int64_t D = c.hidden_size;
    BlockWeights b;
    b.layer = layer;
    V4_ASSIGN_OR_RETURN(b.hc_attn, Hc(p + ".hc_attn", c.hc_mix_width, 3));
    V4_ASSIGN_OR_RETURN(b.hc_ffn, Hc(p + ".hc_ffn", c.hc_mix_width, 3));
    V4_ASSIGN_OR_RETURN(b.attn_norm, Floats(p + ".attn_norm.weight", {D}));
    V4_ASSIGN_OR_RETURN(b.ffn_norm, Floats(p + ".ffn_norm.weight", {D}));
    AttentionWeights& a = b.attn;
    const std::string ap = p + ".attn";
    V4_ASSIGN_OR_RETURN(a.sink, Floats(ap + ".attn_sink", {c.num_attention_heads}));
    V4_ASSIGN_OR_RETURN(a.wq_a, Dense(ap + ".wq_a", c.q_lora_rank, D));
    V4_ASSIGN_OR_RETURN(a.q_norm, Floats(ap + ".q_norm.weight", {c.q_lora_rank}));
    V4_ASSIGN_OR_RETURN(a.wq_b,
                        Dense(ap + ".wq_b", c.num_attention_heads * c.head_dim, c.q_lora_rank));
    V4_ASSIGN_OR_RETURN(a.wkv, Dense(ap + ".wkv", c.head_dim, D));
    V4_ASSIGN_OR_RETURN(a.kv_norm, Floats(ap + ".kv_norm.weight", {c.head_dim}));
    V4_ASSIGN_OR_RETURN(
        a.wo_a, Dense(ap + ".wo_a", c.o_groups * c.o_lora_rank, c.heads_per_group * c.head_dim));
    V4_ASSIGN_OR_RETURN(a.wo_b, Dense(ap + ".wo_b", D, c.o_groups * c.o_lora_rank));
    const int64_t ratio = c.ratio(layer);
    if (ratio != 0) {
      a.has_compressor = true;
      V4_ASSIGN_OR_RETURN(a.compressor, Compressor(ap + ".compressor", ratio, c.head_dim));
    }
    if (c.kind(layer) == AttentionKind::kCsa) {
      a.has_indexer = true;
      const std::string ip = ap + ".indexer";
      V4_ASSIGN_OR_RETURN(a.indexer.wq_b,
                          Dense(ip + ".wq_b", c.index_n_heads * c.index_head_dim, c.q_lora_rank));
      V4_ASSIGN_OR_RETURN(a.indexer.weights_proj, Dense(ip + ".weights_proj", c.index_n_heads, D));
      V4_ASSIGN_OR_RETURN(a.indexer.compressor,
                          Compressor(ip + ".compressor", ratio, c.index_head_dim));
    }
    MoeWeights& m = b.ffn;
    const std::string fp = p + ".ffn";
    const int64_t E = c.n_routed_experts, I = c.moe_intermediate_size;
    V4_ASSIGN_OR_RETURN(m.gate, Dense(fp + ".gate", E, D));
    if (c.hash_routed(layer)) {
      V4_ASSIGN_OR_RETURN(const TensorView* t,
                          Tensor(fp + ".gate.tid2eid", {c.vocab_size, c.num_experts_per_tok}));
      m.tid2eid.resize(static_cast<size_t>(t->numel()));
      if (t->dtype == DType::kI32) {
        std::memcpy(m.tid2eid.data(), t->data, t->nbytes);
      } else if (t->dtype == DType::kI64) {
        auto v = t->Copy<int64_t>();
        for (size_t i = 0; i < v.size(); ++i) m.tid2eid[i] = static_cast<int32_t>(v[i]);
      } else {
        return WrongDtype(t, "I32 or I64");
      }
      for (size_t i = 0; i < m.tid2eid.size(); ++i) {
        if (m.tid2eid[i] < 0 || m.tid2eid[i] >= E) {
          return InvalidArgumentError(StrCat("tensor '", t->name, "': expert id ", m.tid2eid[i],
                                             " at element ", i, " is outside [0, ", E, ")"));
        }
      }
    } else {
      V4_ASSIGN_OR_RETURN(m.bias, Floats(fp + ".gate.bias", {E}));
    }
    m.experts.resize(static_cast<size_t>(E));
    for (int64_t e = 0; e < E; ++e) {
      const std::string ep = StrCat(fp, ".experts.", e);
      V4_ASSIGN_OR_RETURN(m.experts[e].w1, Expert(ep + ".w1", I, D));
      V4_ASSIGN_OR_RETURN(m.experts[e].w3, Expert(ep + ".w3", I, D));
      V4_ASSIGN_OR_RETURN(m.experts[e].w2, Expert(ep + ".w2", D, I));
    }
    if (c.n_shared_experts > 0) {
      m.has_shared = true;
      const int64_t SI = I * c.n_shared_experts;
      V4_ASSIGN_OR_RETURN(m.shared.w1, Dense(fp + ".shared_experts.w1", SI, D));
      V4_ASSIGN_OR_RETURN(m.shared.w3, Dense(fp + ".shared_experts.w3", SI, D));
      V4_ASSIGN_OR_RETURN(m.shared.w2, Dense(fp + ".shared_experts.w2", D, SI));
    }
    return b;
  }

  bool scan_scales_ = true;

 private:
  const Checkpoint& ckpt_;
  const ModelConfig& c_;
};

}  // namespace

std::vector<Linear*> ModelWeights::Matrices() {
  std::vector<Linear*> out = {&head};
  auto block = [&](BlockWeights& b) {
    AttentionWeights& a = b.attn;
    for (Linear* l : {&a.wq_a, &a.wq_b, &a.wkv, &a.wo_a, &a.wo_b}) out.push_back(l);
    if (a.has_compressor) {
      out.push_back(&a.compressor.wkv);
      out.push_back(&a.compressor.wgate);
    }
    if (a.has_indexer) {
      for (Linear* l : {&a.indexer.wq_b, &a.indexer.weights_proj, &a.indexer.compressor.wkv,
                        &a.indexer.compressor.wgate}) {
        out.push_back(l);
      }
    }
    out.push_back(&b.ffn.gate);
    for (ExpertWeights& e : b.ffn.experts) {
      for (Linear* l : {&e.w1, &e.w2, &e.w3}) out.push_back(l);
    }
    if (b.ffn.has_shared) {
      for (Linear* l : {&b.ffn.shared.w1, &b.ffn.shared.w2, &b.ffn.shared.w3}) out.push_back(l);
    }
  };
  for (BlockWeights& b : layers) block(b);
  for (MtpWeights& m : mtp) {
    out.push_back(&m.e_proj);
    out.push_back(&m.h_proj);
    block(m.block);
  }
  return out;
}

void Linear::DequantRow(int64_t r, float* dst) const {
  switch (format) {
    case WeightFormat::kBF16: {
      // Checkpoint tensors may start at any byte offset: load through memcpy.
      const uint8_t* p = data + r * in * 2;
      for (int64_t i = 0; i < in; ++i) {
        uint16_t v;
        std::memcpy(&v, p + 2 * i, 2);
        dst[i] = quant::Bf16ToFloat(v);
      }
      break;
    }
    case WeightFormat::kF32:
      std::memcpy(dst, reinterpret_cast<const float*>(data) + r * in, in * sizeof(float));
      break;
    case WeightFormat::kFP8:
      quant::DequantFp8Row(data, scale, out, in, r, dst);
      break;
    case WeightFormat::kFP4:
      quant::DequantFp4Row(data, scale, out, in, r, dst);
      break;
  }
}

uint64_t Linear::StorageBytes() const {
  const uint64_t n = static_cast<uint64_t>(out) * in;
  switch (format) {
    case WeightFormat::kBF16:
      return n * 2;
    case WeightFormat::kF32:
      return n * 4;
    case WeightFormat::kFP8:
      return n + static_cast<uint64_t>((out + 127) / 128) * ((in + 127) / 128);
    case WeightFormat::kFP4:
      return n / 2 + n / 32;
  }
  return 0;
}

Result<std::unique_ptr<ModelWeights>> ModelWeights::Bind(const Checkpoint& ckpt,
                                                         const ModelConfig& c, bool verify_scales) {
  auto w = std::make_unique<ModelWeights>();
  Binder b(ckpt, c);
  b.scan_scales_ = verify_scales;
  const int64_t D = c.hidden_size;
  V4_ASSIGN_OR_RETURN(w->embed, b.Dense("embed", c.vocab_size, D));
  V4_ASSIGN_OR_RETURN(w->head, b.Dense("head", c.vocab_size, D));
  V4_ASSIGN_OR_RETURN(w->norm, b.Floats("norm.weight", {D}));
  V4_ASSIGN_OR_RETURN(w->hc_head, b.Hc("hc_head", c.hc_mult, 1));
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    V4_ASSIGN_OR_RETURN(BlockWeights blk, b.Block(StrCat("layers.", i), i));
    w->layers.push_back(std::move(blk));
  }
  for (int64_t i = 0; i < c.num_nextn_predict_layers; ++i) {
    const std::string p = StrCat("mtp.", i);
    MtpWeights m;
    V4_ASSIGN_OR_RETURN(m.e_proj, b.Dense(p + ".e_proj", D, D));
    V4_ASSIGN_OR_RETURN(m.h_proj, b.Dense(p + ".h_proj", D, D));
    V4_ASSIGN_OR_RETURN(m.enorm, b.Floats(p + ".enorm.weight", {D}));
    V4_ASSIGN_OR_RETURN(m.hnorm, b.Floats(p + ".hnorm.weight", {D}));
    V4_ASSIGN_OR_RETURN(m.norm, b.Floats(p + ".norm.weight", {D}));
    V4_ASSIGN_OR_RETURN(m.hc_head, b.Hc(p + ".hc_head", c.hc_mult, 1));
    V4_ASSIGN_OR_RETURN(m.block, b.Block(p, c.num_hidden_layers + i));
    w->mtp.push_back(std::move(m));
  }
  return w;
}

}  // namespace v4agent::engine
