// Per-sequence KV cache of the V4 model, split the way the no-re-prefill promise needs it:
//  * history: append-only rows that never change once written (compressed CSA/HCA entries,
//    lightning-indexer keys), one block of `ratio` tokens each;
//  * state: small and fixed-size (sliding-window ring, compressor frontiers for unfinished
//    blocks, position), copied by Snapshot() and put back by Restore().
// History rows are stored as the model already rounds them (FP8 main entries, FP4 indexer
// keys; see history_rows.h) or as fp32 when the simulations are off. Knows nothing of weights
// or kernels.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "engine/kv/history_rows.h"
#include "engine/model_config.h"

namespace v4agent::engine {

// Running state of one token compressor: the projections u and gate scores s (+ ape) of the
// current partial block and, for the overlapping CSA compressor, of the previous block.
struct CompressorState {
  int64_t ratio = 0;
  int64_t rows = 0;  // (overlap ? 2 : 1) * width
  bool overlap = false;
  std::vector<float> cur_u, cur_s;    // [ratio, rows]
  std::vector<float> prev_u, prev_s;  // [ratio, rows] (overlap only)

  void Init(int64_t ratio_in, int64_t rows_in, bool overlap_in);
  // Sequence start: u = 0, s = -inf (block 0 has no previous block).
  void Reset();
};

// How history rows are stored.
enum class KvLayout {
  kPacked,  // the model's own rounded formats (FP8 main, FP4 indexer): lossless with the QAT
            // simulations on; fp32 when they are off (nothing to be lossless against)
  kFp32,    // plain floats
  kBf16,    // bf16 everywhere, as DeepSeek's reference stores it: lossy, for comparison
};

struct LayerCache {
  int64_t ratio = 0;
  // State.
  std::vector<float> window;  // [W, head_dim], slot = position mod W
  CompressorState compressor;
  CompressorState index_compressor;
  // History (append-only).
  HistoryRows compressed;  // [entries, head_dim]
  HistoryRows index_keys;  // [entries, index_head_dim] (CSA layers)
  int64_t num_entries = 0;
};

struct CacheBytes {
  uint64_t history = 0;             // rows as this cache stores them
  uint64_t history_shared = 0;      // of which held in chunks shared with forks
  uint64_t history_production = 0;  // spec §5.2 layout: FP8 main (584 B at head_dim 512) + FP4 idx
  uint64_t state = 0;
  uint64_t total() const { return history + state; }
};

class SequenceCache {
 public:
  // `layout` kPacked must only be asked for when the QAT simulations are on (the model
  // resolves it to kFp32 otherwise).
  SequenceCache(const ModelConfig& config, KvLayout layout);

  int64_t length() const { return length_; }
  void set_length(int64_t n) { length_ = n; }
  // Tokens consumed by the MTP block's own layer (it runs one position behind the main model).
  int64_t mtp_length() const { return mtp_length_; }
  void set_mtp_length(int64_t n) { mtp_length_ = n; }
  LayerCache& layer(int64_t i) { return layers_[i]; }
  const LayerCache& layer(int64_t i) const { return layers_[i]; }
  int64_t num_layers() const { return static_cast<int64_t>(layers_.size()); }
  const ModelConfig& config() const { return *config_; }

  // Empties the sequence: every state is reset and the history dropped.
  void Reset();

  // The state part plus the history lengths: enough to return to this point later while the
  // history rows themselves are shared (never copied).
  struct Snapshot {
    int64_t length = 0;
    int64_t mtp_length = 0;
    std::vector<std::vector<float>> windows;
    std::vector<CompressorState> compressors, index_compressors;
    std::vector<int64_t> entries;
  };
  Snapshot TakeSnapshot() const;
  // Returns to `snap`, which must come from this sequence at a length <= the current one;
  // history rows written after it are dropped.
  void Restore(const Snapshot& snap);
  // An independent copy: state is copied, history chunks are shared copy-on-write (a write
  // to either copy never shows in the other).
  std::unique_ptr<SequenceCache> Copy() const;

  CacheBytes ByteAccount() const;

 private:
  const ModelConfig* config_;
  int64_t length_ = 0;
  int64_t mtp_length_ = 0;
  std::vector<LayerCache> layers_;
};

// Amortized history bytes per token of the production layout (spec §5.2):
// N_CSA * (E_main + E_idx) / 4 + N_HCA * E_main / ratio, main-model layers only.
struct KvFormula {
  double bytes_per_token = 0;
  int64_t main_entry_bytes = 0;
  int64_t index_entry_bytes = 0;
};
KvFormula KvBytesPerToken(const ModelConfig& config, bool fp4_indexer, bool bf16_reference);

}  // namespace v4agent::engine
