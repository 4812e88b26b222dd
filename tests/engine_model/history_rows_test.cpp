// HistoryRows: packed formats round-trip, copies share chunks copy-on-write, DecodedRows sees
// rows appended after an earlier Sync, and the SIMD row decoders give the plain loops' bits.
#include "engine/kv/history_rows.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "engine/kernels/cpu/history_decode.h"
#include "engine/quant/codecs.h"

namespace v4agent::engine {
namespace {

// A row as the model stores it: FP8-simulated nope dims, plain rope dims.
std::vector<float> Fp8Row(int64_t width, int64_t nope, std::mt19937& rng) {
  std::vector<float> row(static_cast<size_t>(width));
  for (float& x : row) x = std::uniform_real_distribution<float>(-3, 3)(rng);
  quant::Fp8Simulate({row.data(), static_cast<size_t>(nope)}, 64);
  return row;
}

TEST(HistoryRowsTest, CopiesShareChunksAndNeverSeeEachOthersWrites) {
  std::mt19937 rng(7);
  const int64_t width = 96, nope = 64;
  HistoryRows parent(RowFormat::kFp8Main, width, nope);
  std::vector<std::vector<float>> rows;
  for (int64_t i = 0; i < HistoryRows::kChunkRows + 10; ++i) {
    rows.push_back(Fp8Row(width, nope, rng));
    ASSERT_TRUE(parent.Append(rows.back().data()));
  }
  EXPECT_EQ(parent.shared_bytes(), 0u);
  HistoryRows child = parent;
  EXPECT_EQ(parent.shared_bytes(), parent.bytes());
  // Both append different rows into the shared, partly filled second chunk.
  auto a = Fp8Row(width, nope, rng), b = Fp8Row(width, nope, rng);
  ASSERT_TRUE(parent.Append(a.data()));
  ASSERT_TRUE(child.Append(b.data()));
  // The full first chunk stays shared; the written one was duplicated.
  EXPECT_EQ(child.shared_bytes(),
            static_cast<uint64_t>(HistoryRows::kChunkRows * child.bytes_per_row()));
  std::vector<float> scratch(width);
  const int64_t last = HistoryRows::kChunkRows + 10;
  EXPECT_EQ(0, std::memcmp(parent.Row(last, scratch.data()), a.data(), width * 4));
  EXPECT_EQ(0, std::memcmp(child.Row(last, scratch.data()), b.data(), width * 4));
  for (int64_t i = 0; i < last; i += 37) {
    EXPECT_EQ(0, std::memcmp(child.Row(i, scratch.data()), rows[i].data(), width * 4)) << i;
  }
  // Truncating one and writing again leaves the other untouched.
  child.Truncate(5);
  auto c = Fp8Row(width, nope, rng);
  ASSERT_TRUE(child.Append(c.data()));
  EXPECT_EQ(0, std::memcmp(parent.Row(5, scratch.data()), rows[5].data(), width * 4));
  EXPECT_EQ(0, std::memcmp(child.Row(5, scratch.data()), c.data(), width * 4));
}

TEST(HistoryRowsTest, UnrepresentableRowIsRefusedAndNothingIsAppended) {
  HistoryRows rows(RowFormat::kFp8Main, 64, 64);
  std::vector<float> bad(64, 0.1f);  // 0.1 is not an e4m3 value at any power-of-two scale
  EXPECT_FALSE(rows.Append(bad.data()));
  EXPECT_EQ(rows.size(), 0);
}

TEST(HistoryRowsTest, DecodedRowsFollowsAppendsAndTruncation) {
  std::mt19937 rng(3);
  HistoryRows rows(RowFormat::kFp8Main, 80, 64);
  DecodedRows view;
  std::vector<std::vector<float>> data;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 50; ++i) {
      data.push_back(Fp8Row(80, 64, rng));
      ASSERT_TRUE(rows.Append(data.back().data()));
    }
    view.Sync(rows);
    for (int64_t i = 0; i < rows.size(); ++i) {
      ASSERT_EQ(0, std::memcmp(view.Row(rows, i), data[i].data(), 80 * 4)) << i;
    }
  }
  rows.Truncate(20);
  data.resize(20);
  data.push_back(Fp8Row(80, 64, rng));
  ASSERT_TRUE(rows.Append(data.back().data()));
  view.Sync(rows);
  EXPECT_EQ(0, std::memcmp(view.Row(rows, 20), data[20].data(), 80 * 4));
}

// Same bits, except that a NaN only has to stay a NaN (its payload is not part of the format).
void ExpectSameFloats(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i])) {
      EXPECT_TRUE(std::isnan(got[i])) << i;
    } else {
      uint32_t a, b;
      std::memcpy(&a, &got[i], 4);
      std::memcpy(&b, &want[i], 4);
      ASSERT_EQ(a, b) << "element " << i << ": " << got[i] << " vs " << want[i];
    }
  }
}

// Raw rows: every code byte appears in every position class, and the scales include 0 (a
// subnormal 2^-127, where products round), 0xFF (NaN) and the extremes of the normal range.
std::vector<uint8_t> RawRows(int64_t n, int64_t stride, std::mt19937& rng) {
  std::vector<uint8_t> raw(static_cast<size_t>(n * stride));
  for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<uint8_t>(i * 7 + rng() % 3);
  return raw;
}

