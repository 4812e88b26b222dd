#include "common/file_util.h"

#include <gtest/gtest.h>

#include "common/mapped_file.h"

namespace v4agent {
namespace {

TEST(FileUtilTest, WriteReadAtomicMap) {
  ScopedTempDir dir;
  std::string p = dir.path() + "/f.txt";
  ASSERT_TRUE(WriteFile(p, "hello").ok());
  EXPECT_EQ(*ReadFile(p), "hello");
  ASSERT_TRUE(WriteFileAtomic(p, "world!").ok());
  EXPECT_EQ(*ReadFile(p), "world!");
  auto m = MappedFile::Open(p);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->view(), "world!");
  MappedFile moved = std::move(m).value();
  EXPECT_EQ(moved.size(), 6u);
}

TEST(FileUtilTest, ErrorsNameThePath) {
  auto r = ReadFile("/nonexistent/v4agent/x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("/nonexistent/v4agent/x"), std::string::npos);
  auto m = MappedFile::Open("/nonexistent/v4agent/y");
  EXPECT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("/nonexistent/v4agent/y"), std::string::npos);
  ScopedTempDir dir;
  EXPECT_FALSE(MappedFile::Open(dir.path()).ok());
}

TEST(FileUtilTest, EmptyFileMaps) {
  ScopedTempDir dir;
  std::string p = dir.path() + "/empty";
  ASSERT_TRUE(WriteFile(p, "").ok());
  auto m = MappedFile::Open(p);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->size(), 0u);
}

}  // namespace
}  // namespace v4agent
