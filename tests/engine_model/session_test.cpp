// Sessions: the two-turn goldens through Append on a live cache (never a re-prefill), and the
// invariances of spec/style §7: one-shot prefill == chunked prefill == token-by-token decode ==
// rewind -> continue, fork independence, 1 vs 2 threads, run-to-run bit-exactness.
#include "engine/session/session.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "common/json.h"
#include "tests/engine_model/golden_util.h"

namespace v4agent::engine {
namespace {

using testing::ArgMax;
using testing::Compare;
using testing::OpenCase;
using testing::RandomTokens;
using testing::Read;

struct TwoTurnCase {
  std::string config, mode;
  Numerics numerics = Numerics::kExact;
};
class TwoTurnTest : public ::testing::TestWithParam<TwoTurnCase> {};

TEST_P(TwoTurnTest, AppendOnLiveSession) {
  const auto& p = GetParam();
  auto model = testing::LoadGoldenModel(p.config, p.mode == "sim", 2, p.numerics);
  auto golden = OpenCase(p.config + "/" + p.mode + "/two_turn.safetensors");
  auto tokens = Read<int32_t>(*golden, "tokens");
  auto expect = Read<float>(*golden, "logits");
  auto manifest = ReadJsonFile(testing::GoldenDir() + "/" + p.config + "/manifest.json");
  ASSERT_TRUE(manifest.ok());
  int64_t p1 = 0, g1 = 0, p2 = 0, g2 = 0;
  for (const auto& c : (*manifest)["cases"][p.mode]) {
    if (c.value("file", "") != p.mode + "/two_turn.safetensors") continue;
    const Json& seg = c["segments"];
    auto len = [&](const char* k) { return seg[k][1].get<int64_t>() - seg[k][0].get<int64_t>(); };
    p1 = len("P1");
    g1 = len("G1");
    p2 = len("P2");
    g2 = len("G2");
  }
  ASSERT_GT(p1, 0) << "segment bounds not found in manifest";
  const int64_t V = model->config().vocab_size;
  Session s(model.get(), SessionOptions{});
  std::vector<float> rows;  // our logits, one row per position
  auto span = std::span<const int32_t>(tokens);
  // Turn 1: prefill P1 (all rows), then G1 greedily.
  {
    auto cache = model->NewCache();
    std::vector<float> l;
    ASSERT_TRUE(model->Forward(*cache, span.subspan(0, p1), true, &l).ok());
    rows.insert(rows.end(), l.begin(), l.end() - V);
  }
  ASSERT_TRUE(s.Append(span.subspan(0, p1)).ok());
  rows.insert(rows.end(), s.last_logits().begin(), s.last_logits().end());
  Sampler greedy(SamplerOptions{});
  std::vector<float> gen_rows;
  auto record = [&](int32_t) {
    gen_rows.insert(gen_rows.end(), s.last_logits().begin(), s.last_logits().end());
    return true;
  };
  auto r1 = s.Generate(greedy, g1, record);
  ASSERT_TRUE(r1.ok());
  EXPECT_EQ(r1->tokens, std::vector<int32_t>(tokens.begin() + p1, tokens.begin() + p1 + g1));
  rows.insert(rows.end(), gen_rows.begin(), gen_rows.end());
  gen_rows.clear();
  // Turn 2: P2 appended as ONE chunk on the live cache; compare its rows via a fork that
  // appends token by token (bit-identical by construction, checked below).
  auto fork = s.Fork();
  std::vector<float> p2_rows;
  for (int64_t i = 0; i < p2; ++i) {
    ASSERT_TRUE(fork->Append(span.subspan(p1 + g1 + i, 1)).ok());
    p2_rows.insert(p2_rows.end(), fork->last_logits().begin(), fork->last_logits().end());
  }
  const int64_t before = s.Stats().tokens_prefilled;
  ASSERT_TRUE(s.Append(span.subspan(p1 + g1, p2)).ok());
  EXPECT_EQ(s.Stats().tokens_prefilled - before, p2) << "only P2 may be prefilled";
  EXPECT_EQ(s.Stats().last_append_reused, p1 + g1);
  EXPECT_EQ(0, std::memcmp(s.last_logits().data(), p2_rows.data() + (p2 - 1) * V, V * 4))
      << "one-chunk append differs from token-by-token append";
  rows.insert(rows.end(), p2_rows.begin(), p2_rows.end());
  auto r2 = s.Generate(greedy, g2, record);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->tokens, std::vector<int32_t>(tokens.begin() + p1 + g1 + p2,
                                             tokens.begin() + p1 + g1 + p2 + g2));
  rows.insert(rows.end(), gen_rows.begin(), gen_rows.end());
  const int64_t n = static_cast<int64_t>(rows.size()) / V;
  ASSERT_EQ(n, static_cast<int64_t>(tokens.size()));
  std::vector<float> row_err;
  int64_t agree = 0;
  for (int64_t r = 0; r < n; ++r) {
    row_err.push_back(Compare(rows.data() + r * V, expect.data() + r * V, V).max_abs);
    agree += ArgMax(rows.data() + r * V, V) == ArgMax(expect.data() + r * V, V);
  }
  // README §6: mini-flash's two-turn case is statistical in sim; tiny-fast's is not.
  testing::ExpectSection6(p.mode == "nosim"          ? testing::SimCriteria::kNosim
                          : p.config == "mini-flash" ? testing::SimCriteria::kStatistical
                                                     : testing::SimCriteria::kTightWithFlips,
                          row_err, agree,
                          p.config + "/" + p.mode + " two_turn (" + NumericsName(p.numerics) + ")");
}

std::vector<TwoTurnCase> TwoTurnCases() {
  if (V4_GOLDEN_TIER_SLOW) return {};
  std::vector<TwoTurnCase> out;
  for (Numerics n : {Numerics::kExact, Numerics::kFast}) {
    for (const char* config : {"tiny-fast", "mini-flash"}) {
      for (const char* mode : {"nosim", "sim"}) out.push_back({config, mode, n});
    }
  }
  return out;
}
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(TwoTurnTest);

INSTANTIATE_TEST_SUITE_P(Goldens, TwoTurnTest, ::testing::ValuesIn(TwoTurnCases()),
                         [](const auto& info) {
                           return std::string(info.param.config == "tiny-fast" ? "tiny" : "mini") +
                                  "_" + info.param.mode + "_" + NumericsName(info.param.numerics);
                         });

// All logits rows of `tokens` fed in chunks of `chunk` (0: one shot).
std::vector<float> RunChunked(Model& m, const std::vector<int32_t>& tokens, int64_t chunk) {
  auto cache = m.NewCache();
  std::vector<float> all, l;
  auto span = std::span<const int32_t>(tokens);
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (chunk <= 0) chunk = n;
  for (int64_t off = 0; off < n; off += chunk) {
    auto part = span.subspan(off, std::min(chunk, n - off));
    V4_CHECK(m.Forward(*cache, part, true, &l).ok());
    all.insert(all.end(), l.begin(), l.end());
  }
  return all;
}

struct InvarianceCase {
  std::string config;
  int64_t length;
  std::vector<int64_t> chunks;
  Numerics numerics = Numerics::kExact;
};
class InvarianceTest : public ::testing::TestWithParam<InvarianceCase> {};

TEST_P(InvarianceTest, ChunkingNeverChangesABit) {
  const auto& p = GetParam();
  auto model = testing::LoadGoldenModel(p.config, true, 2, p.numerics);
  auto tokens = RandomTokens(p.length, model->config().vocab_size, 7 + p.length);
  auto one_shot = RunChunked(*model, tokens, 0);
  for (int64_t chunk : p.chunks) {
    auto chunked = RunChunked(*model, tokens, chunk);
    ASSERT_EQ(chunked.size(), one_shot.size());
    EXPECT_EQ(0, std::memcmp(chunked.data(), one_shot.data(), one_shot.size() * 4))
        << "chunk size " << chunk << " at length " << p.length << " (" << NumericsName(p.numerics)
        << ")";
  }
}

// Fast tier: lengths that straddle window and block boundaries of each config (tiny-fast:
// window 8, ratios 4/8; mini-flash: window 128, ratios 4/128). Slow tier: the full chunk-size
// matrix of engine-notes §8.4 on mini-flash, at lengths of other residues mod 4 and mod 128
// (258 = 2 mod 4 past two HCA blocks, 387 = 3 mod 4 and 3 mod 128), and tiny-fast at 100.
// Every numerics: the fast kernels must be batch-invariant too (a GEMM row equals the GEMV of
// it), fast-bf16's included.
std::vector<InvarianceCase> InvarianceCases() {
  std::vector<InvarianceCase> base;
  if (V4_GOLDEN_TIER_SLOW) {
    const std::vector<int64_t> matrix = {1, 2, 3, 4, 5, 7, 8, 127, 128, 129, 255, 256, 257};
    base = {InvarianceCase{"mini-flash", 258, matrix}, InvarianceCase{"mini-flash", 387, matrix},
            InvarianceCase{"tiny-fast", 100, {1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 33}}};
  } else {
    base = {InvarianceCase{"tiny-fast", 17, {1, 2, 3, 4, 5, 7, 8}},
            InvarianceCase{"tiny-fast", 33, {1, 3, 8, 9, 16}},
            InvarianceCase{"mini-flash", 130, {1, 3, 4, 5, 127, 128, 129}}};
  }
  std::vector<InvarianceCase> out;
  for (Numerics n : {Numerics::kExact, Numerics::kFast, Numerics::kFastBf16}) {
    // fast-bf16 shares fast's cache and attention; its own kernels' invariance is the fast
    // tier's boundaries (and packed_dot_test's), not the slow matrix again.
    if (n == Numerics::kFastBf16 && V4_GOLDEN_TIER_SLOW) continue;
    for (InvarianceCase c : base) {
      c.numerics = n;
      out.push_back(c);
    }
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Boundaries, InvarianceTest, ::testing::ValuesIn(InvarianceCases()),
                         [](const auto& info) {
                           return std::string(info.param.config == "tiny-fast" ? "tiny" : "mini") +
                                  "_L" + std::to_string(info.param.length) + "_" +
                                  testing::NumericsTestName(info.param.numerics);
                         });

TEST(SessionTest, RewindForkThreadsAndRepeatability) {
  if (V4_GOLDEN_TIER_SLOW) GTEST_SKIP() << "runs in the fast tier";
  auto model = testing::LoadGoldenModel("tiny-fast", true, 2);
  auto model1 = testing::LoadGoldenModel("tiny-fast", true, 1);
  const int64_t V = model->config().vocab_size;
  auto tokens = RandomTokens(40, V, 99);
  auto span = std::span<const int32_t>(tokens);
  Session s(model.get(), SessionOptions{});
  ASSERT_TRUE(s.Append(span.subspan(0, 13)).ok());
  ASSERT_TRUE(s.Append(span.subspan(13, 14)).ok());
  ASSERT_TRUE(s.Append(span.subspan(27, 13)).ok());
  std::vector<float> full = s.last_logits();
  // Rewind to a position between snapshots, then continue: same logits as never rewinding.
  ASSERT_TRUE(s.Rewind(20).ok());
  EXPECT_EQ(s.length(), 20);
  ASSERT_TRUE(s.Append(span.subspan(20, 20)).ok());
  EXPECT_EQ(0, std::memcmp(s.last_logits().data(), full.data(), V * 4));
  // A fork evolves independently of its parent.
  auto f = s.Fork();
  int32_t extra[2] = {5, 6};
  ASSERT_TRUE(f->Append(extra).ok());
  EXPECT_EQ(s.length(), 40);
  EXPECT_EQ(0, std::memcmp(s.last_logits().data(), full.data(), V * 4));
  ASSERT_TRUE(s.Append(extra).ok());
  EXPECT_EQ(0, std::memcmp(s.last_logits().data(), f->last_logits().data(), V * 4));
  // One thread == two threads, and run to run.
  auto a = RunChunked(*model, tokens, 5);
  auto b = RunChunked(*model1, tokens, 5);
  auto c = RunChunked(*model, tokens, 5);
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4));
  EXPECT_EQ(0, std::memcmp(a.data(), c.data(), a.size() * 4));
}

