// Instances, predictions and selections read as the published datasets write them.
#include "batch/instance.h"

#include <gtest/gtest.h>

#include "common/file_util.h"

namespace v4agent::batch {
namespace {

const char kTwo[] =
    R"({"instance_id": "a__b-1", "repo": "a/b", "base_commit": "c1", "problem_statement": "p",)"
    R"( "version": "1.0", "FAIL_TO_PASS": "[\"t1\", \"t2\"]", "PASS_TO_PASS": "[]",)"
    R"( "patch": "x", "test_patch": "y", "hints_text": null})"
    "\n"
    R"({"instance_id": "a__b-2", "repo": "a/b", "base_commit": "c2", "problem_statement": "q",)"
    R"( "version": 3.0, "FAIL_TO_PASS": ["t3"], "PASS_TO_PASS": ["t4"]})"
    "\n";

TEST(InstanceTest, JsonlAndListWithEncodedTestLists) {
  ScopedTempDir dir;
  ASSERT_TRUE(WriteFile(dir.path() + "/i.jsonl", kTwo).ok());
  auto in = LoadInstances(dir.path() + "/i.jsonl");
  ASSERT_TRUE(in.ok()) << in.status().ToString();
  ASSERT_EQ(in->size(), 2u);
  EXPECT_EQ((*in)[0].fail_to_pass, (std::vector<std::string>{"t1", "t2"}));
  EXPECT_EQ((*in)[1].pass_to_pass, (std::vector<std::string>{"t4"}));
  EXPECT_EQ((*in)[1].version, "3.0");
  // The same records as one JSON list.
  std::string list = std::string("[") + kTwo;
  list.replace(list.find("}\n{"), 3, "},{");
  list.back() = ']';
  ASSERT_TRUE(WriteFile(dir.path() + "/i.json", list).ok());
  auto in2 = LoadInstances(dir.path() + "/i.json");
  ASSERT_TRUE(in2.ok()) << in2.status().ToString();
  EXPECT_EQ(in2->size(), 2u);
}

TEST(InstanceTest, ErrorsNameFileLineAndField) {
  ScopedTempDir dir;
  const std::string p = dir.path() + "/bad.jsonl";
  ASSERT_TRUE(WriteFile(p, std::string(kTwo) + R"({"instance_id": "x", "repo": "a/b"})"
                                               "\n")
                  .ok());
  auto in = LoadInstances(p);
  ASSERT_FALSE(in.ok());
  EXPECT_NE(in.status().message().find(p + ":3: field 'base_commit': missing"), std::string::npos)
      << in.status().message();
  ASSERT_TRUE(WriteFile(p, std::string(kTwo) + kTwo).ok());
  EXPECT_NE(LoadInstances(p).status().message().find("appears twice"), std::string::npos);
  ASSERT_TRUE(WriteFile(p, "{not json\n").ok());
  EXPECT_NE(LoadInstances(p).status().message().find(p + ":1"), std::string::npos);
}

TEST(InstanceTest, FilterSliceAndShardsThatPartition) {
  std::vector<Instance> all;
  for (int i = 0; i < 40; ++i) {
    Instance in;
    in.id = "org__repo-" + std::to_string(i);
    all.push_back(in);
  }
  auto f = Select(all, Selection{"-1[0-9]$", "", ""});
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->size(), 10u);
  auto s = Select(all, Selection{"", "5:8", ""});
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->size(), 3u);
  EXPECT_EQ((*s)[0].id, "org__repo-5");
  EXPECT_EQ(Select(all, Selection{"", "-2:", ""})->size(), 2u);
  size_t total = 0;
  for (int k = 0; k < 3; ++k) {
    auto part = Select(all, Selection{"", "", std::to_string(k) + "/3"});
    ASSERT_TRUE(part.ok());
    total += part->size();
    for (const auto& in : *part) EXPECT_EQ(ShardOf(in.id, 3), k);
  }
  EXPECT_EQ(total, all.size());
  EXPECT_FALSE(Select(all, Selection{"", "", "3/3"}).ok());
  EXPECT_FALSE(Select(all, Selection{"(", "", ""}).ok());
  EXPECT_FALSE(Select(all, Selection{"", "x", ""}).ok());
}

TEST(InstanceTest, PredictionsInEveryFormAndGold) {
  ScopedTempDir dir;
  std::vector<Instance> ins(1);
  ins[0].id = "a";
  ins[0].patch = "gold-diff";
  auto gold = LoadPredictions("gold", ins);
  ASSERT_TRUE(gold.ok());
  EXPECT_EQ(gold->at("a").patch, "gold-diff");
  EXPECT_EQ(gold->at("a").model, "gold");
  const std::string line = R"({"instance_id":"a","model_name_or_path":"m","model_patch":"d"})";
  for (const std::string& text :
       {line + "\n", "[" + line + "]",
        std::string(R"({"a": {"model_name_or_path":"m","model_patch":"d"}})")}) {
    ASSERT_TRUE(WriteFile(dir.path() + "/p", text).ok());
    auto p = LoadPredictions(dir.path() + "/p", ins);
    ASSERT_TRUE(p.ok()) << p.status().ToString() << " for " << text;
    EXPECT_EQ(p->at("a").patch, "d");
    EXPECT_EQ(p->at("a").model, "m");
  }
}

TEST(InstanceTest, FilesInDiff) {
  const std::string diff =
      "diff --git a/tests/test_x.py b/tests/test_x.py\n--- a/tests/test_x.py\n+++ "
      "b/tests/test_x.py\n@@ -1 +1 @@\n-a\n+b\ndiff --git a/new.txt b/new.txt\nnew file mode "
      "100644\n--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1 @@\n+x\n";
  EXPECT_EQ(FilesInDiff(diff), (std::vector<std::string>{"tests/test_x.py", "new.txt"}));
}

}  // namespace
}  // namespace v4agent::batch
