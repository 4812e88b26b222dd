// HistoryRows: the append-only rows of a KV-cache history (compressed attention entries or
// lightning-indexer keys) in one of three storage formats:
//  * kFp32: plain floats (exact for any values; what the nosim mode needs);
//  * kFp8Main: the first `nope` dims as e4m3 codes with one UE8M0 scale per 64, the rest fp32
//    (lossless for entries that went through the model's FP8 KV simulation);
//  * kFp4Index: packed e2m1 codes with one UE8M0 scale per 32 (lossless for indexer keys that
//    went through the FP4 simulation).
// Packing verifies that the round trip is exact and reports failure instead of losing data.
#pragma once

#include <cstdint>
#include <vector>

namespace v4agent::engine {

enum class RowFormat { kFp32, kFp8Main, kFp4Index };

class HistoryRows {
 public:
  HistoryRows() = default;
  HistoryRows(RowFormat format, int64_t width, int64_t nope);

  // Appends one row; false (and nothing appended) if the format cannot hold it exactly.
  bool Append(const float* row);
  // Row i as floats: a pointer into storage (kFp32) or `scratch` [width] filled by decoding.
  const float* Row(int64_t i, float* scratch) const;
  void Truncate(int64_t rows);
  void Clear() { Truncate(0); }

  int64_t size() const { return rows_; }
  int64_t width() const { return width_; }
  RowFormat format() const { return format_; }
  int64_t bytes_per_row() const { return row_bytes_; }
  uint64_t bytes() const { return static_cast<uint64_t>(rows_) * row_bytes_; }
  // All rows decoded, [size, width] (tests and debugging).
  std::vector<float> ToFloats() const;

 private:
  RowFormat format_ = RowFormat::kFp32;
  int64_t width_ = 0;
  int64_t nope_ = 0;
  int64_t row_bytes_ = 0;
  int64_t rows_ = 0;
  std::vector<uint8_t> data_;
};

}  // namespace v4agent::engine
