// The replay of a trajectory: every kind of record in order, long outputs clipped with a count,
// totals summed over the turns, and HTML with nothing from the run left unescaped.
#include "agent/trajectory_view.h"

#include <gtest/gtest.h>

namespace v4agent::agent {
namespace {

std::vector<Json> Records() {
  std::string long_output;
  for (int i = 1; i <= 100; ++i) long_output += "line " + std::to_string(i) + "\n";
  return {
      Json{{"type", "start"},
           {"task", "fix <b>it</b>"},
           {"client", "scripted"},
           {"thinking", true},
           {"workspace", "/w"}},
      Json{{"type", "turn"},
           {"step", 1},
           {"completion",
            {{"reasoning_content", "look first"},
             {"content", ""},
             {"tokens_prefilled", 100},
             {"tokens_reused", 0},
             {"tokens_generated", 7},
             {"tool_calls", Json::array({{{"name", "bash"},
                                          {"arguments", "{\"command\":\"seq 100\"}"},
                                          {"id", "c1"}}})}}},
           {"format_error", ""}},
      Json{{"type", "tool_result"},
           {"name", "bash"},
           {"decision", "allow"},
           {"ok", true},
           {"output", long_output}},
      Json{{"type", "message"},
           {"reason", "no_tool_call"},
           {"message", {{"role", "user"}, {"content", "call a tool"}}}},
      Json{{"type", "resume"}, {"at_step", 1}},
      Json{{"type", "turn"},
           {"step", 2},
           {"completion",
            {{"tokens_prefilled", 20},
             {"tokens_reused", 107},
             {"tokens_generated", 3},
             {"content", "<script>alert(1)</script>"}}},
           {"format_error", ""}},
      Json{{"type", "something_new"}, {"x", 1}},
      Json{{"type", "end"},
           {"status", "submitted"},
           {"steps", 2},
           {"tool_calls_executed", 1},
           {"submission", "diff --git a/x b/x"}},
  };
}

TEST(TrajectoryViewTest, TextTellsTheRunInOrderWithTotalsAndClipsLongOutput) {
  const std::string t = ReplayText(Records(), ReplayStyle{false, 10});
  const char* in_order[] = {"== task: fix <b>it</b>",
                            "== step 1: 100 prefilled, 0 reused",
                            "[thinking]",
                            "look first",
                            "> bash {\"command\":\"seq 100\"}",
                            "< bash -> allow",
                            "line 5\n",
                            "... (90 more lines) ...",
                            "line 100",
                            "(no_tool_call) call a tool",
                            "(resume) resumed at step 1",
                            "== step 2: 20 prefilled, 107 reused",
                            "(something_new)",
                            "== end: status submitted after 2 steps",
                            "tokens: 120 prefilled, 107 reused from the cache",
                            "diff --git a/x b/x"};
  size_t at = 0;
  for (const char* piece : in_order) {
    const size_t found = t.find(piece, at);
    ASSERT_NE(found, std::string::npos) << "missing or out of order: " << piece << "\n" << t;
    at = found;
  }
  EXPECT_EQ(t.find("line 6\n"), std::string::npos) << "not clipped";
  EXPECT_EQ(t.find("\033["), std::string::npos) << "colour without a terminal";
  EXPECT_NE(ReplayText(Records(), ReplayStyle{true, 10}).find("\033[1m"), std::string::npos);
  EXPECT_NE(ReplayText(Records(), ReplayStyle{false, 0}).find("line 50\n"), std::string::npos);
}

TEST(TrajectoryViewTest, HtmlEscapesEverythingFromTheRun) {
  const std::string h = ReplayHtml(Records());
  EXPECT_EQ(h.find("<script>"), std::string::npos) << h;
  EXPECT_EQ(h.find("<b>it"), std::string::npos);
  EXPECT_NE(h.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_EQ(HtmlEscape("a&b<c>\"d'"), "a&amp;b&lt;c&gt;&quot;d&#39;");
}

}  // namespace
}  // namespace v4agent::agent
