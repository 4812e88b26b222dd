// The in-process client on the random-weight mini model with the V4 tokenizer, through the
// real loop, tools and DSML codec: over 5 turns each turn prefills only its new tokens (the
// whole conversation is reused from the cache, no rewinds), and the logits after turn 5 equal
// one full prefill of the conversation's tokens.
#include <gtest/gtest.h>

#include <cstring>

#include "agent/agent_loop.h"
#include "agent/constrained_decoding.h"
#include "agent/dsml_renderer.h"
#include "agent/inprocess_client.h"
#include "agent/tool_registry_executor.h"
#include "agent/trajectory.h"
#include "dsml/markers.h"
#include "tests/agent_constraint/v4_fixture.h"

namespace v4agent::agent {
namespace {

TEST(InProcessRunTest, FiveTurnsPrefillOnlyNewTokensAndMatchAFullPrefill) {
  auto& fx = testing::SharedV4Fixture();
  ScopedTempDir ws;
  ASSERT_TRUE(WriteFile(ws.path() + "/notes.txt", "alpha\nbeta\n").ok());
  // Only read-only tools, so five random calls change nothing and none of them submits.
  auto policy = policies::LoadPolicyText(
      "tools: {allow: [view, list, search]}\nbudgets: {max_steps: 5}\n", "five-turns.yaml");
  ASSERT_TRUE(policy.ok()) << policy.status().ToString();
  auto tools = RegistryExecutor::Create(ws.path(), *policy);
  ASSERT_TRUE(tools.ok());
  DsmlRenderer renderer(DsmlRendererOptions{});
  EngineTokenCodec codec(fx.tokenizer.get());
  InProcessOptions io;
  io.sampler.temperature = 1.0f;
  io.sampler.seed = 3;
  io.stop_ids = {*fx.tokenizer->TokenId(dsml::kEos)};
  TokenConstraintOptions co;
  co.grammar.reasoning_budget = 16;
  co.grammar.content_budget = 4;
  co.grammar.string_budget = 12;
  co.grammar.json_budget = 12;
  auto constraint = TokenConstraint::Create(*fx.tokenizer, co);
  ASSERT_TRUE(constraint.ok());
  io.constraint = *constraint;
  InProcessClient client(fx.model.get(), &codec, &renderer, io);
  LoopOptions o;
  o.task = "Read notes.txt.";
  o.system_prompt = "You are a careful agent.";
  ScopedTempDir out;  // outside the workspace, so the tools never see it
  o.trajectory_path = out.path() + "/inprocess-run.jsonl";
  o.workspace = ws.path();
  o.budgets = BudgetsFromPolicy(*policy);
  o.max_tokens_per_turn = 160;
  auto summary = RunAgent(client, **tools, o);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_EQ(summary->status, ExitStatus::kStepLimit) << summary->detail;
  EXPECT_EQ(summary->steps, 5);
  EXPECT_EQ(summary->rewinds, 0);
  auto records = ReadTrajectory(o.trajectory_path);
  ASSERT_TRUE(records.ok());
  int turns = 0;
  int64_t context = 0;
  for (const Json& r : *records) {
    if (r.value("type", "") != "turn") continue;
    const Json& c = r["completion"];
    ++turns;
    // Everything before this turn came from the cache; only the new text was prefilled.
    EXPECT_EQ(c["tokens_reused"].get<int64_t>(), context) << "turn " << turns;
    EXPECT_EQ(c["tokens_prefilled"].get<int64_t>(), static_cast<int64_t>(c["prompt_ids"].size()))
        << "turn " << turns;
    EXPECT_EQ(c["cache_start_tokens"].get<int64_t>(), context);
    context = c["context_tokens"].get<int64_t>();
  }
  EXPECT_EQ(turns, 5);
  EXPECT_EQ(client.session().length(), context);
  // One prefill of the same tokens from scratch gives the same logits, bit for bit.
  engine::Session fresh(fx.model.get(), engine::SessionOptions{});
  ASSERT_TRUE(fresh.Append(client.session().tokens()).ok());
  ASSERT_EQ(fresh.last_logits().size(), client.session().last_logits().size());
  EXPECT_EQ(0, std::memcmp(fresh.last_logits().data(), client.session().last_logits().data(),
                           fresh.last_logits().size() * sizeof(float)));
}

}  // namespace
}  // namespace v4agent::agent