TEST(SessionTest, StateIsResetForShortPromptsAfterAnEarlierConversation) {
  if (V4_GOLDEN_TIER_SLOW) GTEST_SKIP() << "runs in the fast tier";
  // The reference keeps stale compressor state for prompts shorter than 4 tokens after an
  // earlier sequence; a fresh session must not.
  auto model = testing::LoadGoldenModel("tiny-fast", true);
  auto tokens = RandomTokens(30, model->config().vocab_size, 5);
  Session first(model.get(), SessionOptions{});
  ASSERT_TRUE(first.Append(tokens).ok());
  int32_t short_prompt[3] = {1, 2, 3};
  Session after(model.get(), SessionOptions{});
  ASSERT_TRUE(after.Append(short_prompt).ok());
  auto fresh_model = testing::LoadGoldenModel("tiny-fast", true);
  Session fresh(fresh_model.get(), SessionOptions{});
  ASSERT_TRUE(fresh.Append(short_prompt).ok());
  EXPECT_EQ(0, std::memcmp(after.last_logits().data(), fresh.last_logits().data(),
                           after.last_logits().size() * 4));
}

TEST(SessionTest, BadInputIsAnError) {
  if (V4_GOLDEN_TIER_SLOW) GTEST_SKIP() << "runs in the fast tier";
  auto model = testing::LoadGoldenModel("tiny-fast", true);
  Session s(model.get(), SessionOptions{});
  int32_t bad[2] = {3, 100000};
  auto st = s.Append(bad);
  EXPECT_EQ(st.code(), StatusCode::kOutOfRange);
  EXPECT_NE(st.message().find("100000"), std::string::npos);
  EXPECT_EQ(s.length(), 0);
  Sampler g(SamplerOptions{});
  EXPECT_FALSE(s.Generate(g, 3, nullptr).ok());  // nothing to continue from
  std::vector<int32_t> too_long(static_cast<size_t>(model->max_context() + 1), 1);
  EXPECT_EQ(s.Append(too_long).code(), StatusCode::kOutOfRange);
  EXPECT_FALSE(s.Rewind(5).ok());
}

}  // namespace
}  // namespace v4agent::engine

