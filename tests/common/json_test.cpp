#include "common/json.h"

#include <gtest/gtest.h>

namespace v4agent {
namespace {

TEST(JsonTest, ParseErrorsNameSourceAndByte) {
  auto r = ParseJson("{\"a\": 1,,}", "config.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("config.json"), std::string::npos);
  EXPECT_NE(r.status().message().find("byte"), std::string::npos);
}

TEST(JsonTest, TypedFields) {
  auto j = *ParseJson(R"({"n": 3, "f": 2.0, "s": "x", "b": true, "bad": "3"})", "c.json");
  EXPECT_EQ(*JsonGetInt(j, "n", "c.json"), 3);
  EXPECT_EQ(*JsonGetInt(j, "f", "c.json"), 2);
  EXPECT_EQ(*JsonGetString(j, "s", "c.json"), "x");
  EXPECT_TRUE(*JsonGetBool(j, "b", "c.json"));
  auto missing = JsonGetInt(j, "zz", "c.json");
  EXPECT_EQ(missing.status().message(), "c.json: field 'zz': missing");
  auto wrong = JsonGetInt(j, "bad", "c.json");
  EXPECT_EQ(wrong.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(wrong.status().message().find("'bad'"), std::string::npos);
}

TEST(JsonTest, DumpNeverThrowsOnBadUtf8) {
  Json j = std::string(
      "a\xff"
      "b");
  EXPECT_NO_THROW(DumpJson(j));
}

}  // namespace
}  // namespace v4agent
