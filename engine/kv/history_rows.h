// HistoryRows: the append-only rows of a KV-cache history (compressed attention entries or
// lightning-indexer keys) in one of three storage formats:
//  * kFp32: plain floats (exact for any values; what the nosim mode needs);
//  * kFp8Main: the first `nope` dims as e4m3 codes with one UE8M0 scale per 64, the rest fp32
//    (lossless for entries that went through the model's FP8 KV simulation);
//  * kFp4Index: packed e2m1 codes with one UE8M0 scale per 32 (lossless for indexer keys that
//    went through the FP4 simulation);
//  * kBf16: every dim rounded to bf16 (lossy; the reference implementation's cache layout,
//    kept for size and accuracy comparisons).
// Packing verifies that the round trip is exact and reports failure instead of losing data.
// Storage is in chunks of kChunkRows rows shared copy-on-write between copies, so a forked
// sequence shares its parent's history and only the chunk being written is ever duplicated.
// Chunks may also be read-only views of a mapped session file (AdoptMapped): a restored
// million-token history is not copied; the chunk being written is copied first.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace v4agent::engine {

enum class RowFormat { kFp32, kFp8Main, kFp4Index, kBf16 };

class HistoryRows {
 public:
  HistoryRows() = default;
  HistoryRows(RowFormat format, int64_t width, int64_t nope);

  // Appends one row; false (and nothing appended) if the format cannot hold it exactly
  // (kBf16 rounds and always appends).
  bool Append(const float* row);
  // Row i as floats: a pointer into storage (kFp32) or `scratch` [width] filled by decoding.
  const float* Row(int64_t i, float* scratch) const;
  // Rows [begin, end) decoded into out [end - begin, width] (SIMD for the packed formats:
  // a block of indexer keys is decoded where it is scored, never the whole history).
  void Decode(int64_t begin, int64_t end, float* out) const;
  void Truncate(int64_t rows);
  void Clear() { Truncate(0); }

  int64_t size() const { return rows_; }
  int64_t width() const { return width_; }
  RowFormat format() const { return format_; }
  int64_t bytes_per_row() const { return row_bytes_; }
  uint64_t bytes() const { return static_cast<uint64_t>(rows_) * row_bytes_; }
  // Bytes of this sequence's rows that live in chunks other copies also hold.
  uint64_t shared_bytes() const;
  static constexpr int64_t kChunkRows = 256;
  // Changes whenever rows are removed (views of the old rows must be rebuilt).
  uint64_t truncations() const { return truncations_; }
  // All rows decoded, [size, width] (tests and debugging).
  std::vector<float> ToFloats() const;

  // Storage as stored: chunk c holds rows [c * kChunkRows, ...) back to back, bytes_per_row()
  // each; ChunkBytes gives the bytes of the rows the sequence has in it.
  int64_t num_chunks() const { return static_cast<int64_t>(chunks_.size()); }
  std::span<const uint8_t> ChunkBytes(int64_t c) const;
  // Replaces the rows with `rows` rows stored back to back at `data` (rows * bytes_per_row()
  // bytes, this object's format and width), read in place: `keep` holds the mapping alive
  // as long as any chunk (or a fork's) refers to it.
  void AdoptMapped(int64_t rows, const uint8_t* data, std::shared_ptr<const void> keep);

 private:
  RowFormat format_ = RowFormat::kFp32;
  int64_t width_ = 0;
  int64_t nope_ = 0;
  int64_t row_bytes_ = 0;
  int64_t rows_ = 0;
  uint64_t truncations_ = 0;
  // Owned bytes, or a read-only view into memory kept alive by `keep`.
  struct Chunk {
    std::vector<uint8_t> owned;
    const uint8_t* view = nullptr;
    std::shared_ptr<const void> keep;
    const uint8_t* data() const { return view != nullptr ? view : owned.data(); }
  };
  std::vector<std::shared_ptr<Chunk>> chunks_;

  uint8_t* WritableSlot();  // room for row rows_, unshared
};

// An fp32 view of one HistoryRows that decodes each packed row at most once; rows appended
// later are decoded by the next Sync. For kFp32 rows it copies nothing. Scratch for one
// forward call: it holds no reference, so always pass the same rows.
class DecodedRows {
 public:
  void Sync(const HistoryRows& rows);
  // Row i (< the size at the last Sync).
  const float* Row(const HistoryRows& rows, int64_t i) const {
    if (rows.format() == RowFormat::kFp32) return rows.Row(i, nullptr);
    return data_.data() + i * rows.width();
  }

 private:
  std::vector<float> data_;
  int64_t decoded_ = 0;
  uint64_t truncations_ = 0;
};

}  // namespace v4agent::engine
