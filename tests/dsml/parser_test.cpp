// The streaming parser: the reference's message shape on the spec's completions, the
// recommended results for malformed output (spec §8.4), chunking invariance at every split
// point, truncation at every byte, and the value decoder's error offsets.
#include <gtest/gtest.h>

#include <random>

#include "dsml/markers.h"
#include "dsml/stream_parser.h"
#include "tests/dsml/case_util.h"

namespace v4agent::dsml {
namespace {

struct ParseCase {
  std::string text;
  ThinkingMode mode = ThinkingMode::kThinking;
  OrderedJson tools;
  OrderedJson expect;
};

ParseCase LoadParseCase(const std::string& name) {
  ParseCase c;
  c.text = testing::ReadCase(name + ".completion");
  auto j = ParseOrderedJson(testing::ReadCase(name + ".parse.json"), name);
  EXPECT_TRUE(j.ok());
  c.mode = (*j)["thinking_mode"] == "chat" ? ThinkingMode::kChat : ThinkingMode::kThinking;
  c.tools = j->contains("tools") ? (*j)["tools"] : OrderedJson();
  c.expect = (*j)["expect"];
  return c;
}

// Events with adjacent deltas of one kind joined: the chunking-independent form.
std::vector<Json> Normalize(const std::vector<Event>& events) {
  std::vector<Event> merged;
  for (const Event& e : events) {
    const bool delta = e.kind == EventKind::kReasoningDelta || e.kind == EventKind::kContentDelta ||
                       e.kind == EventKind::kValueDelta;
    if (delta && !merged.empty() && merged.back().kind == e.kind) {
      merged.back().text += e.text;
    } else if (!(delta && e.text.empty())) {
      merged.push_back(e);
    }
  }
  std::vector<Json> out;
  for (const Event& e : merged) out.push_back(EventToJson(e));
  return out;
}

std::vector<Json> ParseChunks(const ParseCase& c, const std::vector<size_t>& cuts) {
  const OrderedJson* tools = c.tools.is_null() ? nullptr : &c.tools;
  StreamParser p(c.mode, tools);
  std::vector<Event> events;
  size_t at = 0;
  for (size_t cut : cuts) {
    p.Feed(std::string_view(c.text).substr(at, cut - at), &events);
    at = cut;
  }
  p.Feed(std::string_view(c.text).substr(at), &events);
  p.Finish(&events);
  return Normalize(events);
}

class ParseCaseTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ParseCaseTest, MessageShape) {
  ParseCase c = LoadParseCase(GetParam());
  ParsedMessage m = ParseCompletion(c.text, c.mode, c.tools.is_null() ? nullptr : &c.tools);
  EXPECT_EQ(m.reasoning_content, c.expect["reasoning_content"].get<std::string>());
  EXPECT_EQ(m.content, c.expect["content"].get<std::string>());
  ASSERT_EQ(m.tool_calls.size(), c.expect["tool_calls"].size());
  for (size_t i = 0; i < m.tool_calls.size(); ++i) {
    EXPECT_EQ(m.tool_calls[i].name, c.expect["tool_calls"][i]["name"].get<std::string>());
    EXPECT_EQ(m.tool_calls[i].arguments, c.expect["tool_calls"][i]["arguments"].get<std::string>());
    // The raw bytes of the call are a verbatim slice of the output.
    EXPECT_NE(c.text.find(m.tool_calls[i].raw), std::string::npos);
    EXPECT_EQ(m.tool_calls[i].raw.rfind(std::string(kInvokeOpen), 0), 0u);
  }
  EXPECT_EQ(m.finish_reason, c.expect["finish_reason"].get<std::string>());
  EXPECT_EQ(static_cast<int>(m.errors.size()), c.expect["errors"].get<int>())
      << (m.errors.empty() ? std::string() : m.errors[0]);
  EXPECT_EQ(m.incomplete_calls, c.expect.value("incomplete_calls", 0));
  for (const auto& e : m.errors) EXPECT_FALSE(e.empty());
}

TEST_P(ParseCaseTest, EveryChunkingGivesTheSameEvents) {
  ParseCase c = LoadParseCase(GetParam());
  const std::vector<Json> whole = ParseChunks(c, {});
  for (size_t cut = 1; cut < c.text.size(); ++cut) {
    ASSERT_EQ(ParseChunks(c, {cut}), whole) << "split at byte " << cut;
  }
  std::vector<size_t> every;
  for (size_t i = 1; i < c.text.size(); ++i) every.push_back(i);
  EXPECT_EQ(ParseChunks(c, every), whole) << "one byte at a time";
  std::mt19937 rng(42);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<size_t> cuts;
    for (size_t i = 1; i < c.text.size(); ++i) {
      if (rng() % 5 == 0) cuts.push_back(i);
    }
    ASSERT_EQ(ParseChunks(c, cuts), whole) << "random chunking " << trial;
  }
}

