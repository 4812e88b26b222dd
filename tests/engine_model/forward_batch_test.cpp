// ForwardBatch, the decode step of several sequences at once that continuous batching rests
// on: every row's logits must be the bits that sequence gets alone, whoever it is batched
// with and whenever it joins or leaves, in both numerics.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

#include "engine/model/model.h"
#include "engine/sampler/sampler.h"
#include "engine/session/session.h"
#include "tests/engine_model/golden_util.h"

namespace v4agent::engine {
namespace {

using testing::ArgMax;
using testing::RandomTokens;

std::unique_ptr<Model> LoadMiniFlash(Numerics numerics) {
  ModelOptions o;
  o.numerics = numerics;
  o.num_threads = 2;
  auto m = Model::Load(testing::GoldenDir() + "/mini-flash/checkpoint", o);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? std::move(m).value() : nullptr;
}

class ForwardBatchTest : public ::testing::TestWithParam<Numerics> {};

TEST_P(ForwardBatchTest, EachRowIsBitIdenticalToItsSequenceDecodedAlone) {
  auto model = LoadMiniFlash(GetParam());
  ASSERT_NE(model, nullptr);
  const int64_t V = model->config().vocab_size;
  // Prompts on both sides of the 128-token window and of CSA / HCA block boundaries.
  const std::vector<int64_t> lengths = {5, 131, 300};
  const int steps = 6;
  // Alone: prefill, then greedy decode one token per Forward.
  std::vector<std::vector<int32_t>> prompts, chosen(lengths.size());
  std::vector<std::vector<std::vector<float>>> alone(lengths.size());
  for (size_t s = 0; s < lengths.size(); ++s) {
    prompts.push_back(RandomTokens(lengths[s], V, 40 + s));
    auto cache = model->NewCache();
    std::vector<float> logits;
    ASSERT_TRUE(model->Forward(*cache, prompts[s], false, &logits).ok());
    for (int i = 0; i < steps; ++i) {
      const int32_t next = static_cast<int32_t>(ArgMax(logits.data(), V));
      chosen[s].push_back(next);
      ASSERT_TRUE(model->Forward(*cache, std::span<const int32_t>(&next, 1), false, &logits).ok());
      alone[s].push_back(logits);
    }
  }
  // Batched: sequence 2 joins at step 2 and sequence 0 leaves after step 3, as requests come
  // and go in a server; each step's batch is one ForwardBatch.
  std::vector<std::unique_ptr<SequenceCache>> caches;
  std::vector<int> done(lengths.size(), 0);
  for (size_t s = 0; s < lengths.size(); ++s) {
    caches.push_back(model->NewCache());
    std::vector<float> unused;
    ASSERT_TRUE(model->Forward(*caches[s], prompts[s], false, &unused).ok());
  }
  int batched_rows = 0;
  for (int step = 0; step < steps + 3; ++step) {
    std::vector<SequenceCache*> batch;
    std::vector<int32_t> tokens;
    std::vector<size_t> who;
    for (size_t s = 0; s < lengths.size(); ++s) {
      const bool joined = s != 2 || step >= 2;
      const bool left = s == 0 && step > 3;
      if (!joined || left || done[s] == steps) continue;
      batch.push_back(caches[s].get());
      tokens.push_back(chosen[s][done[s]]);
      who.push_back(s);
    }
    if (batch.empty()) continue;
    std::vector<float> logits;
    ASSERT_TRUE(model->ForwardBatch(batch, tokens, &logits).ok());
    ASSERT_EQ(logits.size(), batch.size() * static_cast<size_t>(V));
    for (size_t r = 0; r < who.size(); ++r) {
      const size_t s = who[r];
      EXPECT_EQ(0, std::memcmp(logits.data() + r * V, alone[s][done[s]].data(), V * 4))
          << "sequence " << s << " step " << done[s] << " in a batch of " << batch.size();
      EXPECT_EQ(caches[s]->length(), lengths[s] + done[s] + 1);
      ++done[s];
      if (batch.size() > 1) ++batched_rows;
    }
  }
  EXPECT_GE(batched_rows, 8);  // the comparison covered real batches, not only singletons
}

TEST_P(ForwardBatchTest, BadBatchesAreErrorsAndChangeNoCache) {
  auto model = LoadMiniFlash(GetParam());
  ASSERT_NE(model, nullptr);
  auto a = model->NewCache(), b = model->NewCache();
  std::vector<float> logits;
  const std::vector<int32_t> two = {1, 2};
  std::vector<SequenceCache*> same = {a.get(), a.get()};
  auto st = model->ForwardBatch(same, two, &logits);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("same cache"), std::string::npos) << st.ToString();
  std::vector<SequenceCache*> one = {a.get()};
  st = model->ForwardBatch(one, two, &logits);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("one token per sequence"), std::string::npos) << st.ToString();
  std::vector<SequenceCache*> both = {a.get(), b.get()};
  const std::vector<int32_t> bad = {1, static_cast<int32_t>(model->config().vocab_size)};
  st = model->ForwardBatch(both, bad, &logits);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("index 1"), std::string::npos) << st.ToString();
  EXPECT_EQ(a->length(), 0);
  EXPECT_EQ(b->length(), 0);
}

