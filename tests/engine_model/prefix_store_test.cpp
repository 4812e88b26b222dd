// The prefix store: the radix tree finds the longest shared prefix; a session taken from the
// store continues bit-exactly like one that prefilled everything, and prefills only what the
// store did not hold; the directory keeps to its budget, evicting the least recently used;
// another model's files and damaged files are never used.
#include "engine/session/prefix_store.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "common/file_util.h"
#include "engine/session/token_radix.h"
#include "tests/engine_model/golden_util.h"

namespace v4agent::engine {
namespace {

TEST(TokenRadix, LongestSharedPrefixAndTheShortestHolder) {
  TokenRadix t;
  EXPECT_EQ(t.Longest(std::vector<int32_t>{1, 2}).key, -1);
  t.Insert(std::vector<int32_t>{1, 2, 3, 4, 5}, 0);
  t.Insert(std::vector<int32_t>{1, 2, 3, 9}, 1);
  t.Insert(std::vector<int32_t>{1, 2}, 2);
  t.Insert(std::vector<int32_t>{7}, 3);
  EXPECT_EQ(t.size(), 4);
  auto m = t.Longest(std::vector<int32_t>{1, 2, 3, 4, 5, 6});
  EXPECT_EQ(m.length, 5);
  EXPECT_EQ(m.key, 0);
  m = t.Longest(std::vector<int32_t>{1, 2, 3, 9, 9});
  EXPECT_EQ(m.length, 4);
  EXPECT_EQ(m.key, 1);
  m = t.Longest(std::vector<int32_t>{1, 2, 3, 7});  // mid-edge: shares 3 with keys 0 and 1
  EXPECT_EQ(m.length, 3);
  EXPECT_EQ(m.key, 1);  // the shorter holder
  m = t.Longest(std::vector<int32_t>{1, 2});
  EXPECT_EQ(m.length, 2);
  EXPECT_EQ(m.key, 2);
  m = t.Longest(std::vector<int32_t>{5});
  EXPECT_EQ(m.length, 0);
  m = t.Longest(std::vector<int32_t>{7, 7});
  EXPECT_EQ(m.length, 1);
  EXPECT_EQ(m.key, 3);
}

TEST(TokenRadix, AgreesWithBruteForceOnRandomSequences) {
  std::mt19937 rng(4);
  std::vector<std::vector<int32_t>> stored;
  TokenRadix t;
  for (int i = 0; i < 60; ++i) {
    std::vector<int32_t> s(1 + rng() % 12);
    for (auto& v : s) v = static_cast<int32_t>(rng() % 3);
    stored.push_back(s);
    t.Insert(s, i);
  }
  for (int q = 0; q < 500; ++q) {
    std::vector<int32_t> s(rng() % 14);
    for (auto& v : s) v = static_cast<int32_t>(rng() % 3);
    int64_t best = 0;
    for (const auto& x : stored) {
      int64_t k = 0;
      while (k < static_cast<int64_t>(std::min(x.size(), s.size())) && x[k] == s[k]) ++k;
      best = std::max(best, k);
    }
    auto m = t.Longest(s);
    ASSERT_EQ(m.length, best);
    ASSERT_GE(m.key, 0);
    const auto& holder = stored[static_cast<size_t>(m.key)];
    ASSERT_GE(static_cast<int64_t>(holder.size()), best);
    ASSERT_TRUE(std::equal(holder.begin(), holder.begin() + best, s.begin()));
  }
}

TEST(PrefixStore, TakesTheSharedPrefixAndContinuesBitExact) {
  if (V4_GOLDEN_TIER_SLOW) GTEST_SKIP() << "runs in the fast tier";
  auto model = testing::LoadGoldenModel("tiny-fast", true, 2, Numerics::kFast);
  const int64_t V = model->config().vocab_size;
  // Two "tasks" sharing a 150-token system block, then differing.
  auto system = testing::RandomTokens(150, V, 1);
  auto task_a = system, task_b = system;
  for (int32_t v : testing::RandomTokens(60, V, 2)) task_a.push_back(v);
  for (int32_t v : testing::RandomTokens(45, V, 3)) task_b.push_back(v);
  ScopedTempDir dir;
  {
    auto store = PrefixStore::Open(dir.path(), model.get());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto miss = (*store)->Take(model.get(), task_a, SessionOptions{});
    ASSERT_TRUE(miss.ok());
    EXPECT_EQ(miss->session, nullptr);
    // Task A appends the system block, then its own part (a snapshot between them), and is
    // stored.
    Session a(model.get(), SessionOptions{});
    ASSERT_TRUE(a.Append(std::span<const int32_t>(task_a).subspan(0, 150)).ok());
    ASSERT_TRUE(a.Append(std::span<const int32_t>(task_a).subspan(150)).ok());
    ASSERT_TRUE((*store)->Put(a).ok());
    ASSERT_TRUE((*store)->Put(a).ok());  // already held: not written twice
    EXPECT_EQ((*store)->entries().size(), 1u);
  }
  // A new store object (a new process) takes the system block for task B.
  auto store = PrefixStore::Open(dir.path(), model.get());
  ASSERT_TRUE(store.ok());
  ASSERT_EQ((*store)->entries().size(), 1u);
  auto taken = (*store)->Take(model.get(), task_b, SessionOptions{});
  ASSERT_TRUE(taken.ok()) << taken.status().ToString();
  ASSERT_NE(taken->session, nullptr);
  EXPECT_EQ(taken->from_store + taken->replayed, 150);
  EXPECT_EQ(taken->replayed, 0);  // the snapshot at the system block's end
  Session& b = *taken->session;
  ASSERT_TRUE(b.Append(std::span<const int32_t>(task_b).subspan(150)).ok());
  Session fresh(model.get(), SessionOptions{});
  ASSERT_TRUE(fresh.Append(task_b).ok());
  EXPECT_EQ(0, std::memcmp(b.last_logits().data(), fresh.last_logits().data(), V * 4));
  EXPECT_EQ(b.Stats().tokens_prefilled, 45);
  // Task A again: everything comes from the store.
  auto again = (*store)->Take(model.get(), task_a, SessionOptions{});
  ASSERT_TRUE(again.ok());
  ASSERT_NE(again->session, nullptr);
  EXPECT_EQ(again->from_store, static_cast<int64_t>(task_a.size()));
}

TEST(PrefixStore, BudgetEvictsLeastRecentlyUsedAndIgnoresForeignOrDamagedFiles) {
  if (V4_GOLDEN_TIER_SLOW) GTEST_SKIP() << "runs in the fast tier";
  auto model = testing::LoadGoldenModel("tiny-fast", true, 2, Numerics::kFast);
  const int64_t V = model->config().vocab_size;
  ScopedTempDir dir;
  std::vector<std::vector<int32_t>> seqs;
  for (int i = 0; i < 3; ++i) seqs.push_back(testing::RandomTokens(100, V, 10 + i));
  uint64_t one_file = 0;
  {
    auto store = PrefixStore::Open(dir.path(), model.get());
    ASSERT_TRUE(store.ok());
    Session s(model.get(), SessionOptions{});
    ASSERT_TRUE(s.Append(seqs[0]).ok());
    ASSERT_TRUE((*store)->Put(s).ok());
    one_file = (*store)->total_bytes();
  }
  PrefixStoreOptions o;
  o.budget_bytes = one_file * 2 + one_file / 2;  // room for two
  auto store = PrefixStore::Open(dir.path(), model.get(), o);
  ASSERT_TRUE(store.ok());
  for (int i = 1; i < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // distinct mtimes
    if (i == 2) {
      // Using seqs[0] makes seqs[1] the least recently used.
      auto t = (*store)->Take(model.get(), seqs[0], SessionOptions{});
      ASSERT_TRUE(t.ok() && t->session);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    Session s(model.get(), SessionOptions{});
    ASSERT_TRUE(s.Append(seqs[static_cast<size_t>(i)]).ok());
    ASSERT_TRUE((*store)->Put(s).ok());
  }
  EXPECT_LE((*store)->total_bytes(), o.budget_bytes);
  ASSERT_EQ((*store)->entries().size(), 2u);
  EXPECT_EQ((*store)->Longest(seqs[1]).length, 0);  // evicted
  EXPECT_EQ((*store)->Longest(seqs[0]).length, 100);
  EXPECT_EQ((*store)->Longest(seqs[2]).length, 100);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()),
                          std::filesystem::directory_iterator()),
            2);

  // Another numerics' view of the same directory: listed, never matched.
  auto exact = testing::LoadGoldenModel("tiny-fast", true, 2, Numerics::kExact);
  auto other = PrefixStore::Open(dir.path(), exact.get());
  ASSERT_TRUE(other.ok());
  ASSERT_EQ((*other)->entries().size(), 2u);
  EXPECT_FALSE((*other)->entries()[0].usable);
  EXPECT_NE((*other)->entries()[0].why_not.find("--numerics fast"), std::string::npos);
  EXPECT_EQ((*other)->Longest(seqs[0]).length, 0);

  // A damaged file is a miss, and is removed.
  std::string victim;
  for (const auto& e : (*store)->entries()) {
    if (e.tokens == seqs[2]) victim = e.path;
  }
  ASSERT_FALSE(victim.empty());
  {
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-50, std::ios::end);
    f.put('\x7f');
  }
  auto t = (*store)->Take(model.get(), seqs[2], SessionOptions{});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->session, nullptr);
  EXPECT_FALSE(std::filesystem::exists(victim));
  auto listed = ListSessionDir(dir.path());
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 1u);
}

}  // namespace
}  // namespace v4agent::engine
