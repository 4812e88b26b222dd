// Session files: a saved session restored onto a freshly loaded model (another Model object,
// another thread count) continues with bit-identical logits at positions that are and are not
// multiples of the compression ratios and of the history chunk size; snapshots in the file
// rewind without replay; foreign, corrupted and truncated files are refused with a message
// that names the file and the mismatch.
#include "engine/session/session_file.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/file_util.h"
#include "common/hash.h"
#include "engine/session/session.h"
#include "tests/engine_model/golden_util.h"

namespace v4agent::engine {
namespace {

// Appends `tail` in chunks of 37, then generates `gen` tokens greedily; every logits row seen.
std::vector<float> Continue(Session& s, std::span<const int32_t> tail, int gen) {
  std::vector<float> rows;
  for (size_t off = 0; off < tail.size(); off += 37) {
    EXPECT_TRUE(s.Append(tail.subspan(off, std::min<size_t>(37, tail.size() - off))).ok());
    rows.insert(rows.end(), s.last_logits().begin(), s.last_logits().end());
  }
  Sampler greedy(SamplerOptions{});
  auto r = s.Generate(greedy, gen, [&](int32_t) {
    rows.insert(rows.end(), s.last_logits().begin(), s.last_logits().end());
    return true;
  });
  EXPECT_TRUE(r.ok());
  return rows;
}

void Corrupt(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c ^= 0x5a;
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

class SessionFileTest : public ::testing::TestWithParam<Numerics> {};

TEST_P(SessionFileTest, RestoreContinuesBitExactAcrossModelsAndThreadCounts) {
  if (V4_GOLDEN_TIER_SLOW) GTEST_SKIP() << "runs in the fast tier";
  auto writer = testing::LoadGoldenModel("tiny-fast", true, 2, GetParam());
  auto reader = testing::LoadGoldenModel("tiny-fast", true, 1, GetParam());
  const int64_t V = writer->config().vocab_size;
  const int64_t n = 300;
  auto tokens = testing::RandomTokens(n, V, 11);
  auto span = std::span<const int32_t>(tokens);
  ScopedTempDir dir;
  // Positions: multiples of 4 and 128 and not, before and after a full history chunk.
  for (int64_t p : {1, 4, 7, 128, 131, 256, 299}) {
    SCOPED_TRACE("saved at " + std::to_string(p));
    Session whole(writer.get(), SessionOptions{});
    ASSERT_TRUE(whole.Append(span.subspan(0, p)).ok());
    auto expect = Continue(whole, span.subspan(p), 4);

    Session first(writer.get(), SessionOptions{});
    ASSERT_TRUE(first.Append(span.subspan(0, p)).ok());
    const std::string path = dir.path() + "/s" + std::to_string(p) + ".v4s";
    ASSERT_TRUE(first.Save(path).ok());
    auto loaded = Session::Load(reader.get(), path, SessionOptions{});
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    EXPECT_EQ((*loaded)->tokens(), first.tokens());
    EXPECT_EQ((*loaded)->Stats().tokens_restored, p);
    EXPECT_EQ(0, std::memcmp((*loaded)->last_logits().data(), first.last_logits().data(), V * 4));
    auto got = Continue(**loaded, span.subspan(p), 4);
    ASSERT_EQ(got.size(), expect.size());
    EXPECT_EQ(0, std::memcmp(got.data(), expect.data(), got.size() * 4));
    EXPECT_EQ((*loaded)->tokens(), whole.tokens());
    EXPECT_EQ((*loaded)->Stats().tokens_prefilled, n - p);  // the history was never recomputed
  }
}

INSTANTIATE_TEST_SUITE_P(Numerics, SessionFileTest,
                         ::testing::Values(Numerics::kExact, Numerics::kFast, Numerics::kFastBf16),
                         [](const auto& info) { return testing::NumericsTestName(info.param); });

TEST(SessionFile, MappedHistoryIsNeverWrittenAndSavesAgain) {
  if (V4_GOLDEN_TIER_SLOW) GTEST_SKIP() << "runs in the fast tier";
  auto model = testing::LoadGoldenModel("tiny-fast", true, 2, Numerics::kFast);
  const int64_t V = model->config().vocab_size;
  auto tokens = testing::RandomTokens(420, V, 3);
  auto span = std::span<const int32_t>(tokens);
  ScopedTempDir dir;
  const std::string a = dir.path() + "/a.v4s", b = dir.path() + "/b.v4s";
  Session s(model.get(), SessionOptions{});
  ASSERT_TRUE(s.Append(span.subspan(0, 261)).ok());
  ASSERT_TRUE(s.Save(a).ok());
  auto l1 = Session::Load(model.get(), a, SessionOptions{});
  ASSERT_TRUE(l1.ok()) << l1.status().ToString();
  // Appending on top of mapped rows copies the partly filled chunk; the file stays intact
  // (its checksum still verifies) and a fork of the loaded session is unaffected.
  auto fork = (*l1)->Fork();
  ASSERT_TRUE((*l1)->Append(span.subspan(261, 100)).ok());
  ASSERT_TRUE(InspectSessionFile(a).ok());
  // A loaded session (history partly mapped, partly owned) saves and loads again.
  ASSERT_TRUE((*l1)->Save(b).ok());
  auto l2 = Session::Load(model.get(), b, SessionOptions{});
  ASSERT_TRUE(l2.ok()) << l2.status().ToString();
  ASSERT_TRUE(s.Append(span.subspan(261, 100)).ok());
  EXPECT_EQ(0, std::memcmp((*l2)->last_logits().data(), s.last_logits().data(), V * 4));
  ASSERT_TRUE((*l2)->Append(span.subspan(361, 59)).ok());
  ASSERT_TRUE(fork->Append(span.subspan(261, 159)).ok());
  ASSERT_TRUE(s.Append(span.subspan(361, 59)).ok());
  EXPECT_EQ(0, std::memcmp((*l2)->last_logits().data(), s.last_logits().data(), V * 4));
  EXPECT_EQ(0, std::memcmp(fork->last_logits().data(), s.last_logits().data(), V * 4));
}

TEST(SessionFile, SnapshotsRewindWithoutReplayAndExtraRoundTrips) {
  if (V4_GOLDEN_TIER_SLOW) GTEST_SKIP() << "runs in the fast tier";
  auto model = testing::LoadGoldenModel("tiny-fast", true, 2, Numerics::kFast);
  const int64_t V = model->config().vocab_size;
  auto tokens = testing::RandomTokens(200, V, 5);
  auto span = std::span<const int32_t>(tokens);
  Session s(model.get(), SessionOptions{});
  ASSERT_TRUE(s.Append(span.subspan(0, 50)).ok());
  const std::vector<float> at50 = s.last_logits();
  ASSERT_TRUE(s.Append(span.subspan(50, 77)).ok());
  ASSERT_TRUE(s.Append(span.subspan(127, 73)).ok());
  ScopedTempDir dir;
  const std::string path = dir.path() + "/s.v4s";
  SessionSaveOptions save;
  save.extra = Json{{"trajectory", "t.json"}, {"turn", 3}};
  ASSERT_TRUE(s.Save(path, save).ok());
  auto info = InspectSessionFile(path);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->tokens, 200);
  EXPECT_EQ(info->snapshots, 3);
  EXPECT_GT(info->history_bytes, 0u);
  EXPECT_GT(info->snapshot_bytes, 0u);
  Json extra;
  auto l = Session::Load(model.get(), path, SessionOptions{}, &extra);
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(extra["turn"], 3);
  // Rewinding to a saved turn boundary runs nothing.
  ASSERT_TRUE((*l)->Rewind(50).ok());
  EXPECT_EQ((*l)->Stats().tokens_prefilled, 0);
  EXPECT_EQ(0, std::memcmp((*l)->last_logits().data(), at50.data(), V * 4));
  ASSERT_TRUE((*l)->Append(span.subspan(50, 150)).ok());
  EXPECT_EQ(0, std::memcmp((*l)->last_logits().data(), s.last_logits().data(), V * 4));
  // Without snapshots the file is smaller and a rewind replays from the start.
  save.snapshots = false;
  ASSERT_TRUE(s.Save(path, save).ok());
  auto bare = InspectSessionFile(path);
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->snapshots, 0);
  EXPECT_LT(bare->file_size, info->file_size);
  auto l2 = Session::Load(model.get(), path, SessionOptions{});
  ASSERT_TRUE(l2.ok());
  ASSERT_TRUE((*l2)->Rewind(50).ok());
  EXPECT_EQ(0, std::memcmp((*l2)->last_logits().data(), at50.data(), V * 4));
}

std::string ErrorOf(Model* m, const std::string& path) {
  auto l = Session::Load(m, path, SessionOptions{});
  EXPECT_FALSE(l.ok());
  return l.ok() ? std::string() : l.status().message();
}

TEST(SessionFile, ForeignCorruptedAndTruncatedFilesAreRefused) {
  if (V4_GOLDEN_TIER_SLOW) GTEST_SKIP() << "runs in the fast tier";
  auto model = testing::LoadGoldenModel("tiny-fast", true, 2, Numerics::kFast);
  auto tokens = testing::RandomTokens(150, model->config().vocab_size, 9);
  Session s(model.get(), SessionOptions{});
  ASSERT_TRUE(s.Append(tokens).ok());
  ScopedTempDir dir;
  const std::string good = dir.path() + "/good.v4s";
  ASSERT_TRUE(s.Save(good).ok());
  const uint64_t size = std::filesystem::file_size(good);
  auto copy = [&](const std::string& name) {
    const std::string p = dir.path() + "/" + name;
    std::filesystem::copy_file(good, p, std::filesystem::copy_options::overwrite_existing);
    return p;
  };
  auto has = [](const std::string& msg, const std::string& what) {
    return msg.find(what) != std::string::npos;
  };
  {  // A flipped byte deep in the history.
    std::string p = copy("flip.v4s");
    Corrupt(p, size - 100);
    std::string e = ErrorOf(model.get(), p);
    EXPECT_TRUE(has(e, "checksum mismatch") && has(e, p)) << e;
  }
  {  // A flipped byte in the header.
    std::string p = copy("header.v4s");
    Corrupt(p, 20);
    EXPECT_TRUE(has(ErrorOf(model.get(), p), "header is corrupted"));
  }
  {  // Cut short.
    std::string p = copy("short.v4s");
    std::filesystem::resize_file(p, size - 1000);
    EXPECT_TRUE(has(ErrorOf(model.get(), p), "truncated"));
    std::filesystem::resize_file(p, 10);
    EXPECT_TRUE(has(ErrorOf(model.get(), p), "too short"));
  }
  {  // Not a session file at all, and a missing one.
    std::string p = dir.path() + "/config.json";
    ASSERT_TRUE(WriteFile(p, std::string(200, '{')).ok());
    EXPECT_TRUE(has(ErrorOf(model.get(), p), "not a v4agent session file"));
    EXPECT_TRUE(has(ErrorOf(model.get(), dir.path() + "/absent.v4s"), "absent.v4s"));
  }
  {  // A future version (its header rewritten consistently).
    std::string p = copy("v2.v4s");
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    char h[64];
    f.read(h, 64);
    const uint32_t v = 2;
    std::memcpy(h + 8, &v, 4);
    const uint64_t hh = Hash64(h, 56);
    std::memcpy(h + 56, &hh, 8);
    f.seekp(0);
    f.write(h, 64);
    f.close();
    EXPECT_TRUE(has(ErrorOf(model.get(), p), "version 2; this build reads version 1"));
  }
  // Another model, other numerics, the simulations off.
  auto mini = testing::LoadGoldenModel("mini-flash", true, 2, Numerics::kFast);
  EXPECT_TRUE(has(ErrorOf(mini.get(), good), "saved by another model"));
  auto exact = testing::LoadGoldenModel("tiny-fast", true, 2, Numerics::kExact);
  EXPECT_TRUE(has(ErrorOf(exact.get(), good), "--numerics fast"));
  auto nosim = testing::LoadGoldenModel("tiny-fast", false, 2, Numerics::kFast);
  EXPECT_TRUE(has(ErrorOf(nosim.get(), good), "QAT simulations on"));
  {  // Same config, one weight byte changed.
    const std::string ck = dir.path() + "/ckpt";
    std::filesystem::copy(testing::GoldenDir() + "/tiny-fast/checkpoint", ck,
                          std::filesystem::copy_options::recursive);
    std::string shard;
    for (const auto& e : std::filesystem::directory_iterator(ck)) {
      if (e.path().extension() == ".safetensors") shard = e.path().string();
    }
    ASSERT_FALSE(shard.empty());
    std::ifstream in(shard, std::ios::binary);
    uint64_t header_len = 0;
    in.read(reinterpret_cast<char*>(&header_len), 8);
    in.close();
    Corrupt(shard, 8 + header_len);  // the first byte of the first tensor
    ModelOptions o;
    o.numerics = Numerics::kFast;
    auto other = Model::Load(ck, o);
    ASSERT_TRUE(other.ok()) << other.status().ToString();
    EXPECT_TRUE(has(ErrorOf(other->get(), good), "same config but other weights"));
  }
  // The good file still loads after all that.
  EXPECT_TRUE(Session::Load(model.get(), good, SessionOptions{}).ok());
}

}  // namespace
}  // namespace v4agent::engine
