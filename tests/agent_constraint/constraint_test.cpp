// Constrained decoding through the real V4 tokenizer: masks agree with a brute-force check of
// every token, and (slow tier) a random-weight model with the constraint on makes 100 tool
// calls in a row that all parse and validate.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "agent/constrained_decoding.h"
#include "dsml/markers.h"
#include "dsml/prompt_encoder.h"
#include "dsml/stream_parser.h"
#include "engine/sampler/sampler.h"
#include "engine/session/session.h"
#include "tests/agent_constraint/v4_fixture.h"

namespace v4agent::agent {
namespace {

OrderedJson Tools() {
  return OrderedJson::parse(R"([
    {"type": "function", "function": {"name": "bash", "description": "Run a command.",
      "parameters": {"type": "object", "properties": {"command": {"type": "string"},
      "timeout": {"type": "integer"}}, "required": ["command"]}}},
    {"type": "function", "function": {"name": "view", "description": "Show a file.",
      "parameters": {"type": "object", "properties": {"path": {"type": "string"},
      "view_range": {"type": "array"}}, "required": ["path"]}}},
    {"type": "function", "function": {"name": "submit", "description": "Finish.",
      "parameters": {"type": "object", "properties": {"answer": {"type": "string"}}}}}
  ])");
}

TokenConstraintOptions SmallBudgets() {
  TokenConstraintOptions o;
  o.grammar.reasoning_budget = 48;
  o.grammar.content_budget = 16;
  o.grammar.string_budget = 48;
  o.grammar.json_budget = 32;
  return o;
}

TEST(TokenConstraintTest, MaskMatchesBruteForceAlongARandomPath) {
  auto& fx = testing::SharedV4Fixture();
  auto c = TokenConstraint::Create(*fx.tokenizer, SmallBudgets());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const OrderedJson tools = Tools();
  ASSERT_TRUE((*c)->BeginWith(tools, dsml::ThinkingMode::kThinking).ok());
  auto grammar = dsml::DsmlGrammar::Create(tools, SmallBudgets().grammar);
  ASSERT_TRUE(grammar.ok());
  dsml::DsmlGrammar::State s = grammar->Start();
  const int32_t V = fx.tokenizer->vocab_size();
  const int32_t eos = *fx.tokenizer->TokenId(dsml::kEos);
  std::mt19937 rng(5);
  std::string text;
  for (int step = 0; step < 400; ++step) {
    std::vector<float> logits(static_cast<size_t>(V), 0.0f);
    (*c)->Mask(logits);
    std::vector<int32_t> allowed;
    for (int32_t id = 0; id < V; ++id) {
      if (!std::isinf(logits[static_cast<size_t>(id)])) allowed.push_back(id);
    }
    // Brute force on a sample of tokens (all of them every 50 steps).
    for (int32_t id = 0; id < V; id += step % 50 == 0 ? 1 : 97) {
      bool ok;
      if (id == eos) {
        ok = grammar->ExpectsEnd(s);
      } else if (fx.tokenizer->IsSpecial(id) && fx.tokenizer->TokenBytes(id) != dsml::kThinkEnd &&
                 fx.tokenizer->TokenBytes(id) != dsml::kThinkStart &&
                 fx.tokenizer->TokenBytes(id) != dsml::kDsml) {
        ok = false;
      } else {
        dsml::DsmlGrammar::State t = s;
        ok = !grammar->ExpectsEnd(s) && !fx.tokenizer->TokenBytes(id).empty();
        for (unsigned char b : fx.tokenizer->TokenBytes(id)) ok = ok && grammar->Advance(t, b);
      }
      ASSERT_EQ(ok, !std::isinf(logits[static_cast<size_t>(id)]))
          << "token " << id << " at step " << step << " after: " << text;
    }
    ASSERT_FALSE(allowed.empty()) << text;
    // Prefer short structural tokens now and then so the walk reaches the tool block.
    const int32_t pick = allowed[rng() % allowed.size()];
    ASSERT_TRUE((*c)->Accept(pick).ok());
    if (pick == eos) break;
    for (unsigned char b : fx.tokenizer->TokenBytes(pick)) ASSERT_TRUE(grammar->Advance(s, b));
    text += fx.tokenizer->TokenBytes(pick);
  }
}

#if V4_CONSTRAINT_SLOW
TEST(TokenConstraintTest, RandomModelMakesOneHundredValidToolCalls) {
  // Tight budgets keep each turn short (the model is random: it never stops on its own).
  TokenConstraintOptions budgets;
  budgets.grammar.reasoning_budget = 16;
  budgets.grammar.content_budget = 4;
  budgets.grammar.string_budget = 16;
  budgets.grammar.json_budget = 16;
  auto& fx = testing::SharedV4Fixture();
  const OrderedJson tools = Tools();
  OrderedJson request{
      {"messages",
       OrderedJson::array(
           {{{"role", "system"}, {"content", "You are a coding agent."}, {"tools", tools}},
            {{"role", "user"}, {"content", "Fix the tests."}}})},
      {"thinking_mode", "thinking"}};
  auto conv = dsml::ConversationFromJson(request, "request");
  ASSERT_TRUE(conv.ok());
  auto prompt = dsml::RenderPrompt(*conv);
  ASSERT_TRUE(prompt.ok());
  engine::Session base(fx.model.get(), engine::SessionOptions{});
  ASSERT_TRUE(base.Append(fx.tokenizer->Encode(*prompt)).ok());
  auto c = TokenConstraint::Create(*fx.tokenizer, budgets);
  ASSERT_TRUE(c.ok());
  const int32_t eos = *fx.tokenizer->TokenId(dsml::kEos);
  int valid = 0;
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE((*c)->BeginWith(tools, dsml::ThinkingMode::kThinking).ok());
    auto session = base.Fork();
    engine::Sampler sampler(engine::SamplerOptions{1.0f, 0, 1.0f, static_cast<uint64_t>(i + 1)});
    sampler.set_mask_hook([&](std::span<float> l) { (*c)->Mask(l); });
    Status accept_status;
    auto r = session->Generate(
        sampler, 600,
        [&](int32_t id) {
          accept_status = (*c)->Accept(id);
          return accept_status.ok();
        },
        std::vector<int32_t>{eos});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_TRUE(accept_status.ok()) << accept_status.ToString();
    ASSERT_TRUE(r->stopped_by_token) << "call " << i << " did not finish";
    const std::string text = fx.tokenizer->Decode(r->tokens);
    dsml::ParsedMessage m = dsml::ParseCompletion(text, dsml::ThinkingMode::kThinking, &tools);
    ASSERT_TRUE(m.errors.empty()) << "call " << i << ": " << m.errors[0] << "\n" << text;
    ASSERT_EQ(m.tool_calls.size(), 1u) << text;
    ++valid;
  }
  EXPECT_EQ(valid, 100);
}
#endif

}  // namespace
}  // namespace v4agent::agent
