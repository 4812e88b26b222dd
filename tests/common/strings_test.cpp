#include "common/strings.h"

#include <gtest/gtest.h>

namespace v4agent {
namespace {

TEST(StringsTest, SplitJoinStrip) {
  EXPECT_EQ(StrSplit("a,b,,c", ','), (std::vector<std::string>{"a", "b", "", "c"}));
  EXPECT_EQ(StrJoin({"x", "y"}, "--"), "x--y");
  EXPECT_EQ(StripWhitespace("  hi \n"), "hi");
  EXPECT_EQ(StrCat("a", 1, '-', 2.5), "a1-2.5");
}

TEST(StringsTest, ParseNumbers) {
  int64_t v = 0;
  EXPECT_TRUE(ParseInt64("-42", &v));
  EXPECT_EQ(v, -42);
  EXPECT_FALSE(ParseInt64("42x", &v));
  EXPECT_FALSE(ParseInt64("", &v));
  EXPECT_FALSE(ParseInt64("99999999999999999999", &v));
  double d = 0;
  EXPECT_TRUE(ParseDouble("0.25", &d));
  EXPECT_EQ(d, 0.25);
  EXPECT_FALSE(ParseDouble("1e", &d));
}

TEST(StringsTest, HumanBytes) {
  EXPECT_EQ(HumanBytes(512), "512 B");
  EXPECT_EQ(HumanBytes(1536), "1.50 KiB");
  EXPECT_EQ(HumanBytes(3ull << 30), "3.00 GiB");
}

}  // namespace
TEST(StringsTest, ParseByteSize) {
  uint64_t v = 0;
  EXPECT_TRUE(ParseByteSize("4096", &v));
  EXPECT_EQ(v, 4096u);
  EXPECT_TRUE(ParseByteSize("512K", &v));
  EXPECT_EQ(v, 512u << 10);
  EXPECT_TRUE(ParseByteSize("64MiB", &v));
  EXPECT_EQ(v, 64u << 20);
  EXPECT_TRUE(ParseByteSize(" 16G ", &v));
  EXPECT_EQ(v, 16ull << 30);
  EXPECT_TRUE(ParseByteSize("2TB", &v));
  EXPECT_EQ(v, 2ull << 40);
  for (const char* bad : {"", "G", "-1", "1.5G", "12X", "99999999999T"}) {
    EXPECT_FALSE(ParseByteSize(bad, &v)) << bad;
  }
}

}  // namespace v4agent
