// `v4agent dsml render|parse` as a user runs them.
#include <gtest/gtest.h>

#include "common/json.h"
#include "common/strings.h"
#include "tests/cli/cli_util.h"

namespace v4agent {
namespace {

using cli_testing::CmdResult;
using cli_testing::Exec;
const std::string kCases = std::string(V4_SOURCE_DIR) + "/tests/dsml/cases";

TEST(DsmlCliTest, RenderWritesTheExactPromptBytes) {
  for (const char* name : {"ex4_turn2", "ex5_parallel", "ex8_response_format", "ex9_zero_args"}) {
    auto r = Exec(StrCat("dsml render --input ", kCases, "/", name, ".json"), "", false);
    ASSERT_EQ(r.code, 0) << name;
    EXPECT_EQ(r.out, *ReadFile(StrCat(kCases, "/", name, ".prompt"))) << name;
  }
  auto in = ReadFile(kCases + "/ex1_chat.json");
  auto r = Exec("dsml render --input -", *in, false);
  EXPECT_EQ(r.out, *ReadFile(kCases + "/ex1_chat.prompt"));
}

TEST(DsmlCliTest, RenderErrorsNameTheFileAndField) {
  ScopedTempDir dir;
  const std::string bad = dir.path() + "/bad.json";
  ASSERT_TRUE(WriteFile(bad, R"({"messages": [{"role": "user", "content": 3}]})").ok());
  auto r = Exec("dsml render --input " + bad);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("bad.json"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("messages[0].content"), std::string::npos) << r.out;
  EXPECT_EQ(Exec("dsml render").code, 2);
  EXPECT_EQ(Exec("dsml parse --format xml").code, 2);
}

TEST(DsmlCliTest, ParseMessageAndEvents) {
  auto text = ReadFile(kCases + "/parse_ex4_c1.completion");
  auto r = Exec("dsml parse --format message", *text, false);
  ASSERT_EQ(r.code, 0);
  auto j = ParseJson(r.out, "stdout");
  ASSERT_TRUE(j.ok()) << r.out;
  EXPECT_EQ((*j)["role"], "assistant");
  EXPECT_EQ((*j)["reasoning_content"], "Search the tree.");
  EXPECT_EQ((*j)["tool_calls"][0]["function"]["name"], "grep");
  EXPECT_EQ((*j)["tool_calls"][0]["function"]["arguments"],
            "{\"pattern\": \"TODO\", \"max_hits\": 5}");
  auto e = Exec("dsml parse --format events --thinking-mode thinking", *text, false);
  ASSERT_EQ(e.code, 0);
  std::vector<std::string> kinds;
  for (const auto& line : StrSplit(StripWhitespace(e.out), '\n')) {
    auto ev = ParseJson(line, "event");
    ASSERT_TRUE(ev.ok()) << line;
    kinds.push_back((*ev)["event"]);
  }
  ASSERT_FALSE(kinds.empty());
  EXPECT_EQ(kinds.front(), "reasoning_delta");
  EXPECT_EQ(kinds.back(), "message_end");
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "tool_call_end"), kinds.end());
}

}  // namespace
}  // namespace v4agent
