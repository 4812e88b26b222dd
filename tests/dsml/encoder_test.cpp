// The encoder against the reference's byte-exact examples (spec §10), Python json.dumps
// formatting, the fixed texts' hashes, incremental rendering and input errors.
#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "dsml/markers.h"
#include "dsml/prompt_encoder.h"
#include "dsml/python_json.h"
#include "tests/dsml/case_util.h"

namespace v4agent::dsml {
namespace {

std::string Sha256Hex(std::string_view s) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
  std::string hex;
  char buf[3];
  for (unsigned char c : d) {
    std::snprintf(buf, sizeof(buf), "%02x", c);
    hex += buf;
  }
  return hex;
}

TEST(MarkersTest, FixedTextsAreTheReferenceBytes) {
  EXPECT_EQ(kToolsPrefix.size(), 890u);
  EXPECT_EQ(Sha256Hex(kToolsPrefix),
            "c7c9042638154a237b5d1bd48be772374a35a4d24c5cacfd1ffbd92703da329c");
  EXPECT_EQ(kToolsSuffix.size(), 99u);
  EXPECT_EQ(Sha256Hex(kToolsSuffix),
            "690702850fe256512cb1ee67c4e436ecb3e735c71ebee77ca45ff357a75fb5a7");
  EXPECT_EQ(kEffortAbsoluteMax.size(), 476u);
  EXPECT_EQ(Sha256Hex(kEffortAbsoluteMax),
            "f7a24f3b3050d4a83781e9b755b316aae2ec1d9dc87562541d90bcb04d7350f7");
  EXPECT_EQ(kEffortBeyondMax.size(), 528u);
  EXPECT_EQ(Sha256Hex(kEffortBeyondMax),
            "53fb31b8392ec5b4a926481943efc67636748f137c1a49d493a7af4d4fa55d2c");
  EXPECT_EQ(kResponseFormatPrefix.size(), 80u);
}

TEST(PythonJsonTest, FloatsFollowPythonRepr) {
  struct Row {
    double v;
    const char* repr;
  } rows[] = {{1.0, "1.0"},
              {2.5, "2.5"},
              {-0.0, "-0.0"},
              {0.0, "0.0"},
              {1e16, "1e+16"},
              {1e15, "1000000000000000.0"},
              {123456789.0, "123456789.0"},
              {1e-5, "1e-05"},
              {0.0001, "0.0001"},
              {0.1 + 0.2, "0.30000000000000004"},
              {1.5e300, "1.5e+300"},
              {-2.5e-7, "-2.5e-07"},
              {100000.0, "100000.0"},
              {5e-324, "5e-324"},
              {std::numeric_limits<double>::infinity(), "Infinity"},
              {-std::numeric_limits<double>::infinity(), "-Infinity"},
              {std::nan(""), "NaN"}};
  for (const Row& r : rows) EXPECT_EQ(PythonFloatRepr(r.v), r.repr) << r.repr;
}

TEST(PythonJsonTest, SpacingEscapingAndKeyOrder) {
  auto j = ParseOrderedJson(
      R"({"z": [1, 2.0, true, null, {}], "a": "q\"\\\n\r\t\b\f\u001f\u007f/é😀", "m": {"y": -3}})",
      "t");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(PythonJsonDumps(*j),
            "{\"z\": [1, 2.0, true, null, {}], \"a\": \"q\\\"\\\\\\n\\r\\t\\b\\f\\u001f\x7f/é😀\", "
            "\"m\": {\"y\": -3}}");
  EXPECT_EQ(PythonJsonDumps(OrderedJson::array()), "[]");
  // Bytes that are not UTF-8 (a generation cut inside a character) become U+FFFD.
  EXPECT_EQ(PythonJsonDumps(OrderedJson(std::string("a\xff\xe2\x82"
                                                    "b\xed\xa0\x80"))),
            "\"a\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
            "b\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");
  EXPECT_EQ(PythonJsonDumps(OrderedJson(uint64_t{18446744073709551615u})), "18446744073709551615");
}

class RenderCaseTest : public ::testing::TestWithParam<std::string> {};

TEST_P(RenderCaseTest, PromptIsByteExact) {
  const std::string name = GetParam();
  auto request = ParseOrderedJson(testing::ReadCase(name + ".json"), name + ".json");
  ASSERT_TRUE(request.ok()) << request.status().ToString();
  auto conv = ConversationFromJson(*request, name);
  ASSERT_TRUE(conv.ok()) << conv.status().ToString();
  auto prompt = RenderPrompt(*conv);
  ASSERT_TRUE(prompt.ok()) << prompt.status().ToString();
  const std::string expect = testing::ReadCase(name + ".prompt");
  ASSERT_FALSE(expect.empty());
  if (*prompt != expect) {
    size_t i = 0;
    while (i < prompt->size() && i < expect.size() && (*prompt)[i] == expect[i]) ++i;
    FAIL() << name << ": first difference at byte " << i
           << "\n got: " << prompt->substr(i > 40 ? i - 40 : 0, 120)
           << "\nwant: " << expect.substr(i > 40 ? i - 40 : 0, 120);
  }
  // Every prefix of the conversation that ends in a user/tool turn either extends or reports
  // a divergence offset where the two renders really differ.
  for (size_t k = 1; k < conv->messages.size(); ++k) {
    Conversation before = *conv;
    before.messages = OrderedJson::array();
    for (size_t i = 0; i < k; ++i) before.messages.push_back(conv->messages[i]);
    auto before_text = RenderPrompt(before);
    auto app = RenderAppend(before, *conv);
    ASSERT_TRUE(before_text.ok() && app.ok());
    if (app->pure_extension) {
      EXPECT_EQ(*before_text + app->text_to_append, *prompt);
    } else {
      ASSERT_LT(app->diverge_offset, before_text->size());
      EXPECT_EQ(before_text->substr(0, app->diverge_offset),
                prompt->substr(0, app->diverge_offset));
      EXPECT_NE((*before_text)[app->diverge_offset], (*prompt)[app->diverge_offset]);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Spec10, RenderCaseTest, ::testing::ValuesIn(testing::CasesWith(".prompt")),
                         [](const auto& info) { return info.param; });

Conversation Load(const std::string& name) {
  auto request = ParseOrderedJson(testing::ReadCase(name + ".json"), name);
  auto conv = ConversationFromJson(*request, name);
  return *conv;
}

TEST(IncrementalRenderTest, ToolSessionsOnlyEverExtend) {
  // Ex. 4: turn 2 = turn 1 + completion + tool result turn; turn 3 likewise (spec §7.2).
  Conversation t1 = Load("ex4_turn1"), t2 = Load("ex4_turn2"), t3 = Load("ex4_turn3");
  auto a = RenderAppend(t1, t2);
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->pure_extension);
  EXPECT_EQ(a->text_to_append.rfind("Search the tree.</think>", 0), 0u);
  auto b = RenderAppend(t2, t3);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->pure_extension);
  EXPECT_EQ(b->text_to_append,
            "One hit in a.c.</think>It is used once, in src/a.c line 12.<｜end▁of▁sentence｜>"
            "<｜User｜>Remove it.<｜Assistant｜><think>");
}

