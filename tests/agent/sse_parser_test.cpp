#include "agent/sse_parser.h"

#include <gtest/gtest.h>

#include "agent/budgets.h"

namespace v4agent::agent {
namespace {

TEST(SseParserTest, SplitsEventsAcrossArbitraryChunks) {
  const std::string stream =
      ": keep-alive\r\ndata: {\"a\":1}\r\n\r\nevent: update\ndata: line1\ndata: line2\n\n"
      "data:[DONE]\n\n";
  for (size_t chunk = 1; chunk <= stream.size(); ++chunk) {
    SseParser p;
    std::vector<SseEvent> events;
    for (size_t i = 0; i < stream.size(); i += chunk) {
      for (auto& e : p.Feed(std::string_view(stream).substr(i, chunk))) events.push_back(e);
    }
    ASSERT_EQ(events.size(), 3u) << "chunk " << chunk;
    EXPECT_EQ(events[0].event, "message");
    EXPECT_EQ(events[0].data, "{\"a\":1}");
    EXPECT_EQ(events[1].event, "update");
    EXPECT_EQ(events[1].data, "line1\nline2");
    EXPECT_EQ(events[2].data, "[DONE]");
    EXPECT_FALSE(p.HasPartial());
  }
}

TEST(SseParserTest, UnterminatedEventIsNotEmitted) {
  SseParser p;
  EXPECT_TRUE(p.Feed("data: x\n").empty());
  EXPECT_TRUE(p.HasPartial());
}

TEST(BudgetsTest, NamesRoundTripAndLimitsOrder) {
  for (ExitStatus s : {ExitStatus::kSubmitted, ExitStatus::kStepLimit, ExitStatus::kTokenLimit,
                       ExitStatus::kContextLimit, ExitStatus::kTimeLimit, ExitStatus::kFormatError,
                       ExitStatus::kModelError, ExitStatus::kToolFatal, ExitStatus::kInterrupted}) {
    EXPECT_EQ(ExitStatusFromName(ExitStatusName(s)), s);
  }
  Budgets b;
  b.max_steps = 2;
  b.max_generated_tokens = 10;
  EXPECT_FALSE(ExceededBudget(b, BudgetUsage{1, 5, 0, 0}).has_value());
  EXPECT_EQ(ExceededBudget(b, BudgetUsage{2, 50, 0, 0}), ExitStatus::kStepLimit);
  EXPECT_EQ(ExceededBudget(b, BudgetUsage{1, 10, 0, 0}), ExitStatus::kTokenLimit);
}

TEST(BudgetsTest, StuckDetectorNeedsConsecutiveRepeats) {
  StuckDetector d(3);
  EXPECT_FALSE(d.Observe("ls", "a"));
  EXPECT_FALSE(d.Observe("ls", "a"));
  EXPECT_TRUE(d.Observe("ls", "a"));
  EXPECT_FALSE(d.Observe("ls", "b"));
  EXPECT_FALSE(d.Observe("ls", "a"));
}

}  // namespace
}  // namespace v4agent::agent