// The session-level step a server batches with: sampled generation through AppendEach, with a
// fork sharing its parent's history in the same batch, gives each session the tokens and
// logits its own Generate gives, and a Rewind afterwards still lands on a snapshot.
TEST_P(ForwardBatchTest, SessionsSteppedTogetherGenerateWhatEachGeneratesAlone) {
  auto model = LoadMiniFlash(GetParam());
  ASSERT_NE(model, nullptr);
  const int64_t V = model->config().vocab_size;
  const int steps = 5;
  std::vector<std::vector<int32_t>> prompts = {RandomTokens(40, V, 7), RandomTokens(9, V, 8)};
  SamplerOptions so;
  so.temperature = 0.9f;
  auto alone = [&](const std::vector<int32_t>& prompt, uint64_t seed) {
    Session s(model.get(), SessionOptions{});
    EXPECT_TRUE(s.Append(prompt).ok());
    SamplerOptions o = so;
    o.seed = seed;
    Sampler sampler(o);
    auto r = s.Generate(sampler, steps, nullptr);
    EXPECT_TRUE(r.ok());
    return std::make_pair(r->tokens, s.last_logits());
  };
  // Sessions 0 and 1 from two prompts; session 2 a fork of session 0 sampling another seed.
  std::vector<std::unique_ptr<Session>> sessions;
  for (const auto& p : prompts) {
    sessions.push_back(std::make_unique<Session>(model.get(), SessionOptions{}));
    ASSERT_TRUE(sessions.back()->Append(p).ok());
  }
  sessions.push_back(sessions[0]->Fork());
  const std::vector<uint64_t> seeds = {11, 12, 13};
  std::vector<Sampler> samplers;
  for (uint64_t seed : seeds) {
    SamplerOptions o = so;
    o.seed = seed;
    samplers.emplace_back(o);
  }
  std::vector<std::vector<int32_t>> got(3);
  for (int step = 0; step < steps; ++step) {
    std::vector<Session*> batch;
    std::vector<int32_t> ids;
    for (size_t i = 0; i < sessions.size(); ++i) {
      batch.push_back(sessions[i].get());
      ids.push_back(samplers[i].Sample(sessions[i]->last_logits()));
      got[i].push_back(ids.back());
    }
    ASSERT_TRUE(Session::AppendEach(batch, ids).ok());
  }
  for (size_t i = 0; i < sessions.size(); ++i) {
    auto [tokens, logits] = alone(prompts[i == 2 ? 0 : i], seeds[i]);
    EXPECT_EQ(got[i], tokens) << "session " << i;
    EXPECT_EQ(0, std::memcmp(sessions[i]->last_logits().data(), logits.data(), V * 4))
        << "session " << i;
    EXPECT_EQ(sessions[i]->Stats().tokens_generated, steps);
  }
  sessions[1]->Checkpoint();
  ASSERT_TRUE(sessions[1]->Rewind(static_cast<int64_t>(prompts[1].size()) + 2).ok());
  EXPECT_EQ(sessions[1]->Stats().tokens_replayed, 2);
  // Errors change nothing.
  std::vector<Session*> twice = {sessions[0].get(), sessions[0].get()};
  const std::vector<int32_t> two = {1, 2};
  EXPECT_FALSE(Session::AppendEach(twice, two).ok());
  EXPECT_EQ(sessions[0]->length(), static_cast<int64_t>(prompts[0].size()) + steps);
}

INSTANTIATE_TEST_SUITE_P(Numerics, ForwardBatchTest,
                         ::testing::Values(Numerics::kExact, Numerics::kFast, Numerics::kFastBf16),
                         [](const auto& info) { return testing::NumericsTestName(info.param); });

}  // namespace
}  // namespace v4agent::engine
