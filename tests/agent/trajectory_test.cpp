#include "agent/trajectory.h"

#include <gtest/gtest.h>

#include "common/file_util.h"

namespace v4agent::agent {
namespace {

TEST(TrajectoryTest, AppendsAndReadsBack) {
  ScopedTempDir dir;
  std::string path = dir.path() + "/t.jsonl";
  {
    auto w = TrajectoryWriter::Open(path);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    ASSERT_TRUE(w->Append(Json{{"type", "start"}, {"n", 1}}).ok());
    ASSERT_TRUE(w->Append(Json{{"type", "turn"}, {"text", "line\nbreak"}}).ok());
  }
  auto records = ReadTrajectory(path);
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[1]["text"], "line\nbreak");
}

TEST(TrajectoryTest, TornLastLineIsDroppedAndReopenStartsANewLine) {
  ScopedTempDir dir;
  std::string path = dir.path() + "/t.jsonl";
  ASSERT_TRUE(WriteFile(path, "{\"type\":\"start\"}\n{\"type\":\"tu").ok());
  auto records = ReadTrajectory(path);
  ASSERT_TRUE(records.ok());
  EXPECT_EQ(records->size(), 1u);
  auto w = TrajectoryWriter::Open(path);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(w->Append(Json{{"type", "resume"}}).ok());
  records = ReadTrajectory(path);
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[1]["type"], "resume");
}

TEST(TrajectoryTest, BrokenFirstLineIsDataLoss) {
  ScopedTempDir dir;
  std::string path = dir.path() + "/t.jsonl";
  ASSERT_TRUE(WriteFile(path, "not json\n{\"type\":\"turn\"}\n").ok());
  auto records = ReadTrajectory(path);
  EXPECT_FALSE(records.ok());
  EXPECT_NE(records.status().message().find("t.jsonl:1"), std::string::npos);
}

}  // namespace
}  // namespace v4agent::agent
