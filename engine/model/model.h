// The DeepSeek-V4 forward pass on CPU in fp32 "exact" mode (the numerics of the goldens):
// embedding, mHC with Sinkhorn, SWA / CSA / HCA attention with the token compressor and the
// lightning indexer, hash and score MoE routing with shared experts, HC head, final norm,
// LM head, and the MTP block. Tokens are processed layer by layer and, inside a layer, in
// position order with per-token arithmetic identical to one-token decode, so a chunked
// prefill, a one-shot prefill and token-by-token decode give bit-identical results.
// Never owns a sequence: all per-sequence state lives in the SequenceCache passed in.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/thread_pool.h"
#include "engine/checkpoint/safetensors.h"
#include "engine/kernels/cpu/packed_linear.h"
#include "engine/kv/sequence_cache.h"
#include "engine/model/fingerprint.h"
#include "engine/model_config.h"
#include "engine/weights/weights.h"

namespace v4agent::engine {

// How the linear layers compute (docs/engine.md):
// - kExact: weights dequantized to fp32 rows, fp32 dot products in the goldens' order; the
//   oracle, bit for bit the reference in nosim;
// - kFast: weights kept in their checkpoint formats, repacked once at load into 16-row tiles
//   and converted in registers (exactly), activations in fp32, one fused multiply-add per
//   weight: the same products, another summation order (kernels/cpu/packed_matmul.h);
// - kFastBf16: kFast's packed weights with every FP8 / FP4 / BF16 product's activations
//   rounded to bf16 and multiplied by `vdpbf16ps` (kernels/cpu/packed_matmul_dot.h): rounds
//   further than the model's numerics, so it is opt-in and its deviation from the goldens is
//   reported (docs/engine.md), never a default.
enum class Numerics { kExact, kFast, kFastBf16 };
const char* NumericsName(Numerics n);
// "exact" | "fast" | "fast-bf16"; an error names the accepted values.
Result<Numerics> ParseNumerics(const std::string& name);

struct ModelOptions {
  Numerics numerics = Numerics::kExact;
  // The two quantization-aware simulations (FP8 KV, FP4 indexer). On: the model's numerics.
  bool qat_sim = true;
  // How KV history rows are stored (kv/sequence_cache.h). kPacked (FP8 / FP4, lossless) is
  // used only with the simulations on; with them off it falls back to fp32.
  KvLayout kv_layout = KvLayout::kPacked;
  int num_threads = 0;  // 0: all cores
  // Largest context (in tokens) a sequence may reach; 0: max_position_embeddings.
  int64_t max_context = 0;
};

// Optional per-token intermediate values, keyed like the goldens' intermediates files
// ("layers.3.attn_out"); each entry accumulates rows in token order.
using Trace = std::map<std::string, std::vector<float>>;

class Model {
 public:
  static Result<std::unique_ptr<Model>> Load(const std::string& dir, const ModelOptions& options);

  const ModelConfig& config() const { return config_; }
  const ModelOptions& options() const { return options_; }
  void set_qat_sim(bool on) { options_.qat_sim = on; }
  int64_t max_context() const;
  const Checkpoint& checkpoint() const { return *ckpt_; }
  const ModelWeights& weights() const { return *weights_; }

  std::unique_ptr<SequenceCache> NewCache() const;

  // Appends `tokens` at positions cache.length() ... to the sequence. With `all_logits`,
  // logits gets [tokens, vocab] (one row per token); otherwise [vocab] for the last token.
  // `last_streams` (optional) receives the last layer's hc streams [tokens, hc, D] (the MTP
  // input). Token ids out of range and contexts past max_context are errors.
  Status Forward(SequenceCache& cache, std::span<const int32_t> tokens, bool all_logits,
                 std::vector<float>* logits, Trace* trace = nullptr,
                 std::vector<float>* last_streams = nullptr);