namespace v4agent::engine {
namespace {

TEST(KvCacheTest, PackedRowsAreLosslessAndMatchTheFormula) {
  if (V4_GOLDEN_TIER_SLOW) GTEST_SKIP() << "runs in the fast tier";
  // Packed (FP8/FP4) and fp32 history give bit-identical logits with the simulations on.
  ModelOptions o;
  o.num_threads = 1;
  auto packed = Model::Load(testing::GoldenDir() + "/mini-flash/checkpoint", o);
  o.kv_layout = KvLayout::kFp32;
  auto plain = Model::Load(testing::GoldenDir() + "/mini-flash/checkpoint", o);
  ASSERT_TRUE(packed.ok() && plain.ok());
  auto tokens = RandomTokens(300, (*packed)->config().vocab_size, 11);
  auto a = RunChunked(**packed, tokens, 64);
  auto b = RunChunked(**plain, tokens, 64);
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4));
  // Bytes per sequence: history equals the per-entry sizes times the entries written.
  auto cache = (*packed)->NewCache();
  std::vector<float> l;
  ASSERT_TRUE((*packed)->Forward(*cache, tokens, false, &l).ok());
  const ModelConfig& c = (*packed)->config();
  uint64_t expect = 0;
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const int64_t m = c.ratio(i);
    if (m == 0) continue;
    const int64_t entries = 300 / m;
    expect += entries * (c.nope_head_dim + c.nope_head_dim / 64 + c.qk_rope_head_dim * 4);
    if (c.kind(i) == AttentionKind::kCsa)
      expect += entries * (c.index_head_dim / 2 + c.index_head_dim / 32);
  }
  EXPECT_EQ(cache->ByteAccount().history, expect);
  // The production layout, written out from spec §5.2 here (not with the accounting
  // function under test): a main entry is the e4m3 nope dims, the bf16 rope dims and one UE8M0
  // scale per 64 nope dims, padded to 8 bytes (584 B at head_dim 512); an FP4 indexer key is
  // dI/2 packed bytes and one UE8M0 scale per 32 (68 B at 128).
  const int64_t main_raw = c.nope_head_dim + 2 * c.qk_rope_head_dim + c.nope_head_dim / 64;
  const int64_t main_entry = (main_raw + 7) / 8 * 8;
  const int64_t index_entry = c.index_head_dim / 2 + c.index_head_dim / 32;
  uint64_t production = 0;
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const int64_t m = c.ratio(i);
    if (m == 0) continue;
    production += (300 / m) * (main_entry + (c.kind(i) == AttentionKind::kCsa ? index_entry : 0));
  }
  EXPECT_EQ(cache->ByteAccount().history_production, production);
}

