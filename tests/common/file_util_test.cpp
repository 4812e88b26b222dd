#include "common/file_util.h"

#include <gtest/gtest.h>

#include <filesystem>

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

TEST(FileUtilTest, AtomicFileWriterPublishesOnlyOnCommit) {
  ScopedTempDir dir;
  const std::string p = dir.path() + "/s.bin";
  ASSERT_TRUE(WriteFile(p, "old").ok());
  {
    auto w = AtomicFileWriter::Create(p);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    ASSERT_TRUE((*w)->Write("xxxxdata", 8).ok());
    EXPECT_EQ((*w)->offset(), 8u);
    // Dropped without Commit: the old file stays and no temporary file is left.
  }
  EXPECT_EQ(*ReadFile(p), "old");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()),
                          std::filesystem::directory_iterator()),
            1);
  auto w = AtomicFileWriter::Create(p);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Write("xxxxdata", 8).ok());
  ASSERT_TRUE((*w)->WriteAt(0, "head", 4).ok());
  EXPECT_EQ(*ReadFile(p), "old");  // not visible before Commit
  ASSERT_TRUE((*w)->Commit().ok());
  EXPECT_EQ(*ReadFile(p), "headdata");
  EXPECT_FALSE(AtomicFileWriter::Create(dir.path() + "/no/such/dir/f").ok());
}

}  // namespace
}  // namespace v4agent