  // One decode step of several sequences at once: token i is appended to *caches[i] (at
  // its own length); logits gets [B, vocab]. The matrices run as one GEMM over the B rows
  // (each weight read once for all), and every row's logits are bit-identical to a Forward
  // of that token alone on that sequence (the kernels are batch-invariant; tested). The
  // caches must be distinct.
  Status ForwardBatch(std::span<SequenceCache* const> caches, std::span<const int32_t> tokens,
                      std::vector<float>* logits);

  // The MTP block on its own cache layer (cache layer index n_layers): `streams` [T, hc, D]
  // are main-model last-layer streams at positions p, `next_tokens` the tokens at p+1;
  // logits [T, vocab] predict p+2.
  Status ForwardMtp(SequenceCache& cache, std::span<const float> streams,
                    std::span<const int32_t> next_tokens, std::vector<float>* logits);

  ThreadPool* pool() { return pool_.get(); }
  // What a saved session records of this model (computed on first use, then kept).
  Result<ModelFingerprint> Fingerprint() const;
  const std::string& dir() const { return dir_; }
  // Numerics fast: seconds spent repacking at load and the bytes of the packed copies.
  double pack_seconds() const { return pack_seconds_; }
  uint64_t packed_bytes() const { return packed_bytes_; }
  // Checkpoint bytes of the weights one decode step reads: every main-layer matrix except the
  // experts not routed to (num_experts_per_tok routed + the shared one per layer), the LM head,
  // the mHC mixing matrices and one embedding row (the MTP block is not run by decode). Divided by
  // the step's time it is the memory bandwidth decode achieves.
  uint64_t DecodeWeightBytes() const;
  // The multiply-adds per token of those matrices (2x this is a token's matmul FLOPs).
  uint64_t DecodeWeightParams() const;

 private:
  Model() = default;
  struct Rope {
    std::vector<float> freqs;
  };
  const Rope& RopeFor(int64_t layer) const;
  // Calls fn(matrix, times) for every matrix one decode step multiplies by (times > 1: the
  // routed experts, counted through expert 0's shapes).
  void ForEachDecodeMatrix(const std::function<void(const Linear&, int64_t)>& fn) const;
  // Where the rows of one forward call go: one sequence at consecutive positions (Forward,
  // ForwardMtp) or one row per sequence (ForwardBatch).
  struct RowPlaces {
    std::vector<SequenceCache*> caches;  // per row
    std::vector<int64_t> positions;      // per row
    bool one_sequence = true;
    LayerCache& layer(int64_t row, int64_t l) const { return caches[row]->layer(l); }
  };
  static RowPlaces OneSequence(SequenceCache& cache, int64_t start, int64_t T);
  void Block(const BlockWeights& w, const RowPlaces& places, std::span<const int32_t> tokens,
             std::vector<float>& streams, Trace* trace);
  void Attention(const BlockWeights& w, const RowPlaces& places, int64_t T,
                 const std::vector<float>& a, std::vector<float>& out, Trace* trace);
  Status CheckTokens(std::span<const int32_t> tokens) const;
  // The embedding rows of `tokens`, copied to each of the hc streams: [T, hc, D].
  std::vector<float> Embed(std::span<const int32_t> tokens, Trace* trace) const;
  void Moe(const BlockWeights& w, std::span<const int32_t> tokens, int64_t T,
           const std::vector<float>& f, std::vector<float>& out, Trace* trace);
  void Head(const HcParams& hc, const std::vector<float>& norm, const float* streams, int64_t T,
            bool all_rows, std::vector<float>* logits, Trace* trace, const std::string& prefix);

  ModelConfig config_;
  ModelOptions options_;
  std::string dir_;
  mutable std::mutex fingerprint_mu_;
  mutable std::optional<ModelFingerprint> fingerprint_;
  std::unique_ptr<Checkpoint> ckpt_;
  std::unique_ptr<ModelWeights> weights_;
  std::unique_ptr<ThreadPool> pool_;
  std::vector<std::unique_ptr<kernels::PackedLinear>> packed_;
  double pack_seconds_ = 0;
  uint64_t packed_bytes_ = 0;
  Rope rope_swa_, rope_compressed_;
};

}  // namespace v4agent::engine
