// HistoryRows: packed formats round-trip, copies share chunks copy-on-write, DecodedRows sees
// rows appended after an earlier Sync.
#include "engine/kv/history_rows.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

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

}  // namespace
}  // namespace v4agent::engine