TEST(HistoryDecodeTest, Fp8MainRowsMatchThePlainLoopOnEveryByte) {
  std::mt19937 rng(11);
  const uint8_t special_scales[] = {0, 1, 2, 100, 127, 128, 200, 253, 254, 0xFF};
  // Flash's 448 + 64, a nope that ends inside a scale block and one shorter than a vector.
  for (auto [width, nope] : {std::pair<int64_t, int64_t>{512, 448}, {100, 70}, {24, 10}}) {
    const int64_t scales = (nope + 63) / 64;
    const int64_t stride = nope + scales + (width - nope) * 4 + 5;  // rows need not be packed
    const int64_t n = 40;
    std::vector<uint8_t> raw = RawRows(n, stride, rng);
    for (int64_t r = 0; r < n; ++r) {
      uint8_t* row = raw.data() + r * stride;
      for (int64_t b = 0; b < scales; ++b) {
        row[nope + b] = special_scales[(r + b) % std::size(special_scales)];
      }
      // Tail values are plain floats: keep them finite so the copy is checked bit for bit.
      for (int64_t d = nope; d < width; ++d) {
        const float v = std::uniform_real_distribution<float>(-5, 5)(rng);
        std::memcpy(row + nope + scales + (d - nope) * 4, &v, 4);
      }
    }
    std::vector<float> got(static_cast<size_t>(n * width)), want(got.size());
    kernels::DecodeFp8MainRows(raw.data(), stride, n, width, nope, got.data());
    kernels::DecodeFp8MainRowsScalar(raw.data(), stride, n, width, nope, want.data());
    SCOPED_TRACE(testing::Message() << "width " << width << " nope " << nope);
    ExpectSameFloats(got, want);
  }
  // Each of the 256 codes at each scale, as a direct table.
  std::vector<uint8_t> row(256 + 4);
  for (int code = 0; code < 256; ++code) row[code] = static_cast<uint8_t>(code);
  for (int s : {0, 1, 120, 127, 134, 254}) {
    for (int b = 0; b < 4; ++b) row[256 + b] = static_cast<uint8_t>(s);
    std::vector<float> got(256), want(256);
    kernels::DecodeFp8MainRows(row.data(), 260, 1, 256, 256, got.data());
    for (int code = 0; code < 256; ++code) {
      want[code] = quant::E4M3ToFloat(static_cast<uint8_t>(code)) *
                   quant::Ue8m0ToFloat(static_cast<uint8_t>(s));
    }
    SCOPED_TRACE(testing::Message() << "scale byte " << s);
    ExpectSameFloats(got, want);
  }
}

TEST(HistoryDecodeTest, Fp4IndexRowsMatchThePlainLoopOnEveryByte) {
  std::mt19937 rng(12);
  for (int64_t width : {32, 128, 512}) {
    const int64_t stride = width / 2 + width / 32 + 3;
    const int64_t n = 64;
    std::vector<uint8_t> raw = RawRows(n, stride, rng);
    for (int64_t r = 0; r < n; ++r) raw[r * stride + width / 2] = r % 2 ? 0 : 0xFF;
    std::vector<float> got(static_cast<size_t>(n * width)), want(got.size());
    kernels::DecodeFp4IndexRows(raw.data(), stride, n, width, got.data());
    kernels::DecodeFp4IndexRowsScalar(raw.data(), stride, n, width, want.data());
    SCOPED_TRACE(testing::Message() << "width " << width);
    ExpectSameFloats(got, want);
  }
}

TEST(HistoryDecodeTest, DecodeAcrossChunksGivesBackTheAppendedRows) {
  std::mt19937 rng(5);
  const int64_t n = 2 * HistoryRows::kChunkRows + 17;
  HistoryRows main(RowFormat::kFp8Main, 96, 64), index(RowFormat::kFp4Index, 64, 64);
  std::vector<float> main_rows, index_rows;  // what was appended, row after row
  for (int64_t i = 0; i < n; ++i) {
    std::vector<float> row = Fp8Row(96, 64, rng);
    ASSERT_TRUE(main.Append(row.data()));
    main_rows.insert(main_rows.end(), row.begin(), row.end());
    std::vector<float> key(64);
    for (float& x : key) x = std::uniform_real_distribution<float>(-2, 2)(rng);
    quant::Fp4Simulate({key.data(), key.size()}, 32);
    ASSERT_TRUE(index.Append(key.data()));
    index_rows.insert(index_rows.end(), key.begin(), key.end());
  }
  for (auto [rows, appended] : {std::pair{&main, &main_rows}, {&index, &index_rows}}) {
    const int64_t w = rows->width();
    // A range that starts inside the first chunk and ends inside the third.
    const int64_t begin = HistoryRows::kChunkRows - 3, end = n - 2;
    std::vector<float> block(static_cast<size_t>((end - begin) * w));
    rows->Decode(begin, end, block.data());
    EXPECT_EQ(0, std::memcmp(block.data(), appended->data() + begin * w, block.size() * 4));
    std::vector<float> scratch(w);
    for (int64_t i = 0; i < n; i += 29) {
      ASSERT_EQ(0, std::memcmp(rows->Row(i, scratch.data()), appended->data() + i * w, w * 4)) << i;
    }
  }
}

}  // namespace
}  // namespace v4agent::engine