TEST(KvCacheTest, Bf16LayoutIsTheReferenceSizeAndCloseButLossy) {
  if (V4_GOLDEN_TIER_SLOW) GTEST_SKIP() << "runs in the fast tier";
  ModelOptions o;
  o.num_threads = 1;
  auto packed = Model::Load(testing::GoldenDir() + "/mini-flash/checkpoint", o);
  o.kv_layout = KvLayout::kBf16;
  auto bf16 = Model::Load(testing::GoldenDir() + "/mini-flash/checkpoint", o);
  ASSERT_TRUE(packed.ok() && bf16.ok());
  const ModelConfig& c = (*packed)->config();
  auto tokens = RandomTokens(300, c.vocab_size, 12);
  auto a = RunChunked(**packed, tokens, 300);
  auto b = RunChunked(**bf16, tokens, 300);
  ASSERT_EQ(a.size(), b.size());
  float max_diff = 0;
  for (size_t i = 0; i < a.size(); ++i) max_diff = std::max(max_diff, std::fabs(a[i] - b[i]));
  EXPECT_GT(max_diff, 0.0f) << "bf16 rounds the rope dims: results cannot be bit-identical";
  EXPECT_LT(max_diff, 0.5f);
  auto cache = (*bf16)->NewCache();
  std::vector<float> l;
  ASSERT_TRUE((*bf16)->Forward(*cache, tokens, false, &l).ok());
  uint64_t expect = 0;
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const int64_t m = c.ratio(i);
    if (m == 0) continue;
    expect += (300 / m) * c.head_dim * 2;
    if (c.kind(i) == AttentionKind::kCsa) expect += (300 / m) * c.index_head_dim * 2;
  }
  EXPECT_EQ(cache->ByteAccount().history, expect);
}

}  // namespace
}  // namespace v4agent::engine
