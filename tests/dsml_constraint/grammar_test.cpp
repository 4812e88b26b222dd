// The DSML grammar automaton: random walks through it always produce output that the stream
// parser accepts as exactly the calls it should be (valid against the schemas), and known
// malformed outputs are rejected at the first bad byte.
#include <gtest/gtest.h>

#include <random>

#include "dsml/constraint.h"
#include "dsml/markers.h"
#include "dsml/stream_parser.h"

namespace v4agent::dsml {
namespace {

OrderedJson Tools() {
  return OrderedJson::parse(R"([
    {"type": "function", "function": {"name": "bash", "parameters": {"type": "object",
      "properties": {"command": {"type": "string"}, "timeout": {"type": "integer"}},
      "required": ["command"]}}},
    {"type": "function", "function": {"name": "view", "parameters": {"type": "object",
      "properties": {"path": {"type": "string"}, "view_range": {"type": "array"},
                     "depth": {"type": "integer"}}, "required": ["path"]}}},
    {"type": "function", "function": {"name": "view_all", "parameters": {"type": "object",
      "properties": {"flag": {"type": "boolean"}, "ratio": {"type": "number"},
                     "meta": {"type": "object"}, "nothing": {"type": "null"}}}}},
    {"type": "function", "function": {"name": "submit", "parameters": {"type": "object",
      "properties": {}}}}
  ])");
}

// Picks random allowed bytes (favoring '<' now and then, so markers get written) until only
// the end of turn may follow.
std::string RandomWalk(const DsmlGrammar& g, std::mt19937& rng, int max_bytes = 20000) {
  DsmlGrammar::State s = g.Start();
  std::string out;
  for (int n = 0; n < max_bytes && !g.ExpectsEnd(s) && !g.Done(s); ++n) {
    std::vector<uint8_t> ok;
    for (int b = 0; b < 256; ++b) {
      DsmlGrammar::State t = s;
      if (g.Advance(t, static_cast<uint8_t>(b))) ok.push_back(static_cast<uint8_t>(b));
    }
    EXPECT_FALSE(ok.empty()) << "dead end after: " << out;
    if (ok.empty()) break;
    uint8_t pick = ok[rng() % ok.size()];
    if (std::find(ok.begin(), ok.end(), '<') != ok.end() && rng() % 4 == 0) pick = '<';
    EXPECT_TRUE(g.Advance(s, pick));
    out.push_back(static_cast<char>(pick));
  }
  EXPECT_TRUE(g.ExpectsEnd(s)) << out;
  return out;
}

TEST(DsmlGrammarTest, EveryRandomWalkParsesAndValidates) {
  const OrderedJson tools = Tools();
  for (ThinkingMode mode : {ThinkingMode::kThinking, ThinkingMode::kChat}) {
    ConstraintOptions o;
    o.mode = mode;
    o.reasoning_budget = 40;
    o.content_budget = 12;
    o.string_budget = 30;
    o.json_budget = 40;
    o.max_calls = 2;
    auto g = DsmlGrammar::Create(tools, o);
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    std::mt19937 rng(mode == ThinkingMode::kThinking ? 1 : 2);
    for (int i = 0; i < 2000; ++i) {
      const std::string text = RandomWalk(*g, rng) + std::string(kEos);
      ParsedMessage m = ParseCompletion(text, mode, &tools);
      ASSERT_TRUE(m.errors.empty()) << m.errors[0] << "\n" << text;
      ASSERT_GE(m.tool_calls.size(), 1u) << text;
      ASSERT_LE(m.tool_calls.size(), 2u) << text;
      EXPECT_EQ(m.finish_reason, "stop");
      for (const auto& c : m.tool_calls) {
        auto args = OrderedJson::parse(c.arguments);
        if (c.name == "bash") {
          EXPECT_TRUE(args.contains("command")) << text;
        }
        if (c.name == "view") {
          EXPECT_TRUE(args.contains("path")) << text;
        }
      }
    }
  }
}

TEST(DsmlGrammarTest, MalformedOutputIsRejectedAtTheFirstBadByte) {
  auto g = DsmlGrammar::Create(Tools(), ConstraintOptions{});
  ASSERT_TRUE(g.ok());
  auto first_reject = [&](const std::string& text) -> int {
    DsmlGrammar::State s = g->Start();
    for (size_t i = 0; i < text.size(); ++i) {
      if (!g->Advance(s, static_cast<uint8_t>(text[i]))) return static_cast<int>(i);
    }
    return -1;
  };
  const std::string head = "ok</think>\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"";
  EXPECT_EQ(first_reject(head + "bash\">\n"), -1);
  EXPECT_EQ(first_reject(head + "rm\""), static_cast<int>(head.size()));  // unknown tool
  const std::string bash = head + "bash\">\n";
  // A required parameter missing: the invoke may not close.
  EXPECT_EQ(first_reject(bash + "</｜DSML｜invoke>"), static_cast<int>(bash.size() + 1));
  // A string parameter must be string="true"; an integer one takes digits only.
  const std::string p = bash + "<｜DSML｜parameter name=\"command\" string=\"";
  EXPECT_EQ(first_reject(p + "false"), static_cast<int>(p.size()));
  const std::string t = bash + "<｜DSML｜parameter name=\"timeout\" string=\"false\">";
  EXPECT_EQ(first_reject(t + "12"), -1);
  EXPECT_EQ(first_reject(t + "1x"), static_cast<int>(t.size() + 1));
  // Reasoning may not contain a DSML tag or the end of turn.
  EXPECT_EQ(first_reject("x<｜DSML｜"), static_cast<int>(std::string("x<｜DSML｜").size()) - 1);
  EXPECT_NE(first_reject(std::string("x") + std::string(kEos)), -1);
}

TEST(DsmlGrammarTest, BudgetsForceTheClosingMarker) {
  ConstraintOptions o;
  o.reasoning_budget = 5;
  auto g = DsmlGrammar::Create(Tools(), o);
  DsmlGrammar::State s = g->Start();
  for (char c : std::string("abcde")) ASSERT_TRUE(g->Advance(s, static_cast<uint8_t>(c)));
  DsmlGrammar::State t = s;
  EXPECT_FALSE(g->Advance(t, 'f'));
  t = s;
  EXPECT_TRUE(g->Advance(t, '<'));
  EXPECT_FALSE(g->Advance(t, 'x'));
  EXPECT_TRUE(g->Advance(t, '/'));
}

TEST(DsmlGrammarTest, BadToolNamesAreRefused) {
  auto tools = OrderedJson::parse(R"([{"type": "function", "function": {"name": "a\"b"}}])");
  EXPECT_FALSE(DsmlGrammar::Create(tools, ConstraintOptions{}).ok());
  EXPECT_FALSE(DsmlGrammar::Create(OrderedJson::array(), ConstraintOptions{}).ok());
}

}  // namespace
}  // namespace v4agent::dsml
