#include "engine/kv/history_rows.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/kernels/cpu/history_decode.h"
#include "engine/quant/codecs.h"

namespace v4agent::engine {

HistoryRows::HistoryRows(RowFormat format, int64_t width, int64_t nope)
    : format_(format), width_(width), nope_(nope) {
  switch (format_) {
    case RowFormat::kFp32:
      row_bytes_ = width * 4;
      break;
    case RowFormat::kFp8Main:
      row_bytes_ = nope + (nope + 63) / 64 + (width - nope) * 4;
      break;
    case RowFormat::kFp4Index:
      row_bytes_ = width / 2 + width / 32;
      break;
    case RowFormat::kBf16:
      row_bytes_ = width * 2;
      break;
  }
}

namespace {

// Encodes x[n] (one block) as codes of the given codec with the smallest power-of-two scale
// that holds its largest magnitude; false unless decoding gives x back bit for bit.
template <typename Enc, typename Dec>
bool PackBlock(const float* x, int64_t n, float max_code, Enc enc, Dec dec, uint8_t* scale_out,
               uint8_t* codes) {
  float amax = 0;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  int e = amax == 0 ? -127 : quant::CeilLog2Bits(amax / max_code);
  e = std::clamp(e, -127, 127);
  const float s = std::ldexp(1.0f, e);
  *scale_out = static_cast<uint8_t>(e + 127);
  for (int64_t i = 0; i < n; ++i) {
    uint8_t c = enc(x[i] / s);
    if (dec(c) * s != x[i] && !(x[i] == 0 && dec(c) == 0)) return false;
    codes[i] = c;
  }
  return true;
}

}  // namespace

uint8_t* HistoryRows::WritableSlot() {
  const size_t c = static_cast<size_t>(rows_ / kChunkRows);
  const size_t chunk_bytes = static_cast<size_t>(kChunkRows * row_bytes_);
  if (c == chunks_.size()) {
    auto chunk = std::make_shared<Chunk>();
    chunk->owned.resize(chunk_bytes);
    chunks_.push_back(std::move(chunk));
  } else if (chunks_[c].use_count() > 1 || chunks_[c]->view != nullptr) {
    // Another sequence (a fork) shares this chunk, or it is a read-only view of a file:
    // writing must change neither.
    auto copy = std::make_shared<Chunk>();
    copy->owned.resize(chunk_bytes);
    const size_t used = static_cast<size_t>((rows_ % kChunkRows) * row_bytes_);
    std::memcpy(copy->owned.data(), chunks_[c]->data(), used);
    chunks_[c] = std::move(copy);
  }
  return chunks_[c]->owned.data() + (rows_ % kChunkRows) * row_bytes_;
}

std::span<const uint8_t> HistoryRows::ChunkBytes(int64_t c) const {
  const int64_t rows = std::min<int64_t>(kChunkRows, rows_ - c * kChunkRows);
  return {chunks_[static_cast<size_t>(c)]->data(), static_cast<size_t>(rows * row_bytes_)};
}

void HistoryRows::AdoptMapped(int64_t rows, const uint8_t* data, std::shared_ptr<const void> keep) {
  chunks_.clear();
  for (int64_t r = 0; r < rows; r += kChunkRows) {
    auto chunk = std::make_shared<Chunk>();
    chunk->view = data + r * row_bytes_;
    chunk->keep = keep;
    chunks_.push_back(std::move(chunk));
  }
  rows_ = rows;
  ++truncations_;  // decoded views of the old rows are stale
}

uint64_t HistoryRows::shared_bytes() const {
  uint64_t n = 0;
  for (size_t c = 0; c < chunks_.size(); ++c) {
    if (chunks_[c].use_count() > 1) {
      n +=
          static_cast<uint64_t>(std::min<int64_t>(kChunkRows, rows_ - c * kChunkRows)) * row_bytes_;
    }
  }
  return n;
}

bool HistoryRows::Append(const float* row) {
  uint8_t* out = WritableSlot();
  bool ok = true;
  switch (format_) {
    case RowFormat::kFp32:
      std::memcpy(out, row, static_cast<size_t>(width_) * 4);
      break;
    case RowFormat::kFp8Main: {
      uint8_t* scales = out + nope_;
      for (int64_t b = 0; b * 64 < nope_ && ok; ++b) {
        const int64_t n = std::min<int64_t>(64, nope_ - b * 64);
        ok = PackBlock(row + b * 64, n, 448.0f, quant::FloatToE4M3, quant::E4M3ToFloat, scales + b,
                       out + b * 64);
      }
      std::memcpy(scales + (nope_ + 63) / 64, row + nope_, static_cast<size_t>(width_ - nope_) * 4);
      break;
    }
    case RowFormat::kBf16:
      for (int64_t d = 0; d < width_; ++d) {
        const uint16_t v = quant::FloatToBf16(row[d]);
        std::memcpy(out + d * 2, &v, 2);
      }
      break;
    case RowFormat::kFp4Index: {
      uint8_t* scales = out + width_ / 2;
      uint8_t codes[32];
      for (int64_t b = 0; b < width_ / 32 && ok; ++b) {
        ok = PackBlock(row + b * 32, 32, 6.0f, quant::FloatToE2M1, quant::E2M1ToFloat, scales + b,
                       codes);
        for (int i = 0; i < 32; i += 2) out[b * 16 + i / 2] = codes[i] | (codes[i + 1] << 4);
      }
      break;
    }
  }
  if (!ok) return false;  // the slot past rows_ is not part of the sequence
  ++rows_;
  return true;
}

const float* HistoryRows::Row(int64_t i, float* scratch) const {
  if (format_ == RowFormat::kFp32) {
    return reinterpret_cast<const float*>(chunks_[static_cast<size_t>(i / kChunkRows)]->data() +
                                          (i % kChunkRows) * row_bytes_);
  }
  Decode(i, i + 1, scratch);
  return scratch;
}

void HistoryRows::Decode(int64_t begin, int64_t end, float* out) const {
  while (begin < end) {
    // The rows of one chunk lie back to back.
    const int64_t n = std::min(end, (begin / kChunkRows + 1) * kChunkRows) - begin;
    const uint8_t* p = chunks_[static_cast<size_t>(begin / kChunkRows)]->data() +
                       (begin % kChunkRows) * row_bytes_;
    switch (format_) {
      case RowFormat::kFp32:
        std::memcpy(out, p, static_cast<size_t>(n * row_bytes_));
        break;
      case RowFormat::kFp8Main:
        kernels::DecodeFp8MainRows(p, row_bytes_, n, width_, nope_, out);
        break;
      case RowFormat::kFp4Index:
        kernels::DecodeFp4IndexRows(p, row_bytes_, n, width_, out);
        break;
      case RowFormat::kBf16:
        for (int64_t i = 0; i < n * width_; ++i) {
          uint16_t v;
          std::memcpy(&v, p + i * 2, 2);
          out[i] = quant::Bf16ToFloat(v);
        }
        break;
    }
    begin += n;
    out += n * width_;
  }
}

void HistoryRows::Truncate(int64_t rows) {
  if (rows >= rows_) return;
  rows_ = rows;
  ++truncations_;
  chunks_.resize(static_cast<size_t>((rows_ + kChunkRows - 1) / kChunkRows));
}

std::vector<float> HistoryRows::ToFloats() const {
  std::vector<float> out(static_cast<size_t>(rows_ * width_));
  Decode(0, rows_, out.data());
  return out;
}

void DecodedRows::Sync(const HistoryRows& rows) {
  if (rows.format() == RowFormat::kFp32) return;
  const int64_t w = rows.width();
  if (truncations_ != rows.truncations()) {
    truncations_ = rows.truncations();
    decoded_ = 0;
  }
  data_.resize(static_cast<size_t>(rows.size() * w));
  rows.Decode(decoded_, rows.size(), data_.data() + decoded_ * w);
  decoded_ = rows.size();
}

}  // namespace v4agent::engine
