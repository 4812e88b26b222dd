#include "engine/kv/sequence_cache.h"

namespace v4agent::engine {

void CompressorState::Init(int64_t ratio_in, int64_t rows_in, bool overlap_in) {
  ratio = ratio_in;
  rows = rows_in;
  overlap = overlap_in;
  cur_u.assign(ratio * rows, 0.0f);
  cur_s.assign(ratio * rows, -std::numeric_limits<float>::infinity());
  if (overlap) {
    prev_u.assign(ratio * rows, 0.0f);
    prev_s.assign(ratio * rows, -std::numeric_limits<float>::infinity());
  }
}

void CompressorState::Reset() { Init(ratio, rows, overlap); }

SequenceCache::SequenceCache(const ModelConfig& c, KvLayout layout) : config_(&c) {
  auto format = [&](RowFormat packed) {
    switch (layout) {
      case KvLayout::kPacked:
        return packed;
      case KvLayout::kBf16:
        return RowFormat::kBf16;
      case KvLayout::kFp32:
        break;
    }
    return RowFormat::kFp32;
  };
  layers_.resize(static_cast<size_t>(c.num_layers_with_mtp()));
  for (int64_t i = 0; i < c.num_layers_with_mtp(); ++i) {
    LayerCache& l = layers_[i];
    l.ratio = c.ratio(i);
    l.window.assign(c.sliding_window * c.head_dim, 0.0f);
    if (l.ratio != 0) {
      const bool overlap = c.kind(i) == AttentionKind::kCsa;
      l.compressor.Init(l.ratio, (overlap ? 2 : 1) * c.head_dim, overlap);
      l.compressed = HistoryRows(format(RowFormat::kFp8Main), c.head_dim, c.nope_head_dim);
      if (overlap) {
        l.index_compressor.Init(l.ratio, 2 * c.index_head_dim, true);
        l.index_keys = HistoryRows(format(RowFormat::kFp4Index), c.index_head_dim, 0);
      }
    }
  }
}

void SequenceCache::Reset() {
  length_ = 0;
  mtp_length_ = 0;
  for (auto& l : layers_) {
    std::fill(l.window.begin(), l.window.end(), 0.0f);
    if (l.compressor.ratio) l.compressor.Reset();
    if (l.index_compressor.ratio) l.index_compressor.Reset();
    l.compressed.Clear();
    l.index_keys.Clear();
    l.num_entries = 0;
  }
}

SequenceCache::Snapshot SequenceCache::TakeSnapshot() const {
  Snapshot s;
  s.length = length_;
  s.mtp_length = mtp_length_;
  for (const auto& l : layers_) {
    s.windows.push_back(l.window);
    s.compressors.push_back(l.compressor);
    s.index_compressors.push_back(l.index_compressor);
    s.entries.push_back(l.num_entries);
  }
  return s;
}

void SequenceCache::Restore(const Snapshot& s) {
  length_ = s.length;
  mtp_length_ = s.mtp_length;
  for (size_t i = 0; i < layers_.size(); ++i) {
    LayerCache& l = layers_[i];
    l.window = s.windows[i];
    l.compressor = s.compressors[i];
    l.index_compressor = s.index_compressors[i];
    l.num_entries = s.entries[i];
    l.compressed.Truncate(l.num_entries);
    l.index_keys.Truncate(l.num_entries);
  }
}

std::unique_ptr<SequenceCache> SequenceCache::Copy() const {
  return std::make_unique<SequenceCache>(*this);
}

CacheBytes SequenceCache::ByteAccount() const {
  CacheBytes b;
  const ModelConfig& c = *config_;
  const KvFormula f = KvBytesPerToken(c, true, false);
  for (const auto& l : layers_) {
    b.history += l.compressed.bytes() + l.index_keys.bytes();
    b.history_shared += l.compressed.shared_bytes() + l.index_keys.shared_bytes();
    if (l.ratio != 0) {
      b.history_production += static_cast<uint64_t>(l.num_entries) * f.main_entry_bytes;
      if (l.index_compressor.ratio) {
        b.history_production += static_cast<uint64_t>(l.num_entries) * f.index_entry_bytes;
      }
    }
    b.state += l.window.size() * sizeof(float);
    for (const CompressorState* s : {&l.compressor, &l.index_compressor}) {
      b.state +=
          (s->cur_u.size() + s->cur_s.size() + s->prev_u.size() + s->prev_s.size()) * sizeof(float);
    }
  }
  return b;
}

KvFormula KvBytesPerToken(const ModelConfig& c, bool fp4_indexer, bool bf16_reference) {
  KvFormula f;
  const int64_t nope = c.nope_head_dim, rope = c.qk_rope_head_dim;
  if (bf16_reference) {
    f.main_entry_bytes = c.head_dim * 2;
    f.index_entry_bytes = c.index_head_dim * 2;
  } else {
    // e4m3 nope dims + bf16 rope dims + one UE8M0 scale per 64 nope dims, padded to 8 bytes.
    int64_t main = nope + rope * 2 + (nope + 63) / 64;
    f.main_entry_bytes = (main + 7) / 8 * 8;
    f.index_entry_bytes =
        fp4_indexer ? c.index_head_dim / 2 + c.index_head_dim / 32 : c.index_head_dim + 4;
  }
  double per_token = 0;
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const int64_t m = c.ratio(i);
    if (m == 0) continue;
    if (c.kind(i) == AttentionKind::kCsa) {
      per_token += static_cast<double>(f.main_entry_bytes + f.index_entry_bytes) / m;
    } else {
      per_token += static_cast<double>(f.main_entry_bytes) / m;
    }
  }
  f.bytes_per_token = per_token;
  return f;
}

}  // namespace v4agent::engine
