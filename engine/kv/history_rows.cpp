#include "engine/kv/history_rows.h"

#include <algorithm>
#include <cmath>
#include <cstring>

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

bool HistoryRows::Append(const float* row) {
  const size_t off = data_.size();
  data_.resize(off + static_cast<size_t>(row_bytes_));
  uint8_t* out = data_.data() + off;
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
  if (!ok) {
    data_.resize(off);
    return false;
  }
  ++rows_;
  return true;
}

const float* HistoryRows::Row(int64_t i, float* scratch) const {
  const uint8_t* p = data_.data() + i * row_bytes_;
  switch (format_) {
    case RowFormat::kFp32:
      return reinterpret_cast<const float*>(p);
    case RowFormat::kFp8Main: {
      const uint8_t* scales = p + nope_;
      for (int64_t d = 0; d < nope_; ++d) {
        scratch[d] = quant::E4M3ToFloat(p[d]) * quant::Ue8m0ToFloat(scales[d / 64]);
      }
      std::memcpy(scratch + nope_, scales + (nope_ + 63) / 64,
                  static_cast<size_t>(width_ - nope_) * 4);
      return scratch;
    }
    case RowFormat::kFp4Index: {
      const uint8_t* scales = p + width_ / 2;
      for (int64_t d = 0; d < width_; d += 2) {
        const float s = quant::Ue8m0ToFloat(scales[d / 32]);
        scratch[d] = quant::E2M1ToFloat(p[d / 2] & 0xF) * s;
        scratch[d + 1] = quant::E2M1ToFloat(p[d / 2] >> 4) * s;
      }
      return scratch;
    }
  }
  return scratch;
}

void HistoryRows::Truncate(int64_t rows) {
  if (rows >= rows_) return;
  rows_ = rows;
  data_.resize(static_cast<size_t>(rows_ * row_bytes_));
}

std::vector<float> HistoryRows::ToFloats() const {
  std::vector<float> out(static_cast<size_t>(rows_ * width_));
  for (int64_t i = 0; i < rows_; ++i) {
    const float* r = Row(i, out.data() + i * width_);
    if (r != out.data() + i * width_) std::memcpy(out.data() + i * width_, r, width_ * 4);
  }
  return out;
}

}  // namespace v4agent::engine
