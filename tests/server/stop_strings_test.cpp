// StopStrings: what a streaming client may be shown while stop strings are watched.
#include "server/stop_strings.h"

#include <gtest/gtest.h>

namespace v4agent::server {
namespace {

TEST(StopStringsTest, TextIsHeldBackOnlyWhileAStopStringCouldStartInIt) {
  StopStrings s({"END", "\n\n"});
  EXPECT_EQ(s.Feed("hello E"), "hello ");  // "E" may begin "END"
  EXPECT_EQ(s.Feed("N"), "");              // "EN" still may
  EXPECT_EQ(s.Feed("X and"), "ENX and");   // it did not
  EXPECT_EQ(s.Feed(" more\n"), " more");
  EXPECT_FALSE(s.hit());
  EXPECT_EQ(s.Flush(), "\n");
}

TEST(StopStringsTest, AStopStringAcrossPiecesIsNeverShownAndMarksWhereTheTextEnds) {
  StopStrings s({"STOP"});
  std::string shown;
  for (const char* piece : {"ab", "cS", "T", "OPxyz", "more"}) shown += s.Feed(piece);
  EXPECT_EQ(shown, "abc");
  EXPECT_TRUE(s.hit());
  EXPECT_EQ(s.at(), 3u);
  EXPECT_EQ(s.Flush(), "");
}

TEST(StopStringsTest, TheEarliestOfSeveralWinsAndNoStopsReleaseEverything) {
  StopStrings s({"cd", "bcde"});
  EXPECT_EQ(s.Feed("abcdef"), "a");
  EXPECT_EQ(s.at(), 1u);
  StopStrings none({});
  EXPECT_EQ(none.Feed("x"), "x");
  EXPECT_EQ(none.Flush(), "");
}

}  // namespace
}  // namespace v4agent::server