TEST_P(ParseCaseTest, EveryTruncationEndsCleanly) {
  ParseCase c = LoadParseCase(GetParam());
  for (size_t n = 0; n <= c.text.size(); ++n) {
    ParseCase t = c;
    t.text = c.text.substr(0, n);
    std::vector<Json> events = ParseChunks(t, {});
    ASSERT_FALSE(events.empty());
    ASSERT_EQ(events.back()["event"], "message_end") << n;
    // Text before any tag is never lost: reasoning + content cover it.
    ParsedMessage m = ParseCompletion(t.text, t.mode, t.tools.is_null() ? nullptr : &t.tools);
    if (m.tool_calls.empty() && t.text.find("｜DSML｜") == std::string::npos &&
        t.text.find("think>") == std::string::npos && t.text.find("<｜end") == std::string::npos) {
      EXPECT_EQ(m.reasoning_content + m.content, t.text) << n;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Spec, ParseCaseTest,
                         ::testing::ValuesIn(testing::CasesWith(".completion")),
                         [](const auto& info) { return info.param; });

TEST(ValueDecoderTest, JsonErrorsCarryTheByteOffset) {
  DecodedValue a = DecodeValue("{oops", false);
  EXPECT_FALSE(a.ok);
  EXPECT_NE(a.error.find("byte 1"), std::string::npos) << a.error;
  EXPECT_EQ(a.value, "{oops");  // kept as text, never forwarded as broken JSON
  DecodedValue b = DecodeValue("  [1, 2", false);
  EXPECT_FALSE(b.ok);
  EXPECT_NE(b.error.find("byte 7"), std::string::npos) << b.error;
  DecodedValue c = DecodeValue("\n{\"a\": [1, 2.5, null]}\n", false);
  ASSERT_TRUE(c.ok);
  EXPECT_EQ(c.json_text, "{\"a\": [1, 2.5, null]}");
  DecodedValue d = DecodeValue("line\n\"quoted\"\n", true);
  EXPECT_EQ(d.value, "line\n\"quoted\"\n");
  EXPECT_EQ(d.json_text, "\"line\\n\\\"quoted\\\"\\n\"");
}

TEST(ValueDecoderTest, ScalarsWrittenAsTextAreCoercedToTheSchemaType) {
  auto tools = ParseOrderedJson(
      R"([{"type": "function", "function": {"name": "f", "parameters": {"type": "object",
          "properties": {"n": {"type": "integer"}, "ok": {"type": "boolean"}}}}}])",
      "t");
  std::vector<ParsedParameter> params = {{"n", true, "5", DecodeValue("5", true)},
                                         {"ok", true, "true", DecodeValue("true", true)}};
  std::string args;
  auto problems = CheckCall(&*tools, "f", params, &args);
  EXPECT_TRUE(problems.empty());
  EXPECT_EQ(args, "{\"n\": 5, \"ok\": true}");
}

TEST(StreamParserTest, StringValuesStreamBeforeTheirTagCloses) {
  StreamParser p(ThinkingMode::kChat, nullptr);
  std::vector<Event> events;
  p.Feed(
      "Hi\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"bash\">\n<｜DSML｜parameter "
      "name=\"command\" string=\"true\">ls -la",
      &events);
  std::string streamed;
  bool began = false;
  for (const Event& e : events) {
    if (e.kind == EventKind::kToolCallBegin) began = e.text == "bash";
    if (e.kind == EventKind::kValueDelta) streamed += e.text;
  }
  EXPECT_TRUE(began);
  EXPECT_EQ(streamed, "ls -la");
  p.Feed(" /tmp</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls><｜end▁of▁sentence｜>",
         &events);
  p.Finish(&events);
  EXPECT_EQ(events.back().kind, EventKind::kMessageEnd);
  EXPECT_EQ(events.back().text, "stop");
  bool ended = false;
  for (const Event& e : events) {
    if (e.kind == EventKind::kToolCallEnd) {
      ended = true;
      EXPECT_EQ(e.arguments, "{\"command\": \"ls -la /tmp\"}");
      EXPECT_TRUE(e.valid);
    }
  }
  EXPECT_TRUE(ended);
}

TEST(StreamParserTest, GarbageNeverCrashesAndAlwaysEnds) {
  std::mt19937 rng(7);
  const std::vector<std::string> atoms = {"<｜DSML｜tool_calls>",
                                          "</｜DSML｜tool_calls>",
                                          "<｜DSML｜invoke name=\"f\">",
                                          "</｜DSML｜invoke>",
                                          "<｜DSML｜parameter name=\"a\" string=\"true\">",
                                          "<｜DSML｜parameter name=\"n\" string=\"false\">",
                                          "</｜DSML｜parameter>",
                                          "</think>",
                                          "<think>",
                                          "<｜end▁of▁sentence｜>",
                                          "x",
                                          "\n",
                                          " ",
                                          "{",
                                          "\"",
                                          "<",
                                          "｜",
                                          "DSML"};
  for (int trial = 0; trial < 2000; ++trial) {
    std::string text;
    const int n = static_cast<int>(rng() % 30);
    for (int i = 0; i < n; ++i) text += atoms[rng() % atoms.size()];
    for (ThinkingMode mode : {ThinkingMode::kThinking, ThinkingMode::kChat}) {
      ParsedMessage m = ParseCompletion(text, mode, nullptr);
      EXPECT_TRUE(m.finish_reason == "stop" || m.finish_reason == "length");
    }
  }
}

}  // namespace
}  // namespace v4agent::dsml