TEST(IncrementalRenderTest, ReasoningDropReportsTheDivergence) {
  Conversation t1 = Load("ex2_turn1"), t2 = Load("ex2_turn2_drop");
  auto a = RenderAppend(t1, t2);
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->pure_extension);
  // Right after turn 1's <｜Assistant｜>: <think> there becomes </think> (spec §7.2 item 1).
  auto p1 = RenderPrompt(t1);
  EXPECT_EQ(a->diverge_offset, p1->size() - kThinkStart.size() + 1);
  t2.drop_thinking = false;
  auto b = RenderAppend(t1, t2);
  EXPECT_TRUE(b->pure_extension);
}

TEST(EncoderTest, RawAssistantBytesAreKeptVerbatim) {
  Conversation c = Load("ex4_turn2");
  c.messages[2]["raw"] = "odd  bytes</think>kept<｜end▁of▁sentence｜>";
  auto p = RenderPrompt(c);
  ASSERT_TRUE(p.ok());
  EXPECT_NE(p->find("<think>odd  bytes</think>kept<｜end▁of▁sentence｜><｜User｜><tool_result>"),
            std::string::npos);
  // Without tools in thinking mode an old turn is rendered without reasoning, so its raw
  // bytes (which hold the reasoning) cannot be used.
  Conversation d = Load("ex2_turn2_drop");
  d.messages[2]["raw"] = "Peru's capital is Lima.</think>Lima.<｜end▁of▁sentence｜>";
  EXPECT_EQ(*RenderPrompt(d), testing::ReadCase("ex2_turn2_drop.prompt"));
}

TEST(EncoderTest, BadInputNamesTheField) {
  struct Row {
    const char* json;
    const char* expect;
  } rows[] = {
      {R"({})", "missing \"messages\""},
      {R"({"messages": [{"role": "robot", "content": "x"}]})", "messages[0].role: unknown role"},
      {R"({"messages": [{"role": "user"}]})", "messages[0].content"},
      {R"({"messages": [{"role": "user", "content": "x"}], "thinking_mode": "deep"})",
       "thinking mode"},
      {R"({"messages": [{"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}]})",
       "messages[0].tool_calls[0].function.name"},
      {R"({"messages": [{"role": "system", "content": "", "tools": [{"type": "function"}]}]})",
       "messages[0].tools[0]"},
      {R"({"messages": [{"role": "user", "content": "x", "task": "dance"}]})", "unknown task"},
      {R"({"messages": [], "drop_thinking": "yes"})", "drop_thinking"},
  };
  for (const Row& r : rows) {
    auto j = ParseOrderedJson(r.json, "in.json");
    ASSERT_TRUE(j.ok());
    auto c = ConversationFromJson(*j, "in.json");
    ASSERT_FALSE(c.ok()) << r.json;
    EXPECT_NE(c.status().message().find(r.expect), std::string::npos) << c.status().message();
    EXPECT_NE(c.status().message().find("in.json"), std::string::npos);
  }
  // Arguments that encode a list, and an unknown effort, fail at render time.
  auto j = ParseOrderedJson(
      R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "",
          "tool_calls": [{"function": {"name": "f", "arguments": "[1]"}}]}]})",
      "in.json");
  auto c = ConversationFromJson(*j, "in.json");
  ASSERT_TRUE(c.ok());
  auto p = RenderPrompt(*c);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("messages[1].tool_calls[0].function.arguments"),
            std::string::npos);
  c->reasoning_effort = "ultra";
  EXPECT_FALSE(RenderPrompt(*c).ok());
}

TEST(EncoderTest, UnparseableArgumentsBecomeOneStringParameter) {
  auto j = ParseOrderedJson(
      R"({"thinking_mode": "chat", "messages": [{"role": "user", "content": "x"},
          {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f",
           "arguments": "not json"}}]}]})",
      "in.json");
  auto p = RenderPrompt(*ConversationFromJson(*j, "in.json"));
  ASSERT_TRUE(p.ok());
  EXPECT_NE(p->find("<｜DSML｜parameter name=\"arguments\" string=\"true\">not json</｜DSML｜"
                    "parameter>"),
            std::string::npos);
}

}  // namespace
}  // namespace v4agent::dsml
